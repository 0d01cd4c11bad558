package catalogactor

import (
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/dgraph-io/badger/v4"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/raftactor"
)

// Raft snapshots between catalogs, the actor's side (snapshot.go has the format and the files).
//
// Sending (on the leader): raft asks for a snapshot at an index the catalog has applied
// (raftactor.SendSnapshot). A sender goroutine reads the catalog at that index, one read
// transaction, and sends its chunks one at a time to the member's catalog, each acknowledged
// before the next: at most one chunk of a snapshot is on the wire, so Raft's heartbeats, which
// share the connection, wait behind at most one chunk. The index stays pinned (activeReads)
// until the last chunk is acknowledged, so compaction keeps what the read needs.
//
// Receiving (on a follower): an installer goroutine writes the chunks into a staging catalog
// beside the catalog's directory. After the last one, the actor waits until nothing uses the
// catalog (no apply, read, sync or GC: new reads are refused with Unavailable meanwhile), stops
// its applier and readers, and a goroutine closes Badger, swaps the staged catalog in
// (installStaged: a crash leaves the old one or the new one whole) and opens it. The actor then
// runs on the new catalog, tells the watch hub (Changes.Reset) and, through its parent, raft:
// Installed carries the snapshot message for raft to step, which moves the Raft log to the same
// index.

// Installed tells the catalog's parent that a snapshot replaced the catalog: Applied and
// Compacted are the new catalog's, and Message is the Raft snapshot message for raft to step
// now (raftactor.Applied and Durable first, with Applied).
type Installed struct {
	Message            *raftpb.Message
	Applied, Compacted uint64
}

const (
	// snapshotChunkBytes: a chunk is at most this plus one stored record (512 KiB), well
	// under gRPC's message limit, and small enough that a heartbeat queued behind it waits
	// milliseconds.
	snapshotChunkBytes = 1 << 20
	// snapshotChunkTimeout bounds the wait for one chunk's acknowledgement: writing 1.5 MiB
	// takes milliseconds; a member that does not answer in this time is not installing.
	snapshotChunkTimeout = 10 * time.Second
)

var installingStatus = &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
	Message: "this member is installing a snapshot from the leader: retry shortly, or on another member"}

// transfers is the state of snapshots in flight, owned by the catalog actor.
type transfers struct {
	install *install     // the snapshot being received, if any
	swap    *pendingSwap // a received snapshot waiting to replace the catalog
	// swapResult holds the swap goroutine's result until the actor takes it (capacity 1: one
	// swap at a time); shutdown takes it too, so that the database it opened is closed.
	swapResult chan swapped
}

// install is a snapshot being received: its chunks go, in order, to the installer goroutine.
type install struct {
	index, from uint64
	next        uint64        // the seq of the next chunk
	busy        bool          // a chunk is being written
	jobs        chan chunkJob // to the installer; capacity 1, one chunk in flight
	done        chan struct{} // closed when the installer has ended (and cleaned up)
}

type chunkJob struct {
	m       *messages.SnapshotChunk
	replyTo *actor.PID
}

// pendingSwap is a staged catalog, complete, waiting for the catalog to be idle.
type pendingSwap struct {
	message *raftpb.Message
	replyTo *actor.PID // the sender of the last chunk, acknowledged once the swap is done
	index   uint64
	seq     uint64 // the last chunk's
	started bool   // the swap goroutine runs: the workers are stopped
}

// Internal messages of transfers.
type (
	snapshotSendDone struct {
		to, ts uint64
		raft   *actor.PID
		err    error
	}
	chunkWritten struct {
		job  chunkJob
		inst *install
		err  error
	}
	swapped struct {
		db     *badger.DB
		c      *catalog
		closed bool // the old database was closed
		err    error
	}
	swapWake struct{} // the swap's result is in swapResult
)

