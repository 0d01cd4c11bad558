package raftactor

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

func TestProposalTableIsBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newProposals(2, time.Second, 100)
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
