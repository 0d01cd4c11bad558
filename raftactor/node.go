package raftactor

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/raftactor/wal"
)

// node is the Raft state the actor owns, with no actor in it: the RawNode, the in-memory log
// raft reads (a MemoryStorage, as in etcd) and the durable log behind it. Its methods are the
// Ready contract of etcd raft in plain functions, so a test can drive several nodes without an
// actor system:
//
//	rd := n.ready()          // take a Ready; its CommittedEntries may be applied at once
//	err := persist(w, rd)    // make HardState, entries and snapshot durable (a worker does this)
//	msgs := n.advance(rd)    // then hand the entries to raft's log, send msgs, Advance
type node struct {
	id      uint64
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	log     *zap.Logger

	snapshot *raftpb.SnapshotMetadata // the durable log's start: compacted up to its Index
	// confs are the configurations since the snapshot, each with the index it took effect at,
	// so a compaction records the configuration as of the index it compacts to.
	confs []conf
	// logBytes is about how many bytes of entry data the log holds after its snapshot: counted
	// as entries are appended, recounted at each compaction.
	logBytes uint64
}

type conf struct {
	index uint64
	state *raftpb.ConfState
}

// Log is a node's Raft log, opened: the durable log and what it held.
type Log struct {
	WAL   *wal.WAL
	State *wal.State
}

// OpenLog opens the Raft log in dir. A new log is bootstrapped with every voter in voters: the
// initial configuration is a snapshot at index 1, term 1, as etcd raft recommends. With no
// voters a new log stays empty: a node that joins a running cluster gets its configuration
// and its state from the leader, by a snapshot.
func OpenLog(dir string, voters []uint64, logger *zap.Logger) (*Log, error) {
	return OpenLogWith(dir, voters, wal.Options{Logger: logger})
}

// OpenLogWith is OpenLog with the durable log's options (its logger, and the faults a test
// injects).
func OpenLogWith(dir string, voters []uint64, opts wal.Options) (*Log, error) {
	w, st, err := wal.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	if st.Snapshot == nil && st.HardState == nil && len(st.Entries) == 0 && len(voters) > 0 {
		meta := &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(1),
			Term:      proto.Uint64(1),
			ConfState: &raftpb.ConfState{Voters: slices.Clone(voters)},
		}
		hs := &raftpb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(1)}
		if err := w.SaveSnapshot(meta); err != nil {
			w.Close()
			return nil, err
		}
		if err := w.Save(hs, nil, true); err != nil {
			w.Close()
			return nil, err
		}
		st.Snapshot, st.HardState = meta, hs
	}
	return &Log{WAL: w, State: st}, nil
}

// nodeConfig is what newNode needs beyond the log.
type nodeConfig struct {
	id                        uint64
	electionTicks             int
	heartbeatTicks            int
	maxSizePerMsg             uint64
	maxCommittedSizePerReady  uint64
	maxUncommittedEntriesSize uint64
	maxInflightMsgs           int
	logger                    *zap.Logger
}