// sendSnapshot starts sending the catalog at the snapshot's index to m.To's catalog.
func (a *Actor) sendSnapshot(ctx actor.Context, m *raftactor.SendSnapshot) {
	ts := m.Message.GetSnapshot().GetMetadata().GetIndex()
	raftPID := ctx.Sender()
	if a.swap != nil {
		reply(ctx, raftPID, &raftactor.SnapshotSent{To: m.To, Err: errors.New("catalogactor: this member is installing a snapshot itself")})
		return
	}
	if a.closing || ts > a.applied || ts < a.compacted || ts == 0 {
		reply(ctx, raftPID, &raftactor.SnapshotSent{To: m.To, Err: fmt.Errorf(
			"catalogactor: no snapshot at %d: the catalog applied %d and keeps revisions from %d", ts, a.applied, a.compacted)})
		return
	}
	raw, err := proto.Marshal(m.Message)
	if err != nil {
		reply(ctx, raftPID, &raftactor.SnapshotSent{To: m.To, Err: err})
		return
	}
	a.activeReads[ts]++ // compaction keeps what the read at ts needs until the send ends
	db, root, self, stop := a.cfg.DB, ctx.ActorSystem().Root, ctx.Self(), a.stop
	peer := actor.NewPID(m.Address, self.GetId())
	from, to := a.cfg.NodeID, m.To
	log := a.log.With(zap.Uint64("to", to), zap.Uint64("index", ts))
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		began := time.Now()
		chunks, bytes, err := sendChunks(root, db, ts, peer, from, raw, stop)
		if err == nil {
			log.Info("snapshot sent", zap.Int("chunks", chunks), zap.Int("bytes", bytes), zap.Duration("took", time.Since(began)))
		}
		root.Send(self, snapshotSendDone{to: to, ts: ts, raft: raftPID, err: err})
	}()
}

var errStopping = errors.New("catalogactor: the node is stopping")

// sendChunks reads the catalog at ts and sends it to peer, one chunk at a time, each waited
// for; the last one carries the raft message. It holds back one chunk so that it knows which is
// the last.
func sendChunks(root *actor.RootContext, db *badger.DB, ts uint64, peer *actor.PID, from uint64, raw []byte, stop <-chan struct{}) (int, int, error) {
	seq, total := uint64(0), 0
	send := func(data []byte, last bool) error {
		select {
		case <-stop:
			return errStopping
		default:
		}
		m := &messages.SnapshotChunk{From: from, Index: ts, Seq: seq, Data: data, Last: last}
		if last {
			m.RaftMessage = raw
		}
		res, err := awaitOrStop(root.RequestFuture(peer, m, snapshotChunkTimeout), stop)
		if err != nil {
			return fmt.Errorf("catalogactor: snapshot chunk %d to %s: %w", seq, peer.GetAddress(), err)
		}
		ack, ok := res.(*messages.SnapshotAck)
		if !ok {
			return fmt.Errorf("catalogactor: snapshot chunk %d to %s answered %T", seq, peer.GetAddress(), res)
		}
		if err := ack.GetStatus().Err(); err != nil {
			return fmt.Errorf("catalogactor: %s refused snapshot chunk %d: %w", peer.GetAddress(), seq, err)
		}
		seq++
		total += len(data)
		return nil
	}
	var held []byte
	err := exportSnapshot(db, ts, snapshotChunkBytes, func(chunk []byte) error {
		if held != nil {
			if err := send(held, false); err != nil {
				return err
			}
		}
		held = chunk
		return nil
	})
	if err == nil {
		err = send(held, true)
	}
	return int(seq), total, err
}

// awaitOrStop waits for f, or until stop is closed: a node that stops does not wait out a
// chunk's timeout. The goroutine that waits on f ends with it, within snapshotChunkTimeout.
func awaitOrStop(f *actor.Future, stop <-chan struct{}) (any, error) {
	type result struct {
		res any
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := f.Result()
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		return r.res, r.err
	case <-stop:
		return nil, errStopping
	}
}

func (a *Actor) snapshotSent(ctx actor.Context, m snapshotSendDone) {
	if a.activeReads[m.ts]--; a.activeReads[m.ts] <= 0 {
		delete(a.activeReads, m.ts)
	}
	if m.err != nil {
		a.log.Warn("snapshot not sent", zap.Uint64("to", m.to), zap.Uint64("index", m.ts), zap.Error(m.err))
	}
	reply(ctx, m.raft, &raftactor.SnapshotSent{To: m.to, Err: m.err})
	a.maybeSwap(ctx)
}

