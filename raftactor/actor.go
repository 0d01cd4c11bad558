package raftactor

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

// Propose asks the raft actor to replicate a validated, stamped command. Sender: the node's
// intake. The caller at ReplyTo gets a CommandResult: from the catalog once the entry is applied,
// or from this actor when the proposal is refused (Unavailable: the command never entered the
// log) or times out (Timeout: the outcome is unknown).
type Propose struct {
	Command *messages.Command
	ReplyTo *actor.PID
}

// CaughtUp tells the raft actor's parent, once, that this node has caught up: it knows a leader,
// that leader has committed an entry of its own term here (so the commit index covers every
// entry an earlier leader, this node before a restart among them, may have acknowledged), and
// the catalog has applied up to it. Before that a read could miss acknowledged writes.
type CaughtUp struct{}

// Config of a raft actor. Zero fields take the defaults below.
type Config struct {
	NodeID uint64
	// Log is the opened Raft log (OpenLog). The actor owns it from spawn on and closes it.
	Log *Log
	// Members maps every member's node id, this node's included, to the address its actor system
	// listens on: Raft messages go to the raft actor of that name there.
	Members map[uint64]string
	// ClusterID names the cluster in NodeStatus.
	ClusterID string
	// Applier receives the committed entries (Committed) and answers Applied and Durable.
	Applier *actor.PID
	Logger  *zap.Logger

	// TickInterval is the Raft tick; elections take ElectionTicks of them, heartbeats
	// HeartbeatTicks.
	TickInterval   time.Duration
	ElectionTicks  int
	HeartbeatTicks int
	// MaxInflightProposals bounds proposals waiting to commit; beyond it a proposal gets
	// Unavailable at once instead of queueing.
	MaxInflightProposals int
	// ProposalTimeout is how long a proposal may wait to commit before its caller is told the
	// outcome is unknown and its slot is freed.
	ProposalTimeout time.Duration
	// MaxReadBarriers bounds the linearizable reads waiting for a leader's confirmation; beyond
	// it a read gets Unavailable at once. ReadTimeout is how long one may wait for it.
	MaxReadBarriers int
	ReadTimeout     time.Duration
	// MaxApplyBacklog bounds entries handed to the catalog and not applied yet. Beyond it
	// committed entries wait in the actor (as many again) and proposals are refused with
	// Unavailable, while raft's messages keep flowing; beyond that the actor takes no new
	// Ready, which stops acknowledging appends and so slows the leader.
	MaxApplyBacklog uint64
	// CompactAfter is how many durable entries accumulate in the Raft log before it is
	// compacted; KeepEntries of them stay for followers that lag a little.
	CompactAfter uint64
	KeepEntries  uint64
	// Metrics, when set (NewMetrics), are kept up to date by the actor; nil: none.
	Metrics *Metrics
}

const (
	defaultTickInterval   = 100 * time.Millisecond
	defaultElectionTicks  = 10 // ElectionTick about 10 × HeartbeatTick, as etcd raft advises
	defaultHeartbeatTicks = 1
	// DefaultMaxInflightProposals is several times the clients a busy node serves at once
	// (the benchmark drives 256); each slot costs a few dozen bytes.
	DefaultMaxInflightProposals = 4096
	// DefaultProposalTimeout is above a client's default timeout (5 s), so the client gives up
	// first and the slot is freed soon after.
	DefaultProposalTimeout = 10 * time.Second
	// DefaultReadTimeout is under a client's default timeout, so that a member cut off from the
	// quorum answers Unavailable while the client still has time to try another one.
	DefaultReadTimeout     = 3 * time.Second
	defaultMaxReadBarriers = 4096
	// readRetryTicks: a ReadIndex request not answered within this many ticks (two heartbeat
	// rounds at the defaults) was probably dropped by raft and is sent again.
	readRetryTicks         = 3
	defaultMaxApplyBacklog = 16384
	// DefaultSnapshotCount is etcd's --snapshot-count: the log holds at most about twice this
	// many entries after its snapshot (compaction waits for the catalog's sync, every 10,000
	// entries), which bounds the memory the in-memory log takes and the entries a restart
	// hands the catalog again.
	DefaultSnapshotCount = 10000
	// DefaultSnapshotCatchupEntries is etcd's --snapshot-catchup-entries: a member down for a
	// few seconds at full speed catches up from the log, not by a snapshot.
	DefaultSnapshotCatchupEntries = 5000
	maxSizePerMsg                 = 1 << 20
	maxCommittedSizePerReady      = 8 << 20
	// maxApplyBacklogBytes bounds the committed entries handed to the catalog and not applied:
	// eight Readys' worth.
	maxApplyBacklogBytes = 8 * maxCommittedSizePerReady
	// compactBytes: a log holding this much after its snapshot is compacted whatever its
	// entry count; keepBytes bounds what a compaction keeps for lagging followers.
	compactBytes       = 1 << 30
	keepBytes          = 256 << 20
	maxUncommittedSize = 64 << 20
	maxInflightMsgs    = 256
)

