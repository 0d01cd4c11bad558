package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

// WatchOptions tune a Client's watch. Zero fields take the defaults.
type WatchOptions struct {
	// Window is how many events may be on their way to the caller, and so the credits the
	// subscriber grants its watcher: the caller's pace is what paces the node. Default 256.
	Window int
	// GiveUpAfter, when set, is the watch's retry budget: it ends the watch once it could not be
	// resumed for that long (every endpoint down or refusing), with Unavailable. By default a
	// watch retries a broken stream for as long as it lives, as client-go's informers do.
	// Either way it ends with Timeout once every endpoint in turn answered that its
	// resourceVersion is ahead of it.
	GiveUpAfter time.Duration
	// Batches delivers the events on Watch.Batches, a run of them (what one message from the
	// node brought) at each receive, instead of one at a time on Watch.Events: a caller taking
	// thousands of events a second, over many watches, then pays one channel operation, and
	// one wakeup, a run instead of one an event. The window still counts events.
	Batches bool
}

// defaultWatchWindow is client-go's watch channel (100) and then some. The events channel is
// made at this capacity for every watch, so it is what an idle watch costs the client: at 1,000
// slots, making the channels of 100,000 watches was half of Watch's CPU and the loader, not the
// node, set how fast the benchmark opened them (16,647 and 19,903 watches/s, against 24,308 and
// 25,035 at 256); the fan-out run at full speed was the same at both (write ratio 0.29-0.30
// against 0.28-0.30).
const defaultWatchWindow = 256

// batchSlots is how many runs a batched watch's channel holds.
const batchSlots = 16

// Watch is a watch that resumes by itself: when its stream breaks (a lost message, a node that
// died, stopped or did not answer, an endpoint that went away) or its node ends it with
// Unavailable or Timeout, it watches again from the last resourceVersion it delivered (an event
// or a bookmark), on the next endpoint, so the caller sees every change once and in order. After
// each full round of endpoints that failed it waits a backoff. It ends only when the caller stops
// it or resuming is impossible (Gone: the resourceVersion was compacted away, re-list; Invalid;
// Timeout: every endpoint answered that the resourceVersion is ahead of it; the retry budget of
// WatchOptions.GiveUpAfter spent) or its context ends; Err then says why.
type Watch struct {
	events  chan *messages.WatchEvent   // filled by the subscriber within its credits
	batches chan []*messages.WatchEvent // instead of events, for WatchOptions.Batches
	done    chan struct{}               // closed with events and batches
	root    *actor.RootContext
	pid     *actor.PID  // the subscriber actor; nil for a watch that ended before it began
	stopCtx func() bool // stops the watch's context.AfterFunc; called by the subscriber's finish
	mu      sync.Mutex
	err     error
}

// Events delivers the events in order; it is closed when the watch ends. What the caller has
// not taken yet is what stops the node from sending more: the caller's pace paces the watch.
// The events are shared with the process's other watches that see them: read them, do not
// change them. A watch started with WatchOptions.Batches delivers on Batches instead, and its
// Events only closes when it ends.
func (w *Watch) Events() <-chan *messages.WatchEvent { return w.events }

// Batches delivers the events of a watch started with WatchOptions.Batches, in order, in runs
// of one or more; it is closed when the watch ends. Each run is the caller's own slice (the
// events in it are shared, as Events' are). For any other watch it only closes when the watch
// ends.
func (w *Watch) Batches() <-chan []*messages.WatchEvent { return w.batches }

