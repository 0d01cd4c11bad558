package catalogactor

import (
	"cmp"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/raftactor"
)

// Changes carries the changes of one applied batch, in order, to the watch hub (Config.Watchers).
// It is sent after every batch, changes or not, so the hub always knows the applied index.
// The catalog never waits on the hub: it sends and goes on.
type Changes struct {
	Changes   []Change
	Applied   uint64
	Compacted uint64
	// Reset says that a snapshot replaced the catalog: Applied jumped, and the changes between
	// the last Changes and Applied were never sent. Watches resume from the new catalog's
	// history, which starts at Compacted.
	Reset bool
}

// History asks for the changes after From: at most Limit of them, and no more after their
// objects pass MaxBytes (0: no byte bound). Sender: a watcher catching up. Reply:
// *HistoryResult, or Gone when From is older than the retained history.
type History struct {
	From     uint64
	Limit    int
	MaxBytes int
}

// HistoryResult holds changes in order. Unless More is set, they are every change up to UpTo
// (the applied index when the read began).
type HistoryResult struct {
	Changes []Change
	UpTo    uint64
	More    bool
	Err     error
}

// Snapshot asks for the objects of one type (or of every type) at a revision, in key order, at
// most Limit of them and no more after they pass MaxBytes (0: no byte bound), after the key
// After. Sender: a watcher sending its initial state. Reply: *SnapshotResult. RV 0 reads the
// latest applied revision; the result says which it was.
type Snapshot struct {
	AllTypes             bool
	Group, Version, Kind string
	Namespace            string
	After                *messages.ResourceKey
	Limit                int
	MaxBytes             int
	RV                   uint64
}

// SnapshotResult holds objects with their keys; More is set when objects remain after them.
type SnapshotResult struct {
	Keys    []*messages.ResourceKey
	Objects [][]byte
	RV      uint64
	More    bool
	Err     error
}

// Config of a catalog actor. Zero fields take the defaults below.
type Config struct {
	// DB is the catalog's Badger database, opened with OpenStore. The actor owns it from spawn
	// on and closes it when it stops.
	DB *badger.DB
	// Watchers, when set, gets Changes after every applied batch.
	Watchers *actor.PID
	Logger   *zap.Logger
	// HistoryRevisions is how many revisions behind the applied index stay readable (historical
	// reads, continue tokens, watch resume); older ones are Gone.
	HistoryRevisions uint64
	// Readers is the number of goroutines serving reads, beside the actor's writes.
	Readers int
	// MaxQueuedReads bounds reads handed to readers and not yet served; beyond it a read gets
	// Unavailable at once.
	MaxQueuedReads int
	// MaxWaitingReads bounds reads waiting for a resourceVersion the node has not reached.
	MaxWaitingReads int
	// ReadWait is how long such a read waits before it fails with Timeout.
	ReadWait time.Duration
	// SyncEvery is how many applied entries may be in Badger's unsynced writes before a sync,
	// after which the raft actor may drop them from the Raft log.
	SyncEvery uint64
	// GCInterval is the pause between two value-log GCs.
	GCInterval time.Duration
	// NodeID is this member's Raft id, named in the snapshots it sends.
	NodeID uint64
	// Store is how DB was opened (OpenStore): a snapshot is staged beside Store.Dir and the
	// catalog reopened from it. A catalog in memory cannot install one.
	Store StoreOptions
	// Audit, when set, gets one info line per applied command (AuditLine): who changed what,
	// with which Reason, at which resourceVersion, and the outcome. Every member writes it for
	// every write, leader or not; nil writes none.
	Audit *zap.Logger
	// Faults, for tests, injects failures into the commits to Badger; nil in production.
	Faults Faults
	// Metrics, when set (NewMetrics), are kept up to date by the actor; nil: none.
	Metrics *Metrics
}

const (
	// DefaultHistoryRevisions keeps about 100 s of history at 1,000 writes/s: enough for a
	// watcher that stalled for a while to catch up without a re-list.
	DefaultHistoryRevisions = 100_000
	// DefaultReadWait is the Kubernetes API server's wait for a resourceVersion not yet seen.
	DefaultReadWait        = 3 * time.Second
	defaultReaders         = 4
	defaultMaxQueuedReads  = 1024
	defaultMaxWaitingReads = 1024
	defaultSyncEvery       = 10_000
	// defaultGCInterval: a GC that finds nothing to rewrite costs a few file samples; one that
	// rewrites a file is bounded by it (64 MiB). Once a minute keeps an overwrite-heavy node's
	// value log within a few files of its live data.
	defaultGCInterval = time.Minute
	tickInterval      = 100 * time.Millisecond
	// syncBytes: a sync is also due after this much entry data, so that with large objects the
	// Raft log is compacted after a few hundred megabytes rather than after SyncEvery entries.
	syncBytes = 256 << 20
)