func (c *Config) withDefaults() {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	c.TickInterval = cmp.Or(c.TickInterval, defaultTickInterval)
	c.ElectionTicks = cmp.Or(c.ElectionTicks, defaultElectionTicks)
	c.HeartbeatTicks = cmp.Or(c.HeartbeatTicks, defaultHeartbeatTicks)
	c.MaxInflightProposals = cmp.Or(c.MaxInflightProposals, DefaultMaxInflightProposals)
	c.ProposalTimeout = cmp.Or(c.ProposalTimeout, DefaultProposalTimeout)
	c.MaxReadBarriers = cmp.Or(c.MaxReadBarriers, defaultMaxReadBarriers)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, DefaultReadTimeout)
	c.MaxApplyBacklog = cmp.Or(c.MaxApplyBacklog, defaultMaxApplyBacklog)
	c.CompactAfter = cmp.Or(c.CompactAfter, DefaultSnapshotCount)
	c.KeepEntries = cmp.Or(c.KeepEntries, DefaultSnapshotCatchupEntries)
}

// Actor drives one Raft node. It owns the RawNode, the in-memory log and, through a worker
// goroutine, the durable log: a Ready's persistence runs on the worker while the actor keeps
// taking proposals, which raft gathers into the next Ready — so many commands share one fsync.
type Actor struct {
	cfg  Config
	log  *zap.Logger
	n    *node
	pids map[uint64]*actor.PID // peers' raft actors

	proposals proposals
	reads     readIndex
	lead      uint64          // the leader last reported to the parent
	hadLeader bool            // a leader was known since start: later changes are warnings
	sending   map[uint64]bool // members a snapshot is being sent to

	// members are the addresses of the members, this node's included, by id: from the
	// configuration at start, then from applied configuration changes and verified peers.
	members map[uint64]string
	// removed are the members configuration changes removed; verified the peers whose
	// identity the node actor checked (Verified): raft takes messages only from those.
	removed, verified map[uint64]bool
	memberWait        *memberWait // the membership change proposed here, waiting to apply
	memberSeq         uint64
	pending           *raft.Ready // the Ready being persisted; none is taken until it is done
	caughtUp          bool        // CaughtUp was sent
	compactng         bool        // a compaction of the durable log runs on the worker

	// handed is the last committed index handed to the catalog, applied the last index the
	// catalog says it applied. After a restart raft hands back every committed entry after the
	// log's snapshot, and the catalog, which had applied some of them already, skips those: so
	// applied may run ahead of handed, and the backlog is handed-applied only when positive.
	handed  uint64
	applied uint64
	// unapplied are the batches handed to the catalog and not applied yet, oldest first, with
	// their bytes: the apply backlog is bounded in bytes as well as in entries, since 16,384
	// entries of 1.5 MiB would be 24 GiB.
	unapplied      []handedBatch
	unappliedBytes int
	// held are committed batches taken from raft while the catalog's backlog is full, waiting
	// to be handed to it, oldest first. Raft's Readys (and so its heartbeats, votes and acks)
	// keep flowing while the catalog catches up; new proposals are refused meanwhile, and only
	// once held is full too does the actor stop taking Readys.
	held                   []heldBatch
	heldEntries, heldBytes int
	compacted              uint64 // the catalog's oldest readable revision
	durable                uint64 // the catalog has synced up to here

	jobs chan walJob // to the worker; at most one Ready and one compaction are in flight
	// done holds the worker's results until the actor takes them; its capacity is the jobs in
	// flight. The worker also sends a persisted message, but the actor looks here first on every
	// message: a Ready's next step then does not wait behind the proposals that queued in the
	// mailbox while it was persisted.
	done chan persisted
	stop chan struct{}
	wg   sync.WaitGroup
}