// Err is why the watch ended: nil while it runs and after Stop. When the watch's context
// ended it: context.Canceled for a cancelled context (errors.Is(err, context.Canceled)); for a
// deadline, a Timeout *messages.Error saying that the caller's deadline passed (not that a node
// was slow), with the resourceVersion to resume from, that also matches
// errors.Is(err, context.DeadlineExceeded).
func (w *Watch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Done is closed when the watch has ended and Events is closed.
func (w *Watch) Done() <-chan struct{} { return w.done }

// Stop ends the watch: the node's watcher is cancelled, and Events is closed. It may be called
// after the watch ended, and more than once.
func (w *Watch) Stop() {
	if w.pid != nil {
		_ = w.root.StopFuture(w.pid).Wait()
	}
	<-w.done
}

var watchSeq atomic.Uint64

// Watch starts a watch. req selects what to watch and from where (see messages.WatchRequest);
// its watch_id, credits and mux are the client's to set. The watch runs until ctx ends, Stop is
// called, or it cannot go on (see Watch); ending ctx cancels the node's watcher as Stop does,
// and Err then says how ctx ended (see Watch.Err). A client that cannot reach its endpoints at
// all (an actor system without remote, see NewClient) returns a watch that has already ended
// with Unavailable.
func (c *Client) Watch(ctx context.Context, req *messages.WatchRequest, opts WatchOptions) *Watch {
	if opts.Window <= 0 {
		opts.Window = defaultWatchWindow
	}
	w := &Watch{done: make(chan struct{}), root: c.root}
	if opts.Batches {
		// A few runs: when the caller is further behind, the subscriber joins what comes next
		// into one run that waits for room (within the window), so a slow caller gets longer
		// runs, and a watch's channel buffers 16 slices (384 bytes) where an unbatched one buffers
		// 256 pointers (2 KiB) at the default window.
		w.events, w.batches = make(chan *messages.WatchEvent), make(chan []*messages.WatchEvent, min(opts.Window, batchSlots))
	} else {
		w.events, w.batches = make(chan *messages.WatchEvent, opts.Window), make(chan []*messages.WatchEvent)
	}
	if err := c.unreachable(); err != nil {
		return w.ended(err)
	}
	if ctx.Err() != nil {
		rv := req.GetResourceVersion()
		if req.GetInitialEvents() {
			rv = 0 // the caller wanted the initial state, and has none of it
		}
		return w.ended(contextEnded(ctx, rv))
	}
	s := &subscriber{
		client: c, watch: w, window: uint64(opts.Window), giveUpAfter: opts.GiveUpAfter, batched: opts.Batches,
		req: proto.Clone(req).(*messages.WatchRequest), endpoint: int(c.current.Load()),
		bookmarks: req.GetBookmarks(), ctx: ctx,
	}
	// Bookmarks always: an idle stream then still carries a sequence number now and then, so a
	// lost message is noticed within a bookmark interval.
	s.req.Bookmarks = true
	s.lastRV = req.GetResourceVersion()
	s.initial = req.GetResourceVersion() == 0 || req.GetInitialEvents()
	if req.GetInitialEvents() {
		s.initRV, s.initAfter = req.GetResourceVersion(), req.GetInitialAfter()
	}
	s.mux = c.watchMux()
	// The subscriber runs on its sender's goroutine (the mux's, mostly): its Receive never
	// blocks, and thousands of watches in one process then start no goroutine a message.
	w.pid = c.root.Spawn(actor.PropsFromProducer(func() actor.Actor { return s }, actor.WithDispatcher(subscriberDispatcher)))
	// No goroutine waits on ctx: AfterFunc starts one only once ctx ends, and it only tells the
	// subscriber. The subscriber's finish stops the AfterFunc when the watch ends first; should
	// it finish before stopCtx is set here (both under w.mu), this stops it instead.
	stop := context.AfterFunc(ctx, func() { c.root.Send(w.pid, contextDone{}) })
	w.mu.Lock()
	w.stopCtx = stop
	finished := isClosed(w.done)
	w.mu.Unlock()
	if finished {
		stop()
	}
	return w
}

// ended finishes a watch that never began: its Events is closed and Err is err.
func (w *Watch) ended(err error) *Watch {
	w.err = err
	close(w.events)
	close(w.batches)
	close(w.done)
	return w
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// contextEnded is the error of a watch or request whose caller's context ended: ctx.Err() when
// it was cancelled; for a deadline, a Timeout that says whose deadline it was, carrying the
// resourceVersion to resume from (rv, 0 when unknown), and matching context.DeadlineExceeded.
func contextEnded(ctx context.Context, rv uint64) error {
	err := ctx.Err()
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	e := &messages.Error{Reason: messages.StatusReason_TIMEOUT, ResourceVersion: rv,
		Message: "the caller's context deadline passed, which ended the watch (kstore did not time out)"}
	if rv != 0 {
		e.Message += fmt.Sprintf("; it had delivered the changes up to resourceVersion %d: watch from %d to go on", rv, rv)
	}
	return fmt.Errorf("%w: %w", e, err)
}

// Messages to the subscriber from itself and its mux.
type (
	refill       struct{} // the caller may have taken events: grant more
	contextDone  struct{} // the watch's context ended
	resumeNow    struct{ attempt int }
	watcherEnded struct{ watchID string }
	// inspect asks what the client holds of the watch's events (answer: held), for tests.
	inspect struct{}
	held    struct {
		queued  uint64 // in the channel, not taken by the caller
		pending int    // waiting for room in a batched watch's channel
	}
	// resolved is a cluster client's lookup of the store identity for an attempt.
	resolved struct {
		attempt int
		pid     *actor.PID
		err     error
		req     *messages.WatchRequest
	}
)

// subscriberDispatcher runs a mailbox on its sender's goroutine, a few hundred messages a turn.
var subscriberDispatcher = actor.NewSynchronizedDispatcher(300)

// subscriber is the client's end of a watch: it receives the watcher's events, checks their
// sequence, grants credits, and resumes the watch when the stream breaks.
type subscriber struct {
	client      *Client
	mux         *actor.PID
	watch       *Watch // its events channel never blocks the subscriber: the node sends no more than granted
	window      uint64
	giveUpAfter time.Duration
	req         *messages.WatchRequest
	bookmarks   bool // the caller wants periodic bookmarks
	batched     bool // WatchOptions.Batches: events go to watch.batches in runs
	queued      runQueue
	// A batched watch's events its channel had no room for, in order (within the window), and
	// where the watch stood before the first of them.
	pending        []*messages.WatchEvent
	pendingRV      uint64
	pendingInitial bool
	endpoint       int
	target         *actor.PID      // where this attempt's WatchRequest went (nil while a cluster lookup runs)
	ctx            context.Context // the caller's: its end ends the watch (contextDone)

	attempt  int
	watchID  string     // this attempt's; "" between attempts, when stragglers are ignored
	watcher  *actor.PID // this attempt's watcher, once it said hello (sequence 1)
	helloAt  time.Time  // when it did
	seq      uint64
	received uint64 // events delivered or dropped (taken at once), every attempt
	base     uint64 // received when this attempt began
	granted  uint64 // credits granted to this attempt's watcher
	starving bool   // waiting for the caller to take events before granting more
	finished bool

	// The retry streak: attempts that failed since the watch last made progress (an event, or a
	// watcher that served for as long as a request may take), when the first of them failed,
	// the backoff of the next full round, and the endpoints that answered Timeout (the resume
	// point is ahead of them) since.
	failed      int
	brokenSince time.Time
	backoff     time.Duration
	ahead       map[int]bool

	// Where to resume from.
	lastRV    uint64
	initial   bool // the initial state is still coming
	initRV    uint64
	initAfter *messages.ResourceKey
}

func (s *subscriber) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.start(ctx)
	case *messages.WatchEvents:
		if m.GetWatchId() != s.watchID || s.finished {
			return // a stream given up on
		}
		if m.GetSeq() != s.seq+1 {
			s.broken(ctx, fmt.Sprintf("lost watch messages %d to %d", s.seq+1, m.GetSeq()-1))
			return
		}
		s.seq = m.GetSeq()
		if m.GetSeq() == 1 && ctx.Sender() != nil {
			// Hello. Not yet progress: the watcher may still end the watch (Timeout, a
			// resourceVersion ahead of its node); see broken.
			s.watcher, s.helloAt = ctx.Sender(), time.Now()
			ctx.Watch(s.watcher)
			ctx.SetReceiveTimeout(0)
		}
		var run []*messages.WatchEvent // for a batched watch
		rvBefore, initialBefore := s.lastRV, s.initial
		for _, ev := range m.GetEvents() {
			if ev.GetType() == messages.EventType_EVENT_ERROR {
				s.deliver(ctx, run, rvBefore, initialBefore)
				s.onError(ctx, ev.GetStatus())
				return
			}
			s.track(ev)
			s.progressed()
			s.received++
			if ev.GetType() == messages.EventType_EVENT_BOOKMARK && !s.bookmarks && !isInitialEnd(ev) {
				// Asked for by the client itself, to notice a lost message on an idle watch.
				continue
			}
			if !s.batched {
				s.watch.events <- ev
				continue
			}
			if run == nil {
				run = make([]*messages.WatchEvent, 0, len(m.GetEvents()))
			}
			run = append(run, ev)
		}
		s.deliver(ctx, run, rvBefore, initialBefore)
		s.grant(ctx)
	case refill:
		s.starving = false
		s.flush(ctx)
		s.grant(ctx)
	case inspect:
		ctx.Respond(held{queued: s.queued.left(len(s.watch.batches)) + uint64(len(s.watch.events)), pending: len(s.pending)})
	case contextDone:
		if !s.finished {
			s.cancelWatcher(ctx)
			s.finish(contextEnded(s.ctx, s.deliveredRV()))
			ctx.Stop(ctx.Self())
		}
	case *actor.Terminated:
		if s.watcher != nil && m.GetWho().Equal(s.watcher) {
			// Terminated overtakes user messages; the watcher's last events (an ERROR saying
			// why it ended, changes that move the resume point) may still be queued, here or in
			// the mux. Decide once they are read: the mux relays this behind them.
			ctx.Send(s.mux, muxRelay{to: ctx.Self(), msg: watcherEnded{s.watchID}})
		}
	case watcherEnded:
		if m.watchID == s.watchID && !s.finished {
			s.broken(ctx, "the node's watcher stopped")
		}
	case *actor.DeadLetterResponse:
		// The WatchRequest reached no node actor (a local one stopped, a remote address that
		// refuses connections). The only request a subscriber sends is its WatchRequest; one of
		// an earlier attempt names another target (a local dead letter names none).
		if s.awaitingHello() && s.target != nil && (m.GetTarget() == nil || m.GetTarget().Equal(s.target)) {
			s.broken(ctx, "no kstore node at "+s.endpointPID().GetAddress())
		}
	case *actor.ReceiveTimeout:
		if s.awaitingHello() {
			s.broken(ctx, "the node at "+s.endpointPID().GetAddress()+" did not answer the watch in time")
		}
	case resumeNow:
		if m.attempt == s.attempt && !s.finished {
			s.start(ctx)
		}
	case resolved:
		if m.attempt != s.attempt || s.finished || !s.awaitingHello() {
			return
		}
		if m.err != nil {
			s.retry(ctx, m.err.Error(), messages.StatusReason_UNAVAILABLE)
			return
		}
		s.target = m.pid
		ctx.Request(s.target, m.req)
	case *actor.Stopping:
		s.cancelWatcher(ctx)
		s.finish(nil)
	}
}

