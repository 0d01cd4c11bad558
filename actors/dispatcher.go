package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// ownDispatcher runs one actor's mailbox on a goroutine of its own that lives as long as the
// node, where protoactor's default dispatcher starts a new goroutine each time an idle mailbox
// gets a message. For the node's few busy actors (node, raft, catalog, watch hub) that costs
// on every hop of a write: the new goroutine starts on a small stack and grows it again
// through raft's and protobuf's deep calls (runtime.newstack was 11% of a node's CPU at one
// client). The Node owns these dispatchers and closes them once its actors have stopped.
type ownDispatcher struct {
	mu      sync.Mutex
	started bool
	closed  bool
	// work holds the mailbox's next run. One slot is enough and a send never waits: a mailbox
	// schedules a run only after its last one marked it idle, so at most one run is queued
	// while the one before it finishes.
	work chan func()
}

func newOwnDispatcher() *ownDispatcher {
	return &ownDispatcher{work: make(chan func(), 1)}
}

// defaultThroughput is protoactor's: the messages a mailbox processes before it yields.
const defaultThroughput = 300

func (d *ownDispatcher) Throughput() int { return defaultThroughput }

// Schedule queues the mailbox's run on the goroutine, starting it on first use (an actor whose
// spawn failed never needs one). After close, or should the slot be taken after all, the run
// gets a goroutine of its own, as with protoactor's default: a Schedule must never block.
func (d *ownDispatcher) Schedule(fn func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		go fn()
		return
	}
	if !d.started {
		d.started = true
		go d.run()
	}
	select {
	case d.work <- fn:
	default:
		go fn()
	}
}

func (d *ownDispatcher) run() {
	for fn := range d.work {
		fn()
	}
}

// close ends the goroutine once it has run what is queued.
func (d *ownDispatcher) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		close(d.work)
	}
}

// dispatchers are a node's ownDispatchers.
type dispatchers struct {
	mu     sync.Mutex
	all    []*ownDispatcher
	closed bool
}

// own returns a new dispatcher, closed with the others by close; one asked for after close is
// closed already, so that no goroutine outlives the node.
func (ds *dispatchers) own() actor.PropsOption {
	d := newOwnDispatcher()
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.closed {
		d.close()
	} else {
		ds.all = append(ds.all, d)
	}
	return actor.WithDispatcher(d)
}

func (ds *dispatchers) close() {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for _, d := range ds.all {
		d.close()
	}
	ds.all, ds.closed = nil, true
}