func (c *Config) withDefaults() {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	c.HistoryRevisions = cmp.Or(c.HistoryRevisions, DefaultHistoryRevisions)
	c.Readers = cmp.Or(c.Readers, defaultReaders)
	c.MaxQueuedReads = cmp.Or(c.MaxQueuedReads, defaultMaxQueuedReads)
	c.MaxWaitingReads = cmp.Or(c.MaxWaitingReads, defaultMaxWaitingReads)
	c.ReadWait = cmp.Or(c.ReadWait, DefaultReadWait)
	c.SyncEvery = cmp.Or(c.SyncEvery, defaultSyncEvery)
	c.GCInterval = cmp.Or(c.GCInterval, defaultGCInterval)
}

// Actor is the catalog: the only owner of the Badger state. It applies committed entries in log
// order, answers the callers waiting on them, and serves reads at a resourceVersion it picks.
// Two kinds of goroutine it owns do the slow work, so that no Receive waits on Badger: one
// applier, which applies a batch of entries at a time (and compacts behind it), and reader
// goroutines, which run reads at timestamps the actor chose. A read is served at the last
// applied index while the applier writes the next batch at higher timestamps, which Badger's
// managed mode keeps invisible to it: a long apply never holds up a get.
// A storage error panics: the node's supervisor then stops the node rather than restart an
// empty catalog under its callers.
type Actor struct {
	cfg  Config
	log  *zap.Logger
	raft *actor.PID // sender of Committed: told Applied and Durable

	// c belongs to the applier goroutine from start on; the actor reads only what the applier
	// reports, into applied and compacted.
	c *catalog
	// applied is the last index the applier finished; every read at or below it sees complete
	// state. compacted is the oldest readable revision: it moves up when a compaction is handed
	// to the applier, before it runs, so that no read starts below what it may discard.
	applied, compacted uint64
	// newest holds the stored bytes of recently written keys as of applied, for gets: a get
	// through Badger seeks a block in every table that holds the key, and under overwrites
	// every table does. It is the actor's own, filled as applied moves (finishApply) and
	// emptied when a snapshot replaces the catalog (swappedIn).
	newest *latestCache

	applyJobs chan applyJob    // to the applier; at most one job in flight (applying)
	applyDone chan applyResult // from the applier; its capacity is the one job in flight
	applying  bool
	queue     []*raftactor.Committed // batches that arrived while one was applied; raft bounds them
	// queueTaken is how many of queue[0]'s entries a job took already: a batch may be applied
	// in several jobs (maxJobEntries), and a message is never changed once sent.
	queueTaken int
	closing    bool // Stopping began: no new apply, sync or GC

	jobs        chan readJob   // to the readers; its capacity is MaxQueuedReads
	activeReads map[uint64]int // timestamps of reads in flight, which compaction must not pass
	waiting     []waitingRead  // reads for a resourceVersion not applied yet
	syncing     bool           // a Badger sync runs
	synced      uint64         // every entry up to here is on disk in Badger
	unsynced    int            // bytes of entry data applied since the last sync began
	gcRunning   bool           // a value-log GC runs
	lastGC      time.Time
	stop        chan struct{}  // closed in Stopping: stops the ticker
	wg          sync.WaitGroup // ticker, sync, GC, snapshot senders and installer, swap
	workers     sync.WaitGroup // applier and readers

	transfers // Raft snapshots sent and received: transfer.go

	saves       int                    // snapshot saves to clients in flight: save.go
	saveCancels map[chan struct{}]bool // each in-flight save's cancel (save.go)
}

// applyJob is a batch of committed entries for the applier, and the compaction to run after it
// (compactTo 0: none) without discarding versions a read in flight still needs (discardTs).
type applyJob struct {
	entries   []*raftpb.Entry
	replyTo   map[uint64]*actor.PID
	compactTo uint64
	discardTs uint64
}

// applyResult is what the applier did with a job.
type applyResult struct {
	job      applyJob
	outcomes []outcome
	changes  []Change
	written  map[string][]byte // key → newest stored bytes, nil when deleted (catalog.apply)
	applied  uint64
	err      error
}

