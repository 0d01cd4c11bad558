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
// is sent share it, so a thousand concurrent reads cost one round of heartbeats; raft may drop
// a request silently (no leader yet, leadership changing), so one that has not come back within
// retryAfter is sent again under a new context.
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
	waiters   int                     // queued, in flight and confirmed
}

type readWaiter struct {
	id       uint64
	replyTo  *actor.PID
	deadline time.Time
	index    uint64 // confirmed read index
}

type readRequest struct {
	sent    time.Time
	waiters []readWaiter
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
	r.queued = append(r.queued, readWaiter{id: id, replyTo: replyTo, deadline: now.Add(r.timeout)})
	return true
}

// send hands raft one ReadIndex request for every queued barrier.
func (r *readIndex) send(rn *raft.RawNode, now time.Time) {
	if len(r.queued) == 0 {
		return
	}
	r.next++
	ctx := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), r.epoch), r.next)
	r.inflight[r.next] = &readRequest{sent: now, waiters: r.queued}
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
			continue // answered after a retry under another context
		}
		delete(r.inflight, c)
		for _, w := range req.waiters {
			w.index = rs.Index
			r.confirmed = append(r.confirmed, w)
		}
	}
	r.applied(ctx, applied)
}

// applied answers the confirmed barriers the applier has reached.
func (r *readIndex) applied(ctx actor.SenderContext, applied uint64) {
	if len(r.confirmed) == 0 {
		return
	}
	kept := r.confirmed[:0]
	for _, w := range r.confirmed {
		if w.index <= applied {
			r.waiters--
			ctx.Send(w.replyTo, &ReadIndexed{ID: w.id, Index: w.index})
			continue
		}
		kept = append(kept, w)
	}
	clear(r.confirmed[len(kept):])
	r.confirmed = kept
}

// tick fails the barriers past their deadline and queues again those whose request has been
// out for retryAfter, for the next send.
func (r *readIndex) tick(ctx actor.SenderContext, now time.Time) {
	for c, req := range r.inflight {
		if now.Sub(req.sent) < r.retryAfter {
			continue
		}
		delete(r.inflight, c)
		r.queued = append(r.queued, req.waiters...)
	}
	kept := r.queued[:0]
	for _, w := range r.queued {
		if now.After(w.deadline) {
			r.waiters--
			ctx.Send(w.replyTo, &ReadIndexed{ID: w.id, Status: &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
				Message: fmt.Sprintf("no leader confirmed this member's view of the log within %v (no leader, or no quorum reachable): nothing was read; retry on another member, or read with consistency serializable to read this member's possibly stale state", r.timeout)}})
			continue
		}
		kept = append(kept, w)
	}
	r.queued = kept
	keptC := r.confirmed[:0]
	for _, w := range r.confirmed {
		if now.After(w.deadline) {
			r.waiters--
			ctx.Send(w.replyTo, &ReadIndexed{ID: w.id, Status: &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
				Message: fmt.Sprintf("this member has not applied the log up to the leader's commit index %d within %v (it lags behind the leader): nothing was read; retry on another member", w.index, r.timeout)}})
			continue
		}
		keptC = append(keptC, w)
	}
	r.confirmed = keptC
}

// failAll answers every barrier with status.
func (r *readIndex) failAll(ctx actor.SenderContext, status *messages.Status) {
	for _, req := range r.inflight {
		r.queued = append(r.queued, req.waiters...)
	}
	clear(r.inflight)
	r.queued = append(r.queued, r.confirmed...)
	r.confirmed = nil
	for _, w := range r.queued {
		ctx.Send(w.replyTo, &ReadIndexed{ID: w.id, Status: status})
	}
	r.queued, r.waiters = nil, 0
}
