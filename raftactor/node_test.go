package raftactor

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// cluster drives several nodes through the Ready contract in plain function calls, with no
// actor system, no goroutine and no clock: the way the actor drives one node, minus the actor.
type cluster struct {
	t       *testing.T
	dirs    map[uint64]string
	nodes   map[uint64]*node
	logs    map[uint64]*Log
	applied map[uint64][][]byte // committed normal entries' data, per node, in order
	cut     map[uint64]bool     // nodes whose messages are dropped
}

func newCluster(t *testing.T, ids ...uint64) *cluster {
	c := &cluster{t: t, dirs: map[uint64]string{}, nodes: map[uint64]*node{}, logs: map[uint64]*Log{},
		applied: map[uint64][][]byte{}, cut: map[uint64]bool{}}
	for _, id := range ids {
		c.dirs[id] = filepath.Join(t.TempDir(), fmt.Sprint(id))
		c.start(id, ids)
	}
	t.Cleanup(func() {
		for _, l := range c.logs {
			l.WAL.Close()
		}
	})
	return c
}

func (c *cluster) start(id uint64, voters []uint64) {
	l, err := OpenLog(c.dirs[id], voters, zap.NewNop())
	if err != nil {
		c.t.Fatal(err)
	}
	n, err := newNode(nodeConfig{id: id, electionTicks: 10, heartbeatTicks: 1, maxSizePerMsg: 1 << 20,
		maxCommittedSizePerReady: 1 << 20, maxUncommittedEntriesSize: 1 << 24, maxInflightMsgs: 64, logger: zap.NewNop()}, l.State)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id], c.logs[id] = n, l
}

// stop closes a node's log as a crash would leave it: everything Save returned is on disk.
func (c *cluster) stop(id uint64) {
	c.logs[id].WAL.Close()
	delete(c.logs, id)
	delete(c.nodes, id)
}

// settle runs every node's Readys and delivers their messages until nothing moves.
func (c *cluster) settle() {
	for moved := true; moved; {
		moved = false
		for id, n := range c.nodes {
			for n.rn.HasReady() {
				moved = true
				rd := n.ready()
				if _, err := n.applyConfChanges(rd.CommittedEntries); err != nil {
					c.t.Fatal(err)
				}
				for _, e := range rd.CommittedEntries {
					if e.GetType() == raftpb.EntryType_EntryNormal && len(e.GetData()) > 0 {
						c.applied[id] = append(c.applied[id], e.GetData())
					}
				}
				if err := persist(c.logs[id].WAL, rd); err != nil {
					c.t.Fatal(err)
				}
				msgs, err := n.advance(rd)
				if err != nil {
					c.t.Fatal(err)
				}
				for _, m := range msgs {
					if to, ok := c.nodes[m.GetTo()]; ok && !c.cut[id] && !c.cut[m.GetTo()] {
						_ = to.rn.Step(m)
					}
				}
			}
		}
	}
}

func (c *cluster) leader() uint64 {
	for id, n := range c.nodes {
		if n.rn.Status().RaftState == raft.StateLeader {
			return id
		}
	}
	return 0
}

