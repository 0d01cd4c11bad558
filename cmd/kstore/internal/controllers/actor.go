package controllers

import (
	"context"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/kstore/kstore/messages"
)

// maxWorkers bounds the reconciles one controller runs at once. A reconcile spends nearly all
// its time waiting for a write to commit, so a few in parallel hide that latency; eight per
// controller, twenty-four for the three, stay well inside a node's table of in-flight
// proposals (raftactor.DefaultMaxInflightProposals), so the controllers never crowd out other
// clients' writes.
const maxWorkers = 8

// cacheLagPoll is how often a key held back by a cache that has not caught up with the
// controller's own last write for it (see controller.wrote) looks again. The wait is local (an
// atomic load), and a watch delivers a write within milliseconds of its commit.
const cacheLagPoll = 10 * time.Millisecond

// reconciler is what a controller actor runs for each dirty key, on a worker goroutine.
type reconciler interface {
	// reconcile drives the object named k towards what its spec asks, reading the informers'
	// caches and writing through the client; it may block on the network and returns when ctx
	// ends. A nil error and a zero retryAfter mean done; a retryAfter > 0 asks for another
	// reconcile after that long. An error is retried with backoff, except Invalid and TooLarge
	// (retrying the same request fails again: the key waits for the object to change). The
	// outcome is meaningful with an error too: wrote counts the writes made before it.
	reconcile(ctx context.Context, k objectKey) (outcome, error)
	// watermark is the revision the cache that shows this reconciler's writes is at
	// (Informer.LastSyncResourceVersion of the Pod informer, for all three). Safe to call from
	// Receive: it does not block.
	watermark() uint64
	// waitForSync blocks until the informers the reconciler reads have synced (true) or ctx
	// ends (false).
	waitForSync(ctx context.Context) bool
	// keys lists every key the informers' caches imply: reconciled once they have synced, and
	// after a restart of the actor, which starts with an empty queue.
	keys() []objectKey
}

// outcome is what one reconcile did, beyond its error.
type outcome struct {
	// retryAfter > 0 asks for another reconcile of the key after that long.
	retryAfter time.Duration
	// wrote is the resourceVersion of the last change the reconcile made that the watermark's
	// informer will deliver (a Pod created, deleted or patched), 0 for none.
	wrote uint64
}

// inbox is how informer handlers hand keys to a controller actor: a set of keys, shared with the
// actor, and a wake message sent when the set stops being empty. However fast events come, the
// actor's mailbox then holds at most one wake from the handlers, and the set at most one entry
// per key: bounded by the objects the informers hold, as the workqueue is. (An enqueue message
// per event would queue without bound in front of an actor that fell behind.) add never
// blocks on the actor: the handlers run on the informers' goroutines, and an informer waits
// for its handlers.
type inbox struct {
	root *actor.RootContext
	mu   sync.Mutex
	pid  *actor.PID             // the actor woken; set once by Run, before the informers start
	keys map[objectKey]struct{} // dirtied, not yet taken by the actor
}

func newInbox(root *actor.RootContext) *inbox {
	return &inbox{root: root, keys: map[objectKey]struct{}{}}
}

// add dirties keys, waking the actor if the set was empty.
func (b *inbox) add(keys ...objectKey) {
	if len(keys) == 0 {
		return
	}
	b.mu.Lock()
	first := len(b.keys) == 0
	for _, k := range keys {
		b.keys[k] = struct{}{}
	}
	pid := b.pid
	b.mu.Unlock()
	if first {
		// A key added after the actor took the set and before this wake arrives is taken by
		// this wake; one added while a wake is on its way is taken by that wake. So no key is
		// left in the set without a wake to come.
		b.root.Send(pid, wake{})
	}
}

// take empties the set and returns what it held.
func (b *inbox) take() map[objectKey]struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := b.keys
	b.keys = map[objectKey]struct{}{}
	return keys
}

// Messages of a controller actor. Each is local (never crosses a process), from the sender
// named, and has no reply.
type (
	// wake says the actor's inbox holds keys. Sender: informer handlers, through inbox.add.
	wake struct{}
	// synced says the reconciler's informers have synced: reconciles may start. Sender: the
	// actor's own sync waiter goroutine.
	synced struct{}
	// reconciled ends one reconcile of key. Sender: the worker goroutine that ran it.
	reconciled struct {
		key objectKey
		err error
		outcome
	}
	// tick says a retry may be due. Sender: the actor's retry timer number gen.
	tick struct{ gen uint64 }
)