func newNode(cfg nodeConfig, st *wal.State) (*node, error) {
	ms := raft.NewMemoryStorage()
	snap := st.Snapshot
	switch {
	case snap != nil:
		if err := ms.ApplySnapshot(&raftpb.Snapshot{Metadata: snap}); err != nil {
			return nil, fmt.Errorf("raftactor: load snapshot %d: %w", snap.GetIndex(), err)
		}
	case st.HardState == nil && len(st.Entries) == 0:
		// A joining node's log, empty until the leader sends a snapshot.
		snap = &raftpb.SnapshotMetadata{Index: proto.Uint64(0), Term: proto.Uint64(0), ConfState: &raftpb.ConfState{}}
	default:
		return nil, fmt.Errorf("raftactor: the log has entries but no snapshot record: it was not made by OpenLog")
	}
	if hs := st.HardState; hs != nil {
		if hs.GetCommit() < snap.GetIndex() {
			// A snapshot is committed by definition. persist writes its record, then the
			// HardState that says so: a crash between the two leaves a commit index below the
			// log's start, on which raft panics at every start.
			hs = proto.CloneOf(hs)
			hs.Commit = proto.Uint64(snap.GetIndex())
			st.HardState = hs
		}
		if err := ms.SetHardState(st.HardState); err != nil {
			return nil, err
		}
	}
	if err := ms.Append(st.Entries); err != nil {
		return nil, fmt.Errorf("raftactor: load entries: %w", err)
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID:            cfg.id,
		ElectionTick:  cfg.electionTicks,
		HeartbeatTick: cfg.heartbeatTicks,
		Storage:       ms,
		// Raft hands back every committed entry after the snapshot; the catalog skips those it
		// has applied, and this actor sees every configuration change again.
		Applied:                   snap.GetIndex(),
		MaxSizePerMsg:             cfg.maxSizePerMsg,
		MaxCommittedSizePerReady:  cfg.maxCommittedSizePerReady,
		MaxUncommittedEntriesSize: cfg.maxUncommittedEntriesSize,
		MaxInflightMsgs:           cfg.maxInflightMsgs,
		CheckQuorum:               true,
		PreVote:                   true,
		StepDownOnRemoval:         true,
		// Writes reach the leader as Commands through the node actors, never as MsgProp
		// between raft actors (accept refuses those): a follower's raft has nothing to forward.
		DisableProposalForwarding: true,
		Logger:                    raftLogger{cfg.logger.Sugar()},
	})
	if err != nil {
		return nil, fmt.Errorf("raftactor: start raft: %w", err)
	}
	n := &node{id: cfg.id, rn: rn, storage: ms, log: cfg.logger, snapshot: snap,
		confs: []conf{{snap.GetIndex(), snap.GetConfState()}}}
	for _, e := range st.Entries {
		n.logBytes += uint64(len(e.GetData()))
	}
	return n, nil
}

// accept checks a message that came over the network before raft steps it. Raft trusts its
// peers: a proposal, a configuration change or a term of 2^64-1 from anyone who reaches the port
// would be appended, committed or persisted. So only messages a member of the current
// configuration addressed to this node pass, and never a type raft makes for itself (MsgHup,
// MsgBeat, ...) or a proposal (MsgProp: writes travel as Commands, which the node admits).
// Authenticating the peers themselves comes with TLS.
func (n *node) accept(m *raftpb.Message, known func(uint64) bool) error {
	typ, from := m.GetType(), m.GetFrom()
	switch {
	case m.GetTo() != n.id:
		return fmt.Errorf("addressed to node %d, not to this node (%d)", m.GetTo(), n.id)
	case raft.IsLocalMsg(typ):
		return fmt.Errorf("%v is a message raft makes for itself", typ)
	case typ == raftpb.MessageType_MsgProp:
		return errors.New("proposals are not taken from the network: send a Command to the node")
	case from == n.id || !n.isMember(from) && !(n.joining() && known(from)):
		return fmt.Errorf("node %d is not another member of the configuration", from)
	}
	return nil
}

// joining reports whether the node has no configuration yet: it joins a running cluster and
// waits for the leader's snapshot, so it takes messages from the members it was told of.
func (n *node) joining() bool {
	cs := n.confs[len(n.confs)-1].state
	return len(cs.GetVoters()) == 0 && len(cs.GetLearners()) == 0
}

// isMember reports whether id votes or learns in the latest configuration.
func (n *node) isMember(id uint64) bool {
	cs := n.confs[len(n.confs)-1].state
	return slices.Contains(cs.GetVoters(), id) || slices.Contains(cs.GetLearners(), id) ||
		slices.Contains(cs.GetVotersOutgoing(), id) || slices.Contains(cs.GetLearnersNext(), id)
}

// caughtUp reports whether a node whose catalog applied up to applied may serve reads: it knows
// a leader, its commit index holds an entry of the current term (a new leader's commit index
// covers what an earlier one committed only once its own first entry commits), and applied
// reaches it.
func (n *node) caughtUp(applied uint64) bool {
	st := n.rn.BasicStatus()
	if st.Lead == raft.None || applied < st.GetCommit() {
		return false
	}
	term, err := n.storage.Term(st.GetCommit())
	return err == nil && term == st.GetTerm()
}

