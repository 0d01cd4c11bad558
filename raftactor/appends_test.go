package raftactor

import (
	"slices"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestAppendsFirst: a leader whose term and vote are on disk sends its appends and heartbeats
// before it persists the Ready; everything else, and everything of a node not leading, waits.
func TestAppendsFirst(t *testing.T) {
	msg := func(typ raftpb.MessageType) *raftpb.Message {
		return &raftpb.Message{Type: typ.Enum(), To: proto.Uint64(2), From: proto.Uint64(1)}
	}
	hs := func(term, vote, commit uint64) *raftpb.HardState {
		return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
	}
	app, beat := msg(raftpb.MessageType_MsgApp), msg(raftpb.MessageType_MsgHeartbeat)
	resp, vote := msg(raftpb.MessageType_MsgAppResp), msg(raftpb.MessageType_MsgVoteResp)
	timeout := msg(raftpb.MessageType_MsgTimeoutNow)
	all := []*raftpb.Message{app, resp, beat, vote, timeout}
	on := hs(2, 1, 10)
	tests := []struct {
		name      string
		leader    bool
		hardState *raftpb.HardState
		now       []*raftpb.Message
	}{
		{"leader, no new HardState", true, nil, []*raftpb.Message{app, beat}},
		{"leader, only the commit index moved", true, hs(2, 1, 12), []*raftpb.Message{app, beat}},
		{"leader, new term", true, hs(3, 1, 10), nil},
		{"leader, new vote", true, hs(2, 3, 10), nil},
		{"follower", false, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := raft.Ready{HardState: tt.hardState, Messages: all}
			now, wait := appendsFirst(rd, tt.leader, on)
			if !slices.Equal(now, tt.now) {
				t.Errorf("sent before the fsync: %v, want %v", types(now), types(tt.now))
			}
			if len(now)+len(wait) != len(all) {
				t.Errorf("%d sent and %d waiting, want the %d messages split", len(now), len(wait), len(all))
			}
			for _, m := range wait {
				if slices.Contains(now, m) {
					t.Errorf("%v both sent and waiting", m.GetType())
				}
			}
		})
	}

	// A real leader's Ready with a proposal: its appends to both followers go first.
	c := newCluster(t, 1, 2, 3)
	if err := c.nodes[1].rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if err := c.nodes[1].rn.Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	rd := c.nodes[1].ready()
	persisted, _, _ := c.nodes[1].storage.InitialState()
	now, wait := appendsFirst(rd, c.nodes[1].rn.BasicStatus().RaftState == raft.StateLeader, persisted)
	if len(rd.Entries) != 1 || len(now) != 2 || len(wait) != 0 {
		t.Errorf("leader's Ready with %d entries: %v first, %v waiting; want the appends to 2 and 3 first", len(rd.Entries), types(now), types(wait))
	}
	var to []uint64
	for _, m := range now {
		if m.GetType() != raftpb.MessageType_MsgApp || len(m.GetEntries()) != 1 || string(m.GetEntries()[0].GetData()) != "x" {
			t.Errorf("sent first to %d: %v with %d entries, want a MsgApp of the proposal", m.GetTo(), m.GetType(), len(m.GetEntries()))
		}
		to = append(to, m.GetTo())
	}
	if slices.Sort(to); !slices.Equal(to, []uint64{2, 3}) {
		t.Errorf("appends sent first to %v, want [2 3]", to)
	}
}

func types(ms []*raftpb.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.GetType().String())
	}
	return out
}