// readJob is a read handed to a reader goroutine. ts is the oldest timestamp it reads at, which
// compaction may not pass while the read runs.
type readJob struct {
	ts      uint64
	run     func(db *badger.DB, ts uint64) any
	replyTo *actor.PID
	// timer, when set, observes the read's latency from start (the catalog took the request)
	// to its answer.
	timer prometheus.Observer
	start time.Time
}

type waitingRead struct {
	rv       uint64
	deadline time.Time
	job      readJob
	fail     func(*messages.Status) any
}

func (w waitingRead) timeout(applied uint64, wait time.Duration) any {
	return w.fail(&messages.Status{Reason: messages.StatusReason_TIMEOUT, ResourceVersion: applied,
		Message: fmt.Sprintf("resourceVersion %d is ahead of this node's applied resourceVersion %d and was not reached within %v: retry, or read without a resourceVersion", w.rv, applied, wait)})
}

// Internal messages, from goroutines the actor owns to the actor.
type (
	readDone struct{ ts uint64 }
	applied  struct{} // a wake-up: the applier's result is in applyDone
	tick     struct{}
	synced   struct {
		index uint64
		err   error
	}
	gcDone struct {
		rewrites int
		err      error
	}
)

// New returns the props of a catalog actor.
func New(cfg Config) *actor.Props {
	cfg.withDefaults()
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{cfg: cfg, log: cfg.Logger}
	})
}

// Receive handles one message.
func (a *Actor) Receive(ctx actor.Context) {
	// The applier's result first, whatever the message: reads then see the newest state, and
	// the next batch starts without waiting behind the messages queued meanwhile.
	for len(a.applyDone) > 0 {
		a.finishApply(ctx, <-a.applyDone)
	}
	for len(a.swapResult) > 0 {
		a.swappedIn(ctx, <-a.swapResult)
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *raftactor.Committed:
		a.raft = ctx.Sender()
		a.queue = append(a.queue, m)
		a.startApply()
	case applied:
		// A wake-up: its content was taken from applyDone above.
	case *messages.GetRequest:
		if a.getNewest(ctx, m) {
			return
		}
		a.read(ctx, m.GetResourceVersion(), func(db *badger.DB, ts uint64) any { return readGet(db, m, ts) },
			func(s *messages.Status) any { return &messages.GetResult{Status: s} })
	case *messages.ListRequest:
		p, err := planList(m)
		if err != nil {
			ctx.Respond(&messages.ListResult{Status: messages.StatusOf(err)})
			return
		}
		a.read(ctx, p.ts, func(db *badger.DB, ts uint64) any { p.ts = ts; return readList(db, p) },
			func(s *messages.Status) any { return &messages.ListResult{Status: s} })
	case *Snapshot:
		p := planSnapshot(m)
		a.read(ctx, m.RV, func(db *badger.DB, ts uint64) any { return readSnapshot(db, p, ts) },
			func(s *messages.Status) any { return &SnapshotResult{Err: s.Err()} })
	case *History:
		a.history(ctx, m)
	case *messages.HashKVRequest:
		from, id := max(m.GetFrom(), a.compacted), a.cfg.NodeID
		a.read(ctx, m.GetRevision(), func(db *badger.DB, ts uint64) any {
			h, err := DigestFrom(db, min(from, ts), ts)
			if err != nil {
				return &messages.HashKVResult{Status: messages.StatusOf(err)}
			}
			return &messages.HashKVResult{NodeId: id, Revision: ts, From: min(from, ts), Hash: h}
		}, func(s *messages.Status) any { return &messages.HashKVResult{Status: s} })
	case readDone:
		if a.activeReads[m.ts]--; a.activeReads[m.ts] <= 0 {
			delete(a.activeReads, m.ts)
		}
		a.maybeSwap(ctx)
	case tick:
		a.expireWaiting(ctx)
		a.maybeGC(ctx)
		if a.swap == nil && !a.cfg.Store.InMemory && a.cfg.Store.Dir != "" && a.cfg.Metrics.sizeDue() {
			m, dir := a.cfg.Metrics, a.cfg.Store.Dir
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				m.readSize(dir)
			}()
		}
	case gcDone:
		a.gcRunning, a.lastGC = false, time.Now()
		defer a.maybeSwap(ctx)
		if m.err != nil {
			a.log.Warn("value log GC failed", zap.Error(m.err))
		} else if m.rewrites > 0 {
			a.log.Info("value log GC rewrote files", zap.Int("files", m.rewrites))
		}
	case synced:
		a.syncing = false
		defer a.maybeSwap(ctx)
		if m.err != nil {
			panic(fmt.Errorf("catalogactor: sync badger: %w", m.err))
		}
		a.synced = m.index
		if a.raft != nil {
			ctx.Send(a.raft, &raftactor.Durable{Index: m.index})
		}
		a.maybeSync(ctx)
	case *actor.Stopping:
		a.shutdown(ctx)
	case *raftactor.SendSnapshot:
		a.sendSnapshot(ctx, m)
	case snapshotSendDone:
		a.snapshotSent(ctx, m)
	case *messages.SnapshotChunk:
		a.snapshotChunk(ctx, m)
	case *messages.SnapshotSaveRequest:
		a.saveSnapshot(ctx, m)
	case saveDone:
		a.saveEnded(ctx, m)
	case chunkWritten:
		a.chunkWritten(ctx, m)
	case swapWake:
		// A wake-up: its content was taken from swapResult above.
	case *actor.Stopped:
		if a.cfg.DB == nil {
			return
		}
		if err := a.cfg.DB.Close(); err != nil {
			a.log.Error("close badger", zap.Error(err))
		}
	}
}

