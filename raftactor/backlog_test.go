package raftactor

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/kstore/kstore/messages"
)

// TestBacklogRefusesProposalsNotRaft: with the catalog's backlog full, committed entries wait in
// the raft actor, which still takes Readys (so raft's messages would still flow) and answers
// status, while new proposals are refused with Unavailable; once the catalog applies, the
// waiting entries reach it in order and proposals are taken again.
func TestBacklogRefusesProposalsNotRaft(t *testing.T) {
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	committed := make(chan *Committed, 100)
	applier := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if c, ok := ctx.Message().(*Committed); ok {
			committed <- c // and no Applied: the catalog is stuck
		}
	}))
	results := make(chan any, 1000)
	caller := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if r, ok := ctx.Message().(*messages.CommandResult); ok {
			results <- r
		}
	}))
	l, err := OpenLog(t.TempDir(), []uint64{1}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	props, err := New(Config{NodeID: 1, Log: l, Members: map[uint64]string{1: "nonhost"}, Applier: applier, MaxApplyBacklog: 2})
	if err != nil {
		t.Fatal(err)
	}
	pid := sys.Root.Spawn(props)
	defer func() { _ = sys.Root.StopFuture(pid).Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for { // it leads once its first Ready is persisted
		res, _ := sys.Root.RequestFuture(pid, &messages.StatusRequest{}, time.Second).Result()
		if st, ok := res.(*messages.NodeStatus); ok && st.GetLeader() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the single voter did not lead within 10s")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	var last uint64
	var refused *messages.CommandResult
	for n := 0; refused == nil; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("no proposal refused within 10s with a stuck catalog (%d sent, last handed %d)", n, last)
		}
		sys.Root.Send(pid, &Propose{Command: &messages.Command{Kind: messages.CommandKind_DELETE, Reason: messages.Reason_OPERATOR}, ReplyTo: caller})
		// Drain what reached the catalog, and any refusal.
	drain:
		for {
			select {
			case c := <-committed:
				last = c.Entries[len(c.Entries)-1].GetIndex()
			case m := <-results:
				if r, ok := m.(*messages.CommandResult); ok && r.GetStatus().GetReason() == messages.StatusReason_UNAVAILABLE {
					refused = r
				}
			case <-time.After(20 * time.Millisecond):
				break drain
			}
		}
	}
	res, err := sys.Root.RequestFuture(pid, &messages.StatusRequest{}, 5*time.Second).Result()
	st, ok := res.(*messages.NodeStatus)
	if err != nil || !ok || st.GetCommit() <= last {
		t.Fatalf("status with a stuck catalog: %v %v; want a commit index past %d, the last handed (refused: %v)", res, err, last, refused)
	}
	// The catalog catches up: the held entries come, in order, and proposals are taken again.
	sys.Root.Send(pid, &Applied{Index: last})
	for last < st.GetCommit() {
		select {
		case c := <-committed:
			if first := c.Entries[0].GetIndex(); first != last+1 {
				t.Fatalf("a batch from %d after %d: out of order", first, last)
			}
			last = c.Entries[len(c.Entries)-1].GetIndex()
			sys.Root.Send(pid, &Applied{Index: last})
		case <-time.After(5 * time.Second):
			t.Fatalf("the held entries did not reach the catalog (up to %d of %d)", last, st.GetCommit())
		}
	}
	sys.Root.Send(pid, &Propose{Command: &messages.Command{Kind: messages.CommandKind_DELETE, Reason: messages.Reason_OPERATOR}, ReplyTo: caller})
	select {
	case c := <-committed:
		if c.Entries[0].GetIndex() != last+1 {
			t.Fatalf("the next batch starts at %d, want %d", c.Entries[0].GetIndex(), last+1)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a proposal after the catalog caught up did not commit")
	}
}
