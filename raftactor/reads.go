package raftactor

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"

	"github.com/kstore/kstore/messages"
)

// ReadBarrier asks for the index a linearizable read must wait for: the leader's commit index at
// a moment after the barrier was asked, confirmed by a quorum (Raft's ReadIndex). Once this
// node has applied up to that index, a read of its state sees every write acknowledged before
// the barrier was asked, on any member. Sender: the node actor. Reply: ReadIndexed to the
// sender, with the same ID.
type ReadBarrier struct{ ID uint64 }

// ReadIndexed answers a ReadBarrier once the leader confirmed Index and this node's applier has
// applied up to it: a read the applier serves at its latest state from then on is
// linearizable. Or Status (Unavailable: no leader confirmed the read in time, or this member
// lags; nothing was read, retry on another member).
type ReadIndexed struct {
	ID     uint64
	Index  uint64
	Status *messages.Status
}

// readIndex gathers read barriers into ReadIndex requests. All barriers asked before a request
// is sent share it, so a thousand concurrent reads cost one round of heartbeats. raft may drop
// a request silently (no leader yet, leadership changing), so one that has not come back within
// retryAfter is sent again under a new context; the earlier context stays valid, since its
// answer too is a commit index confirmed after its barriers were asked. Dropping it instead
// starves every read on links slower than retryAfter: on a round trip of 400 ms each answer
// came back after its request had been replaced, and no linearizable read ever completed.
type readIndex struct {
	max        int
	timeout    time.Duration // a barrier not confirmed within it fails
	retryAfter time.Duration
	// A request's context is epoch and a counter: a leader's late answer to a request of an
	// earlier boot, whose counter started at 1 too, matches no request of this one.
	epoch     uint64
	next      uint64                  // the counter of the next request
	queued    []readWaiter            // not yet in a request
	inflight  map[uint64]*readRequest // by context
	confirmed []readWaiter            // confirmed at index, waiting for the applier to reach it
	waiters   int                     // barriers not answered yet
}

// A barrier's state, shared by the copies of it a retry puts in several requests, so that it
// is confirmed once and answered once.
const (
	barrierPending   uint8 = iota // no answer yet
	barrierConfirmed              // in confirmed, waiting for the applier
	barrierAnswered               // replied to
)

type readWaiter struct {
	id       uint64
	replyTo  *actor.PID
	deadline time.Time
	index    uint64 // confirmed read index
	state    *uint8
}

type readRequest struct {
	sent    time.Time
	waiters []readWaiter
	retried bool // sent again under a newer context; still answered, never retried again
}

func newReadIndex(max int, timeout, retryAfter time.Duration, epoch uint64) readIndex {
	return readIndex{max: max, timeout: timeout, retryAfter: retryAfter, epoch: epoch, inflight: map[uint64]*readRequest{}}
}

// add queues a barrier; false when the table is full.
func (r *readIndex) add(id uint64, replyTo *actor.PID, now time.Time) bool {
	if r.waiters >= r.max {
		return false
	}
	r.waiters++
	r.queued = append(r.queued, readWaiter{id: id, replyTo: replyTo, deadline: now.Add(r.timeout), state: new(uint8)})
	return true
}

// send hands raft one ReadIndex request for every queued barrier still pending.
func (r *readIndex) send(rn *raft.RawNode, now time.Time) {
	pending := r.queued[:0]
	for _, w := range r.queued {
		if *w.state == barrierPending {
			pending = append(pending, w)
		}
	}
	clear(r.queued[len(pending):])
	if len(pending) == 0 {
		r.queued = pending
		return
	}
	r.next++
	ctx := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), r.epoch), r.next)
	r.inflight[r.next] = &readRequest{sent: now, waiters: pending}
	r.queued = nil
	rn.ReadIndex(ctx)
}