func (a *Actor) start(ctx actor.Context) {
	c, err := openCatalog(a.cfg.DB, a.log, a.cfg.HistoryRevisions)
	if err != nil {
		panic(err)
	}
	c.audit, c.faults = a.cfg.Audit, a.cfg.Faults
	a.c, a.applied, a.compacted = c, c.applied, c.compacted
	a.newest = newLatestCache(defaultLatestBytes)
	a.synced = c.applied
	a.cfg.Metrics.revisions(c.applied, c.compacted)
	a.lastGC = time.Now()
	a.activeReads = map[uint64]int{}
	a.stop = make(chan struct{})
	root, self := ctx.ActorSystem().Root, ctx.Self()
	a.startWorkers(ctx, a.cfg.DB, c)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t := time.NewTicker(tickInterval)
		defer t.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-t.C:
				root.Send(self, tick{})
			}
		}
	}()
	if a.cfg.Watchers != nil {
		ctx.Send(a.cfg.Watchers, &Changes{Applied: c.applied, Compacted: c.compacted})
	}
	a.log.Info("catalog started", zap.Uint64("applied", c.applied), zap.Uint64("compacted", c.compacted))
}

// startWorkers starts the applier and the readers on db and c: at start, and after a snapshot
// replaced the catalog.
func (a *Actor) startWorkers(ctx actor.Context, db *badger.DB, c *catalog) {
	a.jobs = make(chan readJob, a.cfg.MaxQueuedReads)
	a.applyJobs = make(chan applyJob, 1)
	a.applyDone = make(chan applyResult, 1)
	root, self := ctx.ActorSystem().Root, ctx.Self()
	jobs, done, reads := a.applyJobs, a.applyDone, a.jobs
	applyTimer := a.cfg.Metrics.applyTimer()
	a.workers.Add(1)
	go func() { // the applier: the only goroutine that writes Badger
		defer a.workers.Done()
		for j := range jobs {
			start := time.Now()
			r := c.run(j)
			observeSince(applyTimer, start)
			done <- r // never blocks: one job in flight
			root.Send(self, applied{})
		}
	}()
	for range a.cfg.Readers {
		a.workers.Add(1)
		go func() {
			defer a.workers.Done()
			for j := range reads {
				res := j.run(db, j.ts)
				if j.replyTo != nil {
					root.Send(j.replyTo, res)
				}
				observeSince(j.timer, j.start)
				root.Send(self, readDone{j.ts})
			}
		}()
	}
}

// stopWorkers closes the applier's and the readers' queues; they end once idle (a.workers).
func (a *Actor) stopWorkers() {
	close(a.jobs)
	close(a.applyJobs)
}