type handedBatch struct {
	last  uint64
	bytes int
}

type heldBatch struct {
	committed *Committed
	bytes     int
}

type walJob struct {
	ready   *raft.Ready              // persist this Ready
	compact *raftpb.SnapshotMetadata // or record this compaction and release old segments
}

// Internal messages, from goroutines the actor owns to the actor.
type (
	tick      struct{}
	persisted struct {
		job walJob
		err error
	}
)

// Check fills the zero fields of c with the defaults and reports a configuration raft cannot
// run with.
func (c *Config) Check() error {
	c.withDefaults()
	switch {
	case c.NodeID == 0:
		return errors.New("raftactor: NodeID must be non-zero")
	case c.KeepEntries >= c.CompactAfter:
		// Compacting to durable-KeepEntries must move past the previous compaction point, and
		// raft must still be able to read the term of the entry before the first one it keeps.
		return fmt.Errorf("raftactor: KeepEntries (%d) must be below CompactAfter (%d): the log keeps KeepEntries of every CompactAfter entries it compacts", c.KeepEntries, c.CompactAfter)
	case c.ElectionTicks <= c.HeartbeatTicks:
		return fmt.Errorf("raftactor: ElectionTicks (%d) must be above HeartbeatTicks (%d)", c.ElectionTicks, c.HeartbeatTicks)
	}
	return nil
}

// New returns the props of a raft actor, or the error of Check.
func New(cfg Config) (*actor.Props, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{cfg: cfg, log: cfg.Logger}
	}), nil
}

// Receive handles one message, then takes and hands out every Ready raft has.
func (a *Actor) Receive(ctx actor.Context) {
	for len(a.done) > 0 {
		a.persisted(ctx, <-a.done)
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *Propose:
		a.propose(ctx, m)
	case *ReadBarrier:
		if ctx.Sender() == nil {
			break
		}
		if !a.reads.add(m.ID, ctx.Sender(), time.Now()) {
			ctx.Respond(&ReadIndexed{ID: m.ID, Status: &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
				Message: fmt.Sprintf("%d linearizable reads already wait for the leader on this member: retry shortly", a.cfg.MaxReadBarriers)}})
		}
	case *raftpb.Message:
		a.step(m)
	case *ChangeMembers:
		a.changeMembers(ctx, m)
	case *Unreachable:
		a.n.rn.ReportUnreachable(m.ID)
		delete(a.verified, m.ID)
	case *InstallSnapshot:
		a.stepMessage(m.Message)
	case *Verified:
		if m.Refused {
			delete(a.verified, m.ID)
			break
		}
		a.verified[m.ID] = true
		if m.Address != "" && a.members[m.ID] != m.Address && m.ID != a.cfg.NodeID {
			a.members[m.ID] = m.Address
			a.pids[m.ID] = actor.NewPID(m.Address, ctx.Self().GetId())
			a.reportMembers(ctx, false)
		}
	case tick:
		now := time.Now()
		a.n.rn.Tick()
		a.proposals.expire(ctx, now)
		a.reads.tick(ctx, now)
		a.expireMemberWait(ctx, now)
	case persisted:
		// A wake-up: its content was taken from done above, by this or an earlier message.
	case *Applied:
		a.applied, a.compacted = max(a.applied, m.Index), m.Compacted
		a.cfg.Metrics.appliedTo(a.applied, time.Now())
		a.reads.applied(ctx, a.applied)
		for len(a.unapplied) > 0 && a.unapplied[0].last <= a.applied {
			a.unappliedBytes -= a.unapplied[0].bytes
			a.unapplied = a.unapplied[1:]
		}
		a.release(ctx)
	case *SnapshotSent:
		delete(a.sending, m.To)
		status := raft.SnapshotFinish
		if m.Err != nil {
			status = raft.SnapshotFailure
			a.log.Warn("snapshot not installed", zap.Uint64("to", m.To), zap.Error(m.Err))
		} else {
			a.log.Info("snapshot installed", zap.Uint64("to", m.To))
		}
		a.n.rn.ReportSnapshot(m.To, status)
	case *Durable:
		a.durable = m.Index
		a.maybeCompact()
	case *messages.StatusRequest:
		ctx.Respond(a.status())
	case *actor.Stopping:
		a.shutdown(ctx)
		return
	case *actor.Stopped:
		if err := a.cfg.Log.WAL.Close(); err != nil {
			a.log.Error("close raft log", zap.Error(err))
		}
		return
	}
	a.reads.send(a.n.rn, time.Now())
	a.pump(ctx)
	a.checkCaughtUp(ctx)
	a.cfg.Metrics.proposals(len(a.proposals.waiting))
}

