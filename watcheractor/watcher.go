package watcheractor

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/messages"
)

// stats asks a watcher for its state (tests); the answer is a statsResult.
type stats struct{}

type statsResult struct {
	phase    phase
	bufBytes int
	buffered int
}

// phase is where a watcher is in its stream.
type phase int

const (
	initial phase = iota // sending the initial state, a page at a time
	joining              // asked the hub to go live
	live                 // gets every push from the hub
	history              // catching up from the catalog's change log
	lagging              // dropped its buffer; waits for credits to catch up
)

// watcher serves one subscriber. It owns the subscriber's buffer, credits and sequence numbers.
// It reads the initial state and old history from the catalog a bounded page at a time, only as
// the subscriber takes events; live, it gets the hub's pushes, and when its subscriber falls so
// far behind that its buffer would pass MaxBufferBytes it drops the buffer, leaves the live set
// and later catches up from history, so a slow subscriber costs nobody else anything.
type watcher struct {
	cfg          Config
	req          *messages.WatchRequest
	f            *filter
	sub          *actor.PID
	hub, catalog *actor.PID
	stream       *actor.PID // the subscriber's process's stream, when it has a mux

	phase   phase
	waiting bool // a reply from the hub or the catalog is due

	// The stream. pos: every matching change up to pos is buffered or sent. sentPos: the
	// subscriber has every matching change up to sentPos (where a catch-up resumes from).
	// upTo: the node's applied index as the hub last told it.
	pos, sentPos, upTo uint64
	buf                []*messages.WatchEvent
	bufBytes           int
	seq                uint64
	granted            uint64 // cumulative credits from the subscriber
	sent               uint64 // events sent

	// The initial state: its revision, the last key read, and whether every page was read.
	initRV    uint64
	initAfter *messages.ResourceKey
	initDone  bool
	until     time.Time // a start revision ahead of the node must be reached by then
	ended     bool      // the ERROR was sent
	began     time.Time // when the watch began, until it went live (metrics only)
}

func (w *watcher) Receive(ctx actor.Context) {
	if w.ended {
		// The ERROR is on its way; wait for the subscriber to cancel (it then has it), or for
		// a while, and stop.
		switch ctx.Message().(type) {
		case *messages.WatchCancel, *actor.Terminated, *actor.ReceiveTimeout:
			ctx.Stop(ctx.Self())
		}
		return
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if w.stream == nil {
			// Behind a stream, the stream watches the subscriber's process (its mux) for every
			// watch of it, and the hub stops the watchers when it goes.
			ctx.Watch(w.sub)
		}
		w.began = w.cfg.Metrics.startTime()
		w.granted = w.req.GetCredits()
		w.send(ctx, nil) // sequence 1: the subscriber learns who its watcher is
		if rv := w.req.GetResourceVersion(); rv == 0 || w.req.GetInitialEvents() {
			w.phase, w.initRV, w.initAfter = initial, rv, w.req.GetInitialAfter()
		} else {
			w.pos, w.sentPos = rv, rv
			w.until = time.Now().Add(w.cfg.ReadWait)
			ctx.SetReceiveTimeout(w.cfg.ReadWait)
			w.joinHub(ctx)
		}
	case *catalogactor.SnapshotResult:
		w.waiting = false
		if m.Err != nil {
			w.fail(ctx, m.Err)
			return
		}
		w.initRV = m.RV
		for i, k := range m.Keys {
			w.initAfter = k
			c := prepare(catalogactor.Change{Type: catalogactor.Added, Key: k, Object: m.Objects[i], ResourceVersion: m.RV})
			if ev := w.f.event(c); ev != nil {
				w.add(ev)
			}
		}
		if !m.More {
			w.initDone = true
			w.add(bookmarkEvent(w.req, m.RV, true))
			w.pos = m.RV
		}
	case joined:
		w.waiting = false
		w.phase = live
		w.cfg.Metrics.live(&w.began)
		w.onPush(ctx, &m.push)
	case tooFar:
		w.waiting = false
		w.phase = history
		w.cfg.Metrics.caughtUp()
	case rewind:
		if w.phase == live {
			// From what the hub had pushed, not from a routed watcher's lagging position: the
			// read would otherwise go back over history that concerns it not at all, or past the
			// compacted revision into a Gone it did not earn.
			w.pos = max(w.pos, m.from)
			w.phase = history
			w.cfg.Metrics.caughtUp()
		}
	case *catalogactor.HistoryResult:
		w.waiting = false
		if m.Err != nil {
			w.fail(ctx, m.Err)
			return
		}
		all := true
		for i, ch := range m.Changes {
			w.take(prepare(ch))
			if w.bufBytes > w.cfg.MaxBufferBytes && i+1 < len(m.Changes) {
				all = false // the rest is read again from pos once the buffer drains
				break
			}
		}
		if all && !m.More {
			w.pos = max(w.pos, m.UpTo)
			w.phase = joining // caught up with the catalog: the ring has the rest
		}
	case *push:
		if w.phase == live {
			w.onPush(ctx, m)
		}
	case bookmark:
		// Every interval, even at an unchanged revision: an idle stream's keepalive, which lets
		// the subscriber notice a lost message.
		if w.phase == live && m.rv >= w.pos {
			w.add(bookmarkEvent(w.req, m.rv, false))
		}
	case *messages.WatchCredit:
		w.granted = max(w.granted, m.GetGranted())
	case *messages.WatchCancel:
		ctx.Stop(ctx.Self())
		return
	case *actor.Terminated:
		// The subscriber is gone (process killed, node gone): nobody to serve.
		ctx.Stop(ctx.Self())
		return
	case *actor.ReceiveTimeout:
		w.checkDeadline(ctx)
	case stats:
		ctx.Respond(statsResult{phase: w.phase, bufBytes: w.bufBytes, buffered: len(w.buf)})
		return
	}
	w.step(ctx)
}