func (a *Actor) shutdown(ctx actor.Context) {
	if a.stop == nil { // failed in start
		return
	}
	close(a.stop)
	if a.swap == nil || !a.swap.started {
		a.stopWorkers() // a swap under way stopped them already
	}
	a.closing = true
	a.stopInstall()
	for _, w := range a.waiting {
		reply(ctx, w.job.replyTo, w.fail(&messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
			Message: "the node is shutting down: retry on another node"}))
	}
	a.waiting = nil
	a.wg.Wait()
	a.workers.Wait()
	if a.swapResult != nil {
		select {
		case r := <-a.swapResult:
			a.takeSwapResult(r) // Stopped closes the database it opened
			if r.c != nil {
				// The new catalog is durable at its applied index already: nothing to sync.
				r.c.audit, r.c.faults = a.cfg.Audit, a.cfg.Faults
				a.c, a.applied, a.compacted, a.synced = r.c, r.c.applied, r.c.compacted, r.c.applied
			}
		default:
		}
	}
	if a.cfg.DB == nil {
		return // a swap failed: no database is open
	}
	// The batch the applier was on is applied: answer its callers. The batches queued behind it
	// are committed but not applied here; they will be after a restart.
	for len(a.applyDone) > 0 {
		a.finishApply(ctx, <-a.applyDone)
	}
	// A clean stop leaves nothing to apply again at the next start.
	if a.applied > a.synced {
		if err := syncStore(a.cfg.DB, a.applied); err != nil {
			a.log.Error("sync the catalog at stop", zap.Error(err))
		}
	}
	for i, m := range a.queue {
		taken := 0
		if i == 0 {
			taken = a.queueTaken // answered by the jobs that took them
		}
		for _, e := range m.Entries[taken:] {
			reply(ctx, m.ReplyTo[e.GetIndex()], notApplied())
		}
	}
	a.queue, a.queueTaken = nil, 0
}

// notApplied answers the callers of committed entries the node stops without applying.
func notApplied() *messages.CommandResult {
	return &messages.CommandResult{Status: &messages.Status{Reason: messages.StatusReason_TIMEOUT,
		Message: "the write was committed, but the node stopped before applying it: it takes effect when the node restarts; read the object then"}}
}

// maxJobEntries and maxJobBytes bound an apply job. Its callers hear back when all of it is
// applied, so one job of everything queued (hundreds of entries after a burst) keeps the first
// caller waiting for the last one's work, and under a closed loop of clients the next writes all
// come back at once, in waves the raft actor and the catalog take in turn, each idle while the
// other works. Jobs of a few dozen entries pipeline: their replies go out while the next applies.
const (
	maxJobEntries = 64
	maxJobBytes   = 4 << 20
)

// startApply hands the oldest queued entries to the applier as one job of at most maxJobEntries
// (or maxJobBytes, or one entry), with the compaction that the applied index will allow once
// they are applied.
func (a *Actor) startApply() {
	if a.applying || a.closing || a.swap != nil || len(a.queue) == 0 || a.applyJobs == nil {
		return
	}
	j := applyJob{}
	bytes := 0
	for len(a.queue) > 0 && len(j.entries) < maxJobEntries && bytes < maxJobBytes {
		m := a.queue[0]
		for _, e := range m.Entries[a.queueTaken:] {
			if len(j.entries) >= maxJobEntries || bytes >= maxJobBytes {
				break
			}
			j.entries = append(j.entries, e)
			bytes += len(e.GetData())
			a.queueTaken++
			if pid, ok := m.ReplyTo[e.GetIndex()]; ok {
				if j.replyTo == nil {
					j.replyTo = make(map[uint64]*actor.PID, min(len(m.ReplyTo), maxJobEntries))
				}
				j.replyTo[e.GetIndex()] = pid
			}
		}
		if a.queueTaken == len(m.Entries) {
			a.queue[0], a.queueTaken = nil, 0
			a.queue = a.queue[1:]
		}
	}
	if len(a.queue) == 0 {
		a.queue = nil // let the backing array go
	}
	next := a.applied
	if len(j.entries) > 0 {
		next = max(next, j.entries[len(j.entries)-1].GetIndex())
	}
	// Never past the applied index of now: reads that start while the job runs read there.
	if to, ok := compactTarget(next, a.compacted, a.cfg.HistoryRevisions); ok {
		to = min(to, a.applied)
		if to > a.compacted {
			// Nor may Badger discard a version the durable point still reads: after a power
			// loss the catalog applies again from there.
			oldest := min(to, a.synced)
			for ts := range a.activeReads {
				oldest = min(oldest, ts)
			}
			a.compacted, j.compactTo, j.discardTs = to, to, oldest
		}
	}
	a.applying = true
	a.applyJobs <- j // never blocks: one job in flight
}