// status is this node's view of itself and the cluster.
func (a *Actor) status() *messages.NodeStatus {
	st := a.n.rn.Status()
	cs := a.n.confs[len(a.n.confs)-1].state
	role := "follower"
	switch {
	case slices.Contains(cs.GetLearners(), a.cfg.NodeID):
		role = "learner"
	case st.RaftState == raft.StateLeader:
		role = "leader"
	case st.RaftState == raft.StateCandidate || st.RaftState == raft.StatePreCandidate:
		role = "candidate"
	}
	members := a.memberList(cs)
	return &messages.NodeStatus{NodeId: a.cfg.NodeID, Leader: st.Lead, Term: st.GetTerm(),
		Commit: st.GetCommit(), Applied: a.applied, Compacted: a.compacted, Role: role, Members: members, ClusterId: a.cfg.ClusterID,
		Version: messages.Version, ProtocolVersion: messages.ProtocolVersion}
}

func (a *Actor) checkCaughtUp(ctx actor.Context) {
	if a.caughtUp || a.n == nil {
		return
	}
	if !a.n.caughtUp(a.applied) {
		return
	}
	a.caughtUp = true
	a.log.Info("raft caught up", zap.Uint64("term", a.n.rn.BasicStatus().GetTerm()), zap.Uint64("applied", a.applied))
	if p := ctx.Parent(); p != nil {
		ctx.Send(p, &CaughtUp{})
	}
}

