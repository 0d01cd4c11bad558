package raftactor

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/kstore/kstore/messages"
)

// proposals is the bounded table of proposals waiting to commit, keyed by sequence number. The
// proposal's id (this node, this boot's epoch, the sequence) travels in the entry
// (messages.EncodeEntry), so a committed entry finds its caller without the command being
// decoded here, and an entry another member or an earlier boot proposed never matches.
//
// Each proposal also learns the index raft appended it at (placed, from the Ready that carries
// it). Raft never moves an entry to another index, so once the commit index passes that index
// without the entry among the committed ones, a new leader overwrote it: the write certainly did
// not happen, and its caller is told so at once (Unavailable: safe to retry) instead of waiting
// out the timeout.
type proposals struct {
	max     int
	timeout time.Duration
	self    messages.ProposalID // Node and Epoch of this boot; Seq unused
	next    uint64
	waiting map[uint64]*waiter
	placed  placedHeap // waiting proposals with a known index, lowest index first
	m       *Metrics   // nil: metrics off
}

type waiter struct {
	replyTo  *actor.PID
	deadline time.Time
	index    uint64 // the index raft appended the entry at; 0 until known
}

func newProposals(max int, timeout time.Duration, node, epoch uint64) proposals {
	return proposals{max: max, timeout: timeout, self: messages.ProposalID{Node: node, Epoch: epoch},
		waiting: make(map[uint64]*waiter, max)}
}

// add takes a slot for a caller; false when the table is full.
func (p *proposals) add(replyTo *actor.PID, now time.Time) (messages.ProposalID, bool) {
	if len(p.waiting) >= p.max {
		return messages.ProposalID{}, false
	}
	p.next++
	p.waiting[p.next] = &waiter{replyTo: replyTo, deadline: now.Add(p.timeout)}
	id := p.self
	id.Seq = p.next
	return id, true
}

func (p *proposals) remove(id messages.ProposalID) { delete(p.waiting, id.Seq) }

// mine reports the sequence number of an entry this boot of this node proposed.
func (p *proposals) mine(e *raftpb.Entry) (uint64, bool) {
	id, ok := messages.EntryProposalID(e.GetData())
	if !ok || id.Node != p.self.Node || id.Epoch != p.self.Epoch {
		return 0, false
	}
	return id.Seq, true
}

// place records the index of each of this node's waiting proposals among entries raft is about
// to append (a Ready's Entries).
func (p *proposals) place(entries []*raftpb.Entry) {
	for _, e := range entries {
		seq, ok := p.mine(e)
		if !ok {
			continue
		}
		if w, ok := p.waiting[seq]; ok && w.index == 0 {
			w.index = e.GetIndex()
			heap.Push(&p.placed, placedAt{index: w.index, seq: seq})
		}
	}
}

// committed frees the slots of the entries proposed here and returns their callers by index.
func (p *proposals) committed(entries []*raftpb.Entry) map[uint64]*actor.PID {
	var out map[uint64]*actor.PID
	for _, e := range entries {
		seq, ok := p.mine(e)
		if !ok {
			continue
		}
		w, ok := p.waiting[seq]
		if !ok {
			continue
		}
		delete(p.waiting, seq)
		p.m.proposalCommitted(e.GetIndex(), w.deadline.Add(-p.timeout))
		if out == nil {
			out = make(map[uint64]*actor.PID)
		}
		out[e.GetIndex()] = w.replyTo
	}
	return out
}

// overwritten answers, with Unavailable, the proposals whose index the log has committed with
// another entry: call it after committed has taken the entries up to commit.
func (p *proposals) overwritten(ctx actor.SenderContext, commit uint64) {
	for p.placed.Len() > 0 && p.placed[0].index <= commit {
		at := heap.Pop(&p.placed).(placedAt)
		w, ok := p.waiting[at.seq]
		if !ok || w.index != at.index {
			continue // committed, expired or failed already
		}
		delete(p.waiting, at.seq)
		p.m.proposalFailed()
		reply(ctx, w.replyTo, &messages.CommandResult{Status: &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
			Message: fmt.Sprintf("the write was not committed: leadership changed and the new leader's log holds another entry at index %d, so it certainly did not happen; retry", at.index)}})
	}
}

// snapshotted answers, with Timeout, the proposals placed at or below a snapshot this node
// installs: the entries up to its index came in as state, not one by one, so whether a
// proposal's entry is among them is not known here.
func (p *proposals) snapshotted(ctx actor.SenderContext, index uint64) {
	for p.placed.Len() > 0 && p.placed[0].index <= index {
		at := heap.Pop(&p.placed).(placedAt)
		w, ok := p.waiting[at.seq]
		if !ok || w.index != at.index {
			continue
		}
		delete(p.waiting, at.seq)
		p.m.proposalFailed()
		reply(ctx, w.replyTo, &messages.CommandResult{Status: &messages.Status{Reason: messages.StatusReason_TIMEOUT,
			Message: "leadership changed while the write was in flight and this node caught up by a snapshot: its outcome is unknown; read the object to find out"}})
	}
}

// expire answers the proposals past their deadline with Timeout and frees their slots. Such a
// proposal may still commit later (a new leader may carry it): the outcome is unknown.
func (p *proposals) expire(ctx actor.Context, now time.Time) {
	for seq, w := range p.waiting {
		if now.After(w.deadline) {
			delete(p.waiting, seq)
			p.m.proposalFailed()
			reply(ctx, w.replyTo, &messages.CommandResult{Status: &messages.Status{Reason: messages.StatusReason_TIMEOUT,
				Message: fmt.Sprintf("the write was proposed but not committed within %v (no leader with a quorum confirmed it): its outcome is unknown; read the object to find out", p.timeout)}})
		}
	}
}

// failAll answers every waiting proposal and empties the table.
func (p *proposals) failAll(ctx actor.Context, reason messages.StatusReason, msg string) {
	for seq, w := range p.waiting {
		delete(p.waiting, seq)
		p.m.proposalFailed()
		reply(ctx, w.replyTo, &messages.CommandResult{Status: &messages.Status{Reason: reason, Message: msg}})
	}
	p.placed = p.placed[:0]
}

type placedAt struct{ index, seq uint64 }

// placedHeap is a min-heap by index. Indexes arrive in increasing order while this node leads
// without interruption; a node that loses and regains leadership may place a proposal below
// one placed earlier, hence a heap rather than a queue.
type placedHeap []placedAt

func (h placedHeap) Len() int           { return len(h) }
func (h placedHeap) Less(i, j int) bool { return h[i].index < h[j].index }
func (h placedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *placedHeap) Push(x any)        { *h = append(*h, x.(placedAt)) }
func (h *placedHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// reply sends a result to the caller of a proposal. A command sent without a sender (ctx.Send,
// as any actor may) has no caller: it is carried out and its result goes nowhere.
func reply(ctx actor.SenderContext, to *actor.PID, res any) {
	if to != nil {
		ctx.Send(to, res)
	}
}