// finishApply answers the callers of an applied job and tells the hub and raft.
func (a *Actor) finishApply(ctx actor.Context, r applyResult) {
	if r.err != nil {
		// The batch is committed: in the Raft log, it takes effect after a restart at the
		// latest (a compaction that failed after it applied gets the same answer).
		for _, pid := range r.job.replyTo {
			reply(ctx, pid, notApplied())
		}
		panic(r.err)
	}
	a.applying = false
	a.applied = r.applied
	for k, v := range r.written {
		a.newest.put(k, v)
	}
	for _, e := range r.job.entries {
		a.unsynced += len(e.GetData())
	}
	for _, o := range r.outcomes {
		reply(ctx, r.job.replyTo[o.index], o.result)
		delete(r.job.replyTo, o.index)
	}
	a.cfg.Metrics.countCommands(r.job.entries, r.outcomes)
	a.cfg.Metrics.revisions(a.applied, a.compacted)
	for _, pid := range r.job.replyTo {
		// An entry at or below what the catalog held already (a snapshot it installed took
		// it in): it was applied, but its result is not known here.
		reply(ctx, pid, &messages.CommandResult{Status: &messages.Status{Reason: messages.StatusReason_TIMEOUT,
			Message: "the write was committed, but this member took it in as part of a snapshot, so its result is not known here: read the object to find out"}})
	}
	if a.cfg.Watchers != nil {
		ctx.Send(a.cfg.Watchers, &Changes{Changes: r.changes, Applied: a.applied, Compacted: a.compacted})
	}
	a.releaseWaiting(ctx)
	if a.raft != nil {
		ctx.Send(a.raft, &raftactor.Applied{Index: a.applied, Compacted: a.compacted})
	}
	a.maybeSync(ctx)
	a.startApply()
	a.maybeSwap(ctx)
}

func (a *Actor) maybeSync(ctx actor.Context) {
	if a.syncing || a.closing || a.swap != nil || a.applied == a.synced || (a.applied-a.synced < a.cfg.SyncEvery && a.unsynced < syncBytes) {
		return
	}
	a.syncing, a.unsynced = true, 0
	index, db, root, self := a.applied, a.cfg.DB, ctx.ActorSystem().Root, ctx.Self()
	syncTimer := a.cfg.Metrics.syncTimer()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		start := time.Now()
		err := syncStore(db, index)
		observeSince(syncTimer, start)
		root.Send(self, synced{index: index, err: err})
	}()
}

// maybeGC starts a value-log GC when the last one ended GCInterval ago. Badger never runs it by
// itself, so without it the values it keeps in its value log (those over ValueThreshold) are
// never reclaimed however often they are overwritten. It runs on a goroutine of its own: one
// rewrite reads and writes up to one value-log file.
func (a *Actor) maybeGC(ctx actor.Context) {
	if a.gcRunning || a.closing || a.swap != nil || time.Since(a.lastGC) < a.cfg.GCInterval || a.cfg.DB.Opts().InMemory {
		return
	}
	a.gcRunning = true
	db, root, self := a.cfg.DB, ctx.ActorSystem().Root, ctx.Self()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		n, err := gcValueLog(db, a.stop)
		root.Send(self, gcDone{rewrites: n, err: err})
	}()
}

// read serves a read at resourceVersion rv (0: the latest applied state): Gone below the
// compacted revision, a bounded wait above the applied index, else a reader runs it.
func (a *Actor) read(ctx actor.Context, rv uint64, run func(*badger.DB, uint64) any, fail func(*messages.Status) any) {
	if ctx.Sender() == nil {
		return // nobody to answer
	}
	timer, start := a.cfg.Metrics.readTimer(ctx.Message()), time.Time{}
	if timer != nil {
		start = time.Now()
	}
	switch {
	case a.swap != nil:
		ctx.Respond(fail(installingStatus))
	case rv != 0 && rv < a.compacted:
		ctx.Respond(fail(&messages.Status{Reason: messages.StatusReason_GONE, ResourceVersion: a.compacted,
			Message: fmt.Sprintf("resourceVersion %d is older than the compacted revision %d: read the latest state (no resourceVersion) and go on from there", rv, a.compacted)}))
	case rv > a.applied:
		if len(a.waiting) >= a.cfg.MaxWaitingReads {
			ctx.Respond(fail(&messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
				Message: fmt.Sprintf("%d reads already wait for resourceVersions this node has not reached: retry shortly", len(a.waiting))}))
			return
		}
		a.waiting = append(a.waiting, waitingRead{
			rv: rv, deadline: time.Now().Add(a.cfg.ReadWait),
			job:  readJob{ts: rv, run: run, replyTo: ctx.Sender(), timer: timer, start: start},
			fail: fail,
		})
	default:
		ts := rv
		if ts == 0 {
			ts = a.applied
		}
		a.dispatch(ctx, readJob{ts: ts, run: run, replyTo: ctx.Sender(), timer: timer, start: start}, fail)
	}
}