func (a *Actor) start(ctx actor.Context) {
	n, err := newNode(nodeConfig{
		id: a.cfg.NodeID, electionTicks: a.cfg.ElectionTicks, heartbeatTicks: a.cfg.HeartbeatTicks,
		maxSizePerMsg: maxSizePerMsg, maxCommittedSizePerReady: maxCommittedSizePerReady,
		maxUncommittedEntriesSize: maxUncommittedSize, maxInflightMsgs: maxInflightMsgs,
		logger: a.log,
	}, a.cfg.Log.State)
	if err != nil {
		panic(err)
	}
	a.n = n
	a.cfg.Log.State = nil // loaded into the MemoryStorage; let it go
	a.handed = n.snapshot.GetIndex()
	a.applied = a.handed // every entry up to the snapshot is in the catalog: it was compacted behind Durable
	// A fresh epoch at every start: proposals of an earlier boot that commit now find no caller
	// here, and none of this boot's can be mistaken for them.
	a.proposals = newProposals(a.cfg.MaxInflightProposals, a.cfg.ProposalTimeout, a.cfg.NodeID, uint64(time.Now().UnixNano()))
	a.reads = newReadIndex(a.cfg.MaxReadBarriers, a.cfg.ReadTimeout, readRetryTicks*a.cfg.TickInterval, a.proposals.self.Epoch)
	a.proposals.m = a.cfg.Metrics
	a.cfg.Metrics.started(a.cfg.MaxInflightProposals, n.rn.BasicStatus().GetCommit(), a.applied)
	a.pids = map[uint64]*actor.PID{}
	a.sending = map[uint64]bool{}
	a.members = maps.Clone(a.cfg.Members) // the parent keeps its own copy
	if a.members == nil {
		a.members = map[uint64]string{}
	}
	a.removed, a.verified = map[uint64]bool{}, map[uint64]bool{}
	for id, addr := range a.members {
		if id != a.cfg.NodeID {
			a.pids[id] = actor.NewPID(addr, ctx.Self().GetId())
		}
	}
	a.jobs = make(chan walJob, 2)
	a.done = make(chan persisted, 2)
	a.stop = make(chan struct{})
	root, self, w := ctx.ActorSystem().Root, ctx.Self(), a.cfg.Log.WAL
	a.wg.Add(2)
	go func() { // the worker: the only goroutine that touches the durable log after start
		defer a.wg.Done()
		for j := range a.jobs {
			var err error
			if j.ready != nil {
				err = persist(w, *j.ready)
			} else {
				err = w.SaveSnapshot(j.compact)
				if err == nil {
					err = w.ReleaseTo(j.compact.GetIndex())
				}
			}
			a.done <- persisted{job: j, err: err} // never blocks: one slot a job in flight
			root.Send(self, persisted{})
		}
	}()
	go func() {
		defer a.wg.Done()
		t := time.NewTicker(a.cfg.TickInterval)
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
	if voters := n.confs[len(n.confs)-1].state.GetVoters(); len(voters) == 1 && voters[0] == a.cfg.NodeID {
		// The only voter need not wait out an election timeout to lead.
		if err := n.rn.Campaign(); err != nil {
			panic(fmt.Errorf("raftactor: campaign: %w", err))
		}
	}
	a.reportMembers(ctx, false)
	st := n.rn.Status()
	a.log.Info("raft started", zap.Uint64("term", st.GetTerm()),
		zap.Uint64("commit", st.GetCommit()), zap.Uint64("snapshot", n.snapshot.GetIndex()))
}

func (a *Actor) shutdown(ctx actor.Context) {
	if a.stop == nil { // failed in start
		return
	}
	close(a.stop)
	close(a.jobs)
	a.wg.Wait()
	a.cfg.Metrics.forgetWrites()
	a.proposals.failAll(ctx, messages.StatusReason_TIMEOUT,
		"the node stopped before the write was applied: its outcome is unknown; read the object to find out")
	a.reads.failAll(ctx, &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
		Message: "the node is shutting down: nothing was read; retry on another member"})
}

func (a *Actor) propose(ctx actor.Context, m *Propose) {
	if len(a.held) > 0 {
		reply(ctx, m.ReplyTo, &messages.CommandResult{RequestId: m.Command.GetRequestId(), Status: &messages.Status{
			Reason:  messages.StatusReason_UNAVAILABLE,
			Message: fmt.Sprintf("this node's catalog is %d committed entries behind its log: the write was not proposed; retry shortly", a.heldEntries+int(a.backlog()))}})
		a.cfg.Metrics.proposalFailed()
		return
	}
	id, ok := a.proposals.add(m.ReplyTo, time.Now())
	if !ok {
		reply(ctx, m.ReplyTo, &messages.CommandResult{RequestId: m.Command.GetRequestId(), Status: &messages.Status{
			Reason:  messages.StatusReason_UNAVAILABLE,
			Message: fmt.Sprintf("%d writes are already in flight on this node: retry shortly", a.cfg.MaxInflightProposals)}})
		a.cfg.Metrics.proposalFailed()
		return
	}
	data, err := messages.EncodeEntry(id, m.Command)
	if err == nil {
		err = a.n.rn.Propose(data)
	}
	if err != nil {
		a.proposals.remove(id)
		a.cfg.Metrics.proposalFailed()
		msg := "this node does not lead (or leadership is changing): the write was not proposed; retry, on the leader or on another member"
		if err != raft.ErrProposalDropped {
			msg = "the write was not proposed: " + err.Error()
		}
		reply(ctx, m.ReplyTo, &messages.CommandResult{RequestId: m.Command.GetRequestId(), Status: &messages.Status{
			Reason: messages.StatusReason_UNAVAILABLE, Message: msg}})
	}
}