// track records where the stream is, for a resume.
func (s *subscriber) track(ev *messages.WatchEvent) {
	if s.initial {
		s.initRV = ev.GetResourceVersion()
		if ev.GetType() == messages.EventType_EVENT_BOOKMARK {
			s.initial = false
			s.lastRV = ev.GetResourceVersion()
		} else {
			s.initAfter = ev.GetKey()
		}
		return
	}
	s.lastRV = ev.GetResourceVersion()
}

func (s *subscriber) start(ctx actor.Context) {
	s.attempt++
	s.watchID = fmt.Sprintf("w%d-%d", watchSeq.Add(1), s.attempt)
	s.seq, s.watcher = 0, nil
	s.base = s.received
	s.granted = s.consumed() + s.window - s.base
	req := proto.Clone(s.req).(*messages.WatchRequest)
	req.WatchId, req.Credits = s.watchID, s.granted
	// Events come through the process's mux; registering first means it knows the watch before
	// the node's first message for it can arrive.
	ctx.Send(s.mux, muxRegister{watchID: s.watchID, sub: ctx.Self()})
	req.Mux = s.mux.GetId()
	switch {
	case s.initial && s.initRV != 0:
		// Continue the initial state where it broke off, at the same revision.
		req.ResourceVersion, req.InitialEvents, req.InitialAfter = s.initRV, true, s.initAfter
	case !s.initial:
		req.ResourceVersion, req.InitialEvents, req.InitialAfter = s.lastRV, false, nil
	}
	s.helloAt = time.Time{}
	// A silent endpoint costs a slice of the timeout, as a read does, before the next is tried.
	ctx.SetReceiveTimeout(s.client.attemptTimeout())
	if st := s.client.store; st != nil {
		if s.target = st.cached(); s.target == nil {
			// The lookup waits on the network: off the subscriber's goroutine, back as a message.
			attempt, self, root, wait := s.attempt, ctx.Self(), ctx.ActorSystem().Root, s.client.attemptTimeout()
			go func() {
				pid, err := st.resolve(wait)
				root.Send(self, resolved{attempt: attempt, pid: pid, err: err, req: req})
			}()
			return
		}
	} else {
		s.target = s.client.endpoints[s.endpoint%len(s.client.endpoints)]
	}
	ctx.Request(s.target, req)
}