func TestThreeNodesReplicateThroughTheReadyContract(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	if err := c.nodes[1].rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if got := c.leader(); got != 1 {
		t.Fatalf("leader = %d, want 1 after it campaigned", got)
	}
	for i := range 10 {
		if err := c.nodes[1].rn.Propose([]byte(fmt.Sprintf("cmd-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	c.settle()
	for id := range c.nodes {
		if len(c.applied[id]) != 10 {
			t.Fatalf("node %d applied %d entries, want 10", id, len(c.applied[id]))
		}
		for i, d := range c.applied[id] {
			if want := fmt.Sprintf("cmd-%d", i); string(d) != want {
				t.Errorf("node %d entry %d = %q, want %q", id, i, d, want)
			}
		}
	}

	// A follower restarted from its log comes back with every entry and catches up on new ones.
	c.stop(3)
	c.start(3, []uint64{1, 2, 3})
	st, err := c.nodes[3].storage.LastIndex()
	if err != nil || st < 12 { // bootstrap snapshot at 1, the leader's empty entry, 10 commands
		t.Fatalf("restarted node 3 has last index %d (%v), want at least 12", st, err)
	}
	if err := c.nodes[1].rn.Propose([]byte("after-restart")); err != nil {
		t.Fatal(err)
	}
	for range 3 { // heartbeats bring the restarted follower back into the leader's progress
		c.nodes[1].rn.Tick()
		c.settle()
	}
	last := c.applied[3][len(c.applied[3])-1]
	if !bytes.Equal(last, []byte("after-restart")) {
		t.Fatalf("node 3 last applied %q, want after-restart", last)
	}
}

func TestCompactKeepsConfigurationAndDropsLog(t *testing.T) {
	c := newCluster(t, 1)
	if err := c.nodes[1].rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	c.settle()
	for i := range 50 {
		if err := c.nodes[1].rn.Propose([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		c.settle()
	}
	n := c.nodes[1]
	meta, err := n.compactTo(40)
	if err != nil {
		t.Fatal(err)
	}
	if got := meta.GetConfState().GetVoters(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("compaction record voters = %v, want [1]", got)
	}
	if err := c.logs[1].WAL.SaveSnapshot(meta); err != nil {
		t.Fatal(err)
	}
	if first, _ := n.storage.FirstIndex(); first != 41 {
		t.Fatalf("first index after compacting to 40 = %d, want 41", first)
	}
	c.stop(1)
	c.start(1, []uint64{1})
	if first, _ := c.nodes[1].storage.FirstIndex(); first != 41 {
		t.Fatalf("first index after restart = %d, want 41", first)
	}
	if last, _ := c.nodes[1].storage.LastIndex(); last < 52 {
		t.Fatalf("last index after restart = %d, want at least 52", last)
	}
}

// TestCompactPoint: a compaction keeps keepEntries before the durable index, fewer when those
// would hold more than keepBytes, and never goes back past the log's snapshot; logBytes counts
// what the log holds after its snapshot.
func TestCompactPoint(t *testing.T) {
	c := newCluster(t, 1)
	if err := c.nodes[1].rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	c.settle()
	n := c.nodes[1]
	before := n.logBytes
	for range 100 { // entries 3..102, of 1,000 bytes each
		if err := n.rn.Propose(bytes.Repeat([]byte("x"), 1000)); err != nil {
			t.Fatal(err)
		}
		c.settle()
	}
	if got := n.logBytes - before; got != 100*1000 {
		t.Fatalf("logBytes grew by %d for 100 entries of 1,000 bytes, want 100,000", got)
	}
	tests := []struct {
		name                         string
		durable, keepEntries, keepBy uint64
		want                         uint64
	}{
		{"keep entries", 100, 10, 1 << 30, 90},
		{"keep bytes", 100, 50, 20_500, 80}, // 20 entries of 1,000 bytes fit, the 21st does not
		{"nothing durable past keep", 5, 10, 1 << 30, 1},
		{"bytes bound on a short log", 10, 0, 1 << 30, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := n.compactPoint(tt.durable, tt.keepEntries, tt.keepBy)
			if err != nil || got != tt.want {
				t.Fatalf("compactPoint(%d, %d, %d) = %d, %v; want %d", tt.durable, tt.keepEntries, tt.keepBy, got, err, tt.want)
			}
		})
	}
	if _, err := n.compactTo(80); err != nil {
		t.Fatal(err)
	}
	if want := uint64(22 * 1000); n.logBytes != want { // entries 81..102
		t.Fatalf("logBytes after compacting to 80 = %d, want %d", n.logBytes, want)
	}
}

// TestCaughtUpWaitsForTheLeadersOwnEntry: a node restarted with a HardState whose commit index
// lags its log (the HardState that raised it was not yet persisted when the node crashed, though
// the entries were committed and acknowledged) leads at once, but is caught up only once its own
// first entry commits, which commits the rest. Serving at the old commit index would lose the
// acknowledged writes after it to every read.
func TestCaughtUpWaitsForTheLeadersOwnEntry(t *testing.T) {
	c := newCluster(t, 1)
	if err := c.nodes[1].rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	c.settle()
	for i := range 10 {
		if err := c.nodes[1].rn.Propose([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		c.settle()
	}
	last, _ := c.nodes[1].storage.LastIndex()
	hs := c.nodes[1].rn.BasicStatus().HardState
	// The crash: the log holds every entry, the HardState an older commit index.
	if err := c.logs[1].WAL.Save(&raftpb.HardState{Term: hs.Term, Vote: hs.Vote, Commit: proto.Uint64(last - 5)}, nil, true); err != nil {
		t.Fatal(err)
	}
	c.stop(1)
	c.start(1, []uint64{1})
	n := c.nodes[1]
	if n.caughtUp(last) {
		t.Fatal("caught up before it knows a leader")
	}
	if err := n.rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	// Step through Readys one at a time: the node leads before its own entry commits.
	for steps := 0; n.rn.HasReady(); steps++ {
		rd := n.ready()
		if err := persist(c.logs[1].WAL, rd); err != nil {
			t.Fatal(err)
		}
		if _, err := n.advance(rd); err != nil {
			t.Fatal(err)
		}
		st := n.rn.BasicStatus()
		if st.Lead == 1 && st.GetCommit() < last+1 && n.caughtUp(st.GetCommit()) {
			t.Fatalf("caught up at commit %d, a leader whose own entry (%d) has not committed", st.GetCommit(), last+1)
		}
	}
	if st := n.rn.BasicStatus(); st.GetCommit() != last+1 || !n.caughtUp(last+1) {
		t.Fatalf("after its own entry committed (commit %d, want %d): caught up %v", st.GetCommit(), last+1, n.caughtUp(last+1))
	}
	if n.caughtUp(last) {
		t.Fatal("caught up with the catalog behind the commit index")
	}
}