// pump takes Readys while raft has them and the previous one is done: committed entries go to
// the catalog at once (they are durable on a quorum already), the rest to the worker.
func (a *Actor) pump(ctx actor.Context) {
	for a.pending == nil && a.heldEntries < int(a.cfg.MaxApplyBacklog) && a.heldBytes < maxApplyBacklogBytes && a.n.rn.HasReady() {
		rd := a.n.ready()
		a.proposals.place(rd.Entries)
		a.placeMemberChange(ctx, rd.Entries)
		if !raft.IsEmptySnap(rd.Snapshot) {
			// An installed snapshot: raft hands no entry up to its index, which the applier
			// holds (it installed the data before raft stepped the message).
			idx := rd.Snapshot.GetMetadata().GetIndex()
			a.proposals.snapshotted(ctx, idx)
			a.handed, a.applied = max(a.handed, idx), max(a.applied, idx)
			a.cfg.Metrics.forgetWrites()
			a.cfg.Metrics.appliedTo(a.applied, time.Now())
			a.log.Info("raft snapshot taken", zap.Uint64("index", idx))
		}
		if len(rd.ReadStates) > 0 {
			a.reads.ready(ctx, rd.ReadStates, a.applied)
		}
		if rd.HardState != nil {
			a.cfg.Metrics.commit(rd.HardState.GetCommit())
		}
		if rd.SoftState != nil {
			a.cfg.Metrics.softState(rd.SoftState, a.lead)
		}
		if rd.SoftState != nil && rd.SoftState.Lead != a.lead {
			a.logLeaderChange(a.lead, rd.SoftState.Lead)
			a.lead = rd.SoftState.Lead
			if p := ctx.Parent(); p != nil {
				ctx.Send(p, &Leader{ID: a.lead, Term: a.n.rn.BasicStatus().GetTerm(), Self: a.lead == a.cfg.NodeID})
			}
		}
		if len(rd.CommittedEntries) > 0 {
			confs, err := a.n.applyConfChanges(rd.CommittedEntries)
			if err != nil {
				panic(err)
			}
			a.confApplied(ctx, confs)
			c := &Committed{Entries: rd.CommittedEntries, ReplyTo: a.proposals.committed(rd.CommittedEntries)}
			a.proposals.overwritten(ctx, rd.CommittedEntries[len(rd.CommittedEntries)-1].GetIndex())
			n := 0
			for _, e := range rd.CommittedEntries {
				n += len(e.GetData())
			}
			a.held = append(a.held, heldBatch{committed: c, bytes: n})
			a.heldEntries += len(c.Entries)
			a.heldBytes += n
			a.release(ctx)
		}
		if needsPersist(rd) {
			rd.Messages = a.sendAppends(ctx, rd)
			a.pending = &rd
			a.jobs <- walJob{ready: &rd} // never blocks: one Ready and one compaction at most
			return
		}
		a.finish(ctx, rd)
	}
}

// sendAppends sends at once what of rd may go before rd is persisted (appendsFirst) and
// returns the messages that wait for it.
func (a *Actor) sendAppends(ctx actor.Context, rd raft.Ready) (wait []*raftpb.Message) {
	if len(rd.Messages) == 0 {
		return nil
	}
	on, _, _ := a.n.storage.InitialState() // the HardState last persisted
	now, wait := appendsFirst(rd, a.n.rn.BasicStatus().RaftState == raft.StateLeader, on)
	for _, m := range now {
		a.send(ctx, m)
	}
	return wait
}

// appendsFirst splits rd's messages into those a leader sends before rd is persisted, its
// appends and heartbeats, and those that wait for the fsync: the leader then writes its log in
// parallel with the followers writing theirs (Raft thesis 10.2.1; raft's doc.go, step 2, and
// etcd's server do this), and an entry commits once a quorum holds it on disk, the leader's own
// disk or not. Only while the latest HardState is on disk already (on): rd's term and vote are
// those persisted (a commit index alone may run ahead of the disk, as it does in every append),
// and every earlier Ready was persisted before rd was taken. Responses, which speak for this
// node's disk, snapshots, and every message of a node not leading wait.
func appendsFirst(rd raft.Ready, leader bool, on *raftpb.HardState) (now, wait []*raftpb.Message) {
	if !leader {
		return nil, rd.Messages
	}
	if hs := rd.HardState; !raft.IsEmptyHardState(hs) && (hs.GetTerm() != on.GetTerm() || hs.GetVote() != on.GetVote()) {
		return nil, rd.Messages
	}
	for _, m := range rd.Messages {
		if t := m.GetType(); t == raftpb.MessageType_MsgApp || t == raftpb.MessageType_MsgHeartbeat {
			now = append(now, m)
		} else {
			wait = append(wait, m)
		}
	}
	return now, wait
}

