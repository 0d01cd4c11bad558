package raftactor

import (
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

func TestProposalTableIsBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newProposals(2, time.Second, 1, 100)
	a, ok1 := p.add(actor.NewPID("x", "a"), now)
	b, ok2 := p.add(actor.NewPID("x", "b"), now)
	if !ok1 || !ok2 || a == b {
		t.Fatalf("the first two proposals should get distinct slots: %d %v %d %v", a, ok1, b, ok2)
	}
	if _, ok := p.add(actor.NewPID("x", "c"), now); ok {
		t.Fatal("a third proposal got a slot in a table of two")
	}
	// Committing one frees its slot and names its caller by index.
	data, err := messages.EncodeEntry(a, &messages.Command{Kind: messages.CommandKind_DELETE})
	if err != nil {
		t.Fatal(err)
	}
	callers := p.committed([]*raftpb.Entry{{Index: proto.Uint64(7), Data: data}, {Index: proto.Uint64(8)}})
	if len(callers) != 1 || callers[7].GetId() != "a" {
		t.Fatalf("committed callers = %v, want index 7 → a", callers)
	}
	if _, ok := p.add(actor.NewPID("x", "d"), now); !ok {
		t.Fatal("a freed slot was not reusable")
	}
}

// TestConfigCheck: settings raft cannot run with are refused before anything opens, with the
// setting named; KeepEntries at or above CompactAfter made Term() return ErrCompacted, which
// panics raft.
func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name string
		give Config
		want string // "" for a valid configuration
	}{
		{"defaults", Config{NodeID: 1}, ""},
		{"no node id", Config{}, "NodeID"},
		{"keep as many as compact", Config{NodeID: 1, CompactAfter: 100, KeepEntries: 100}, "KeepEntries (100) must be below CompactAfter (100)"},
		{"keep more than compact", Config{NodeID: 1, CompactAfter: 10, KeepEntries: 5000}, "KeepEntries"},
		{"keep fewer than compact", Config{NodeID: 1, CompactAfter: 10, KeepEntries: 9}, ""},
		{"election no longer than heartbeat", Config{NodeID: 1, ElectionTicks: 1, HeartbeatTicks: 1}, "ElectionTicks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Check()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Check() = %v, want %q", err, tt.want)
			}
		})
	}
}
