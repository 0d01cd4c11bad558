package raftactor

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/kstore/kstore/messages"
)

// proposals is the bounded table of proposals waiting to commit, keyed by proposal id. The id
// travels in the entry (messages.EncodeEntry), so a committed entry finds its caller without the
// command being decoded here.
type proposals struct {
	max     int
	timeout time.Duration
	next    uint64 // seeded from the clock: ids of a restarted node do not repeat old ones
	waiting map[uint64]waiter
}

type waiter struct {
	replyTo  *actor.PID
	deadline time.Time
}

func newProposals(max int, timeout time.Duration, seed uint64) proposals {
	return proposals{max: max, timeout: timeout, next: seed, waiting: make(map[uint64]waiter, max)}
}

// add takes a slot for a caller; false when the table is full.
func (p *proposals) add(replyTo *actor.PID, now time.Time) (uint64, bool) {
	if len(p.waiting) >= p.max {
		return 0, false
	}
	p.next++
	p.waiting[p.next] = waiter{replyTo: replyTo, deadline: now.Add(p.timeout)}
	return p.next, true
}

func (p *proposals) remove(id uint64) { delete(p.waiting, id) }

// committed frees the slots of the entries proposed here and returns their callers by index.
func (p *proposals) committed(entries []*raftpb.Entry) map[uint64]*actor.PID {
	var out map[uint64]*actor.PID
	for _, e := range entries {
		id, ok := messages.EntryProposalID(e.GetData())
		if !ok {
			continue
		}
		w, ok := p.waiting[id]
		if !ok {
			continue
		}
		delete(p.waiting, id)
		if out == nil {
			out = make(map[uint64]*actor.PID)
		}
		out[e.GetIndex()] = w.replyTo
	}
	return out
}

// expire answers the proposals past their deadline with Timeout and frees their slots. Such a
// proposal may still commit later (a new leader may carry it): the outcome is unknown.
func (p *proposals) expire(ctx actor.Context, now time.Time) {
	for id, w := range p.waiting {
		if now.After(w.deadline) {
			delete(p.waiting, id)
			reply(ctx, w.replyTo, &messages.CommandResult{Status: &messages.Status{Reason: messages.StatusReason_TIMEOUT,
				Message: fmt.Sprintf("the write was proposed but not committed within %v: its outcome is unknown; read the object to find out", p.timeout)}})
		}
	}
}

// failAll answers every waiting proposal and empties the table.
func (p *proposals) failAll(ctx actor.Context, reason messages.StatusReason, msg string) {
	for id, w := range p.waiting {
		delete(p.waiting, id)
		reply(ctx, w.replyTo, &messages.CommandResult{Status: &messages.Status{Reason: reason, Message: msg}})
	}
}

// reply sends a result to the caller of a proposal. A command sent without a sender (ctx.Send,
// as any actor may) has no caller: it is carried out and its result goes nowhere.
func reply(ctx actor.SenderContext, to *actor.PID, res *messages.CommandResult) {
	if to != nil {
		ctx.Send(to, res)
	}
}
