package raftactor

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"

	"github.com/kstore/kstore/messages"
)

// probe is an actor that hands every message it gets to a channel.
func probe(t *testing.T) (*actor.ActorSystem, *actor.PID, chan any) {
	t.Helper()
	sys := actor.NewActorSystem()
	got := make(chan any, 64)
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped:
		default:
			got <- ctx.Message()
		}
	}))
	t.Cleanup(sys.Shutdown)
	return sys, pid, got
}

func receive(t *testing.T, got chan any) any {
	t.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

// step runs one node's Readys: its new entries go through place, its committed ones through
// committed and overwritten, as the actor does; its read states through the read table.
func (c *cluster) stepTracked(id uint64, p *proposals, r *readIndex, ctx actor.SenderContext) {
	n := c.nodes[id]
	for n.rn.HasReady() {
		rd := n.ready()
		if p != nil {
			p.place(rd.Entries)
		}
		if r != nil && len(rd.ReadStates) > 0 {
			r.ready(ctx, rd.ReadStates, n.rn.BasicStatus().GetCommit())
		}
		if len(rd.CommittedEntries) > 0 && p != nil {
			for idx, pid := range p.committed(rd.CommittedEntries) {
				reply(ctx, pid, &messages.CommandResult{ResourceVersion: idx})
			}
			p.overwritten(ctx, rd.CommittedEntries[len(rd.CommittedEntries)-1].GetIndex())
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

// TestOverwrittenProposalIsUnavailable: a leader cut off with a proposal it appended but could
// not commit learns, once it rejoins, that the new leader committed another entry at that index.
// Its caller hears at once that the write certainly did not happen, instead of a timeout.
func TestOverwrittenProposalIsUnavailable(t *testing.T) {
	sys, caller, got := probe(t)
	c := newCluster(t, 1, 2, 3)
	if err := c.nodes[1].rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	c.settle()
	p := newProposals(8, time.Minute, 1, 42)
	id, _ := p.add(caller, time.Now())
	data, err := messages.EncodeEntry(id, &messages.Command{Kind: messages.CommandKind_DELETE})
	if err != nil {
		t.Fatal(err)
	}
	c.cut[1] = true
	if err := c.nodes[1].rn.Propose(data); err != nil {
		t.Fatal(err)
	}
	c.stepTracked(1, &p, nil, sys.Root)
	w := p.waiting[id.Seq]
	if w == nil || w.index == 0 {
		t.Fatalf("the proposal was not placed at an index: %+v", w)
	}
	// Nodes 2 and 3 stop hearing from node 1, elect one of them, and commit entries past
	// that index. Node 1 runs tracked throughout: its Readys go through the table.
	round := func(tick ...uint64) {
		for _, id := range tick {
			c.nodes[id].rn.Tick()
		}
		for range 3 {
			for id := range c.nodes {
				if id == 1 {
					c.stepTracked(1, &p, nil, sys.Root)
				} else {
					c.stepTracked(id, nil, nil, sys.Root)
				}
			}
		}
	}
	var lead uint64
	for range 100 {
		if lead = c.leader(); lead == 2 || lead == 3 {
			break
		}
		round(2, 3)
	}
	if lead != 2 && lead != 3 {
		t.Fatalf("no new leader among 2 and 3 (leader %d)", lead)
	}
	for range 2 {
		if err := c.nodes[lead].rn.Propose([]byte("other")); err != nil {
			t.Fatal(err)
		}
		round()
	}
	c.cut[1] = false
	for range 30 {
		if len(p.waiting) == 0 {
			break
		}
		round(lead)
	}
	res, ok := receive(t, got).(*messages.CommandResult)
	if !ok || res.GetStatus().GetReason() != messages.StatusReason_UNAVAILABLE {
		t.Fatalf("the caller got %v, want Unavailable (the entry was overwritten)", res)
	}
	if len(p.waiting) != 0 {
		t.Fatalf("%d proposals still wait", len(p.waiting))
	}
}

// TestReadIndexOnFollower: a read barrier asked on a follower is confirmed by the leader at its
// commit index, and answered once the follower has applied up to it; one the leader cannot
// confirm (no quorum) fails with Unavailable by its deadline.
func TestReadIndexOnFollower(t *testing.T) {
	sys, caller, got := probe(t)
	c := newCluster(t, 1, 2, 3)
	if err := c.nodes[1].rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	c.settle()
	for range 5 {
		if err := c.nodes[1].rn.Propose([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c.settle()
	commit := c.nodes[1].rn.BasicStatus().GetCommit()
	now := time.Now()
	r := newReadIndex(4, time.Second, 300*time.Millisecond, 42)
	if !r.add(7, caller, now) {
		t.Fatal("a read barrier was refused by an empty table")
	}
	r.send(c.nodes[3].rn, now)
	for range 5 {
		for id := range c.nodes {
			if id == 3 {
				c.stepTracked(3, nil, &r, sys.Root)
			} else {
				c.stepTracked(id, nil, nil, sys.Root)
			}
		}
	}
	res, ok := receive(t, got).(*ReadIndexed)
	if !ok || res.ID != 7 || res.Status != nil || res.Index < commit {
		t.Fatalf("ReadIndexed = %+v, want id 7 at index >= %d", res, commit)
	}

	// Cut the leader off: nobody confirms, and the barrier fails at its deadline.
	c.cut[1] = true
	r.add(8, caller, now)
	r.send(c.nodes[3].rn, now)
	c.stepTracked(3, nil, &r, sys.Root)
	r.tick(sys.Root, now.Add(2*time.Second))
	res, ok = receive(t, got).(*ReadIndexed)
	if !ok || res.ID != 8 || res.Status.GetReason() != messages.StatusReason_UNAVAILABLE {
		t.Fatalf("ReadIndexed = %+v, want id 8 Unavailable", res)
	}
	if r.waiters != 0 {
		t.Fatalf("%d barriers still counted", r.waiters)
	}
}

// TestReadIndexLateAnswerAfterRetry: on a link slower than the retry interval, the answer to a
// ReadIndex request arrives after the request was sent again under a new context. It still
// confirms the barrier (once): dropping it starved every read on a 400 ms round trip.
func TestReadIndexLateAnswerAfterRetry(t *testing.T) {
	sys, caller, got := probe(t)
	rn := newCluster(t, 1).nodes[1].rn // no leader: raft drops the requests, as a slow link seems to
	ctxOf := func(n uint64) []byte {
		return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 42), n)
	}
	now := time.Now()
	r := newReadIndex(4, 3*time.Second, 300*time.Millisecond, 42)
	r.add(9, caller, now)
	r.send(rn, now) // context 1
	r.tick(sys.Root, now.Add(400*time.Millisecond))
	r.send(rn, now.Add(400*time.Millisecond)) // context 2, for the same barrier
	if len(r.inflight) != 2 {
		t.Fatalf("%d requests in flight after a retry, want the first and the retry", len(r.inflight))
	}

	r.ready(sys.Root, []raft.ReadState{{Index: 5, RequestCtx: ctxOf(1)}}, 5)
	res, ok := receive(t, got).(*ReadIndexed)
	if !ok || res.ID != 9 || res.Status != nil || res.Index != 5 {
		t.Fatalf("ReadIndexed = %+v, want id 9 at index 5 from the first request's late answer", res)
	}
	r.ready(sys.Root, []raft.ReadState{{Index: 6, RequestCtx: ctxOf(2)}}, 6)
	// A marker behind any second answer: barrier 10 fails at its deadline, and replies to one
	// caller arrive in the order they were sent.
	r.add(10, caller, now)
	r.tick(sys.Root, now.Add(10*time.Second))
	if res, _ := receive(t, got).(*ReadIndexed); res == nil || res.ID != 10 {
		t.Fatalf("got %+v, want the marker barrier 10's failure (a second answer to barrier 9?)", res)
	}
	if r.waiters != 0 || len(r.inflight) != 0 || len(r.queued) != 0 {
		t.Fatalf("left behind: %d waiters, %d requests, %d queued", r.waiters, len(r.inflight), len(r.queued))
	}
}