// controller is the actor shell around a reconciler: it owns the workqueue, the workers and the
// retry timer. Its Receive never blocks except in Stopping, where it waits for its workers,
// whose context it has just cancelled.
//
// Every goroutine it starts (workers, the sync waiter) is counted in workers and ends when ctx
// is cancelled; the retry timer is stopped in Stopping.
type controller struct {
	rec     reconciler
	logger  *zap.Logger
	parent  context.Context // Run's: the actor's ctx derives from it
	inbox   *inbox
	stopped chan struct{} // closed once the actor has stopped and its workers returned

	ctx     context.Context // cancelled in Stopping; the workers' context
	cancel  context.CancelFunc
	q       *queue
	ready   bool // the informers have synced: keys may be handed to workers
	active  int  // workers running a reconcile; at most maxWorkers
	workers sync.WaitGroup
	// wrote holds, per key, the resourceVersion of the controller's last write for it until the
	// cache has reached it. A key is not reconciled from a cache that is behind its own write:
	// that reconcile would act on the state before the write (bind a bound Pod, create a Pod
	// that exists) and only meet Conflict or AlreadyExists, using up a turn and a Raft entry.
	// At most one entry per key, dropped when the key is next handed out and the cache is
	// there: so bounded as the queue is.
	wrote   map[objectKey]uint64
	timer   *time.Timer // fires at retryAt; nil when no retry waits
	retryAt time.Time
	gen     uint64 // number of the timer last armed: a tick of an older one is stale
}

// newController returns the actor of rec, which takes its keys from in and closes stopped when
// it has stopped for good (not on a restart); logger names the controller already.
func newController(parent context.Context, rec reconciler, in *inbox, stopped chan struct{}, logger *zap.Logger) *controller {
	return &controller{rec: rec, logger: logger, parent: parent, inbox: in, stopped: stopped}
}

// Receive handles one message.
func (c *controller) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		c.start(ctx)
	case *actor.Stopping, *actor.Restarting:
		c.stop()
	case *actor.Stopped:
		close(c.stopped)
	case wake:
		for k := range c.inbox.take() {
			c.q.Add(k)
		}
		c.dispatch(ctx)
	case synced:
		c.ready = true
		for _, k := range c.rec.keys() {
			c.q.Add(k)
		}
		c.dispatch(ctx)
	case reconciled:
		c.active--
		c.finished(m)
		c.dispatch(ctx)
	case tick:
		if m.gen == c.gen {
			c.timer = nil
		}
		c.q.Due(time.Now())
		c.dispatch(ctx)
	}
}

// start resets the actor's state (a restart starts from scratch: crash-only) and starts the
// sync waiter.
func (c *controller) start(ctx actor.Context) {
	c.ctx, c.cancel = context.WithCancel(c.parent)
	c.q = newQueue()
	c.wrote = map[objectKey]uint64{}
	c.ready, c.active, c.timer = false, 0, nil
	self, root := ctx.Self(), ctx.ActorSystem().Root
	wctx := c.ctx
	c.workers.Go(func() {
		if c.rec.waitForSync(wctx) {
			root.Send(self, synced{})
		}
	})
}

// stop cancels the workers, stops the timer and waits for the workers to return. A worker
// still in a client call returns once that call does: the client does not abandon a request
// already sent when its context ends, so this takes at most the client's timeout.
func (c *controller) stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.workers.Wait()
	c.active = 0
}

// finished records the outcome of one reconcile: done, again later, or a retry with backoff.
func (c *controller) finished(m reconciled) {
	c.q.Done(m.key)
	if m.wrote > 0 {
		c.wrote[m.key] = m.wrote
	}
	now := time.Now()
	switch {
	case m.err == nil:
		c.q.Forget(m.key)
		if m.retryAfter > 0 {
			c.q.AddAfter(m.key, m.retryAfter, now)
		}
	case messages.IsInvalid(m.err) || messages.IsTooLarge(m.err):
		c.q.Forget(m.key)
		c.logger.Error("reconcile failed; the key waits for its object to change", zap.Stringer("key", m.key), zap.Error(m.err))
	default:
		d := c.q.Backoff(m.key)
		c.q.AddAfter(m.key, d, now)
		level := zap.InfoLevel
		if messages.IsConflict(m.err) || d > firstBackoff {
			// A Conflict is the normal course of optimism; a failure after the first of a row
			// says nothing new, and a store that is down would otherwise fill the log.
			level = zap.DebugLevel
		}
		c.logger.Log(level, "reconcile failed; retrying", zap.Stringer("key", m.key), zap.Duration("after", d), zap.Error(m.err))
	}
}

// dispatch hands ready keys to new workers, up to maxWorkers, and arms the retry timer for the
// earliest waiting key.
func (c *controller) dispatch(ctx actor.Context) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	for c.ready && c.active < maxWorkers && c.ctx.Err() == nil {
		k, ok := c.q.Next()
		if !ok {
			break
		}
		if rv, ok := c.wrote[k]; ok {
			if c.rec.watermark() < rv {
				c.q.Done(k)
				c.q.AddAfter(k, cacheLagPoll, time.Now())
				continue
			}
			delete(c.wrote, k)
		}
		c.active++
		wctx := c.ctx
		c.workers.Go(func() {
			out, err := c.rec.reconcile(wctx, k)
			root.Send(self, reconciled{key: k, err: err, outcome: out})
		})
	}
	at, ok := c.q.NextDue()
	if !ok || (c.timer != nil && c.retryAt.Equal(at)) {
		return
	}
	if c.timer != nil {
		c.timer.Stop() // a tick it sent already is stale: it finds nothing due
	}
	var gen uint64
	c.gen++
	c.retryAt, gen = at, c.gen
	c.timer = time.AfterFunc(time.Until(at), func() { root.Send(self, tick{gen: gen}) })
}