// release hands the held batches to the catalog while its backlog has room.
func (a *Actor) release(ctx actor.Context) {
	for len(a.held) > 0 && a.backlog() < a.cfg.MaxApplyBacklog && a.unappliedBytes < maxApplyBacklogBytes {
		b := a.held[0]
		a.held[0] = heldBatch{}
		a.held = a.held[1:]
		a.heldEntries -= len(b.committed.Entries)
		a.heldBytes -= b.bytes
		ctx.Request(a.cfg.Applier, b.committed)
		a.handed = max(a.handed, b.committed.Entries[len(b.committed.Entries)-1].GetIndex())
		a.unapplied = append(a.unapplied, handedBatch{last: a.handed, bytes: b.bytes})
		a.unappliedBytes += b.bytes
	}
	if len(a.held) == 0 {
		a.held = nil // let the backing array go
	}
}

// backlog is how many entries the catalog has been handed and not applied yet.
func (a *Actor) backlog() uint64 {
	if a.applied >= a.handed {
		return 0
	}
	return a.handed - a.applied
}

// step hands raft a message from the network, if a member addressed it to this node (see
// node.accept). Refusals are logged at debug level: a peer that is being removed, or a client
// that probes the port, would otherwise flood the log.
func (a *Actor) step(m *raftpb.Message) {
	if m.GetType() == raftpb.MessageType_MsgSnap {
		// A snapshot's data travels between appliers, which hand raft the message once the
		// data is installed (InstallSnapshot); one straight from the network has none.
		a.log.Debug("raft message refused: a snapshot message from the network", zap.Uint64("from", m.GetFrom()))
		return
	}
	a.stepMessage(m)
}

// stepMessage steps m if a verified member addressed it to this node.
func (a *Actor) stepMessage(m *raftpb.Message) {
	err := a.n.accept(m, func(id uint64) bool { _, ok := a.members[id]; return ok })
	if err == nil && !a.verified[m.GetFrom()] {
		err = errors.New("the node has not verified this peer's identity yet (messages.Hello)")
	}
	if err != nil {
		a.log.Debug("raft message refused", zap.Stringer("type", m.GetType()),
			zap.Uint64("from", m.GetFrom()), zap.Uint64("to", m.GetTo()), zap.Error(err))
		return
	}
	if a.cfg.Metrics != nil && m.GetType() == raftpb.MessageType_MsgHeartbeatResp {
		a.cfg.Metrics.heartbeatAnswered(m.GetFrom(), time.Now())
	}
	if err := a.n.rn.Step(m); err != nil {
		a.log.Debug("step", zap.Stringer("type", m.GetType()), zap.Error(err))
	}
}

func (a *Actor) persisted(ctx actor.Context, m persisted) {
	if m.err != nil {
		// After a failed write or sync what the log holds on disk is unknown, and a sync tried
		// again may report success for pages the kernel dropped (etcd's rule): stop, with the
		// Ready neither advanced nor its messages sent, so nothing it held is acknowledged.
		panic(fmt.Errorf("raftactor: write raft log: %w; a log that failed a write or sync cannot be trusted, so the node stops: fix the disk (kernel log, free space), then start the node again: it recovers every write it acknowledged from its data dir", m.err))
	}
	if m.job.compact != nil {
		a.compactng = false
		a.log.Debug("raft log compacted", zap.Uint64("index", m.job.compact.GetIndex()))
		return
	}
	a.pending = nil
	a.finish(ctx, *m.job.ready)
}

func (a *Actor) finish(ctx actor.Context, rd raft.Ready) {
	msgs, err := a.n.advance(rd)
	if err != nil {
		panic(err)
	}
	for _, m := range msgs {
		if m.GetType() == raftpb.MessageType_MsgSnap {
			a.sendSnapshot(ctx, m)
			continue
		}
		a.send(ctx, m)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		a.reportMembers(ctx, false) // the snapshot's configuration replaced the log's
	}
	if rd.SoftState != nil {
		a.log.Info("raft state", zap.Uint64("leader", rd.SoftState.Lead),
			zap.Stringer("role", rd.SoftState.RaftState), zap.Uint64("term", a.n.rn.BasicStatus().GetTerm()))
	}
}