// ready confirms the barriers of the read states of a Ready, and answers those the applier has
// reached.
func (r *readIndex) ready(ctx actor.SenderContext, states []raft.ReadState, applied uint64) {
	for _, rs := range states {
		if len(rs.RequestCtx) != 16 || binary.BigEndian.Uint64(rs.RequestCtx) != r.epoch {
			continue // not this boot's
		}
		c := binary.BigEndian.Uint64(rs.RequestCtx[8:])
		req, ok := r.inflight[c]
		if !ok {
			continue // every barrier of it was answered already
		}
		delete(r.inflight, c)
		for _, w := range req.waiters {
			if *w.state != barrierPending {
				continue // confirmed by another context of a retry, or failed
			}
			*w.state = barrierConfirmed
			w.index = rs.Index
			r.confirmed = append(r.confirmed, w)
		}
	}
	r.applied(ctx, applied)
}

// answer replies to a barrier once.
func (r *readIndex) answer(ctx actor.SenderContext, w readWaiter, msg *ReadIndexed) {
	*w.state = barrierAnswered
	r.waiters--
	ctx.Send(w.replyTo, msg)
}

// applied answers the confirmed barriers the applier has reached.
func (r *readIndex) applied(ctx actor.SenderContext, applied uint64) {
	if len(r.confirmed) == 0 {
		return
	}
	kept := r.confirmed[:0]
	for _, w := range r.confirmed {
		if w.index <= applied {
			r.answer(ctx, w, &ReadIndexed{ID: w.id, Index: w.index})
			continue
		}
		kept = append(kept, w)
	}
	clear(r.confirmed[len(kept):])
	r.confirmed = kept
}

// tick fails the barriers past their deadline, forgets requests none of whose barriers is
// pending, and queues again those out for retryAfter, for the next send.
func (r *readIndex) tick(ctx actor.SenderContext, now time.Time) {
	for c, req := range r.inflight {
		pending := false
		for _, w := range req.waiters {
			if *w.state == barrierPending && now.After(w.deadline) {
				r.answer(ctx, w, r.unconfirmed(w))
			}
			pending = pending || *w.state == barrierPending
		}
		switch {
		case !pending:
			delete(r.inflight, c) // a late answer to it has nothing left to confirm
		case !req.retried && now.Sub(req.sent) >= r.retryAfter:
			req.retried = true
			r.queued = append(r.queued, req.waiters...)
		}
	}
	kept := r.queued[:0]
	for _, w := range r.queued {
		switch {
		case *w.state != barrierPending:
			// confirmed or answered through another request
		case now.After(w.deadline):
			r.answer(ctx, w, r.unconfirmed(w))
		default:
			kept = append(kept, w)
		}
	}
	clear(r.queued[len(kept):])
	r.queued = kept
	keptC := r.confirmed[:0]
	for _, w := range r.confirmed {
		if now.After(w.deadline) {
			r.answer(ctx, w, &ReadIndexed{ID: w.id, Status: &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
				Message: fmt.Sprintf("this member has not applied the log up to the leader's commit index %d within %v (it lags behind the leader): nothing was read; retry on another member", w.index, r.timeout)}})
			continue
		}
		keptC = append(keptC, w)
	}
	clear(r.confirmed[len(keptC):])
	r.confirmed = keptC
}

// unconfirmed is the answer to a barrier no leader confirmed in time.
func (r *readIndex) unconfirmed(w readWaiter) *ReadIndexed {
	return &ReadIndexed{ID: w.id, Status: &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
		Message: fmt.Sprintf("no leader confirmed this member's view of the log within %v (no leader, or no quorum reachable): nothing was read; retry on another member, or read with consistency serializable to read this member's possibly stale state", r.timeout)}}
}

// failAll answers every barrier not answered yet with status.
func (r *readIndex) failAll(ctx actor.SenderContext, status *messages.Status) {
	var all []readWaiter
	for _, req := range r.inflight {
		all = append(all, req.waiters...)
	}
	all = append(append(all, r.queued...), r.confirmed...)
	for _, w := range all {
		if *w.state != barrierAnswered {
			r.answer(ctx, w, &ReadIndexed{ID: w.id, Status: status})
		}
	}
	clear(r.inflight)
	r.queued, r.confirmed, r.waiters = nil, nil, 0
}