// endpointPID is the node actor (or the store identity's activation) of the current attempt.
func (s *subscriber) endpointPID() *actor.PID { return s.target }

// awaitingHello reports whether an attempt was sent and its watcher has not said hello yet.
func (s *subscriber) awaitingHello() bool { return s.watchID != "" && s.watcher == nil && !s.finished }

// resumeRV is the resourceVersion the next attempt starts from.
func (s *subscriber) resumeRV() uint64 {
	if s.initial {
		return s.initRV
	}
	return s.lastRV
}

// deliveredRV is the resourceVersion the caller has every change up to: 0 while the initial
// state is still coming (watching again must start over).
func (s *subscriber) deliveredRV() uint64 {
	if len(s.pending) > 0 {
		// Events the caller has not been handed, which it loses when the watch ends here.
		if s.pendingInitial {
			return 0
		}
		return s.pendingRV
	}
	if s.initial {
		return 0
	}
	return s.lastRV
}

// progressed ends the retry streak: the watch is being served.
func (s *subscriber) progressed() {
	s.failed, s.brokenSince, s.backoff, s.ahead = 0, time.Time{}, 0, nil
}

// deliver hands a batched watch's caller the run of events one message brought, behind those
// its channel had no room for. rvBefore and initialBefore are where the watch stood before the
// message: what the caller has if the run must wait.
func (s *subscriber) deliver(ctx actor.Context, run []*messages.WatchEvent, rvBefore uint64, initialBefore bool) {
	if len(run) > 0 {
		if len(s.pending) == 0 {
			s.pending, s.pendingRV, s.pendingInitial = run, rvBefore, initialBefore
		} else {
			s.pending = append(s.pending, run...)
		}
	}
	s.flush(ctx)
}