// followersMatch is, on a leader, the lowest index the recently active followers and learners
// are known to hold; ok is false on a follower or when no other member is active.
func (n *node) followersMatch() (uint64, bool) {
	st := n.rn.Status()
	if st.RaftState != raft.StateLeader {
		return 0, false
	}
	m, ok := uint64(0), false
	for id, pr := range st.Progress {
		if id == n.id || !pr.RecentActive {
			continue
		}
		if !ok || pr.Match < m {
			m, ok = pr.Match, true
		}
	}
	return m, ok
}

// ready takes the next Ready. The caller applies rd.CommittedEntries (through
// applyConfChanges for the configuration entries), persists rd, then calls advance.
func (n *node) ready() raft.Ready { return n.rn.Ready() }

// needsPersist reports whether rd holds anything for the durable log.
func needsPersist(rd raft.Ready) bool {
	return !raft.IsEmptyHardState(rd.HardState) || len(rd.Entries) > 0 || !raft.IsEmptySnap(rd.Snapshot)
}

// persist makes rd's snapshot, HardState and entries durable: fsynced when rd.MustSync. It
// must return before any of rd.Messages is sent (a leader's appends aside: Actor.sendAppends):
// a vote or an append acknowledged and then forgotten in a crash breaks Raft's safety.
func persist(w *wal.WAL, rd raft.Ready) error {
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := w.SaveSnapshot(rd.Snapshot.GetMetadata()); err != nil {
			return err
		}
	}
	var hs *raftpb.HardState
	if !raft.IsEmptyHardState(rd.HardState) {
		hs = rd.HardState
	}
	if hs == nil && len(rd.Entries) == 0 {
		return nil
	}
	return w.Save(hs, rd.Entries, rd.MustSync)
}

// appliedConf is a configuration change applied from the log.
type appliedConf struct {
	index   uint64
	changes []*raftpb.ConfChangeSingle
	context []byte
	state   *raftpb.ConfState
}

// applyConfChanges applies the configuration entries among committed ones and returns them.
func (n *node) applyConfChanges(committed []*raftpb.Entry) ([]appliedConf, error) {
	var out []appliedConf
	for _, e := range committed {
		var cc raftpb.ConfChangeI
		switch e.GetType() {
		case raftpb.EntryType_EntryConfChange:
			var c raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &c); err != nil {
				return nil, fmt.Errorf("raftactor: entry %d: decode conf change: %w", e.GetIndex(), err)
			}
			cc = &c
		case raftpb.EntryType_EntryConfChangeV2:
			var c raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &c); err != nil {
				return nil, fmt.Errorf("raftactor: entry %d: decode conf change: %w", e.GetIndex(), err)
			}
			cc = &c
		default:
			continue
		}
		if e.GetIndex() <= n.confs[len(n.confs)-1].index {
			continue // already part of the snapshot's configuration
		}
		cs := n.rn.ApplyConfChange(cc)
		n.confs = append(n.confs, conf{e.GetIndex(), cs})
		v2 := cc.AsV2()
		out = append(out, appliedConf{index: e.GetIndex(), changes: v2.GetChanges(), context: v2.GetContext(), state: cs})
		n.log.Info("configuration changed", zap.Uint64("index", e.GetIndex()),
			zap.Uint64s("voters", cs.GetVoters()), zap.Uint64s("learners", cs.GetLearners()))
	}
	return out, nil
}