// snapshotChunk takes a chunk of a snapshot the leader sends.
func (a *Actor) snapshotChunk(ctx actor.Context, m *messages.SnapshotChunk) {
	refuse := func(reason messages.StatusReason, msg string) {
		ctx.Respond(&messages.SnapshotAck{Index: m.GetIndex(), Seq: m.GetSeq(), Status: &messages.Status{Reason: reason, Message: msg}})
	}
	switch {
	case ctx.Sender() == nil:
		return
	case a.closing:
		refuse(messages.StatusReason_UNAVAILABLE, "the member is shutting down")
		return
	case a.cfg.Store.Dir == "" || a.cfg.Store.InMemory:
		refuse(messages.StatusReason_UNAVAILABLE, "this catalog is in memory and cannot install a snapshot")
		return
	case a.swap != nil:
		refuse(messages.StatusReason_UNAVAILABLE, "this member is installing another snapshot")
		return
	case m.GetIndex() <= a.applied:
		// The catalog holds this state already (a crash after a swap, before raft recorded the
		// snapshot; or a snapshot raft did not take): skip the data, and at the end hand raft
		// the snapshot message, which moves its log here.
		a.stopInstall()
		if m.GetLast() {
			var rm raftpb.Message
			if err := proto.Unmarshal(m.GetRaftMessage(), &rm); err != nil || rm.GetType() != raftpb.MessageType_MsgSnap {
				refuse(messages.StatusReason_INVALID, "the last chunk carries no Raft snapshot message")
				return
			}
			if p := ctx.Parent(); p != nil {
				ctx.Send(p, &Installed{Message: &rm, Applied: a.applied, Compacted: a.compacted})
			}
		}
		ctx.Respond(&messages.SnapshotAck{Index: m.GetIndex(), Seq: m.GetSeq()})
		return
	}
	if m.GetSeq() == 0 {
		a.startInstall(ctx, m)
	}
	in := a.install
	switch {
	case in == nil || in.index != m.GetIndex() || in.from != m.GetFrom():
		refuse(messages.StatusReason_INVALID, "no snapshot at this index is being received: start again from chunk 0")
		return
	case in.busy || m.GetSeq() != in.next:
		refuse(messages.StatusReason_INVALID, fmt.Sprintf("chunk %d came where chunk %d was expected", m.GetSeq(), in.next))
		a.stopInstall()
		return
	}
	in.busy = true
	in.next++
	in.jobs <- chunkJob{m: m, replyTo: ctx.Sender()} // never blocks: one chunk in flight
}

// startInstall abandons the snapshot being received, if any, and starts an installer for m's.
func (a *Actor) startInstall(ctx actor.Context, m *messages.SnapshotChunk) {
	prev := a.install
	a.stopInstall()
	in := &install{index: m.GetIndex(), from: m.GetFrom(), jobs: make(chan chunkJob, 1), done: make(chan struct{})}
	a.install = in
	a.log.Info("receiving a snapshot", zap.Uint64("from", in.from), zap.Uint64("index", in.index))
	opts := a.cfg.Store
	opts.Dir = stagingDirOf(a.cfg.Store.Dir)
	opts.Logger = a.log
	root, self := ctx.ActorSystem().Root, ctx.Self()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(in.done)
		if prev != nil {
			<-prev.done // the previous installer removes the staging dir this one needs
		}
		var inst *snapshotInstaller
		err := removeStaged(opts.Dir)
		if err == nil {
			inst, err = newSnapshotInstaller(opts)
		}
		finished := false
		for j := range in.jobs {
			if err == nil {
				err = inst.write(j.m.GetData())
			}
			if err == nil && j.m.GetLast() {
				_, _, err = inst.finish()
				finished = err == nil
			}
			root.Send(self, chunkWritten{job: j, inst: in, err: err})
			if err != nil || finished {
				break
			}
		}
		if inst != nil && !finished {
			if aerr := inst.abort(); aerr != nil {
				opts.Logger.Warn("remove an abandoned staged snapshot", zap.Error(aerr))
			}
		}
	}()
}

// stopInstall abandons the snapshot being received: its installer ends and removes what it
// staged.
func (a *Actor) stopInstall() {
	if a.install != nil {
		close(a.install.jobs)
		a.install = nil
	}
}

func (a *Actor) chunkWritten(ctx actor.Context, m chunkWritten) {
	ack := &messages.SnapshotAck{Index: m.job.m.GetIndex(), Seq: m.job.m.GetSeq()}
	if a.install != m.inst {
		// Abandoned meanwhile: the sender hears so, and starts again if it still wants to.
		ack.Status = &messages.Status{Reason: messages.StatusReason_UNAVAILABLE, Message: "the snapshot was abandoned for a newer one"}
		ctx.Send(m.job.replyTo, ack)
		return
	}
	if m.err != nil {
		a.log.Warn("snapshot chunk not written", zap.Uint64("index", m.inst.index), zap.Uint64("seq", m.job.m.GetSeq()), zap.Error(m.err))
		ack.Status = messages.StatusOf(m.err)
		ctx.Send(m.job.replyTo, ack)
		a.stopInstall()
		return
	}
	m.inst.busy = false
	if !m.job.m.GetLast() {
		ctx.Send(m.job.replyTo, ack)
		return
	}
	var rm raftpb.Message
	if err := proto.Unmarshal(m.job.m.GetRaftMessage(), &rm); err != nil || rm.GetType() != raftpb.MessageType_MsgSnap ||
		rm.GetSnapshot().GetMetadata().GetIndex() != m.inst.index {
		ack.Status = &messages.Status{Reason: messages.StatusReason_INVALID, Message: "the last chunk carries no Raft snapshot message of its index"}
		ctx.Send(m.job.replyTo, ack)
		a.stopInstall()
		return
	}
	// The installer ended by itself, leaving the staged catalog finished.
	close(a.install.jobs)
	a.install = nil
	a.swap = &pendingSwap{message: &rm, replyTo: m.job.replyTo, index: m.inst.index, seq: m.job.m.GetSeq()}
	a.log.Info("snapshot received; replacing the catalog once it is idle", zap.Uint64("index", a.swap.index))
	// A save's pinned read would hold the swap, and with it every read of this member, for as
	// long as its client takes: the saves end now, and their clients save again.
	a.cancelSaves()
	a.maybeSwap(ctx)
}

