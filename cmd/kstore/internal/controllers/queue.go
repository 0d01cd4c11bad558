package controllers

import (
	"time"
)

// Backoff of a key whose reconcile failed with an error worth retrying (Conflict, Unavailable,
// Timeout): the first wait, doubled on each further failure up to the most. 10 ms is about one
// commit of a write on a healthy node, so a Conflict (the cache is one write behind) is retried
// once the informer has caught up; 1 s caps the wait of a key behind an unavailable store, so
// the controllers resume within a second of the store coming back.
const (
	firstBackoff = 10 * time.Millisecond
	maxBackoff   = time.Second
)

// queue is a controller's workqueue, as client-go's: a set of dirty keys waiting in FIFO order,
// the keys being reconciled, and the keys waiting for a retry. It is a pure data structure: no
// goroutine, no clock (callers pass now), not safe for concurrent use. The controller actor
// owns one and is its only user.
//
// Invariants: a key is at most once in order and is in order iff it is dirty and not
// processing; a key dirtied while processing stays out of order until Done, and is then
// reconciled again. So at most one reconcile per key is ever in flight, and none is lost.
//
// Bounds: dirty, processing, waiting and failures each hold at most one entry per key, and
// every key names one object of the controller's informers (or an owner such an object
// names), so each is bounded by the number of objects the informers hold.
type queue struct {
	order      []objectKey             // dirty keys not processing, oldest first
	dirty      map[objectKey]struct{}  // keys to reconcile (again)
	processing map[objectKey]struct{}  // keys handed out by Next and not yet Done
	waiting    map[objectKey]time.Time // keys to add when their time comes (AddAfter)
	failures   map[objectKey]int       // consecutive failures, for the backoff
}

func newQueue() *queue {
	return &queue{
		dirty:      map[objectKey]struct{}{},
		processing: map[objectKey]struct{}{},
		waiting:    map[objectKey]time.Time{},
		failures:   map[objectKey]int{},
	}
}

// Add marks k dirty. A key dirty already is not added twice; a key processing is reconciled
// again after its Done. A pending retry of k is dropped: k is due now.
func (q *queue) Add(k objectKey) {
	delete(q.waiting, k)
	if _, ok := q.dirty[k]; ok {
		return
	}
	q.dirty[k] = struct{}{}
	if _, ok := q.processing[k]; ok {
		return
	}
	q.order = append(q.order, k)
}

// AddAfter adds k once d has passed after now (at once when d <= 0). Of two retries of one
// key, the earlier stands.
func (q *queue) AddAfter(k objectKey, d time.Duration, now time.Time) {
	if d <= 0 {
		q.Add(k)
		return
	}
	at := now.Add(d)
	if prev, ok := q.waiting[k]; ok && !at.Before(prev) {
		return
	}
	q.waiting[k] = at
}

// Due adds every waiting key whose time has come by now.
func (q *queue) Due(now time.Time) {
	for k, at := range q.waiting {
		if !at.After(now) {
			q.Add(k) // deletes k from waiting
		}
	}
}

// NextDue is the earliest time a waiting key comes due; false when none waits.
func (q *queue) NextDue() (time.Time, bool) {
	var first time.Time
	found := false
	for _, at := range q.waiting {
		if !found || at.Before(first) {
			first, found = at, true
		}
	}
	return first, found
}

// Next hands out the oldest dirty key that is not processing, and marks it processing; false
// when there is none.
func (q *queue) Next() (objectKey, bool) {
	var zero objectKey
	if len(q.order) == 0 {
		return zero, false
	}
	k := q.order[0]
	q.order[0] = zero // let the backing array forget it
	q.order = q.order[1:]
	if len(q.order) == 0 {
		q.order = nil // reuse no ever-growing backing array
	}
	delete(q.dirty, k)
	q.processing[k] = struct{}{}
	return k, true
}

// Done ends the processing of k, handed out by Next. A key dirtied meanwhile goes back in line.
func (q *queue) Done(k objectKey) {
	if _, ok := q.processing[k]; !ok {
		return
	}
	delete(q.processing, k)
	if _, ok := q.dirty[k]; ok {
		q.order = append(q.order, k)
	}
}

// Backoff counts a failure of k and returns how long to wait before the retry: firstBackoff
// doubled for each failure before it, at most maxBackoff.
func (q *queue) Backoff(k objectKey) time.Duration {
	n := q.failures[k]
	q.failures[k] = n + 1
	d := firstBackoff
	for ; n > 0 && d < maxBackoff; n-- {
		d *= 2
	}
	return min(d, maxBackoff)
}

// Forget clears the failures of k: its next failure waits firstBackoff again.
func (q *queue) Forget(k objectKey) { delete(q.failures, k) }

// Idle reports whether the queue holds nothing: no dirty, processing or waiting key.
func (q *queue) Idle() bool {
	return len(q.dirty) == 0 && len(q.processing) == 0 && len(q.waiting) == 0
}