// advance hands a persisted Ready's entries to raft's log, tells raft it is done with it, and
// returns the messages to send.
func (n *node) advance(rd raft.Ready) ([]*raftpb.Message, error) {
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return nil, fmt.Errorf("raftactor: apply snapshot: %w", err)
		}
		n.snapshot = rd.Snapshot.GetMetadata()
		n.confs = []conf{{n.snapshot.GetIndex(), n.snapshot.GetConfState()}}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.storage.SetHardState(rd.HardState); err != nil {
			return nil, err
		}
	}
	if err := n.storage.Append(rd.Entries); err != nil {
		return nil, fmt.Errorf("raftactor: append entries: %w", err)
	}
	for _, e := range rd.Entries {
		n.logBytes += uint64(len(e.GetData()))
	}
	msgs := rd.Messages
	n.rn.Advance(rd)
	return msgs, nil
}

// compactPoint is where a compaction of the log up to durable should stop: keepEntries before
// durable, or later when the entries kept would hold more than keepBytes.
func (n *node) compactPoint(durable, keepEntries, keepBytes uint64) (uint64, error) {
	first := n.snapshot.GetIndex() + 1
	to := first - 1
	if durable > keepEntries {
		to = max(to, durable-keepEntries)
	}
	if durable <= to {
		return to, nil
	}
	ents, err := n.storage.Entries(to+1, durable+1, math.MaxUint64)
	if err != nil {
		return 0, err
	}
	kept := uint64(0)
	for i := len(ents) - 1; i >= 0; i-- {
		if kept += uint64(len(ents[i].GetData())); kept > keepBytes {
			return ents[i].GetIndex(), nil
		}
	}
	return to, nil
}

// confAt is the configuration in effect at index, which must not be below the log's snapshot.
func (n *node) confAt(index uint64) *raftpb.ConfState {
	cs := n.confs[0].state
	for _, c := range n.confs {
		if c.index <= index {
			cs = c.state
		}
	}
	return cs
}

// compactTo drops the in-memory log up to index and returns the snapshot record that says so,
// for the durable log. The catalog must hold every entry up to index on disk.
func (n *node) compactTo(index uint64) (*raftpb.SnapshotMetadata, error) {
	term, err := n.storage.Term(index)
	if err != nil {
		return nil, err
	}
	cs := n.confs[0].state
	keep := 0
	for i, c := range n.confs {
		if c.index <= index {
			cs, keep = c.state, i
		}
	}
	if _, err := n.storage.CreateSnapshot(index, cs, nil); err != nil {
		return nil, err
	}
	if err := n.storage.Compact(index); err != nil {
		return nil, err
	}
	meta := &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(term), ConfState: proto.CloneOf(cs)}
	n.snapshot = meta
	n.logBytes = 0
	if last, err := n.storage.LastIndex(); err == nil && last > index {
		if ents, err := n.storage.Entries(index+1, last+1, math.MaxUint64); err == nil {
			for _, e := range ents {
				n.logBytes += uint64(len(e.GetData()))
			}
		}
	}
	n.confs = n.confs[keep:]
	n.confs[0].index = index
	return meta, nil
}

// raftLogger adapts zap to raft's logger. Raft's Fatal panics here: only main may exit.
type raftLogger struct{ s *zap.SugaredLogger }

func (l raftLogger) Debug(v ...any)              { l.s.Debug(v...) }
func (l raftLogger) Debugf(f string, v ...any)   { l.s.Debugf(f, v...) }
func (l raftLogger) Error(v ...any)              { l.s.Error(v...) }
func (l raftLogger) Errorf(f string, v ...any)   { l.s.Errorf(f, v...) }
func (l raftLogger) Info(v ...any)               { l.s.Info(v...) }
func (l raftLogger) Infof(f string, v ...any)    { l.s.Infof(f, v...) }
func (l raftLogger) Warning(v ...any)            { l.s.Warn(v...) }
func (l raftLogger) Warningf(f string, v ...any) { l.s.Warnf(f, v...) }
func (l raftLogger) Fatal(v ...any)              { l.s.Panic(v...) }
func (l raftLogger) Fatalf(f string, v ...any)   { l.s.Panicf(f, v...) }
func (l raftLogger) Panic(v ...any)              { l.s.Panic(v...) }
func (l raftLogger) Panicf(f string, v ...any)   { l.s.Panicf(f, v...) }