// step sends what credits allow, then moves the stream on: the next page or history batch once
// the buffer is empty, or a catch-up once a lagging subscriber takes events again.
func (w *watcher) step(ctx actor.Context) {
	w.deliver(ctx)
	if w.waiting || len(w.buf) > 0 {
		return
	}
	if w.phase == initial && w.initDone || w.phase == joining {
		// Going live needs no credits: live events wait in the buffer.
		w.sentPos = w.pos
		w.joinHub(ctx)
		return
	}
	if w.granted <= w.sent {
		return // reading more waits until the subscriber takes events again
	}
	switch w.phase {
	case initial:
		w.waiting = true
		ctx.Request(w.catalog, &catalogactor.Snapshot{AllTypes: w.f.allTypes, Group: w.f.group, Version: w.f.version,
			Kind: w.f.kind, Namespace: w.f.namespace, After: w.initAfter, Limit: w.cfg.HistoryBatch, MaxBytes: w.cfg.MaxBufferBytes, RV: w.initRV})
	case history:
		w.waiting = true
		ctx.Request(w.catalog, &catalogactor.History{From: w.pos, Limit: w.cfg.HistoryBatch, MaxBytes: w.cfg.MaxBufferBytes})
	case lagging:
		w.joinHub(ctx)
	}
}

func (w *watcher) joinHub(ctx actor.Context) {
	w.phase, w.waiting = joining, true
	ctx.Request(w.hub, join{from: w.pos, bookmarkEvery: w.cfg.bookmarkEvery(w.req), route: w.f.route(), waitFor: w.waitingFor()})
}

// waitingFor is the start revision the watcher waits for the node to reach, or 0.
func (w *watcher) waitingFor() uint64 {
	if w.until.IsZero() {
		return 0
	}
	return w.req.GetResourceVersion()
}

func (w *watcher) onPush(ctx actor.Context, p *push) {
	for _, c := range p.changes {
		w.take(c)
		if w.bufBytes > w.cfg.MaxBufferBytes {
			w.deliver(ctx)
			if w.bufBytes > w.cfg.MaxBufferBytes {
				w.overflow(ctx)
				return
			}
		}
	}
	w.pos = max(w.pos, p.upTo)
	w.upTo = max(w.upTo, p.upTo)
	w.checkDeadline(ctx)
}

// overflow: the subscriber takes less than the node writes. Drop what it has not taken and
// leave the live set; when it asks again, resume after what it has. The bound holds within a
// push too: the rest of the push is not even looked at.
func (w *watcher) overflow(ctx actor.Context) {
	w.buf, w.bufBytes = nil, 0
	w.pos = w.sentPos
	w.phase = lagging
	ctx.Send(w.hub, leave{})
}

// take buffers what the watch sees of a change after pos.
func (w *watcher) take(c *change) {
	if c.ResourceVersion <= w.pos {
		return
	}
	w.pos = c.ResourceVersion
	if ev := w.f.event(c); ev != nil {
		w.add(ev)
	}
}