// maybeSwap starts the swap of a received snapshot once nothing uses the catalog.
func (a *Actor) maybeSwap(ctx actor.Context) {
	s := a.swap
	if s == nil || s.started || a.closing || a.applying || a.syncing || a.gcRunning || len(a.activeReads) > 0 {
		return
	}
	s.started = true
	a.stopWorkers()
	db, store, log, history := a.cfg.DB, a.cfg.Store, a.log, a.cfg.HistoryRevisions
	root, self := ctx.ActorSystem().Root, ctx.Self()
	if a.swapResult == nil {
		a.swapResult = make(chan swapped, 1)
	}
	results := a.swapResult
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.workers.Wait()
		res := swapped{err: db.Close(), closed: true}
		if res.err == nil {
			res.err = installStaged(store.Dir, stagingDirOf(store.Dir))
		}
		if res.err == nil {
			res.db, res.err = OpenStore(store)
		}
		if res.err == nil {
			if res.c, res.err = openCatalog(res.db, log, history); res.err != nil {
				res.db.Close()
				res.db = nil
			}
		}
		results <- res // never blocks: one swap at a time
		root.Send(self, swapWake{})
	}()
}

// takeSwapResult hands the actor the database a finished swap left: the new one, or none.
func (a *Actor) takeSwapResult(r swapped) {
	if r.closed {
		a.cfg.DB = r.db // nil when the swap failed after closing the old one
	}
}

func (a *Actor) swappedIn(ctx actor.Context, m swapped) {
	a.takeSwapResult(m)
	if m.err != nil {
		// The old catalog is closed and the new one may not be whole: only a restart, which
		// finishes or undoes the swap (recoverInstall), can go on.
		panic(fmt.Errorf("catalogactor: install snapshot at %d: %w", a.swap.index, m.err))
	}
	s := a.swap
	a.swap = nil
	m.c.audit, m.c.faults = a.cfg.Audit, a.cfg.Faults
	a.c = m.c
	a.newest = newLatestCache(defaultLatestBytes) // it held the old catalog's objects
	a.applied, a.compacted, a.synced, a.unsynced = m.c.applied, m.c.compacted, m.c.applied, 0
	a.log.Info("snapshot installed", zap.Uint64("applied", a.applied), zap.Uint64("compacted", a.compacted))
	a.startWorkers(ctx, m.db, m.c)
	if a.cfg.Watchers != nil {
		ctx.Send(a.cfg.Watchers, &Changes{Applied: a.applied, Compacted: a.compacted, Reset: true})
	}
	if p := ctx.Parent(); p != nil {
		ctx.Send(p, &Installed{Message: s.message, Applied: a.applied, Compacted: a.compacted})
	}
	ctx.Send(s.replyTo, &messages.SnapshotAck{Index: s.index, Seq: s.seq})
	a.releaseWaiting(ctx)
	a.startApply()
}

// RecoverInstall runs at a node's start, before the catalog in dir is opened: it finishes or
// undoes the swap of a snapshot that a crash interrupted (recoverInstall). A staged snapshot
// that was complete but not swapped in yet is installed when it is ahead of the catalog: it
// holds only committed entries, and the leader sends the Raft log's side again. raftSnapshot
// is the Raft log's snapshot index, for the log.
func RecoverInstall(dir string, raftSnapshot uint64, log *zap.Logger) error {
	staged, err := recoverInstall(dir)
	if err != nil || staged == 0 {
		return err
	}
	current, _, err := readDurableFile(durableFileOf(dir))
	if err != nil {
		return err
	}
	if staged <= current {
		log.Info("dropping a staged snapshot the catalog has passed", zap.Uint64("staged", staged), zap.Uint64("catalog", current))
		return removeStaged(stagingDirOf(dir))
	}
	log.Info("installing a staged snapshot a crash interrupted", zap.Uint64("staged", staged),
		zap.Uint64("catalog", current), zap.Uint64("raft snapshot", raftSnapshot))
	return installStaged(dir, stagingDirOf(dir))
}