// flush puts the waiting events in the channel as one run, if it has room, and otherwise has
// the subscriber woken to try again: no message from the node need come to move them.
func (s *subscriber) flush(ctx actor.Context) {
	if len(s.pending) == 0 || s.finished { // a finished watch's channel is closed
		return
	}
	select {
	case s.watch.batches <- s.pending:
		s.queued.pushed(len(s.pending))
		s.pending = nil
	default:
		s.wake(ctx)
	}
}

// wake asks the mux to send the subscriber refill a little later, once.
func (s *subscriber) wake(ctx actor.Context) {
	if !s.starving {
		s.starving = true
		ctx.Send(s.mux, muxWake{sub: ctx.Self()})
	}
}

// consumed is how many events the caller has taken (or were dropped for it), every attempt.
func (s *subscriber) consumed() uint64 {
	if s.batched {
		return s.received - s.queued.left(len(s.watch.batches)) - uint64(len(s.pending))
	}
	return s.received - uint64(len(s.watch.events))
}

// runQueue counts the events of the runs a batched watch's channel holds. The caller takes
// runs from the front, so when the channel holds n runs they are the last n pushed.
type runQueue struct {
	sizes  []int // of the runs pushed and maybe not taken, oldest first
	events uint64
}

func (q *runQueue) pushed(n int) {
	q.sizes = append(q.sizes, n)
	q.events += uint64(n)
}

// left is how many events the runs still in the channel hold, given that it holds n runs.
func (q *runQueue) left(n int) uint64 {
	taken := len(q.sizes) - n
	for _, size := range q.sizes[:max(taken, 0)] {
		q.events -= uint64(size)
	}
	if taken > 0 {
		q.sizes = append(q.sizes[:0], q.sizes[taken:]...)
	}
	return q.events
}

// grant tops the watcher's credits up to what the caller has room for. When it cannot yet, the
// subscriber asks its mux to wake it a little later: nothing else would once the credits run out.
func (s *subscriber) grant(ctx actor.Context) {
	if s.watcher == nil || s.finished {
		return
	}
	want := s.consumed() + s.window - s.base
	if want >= s.granted+max(s.window/4, 1) {
		s.granted = want
		ctx.Send(s.watcher, &messages.WatchCredit{WatchId: s.watchID, Granted: want})
	}
	if outstanding := s.granted - (s.received - s.base); outstanding < s.window/2 {
		s.wake(ctx)
	}
}

func (s *subscriber) onError(ctx actor.Context, st *messages.Status) {
	switch st.GetReason() {
	case messages.StatusReason_UNAVAILABLE, messages.StatusReason_INTERNAL:
		// Nothing was lost: the node could not serve the watch (starting, stopping, no leader,
		// full) and another may.
		s.broken(ctx, st.GetMessage())
	case messages.StatusReason_TIMEOUT:
		s.behind(ctx, st)
	default: // Gone, Invalid, ...: watching again would fail the same way
		s.cancelWatcher(ctx) // the watcher waits for this to stop
		s.finish(st.Err())
		ctx.Stop(ctx.Self())
	}
}