// send sends a raft message to its member, if the node knows where that is.
func (a *Actor) send(ctx actor.Context, m *raftpb.Message) {
	if pid, ok := a.pids[m.GetTo()]; ok {
		if a.cfg.Metrics != nil && m.GetType() == raftpb.MessageType_MsgHeartbeat {
			a.cfg.Metrics.heartbeatSent(m.GetTo(), time.Now(), time.Duration(a.cfg.ElectionTicks)*a.cfg.TickInterval)
		}
		ctx.Send(pid, m)
	}
}

// sendSnapshot hands a snapshot raft wants sent to the applier, which holds the data. Raft made
// the message at its log's snapshot index; the applier's state is further on (it holds every
// entry up to what it applied), so the message is moved to that index: the member that
// installs it then has a Raft log and a catalog at the same index, and gets the entries after
// it from this leader's log, which holds them.
func (a *Actor) sendSnapshot(ctx actor.Context, m *raftpb.Message) {
	to := m.GetTo()
	addr, ok := a.members[to]
	if !ok || a.sending[to] {
		return // raft asks again after ReportSnapshot, or once it hears from the member
	}
	index := max(a.applied, m.GetSnapshot().GetMetadata().GetIndex())
	if c := a.n.confs[len(a.n.confs)-1]; index < c.index {
		// The applier has not reached the latest configuration change, which may be the one
		// that added this member: a snapshot without it would be refused. Raft asks again.
		a.n.rn.ReportSnapshot(to, raft.SnapshotFailure)
		return
	}
	term, err := a.n.storage.Term(index)
	if err != nil {
		a.log.Warn("no snapshot to send", zap.Uint64("to", to), zap.Uint64("index", index), zap.Error(err))
		a.n.rn.ReportSnapshot(to, raft.SnapshotFailure)
		return
	}
	m = proto.CloneOf(m)
	m.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(term),
		ConfState: proto.CloneOf(a.n.confAt(index))}}
	a.sending[to] = true
	a.log.Info("sending a snapshot", zap.Uint64("to", to), zap.Uint64("index", index), zap.Uint64("term", term))
	ctx.Request(a.cfg.Applier, &SendSnapshot{To: to, Address: addr, Message: m})
}

// maybeCompact drops from the Raft log what the catalog holds on disk: once CompactAfter
// durable entries, or compactBytes of entries, are in the log after its snapshot. It keeps the
// last KeepEntries durable entries for followers that lag a little, but no more than keepBytes
// of them: with objects near the size limit, entry counts alone would let the log hold tens of
// gigabytes.
func (a *Actor) maybeCompact() {
	snap := a.n.snapshot.GetIndex()
	// The applier may hold more than the log: a snapshot it installed, before raft steps the
	// snapshot message that moves the log there. Only what the log holds can be compacted.
	last, err := a.n.storage.LastIndex()
	if err != nil {
		panic(fmt.Errorf("raftactor: compact raft log: %w", err))
	}
	durable := min(a.durable, last, a.handed) // never past what raft has applied
	if a.compactng || durable <= snap || a.pending != nil && !raft.IsEmptySnap(a.pending.Snapshot) {
		// A snapshot being installed moves the log's start itself; a compaction computed from
		// the old start and written after it would move the durable log's start backwards.
		return
	}
	if durable < snap+a.cfg.CompactAfter && a.n.logBytes < compactBytes {
		return
	}
	to, err := a.n.compactPoint(durable, a.cfg.KeepEntries, keepBytes)
	if err != nil {
		panic(fmt.Errorf("raftactor: compact raft log: %w", err))
	}
	if m, ok := a.n.followersMatch(); ok && m < to && a.n.logBytes < compactBytes {
		// A follower that is up but behind would need a snapshot, a much larger transfer than
		// the entries it lacks: keep them, up to compactBytes of log.
		to = max(m, snap)
	}
	if to <= snap {
		return
	}
	meta, err := a.n.compactTo(to)
	if err != nil {
		panic(fmt.Errorf("raftactor: compact raft log: %w", err))
	}
	a.compactng = true
	a.jobs <- walJob{compact: meta}
}