func (w *watcher) add(ev *messages.WatchEvent) {
	w.buf = append(w.buf, ev)
	w.bufBytes += len(ev.GetObject()) + eventOverhead
}

func (w *watcher) deliver(ctx actor.Context) {
	for len(w.buf) > 0 && w.granted > w.sent {
		n := int(min(uint64(len(w.buf)), w.granted-w.sent, uint64(w.cfg.MaxBatch)))
		batch := w.buf[:n:n]
		w.send(ctx, batch)
		for _, ev := range batch {
			w.bufBytes -= len(ev.GetObject()) + eventOverhead
		}
		w.sent += uint64(n)
		w.cfg.Metrics.sent(n)
		w.sentPos = batch[n-1].GetResourceVersion()
		w.buf = w.buf[n:]
	}
	if len(w.buf) == 0 {
		w.buf = nil // let the backing array go
	}
}

func (w *watcher) send(ctx actor.Context, events []*messages.WatchEvent) {
	w.seq++
	if w.stream != nil {
		d := deliver{watchID: w.req.GetWatchId(), seq: w.seq, events: events, watcher: ctx.Self().GetId()}
		for _, ev := range events {
			d.bytes += len(ev.GetObject()) + eventOverhead
		}
		ctx.Send(w.stream, d)
		return
	}
	ctx.Request(w.sub, &messages.WatchEvents{WatchId: w.req.GetWatchId(), Seq: w.seq, Events: events})
}

// checkDeadline ends a watch whose start revision the node has not reached in time.
func (w *watcher) checkDeadline(ctx actor.Context) {
	if w.until.IsZero() {
		return
	}
	rv := w.req.GetResourceVersion()
	if w.upTo >= rv {
		w.until = time.Time{}
		ctx.SetReceiveTimeout(0)
		return
	}
	if left := time.Until(w.until); left > 0 {
		ctx.SetReceiveTimeout(left + time.Millisecond)
		return
	}
	w.fail(ctx, &messages.Error{Reason: messages.StatusReason_TIMEOUT, ResourceVersion: w.upTo,
		Message: fmt.Sprintf("resourceVersion %d is ahead of this node's applied resourceVersion %d and was not reached within %v: watch again, or without a resourceVersion", rv, w.upTo, w.cfg.ReadWait)})
}

// fail ends the watch with an ERROR event, sent whatever the credits. The watcher stays until
// the subscriber cancels: stopping at once could overtake the ERROR, and the subscriber would
// see a watcher gone without a word and watch again.
func (w *watcher) fail(ctx actor.Context, err error) {
	w.cfg.Metrics.ended(err)
	w.send(ctx, []*messages.WatchEvent{errorEvent(err)})
	w.buf, w.ended = nil, true
	ctx.Send(w.hub, leave{})
	ctx.SetReceiveTimeout(endedWait)
}

// endedWait is how long a watcher that sent its ERROR waits for the subscriber's cancel.
const endedWait = 10 * time.Second

func errorEvent(err error) *messages.WatchEvent {
	st := messages.StatusOf(err)
	return &messages.WatchEvent{Type: messages.EventType_EVENT_ERROR, Status: st, ResourceVersion: st.GetResourceVersion(),
		Object: messages.StatusObjectJSON(st)}
}

func bookmarkEvent(req *messages.WatchRequest, rv uint64, initialEnd bool) *messages.WatchEvent {
	apiVersion := req.GetVersion()
	if req.GetGroup() != "" {
		apiVersion = req.GetGroup() + "/" + apiVersion
	}
	obj := `{`
	if req.GetKind() != "" {
		obj += fmt.Sprintf(`"apiVersion":%q,"kind":%q,`, apiVersion, req.GetKind())
	}
	obj += `"metadata":{`
	if initialEnd {
		// As the Kubernetes API server marks the end of a watch's initial events.
		obj += `"annotations":{"k8s.io/initial-events-end":"true"},`
	}
	obj += fmt.Sprintf(`"resourceVersion":"%d"}}`, rv)
	return &messages.WatchEvent{Type: messages.EventType_EVENT_BOOKMARK, Object: []byte(obj), ResourceVersion: rv,
		Key: &messages.ResourceKey{Group: req.GetGroup(), Version: req.GetVersion(), Kind: req.GetKind()}}
}