// behind handles a Timeout: the watch's resourceVersion is ahead of the node, which waited for
// it in vain. A member a little behind the one that served the watch so far says so, and another
// may have it: try the next. Once every endpoint has said so since the last progress, nobody has
// it (it came from another cluster, or a node that lost its data), and the watch ends: it would
// otherwise retry without a word.
func (s *subscriber) behind(ctx actor.Context, st *messages.Status) {
	n := s.client.attempts()
	if s.ahead == nil {
		s.ahead = map[int]bool{}
	}
	s.ahead[s.endpoint%n] = true
	if len(s.ahead) == n {
		err := st.Err()
		if n > 1 {
			err = &messages.Error{Reason: messages.StatusReason_TIMEOUT, ResourceVersion: st.GetResourceVersion(),
				Message: fmt.Sprintf("every kstore node at %s answered that the watch's resourceVersion %d is ahead of it; the last: %s",
					s.client.where(), s.resumeRV(), st.GetMessage())}
		}
		s.cancelWatcher(ctx)
		s.finish(err)
		ctx.Stop(ctx.Self())
		return
	}
	s.retry(ctx, st.GetMessage(), messages.StatusReason_TIMEOUT)
}

// broken gives up on the current stream (it broke, or its node refused the watch) and resumes
// on the next endpoint. A watcher that served for as long as a request may take counts as
// progress: the streak of failures starts again with this one.
func (s *subscriber) broken(ctx actor.Context, why string) {
	if !s.helloAt.IsZero() && time.Since(s.helloAt) >= s.client.timeout {
		s.progressed()
	}
	s.client.unreached(s.target) // a cluster client looks the store identity up again
	s.retry(ctx, why, messages.StatusReason_UNAVAILABLE)
}

// Backoff of a watch between full rounds of endpoints that failed: the first wait, and the most.
const (
	firstWatchBackoff = 50 * time.Millisecond
	maxWatchBackoff   = 2 * time.Second
)

// retry cancels the current attempt and starts the next on the next endpoint: at once within a
// round of endpoints, after a backoff once every endpoint failed in turn. It ends the watch
// instead once the retry budget (GiveUpAfter) is spent, with reason.
func (s *subscriber) retry(ctx actor.Context, why string, reason messages.StatusReason) {
	s.cancelWatcher(ctx)
	s.watchID = "" // ignore the broken stream's stragglers
	ctx.SetReceiveTimeout(0)
	if s.brokenSince.IsZero() {
		s.brokenSince = time.Now()
	}
	if s.giveUpAfter > 0 && time.Since(s.brokenSince) > s.giveUpAfter {
		s.finish(messages.Errorf(reason, "the watch could not be resumed for %v (the last attempt: %s): check that a kstore node is up at %s",
			s.giveUpAfter, why, s.client.where()))
		ctx.Stop(ctx.Self())
		return
	}
	s.failed++
	s.endpoint++
	if s.failed%s.client.attempts() != 0 {
		ctx.Send(ctx.Self(), resumeNow{attempt: s.attempt})
		return
	}
	s.backoff = min(max(2*s.backoff, firstWatchBackoff), maxWatchBackoff)
	attempt, self, root := s.attempt, ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(s.backoff, func() { root.Send(self, resumeNow{attempt: attempt}) })
}

func (s *subscriber) cancelWatcher(ctx actor.Context) {
	if s.watchID != "" {
		ctx.Send(s.mux, muxUnregister{watchID: s.watchID})
	}
	if s.watcher != nil {
		ctx.Unwatch(s.watcher)
		ctx.Send(s.watcher, &messages.WatchCancel{WatchId: s.watchID})
		s.watcher = nil
	}
}

func (s *subscriber) finish(err error) {
	if s.finished {
		return
	}
	s.finished = true
	s.pending = nil // never handed over; a resume point given out (deliveredRV) stands before them
	w := s.watch
	w.mu.Lock()
	if err != nil && w.err == nil {
		w.err = err
	}
	stop := w.stopCtx
	close(w.events)
	close(w.batches)
	close(w.done)
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func endpointList(pids []*actor.PID) string {
	var addrs []string
	for _, p := range pids {
		addrs = append(addrs, p.GetAddress())
	}
	return strings.Join(addrs, ",")
}

func isInitialEnd(ev *messages.WatchEvent) bool {
	return strings.Contains(string(ev.GetObject()), `"k8s.io/initial-events-end":"true"`)
}