// getNewest answers a get from newest when it can, and says whether it did. The cached bytes
// are key's object at applied; they are also its object at an older rv when it was written at
// or before rv, since nothing wrote the key between then and applied.
func (a *Actor) getNewest(ctx actor.Context, m *messages.GetRequest) bool {
	rv := m.GetResourceVersion()
	if ctx.Sender() == nil || a.swap != nil || rv > a.applied || (rv != 0 && rv < a.compacted) {
		return false
	}
	timer := a.cfg.Metrics.readTimer(m)
	start := time.Time{}
	if timer != nil {
		start = time.Now()
	}
	b, ok := a.newest.get(string(objectKey(m.GetKey())))
	if !ok {
		return false
	}
	o, err := parseStored(b)
	if err != nil {
		return false
	}
	objRV, err := object.ParseResourceVersion(o.Meta("resourceVersion"))
	if err != nil || (rv != 0 && objRV > rv) {
		return false
	}
	ctx.Respond(&messages.GetResult{Object: b, ResourceVersion: objRV})
	observeSince(timer, start)
	return true
}

// history serves a watcher's catch-up: the changes after m.From, read at the applied index.
func (a *Actor) history(ctx actor.Context, m *History) {
	if a.swap != nil {
		ctx.Respond(&HistoryResult{Err: installingStatus.Err()})
		return
	}
	if m.From < a.compacted {
		ctx.Respond(&HistoryResult{Err: &messages.Error{Reason: messages.StatusReason_GONE, ResourceVersion: a.compacted,
			Message: fmt.Sprintf("resourceVersion %d is older than the compacted revision %d: re-list, then watch from the list's resourceVersion", m.From, a.compacted)}})
		return
	}
	upTo := a.applied
	if m.From >= upTo {
		ctx.Respond(&HistoryResult{UpTo: upTo})
		return
	}
	from, limit, maxBytes := m.From, m.Limit, m.MaxBytes
	a.dispatch(ctx, readJob{ts: from, replyTo: ctx.Sender(), run: func(db *badger.DB, _ uint64) any {
		chs, more, err := readChanges(db, from, upTo, limit, maxBytes)
		return &HistoryResult{Changes: chs, UpTo: upTo, More: more, Err: err}
	}}, func(s *messages.Status) any { return &HistoryResult{Err: s.Err()} })
}

func (a *Actor) dispatch(ctx actor.Context, j readJob, fail func(*messages.Status) any) {
	if a.swap != nil && a.swap.started {
		reply(ctx, j.replyTo, fail(installingStatus)) // the readers are stopped
		return
	}
	select {
	case a.jobs <- j:
		a.activeReads[j.ts]++
	default:
		reply(ctx, j.replyTo, fail(&messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
			Message: fmt.Sprintf("%d reads are queued on this node: retry shortly", a.cfg.MaxQueuedReads)}))
	}
}

// releaseWaiting dispatches the waiting reads the applied index has reached.
func (a *Actor) releaseWaiting(ctx actor.Context) {
	kept := a.waiting[:0]
	for _, w := range a.waiting {
		if w.rv <= a.applied {
			a.dispatch(ctx, w.job, w.fail)
			continue
		}
		kept = append(kept, w)
	}
	a.waiting = kept
}

func (a *Actor) expireWaiting(ctx actor.Context) {
	now := time.Now()
	kept := a.waiting[:0]
	for _, w := range a.waiting {
		if now.After(w.deadline) {
			reply(ctx, w.job.replyTo, w.timeout(a.applied, a.cfg.ReadWait))
			continue
		}
		kept = append(kept, w)
	}
	a.waiting = kept
}

// reply sends a result to a caller; a request sent without a sender has none.
func reply(ctx actor.SenderContext, to *actor.PID, msg any) {
	if to != nil {
		ctx.Send(to, msg)
	}
}
