package watcheractor

import (
	"cmp"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/messages"
)

// Config of a hub and of the watchers it spawns. Zero fields take the defaults.
type Config struct {
	Logger *zap.Logger
	// RingChanges is how many recent changes the hub keeps in memory, so a watcher starting or
	// resuming from a recent resourceVersion joins without reading Badger; RingBytes bounds
	// their objects (each change holds its object and the previous one), whichever comes first.
	RingChanges int
	RingBytes   int
	// MaxWatchers bounds the watches of a node; beyond it a watch gets Unavailable.
	MaxWatchers int
	// MaxBufferBytes bounds the events one watcher holds for its subscriber (the objects'
	// sizes plus a small overhead each). A watcher whose subscriber lets it reach this drops
	// what it holds and later catches up from history.
	MaxBufferBytes int
	// MaxBatch bounds the events of one WatchEvents message.
	MaxBatch int
	// HistoryBatch bounds the changes one catch-up read asks the catalog for, and the objects
	// of one page of an initial state.
	HistoryBatch int
	// BookmarkInterval is how often a watch that asked for bookmarks gets one, unless its
	// request names an interval of its own (WatchRequest.bookmark_interval_ms).
	BookmarkInterval time.Duration
	// ReadWait bounds how long a watch from a resourceVersion ahead of the node waits for it.
	ReadWait time.Duration
	// FlushDelay is how long the hub gathers changes before it pushes them to the live
	// watchers, and a stream its watchers' events before it sends them: what a watch gives of
	// its latency so that each push, and each message, carries many events.
	FlushDelay time.Duration
	// Metrics, when set (NewMetrics), are kept up to date by the hub and its watchers.
	Metrics *Metrics
}

const (
	defaultRingChanges = 16384
	// defaultRingBytes: 16,384 changes of small objects take a few megabytes, of objects near
	// the size limit 48 GiB (a node under a stream of 1.2 MiB objects was killed for memory at
	// 24 GiB); 256 MiB keeps the ring in memory's reach and still spans minutes of writes.
	defaultRingBytes      = 256 << 20
	defaultMaxWatchers    = 100_000
	defaultMaxBufferBytes = 4 << 20
	defaultMaxBatch       = 256
	defaultHistoryBatch   = 512
	// DefaultBookmarkInterval is about the Kubernetes API server's.
	DefaultBookmarkInterval = time.Minute
	// MinBookmarkInterval and MaxBookmarkInterval bound the interval a watch may ask for: below
	// a second the bookmarks would cost more than the events of most watches, and over ten
	// minutes an idle watch would not notice a lost stream for that long.
	MinBookmarkInterval = time.Second
	MaxBookmarkInterval = 10 * time.Minute
	// eventOverhead is what an event costs beside its object, for the buffer bound.
	eventOverhead = 128
	// defaultFlushDelay: at 1,000 writes/s a push then carries about 5 changes, for a few ms
	// of a watch's latency budget of 100 ms.
	defaultFlushDelay = 5 * time.Millisecond
)

func (c *Config) withDefaults() {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	c.RingChanges = cmp.Or(c.RingChanges, defaultRingChanges)
	c.RingBytes = cmp.Or(c.RingBytes, defaultRingBytes)
	c.MaxWatchers = cmp.Or(c.MaxWatchers, defaultMaxWatchers)
	c.MaxBufferBytes = cmp.Or(c.MaxBufferBytes, defaultMaxBufferBytes)
	c.MaxBatch = cmp.Or(c.MaxBatch, defaultMaxBatch)
	c.HistoryBatch = cmp.Or(c.HistoryBatch, defaultHistoryBatch)
	c.BookmarkInterval = cmp.Or(c.BookmarkInterval, DefaultBookmarkInterval)
	c.ReadWait = cmp.Or(c.ReadWait, catalogactor.DefaultReadWait)
	c.FlushDelay = cmp.Or(c.FlushDelay, defaultFlushDelay)
}

// Attach tells the hub where the catalog is. Sender: the node actor, before any watch.
type Attach struct{ Catalog *actor.PID }

// Messages between the hub and its watchers.
type (
	// push carries changes, in order, to every live watcher; upTo is the applied index they
	// complete. Watchers share it and never modify it.
	push struct {
		changes []*change
		upTo    uint64
	}
	// join asks to go live after revision from, with bookmarks every bookmarkEvery or none
	// (0). The hub pushes to the watcher only the batches that may concern its route (the zero
	// route: every batch), or every batch when the watch starts at waitFor, a revision the node
	// has not applied yet: the watcher counts the applied index until then (rare: a start
	// ahead of this node; such a watcher stays broad).
	join struct {
		from          uint64
		bookmarkEvery time.Duration
		route         route
		waitFor       uint64
	}
	// joined answers join: the ring's changes after from, and the watcher is live.
	joined struct{ push }
	// tooFar answers join when the ring no longer holds every change after from.
	tooFar struct{}
	// rewind tells a live watcher that the catalog was replaced by a snapshot: the changes up to
	// the new applied index never came through the ring, so it reads them from the catalog's
	// history, from where it is, and joins again. from is what the hub had pushed: every live
	// watcher has seen every change up to it that concerns it, though a routed one's position may
	// lag there (a batch that did not concern it never reached it).
	rewind struct{ from uint64 }
	// leave takes a watcher off the live set.
	leave struct{}
	// bookmark tells a live watcher that asked for bookmarks the current revision.
	bookmark struct{ rv uint64 }
	// Internal to the hub.
	flush   struct{}
	hubTick struct{ now time.Time }
)

// Hub is the node's watch hub: it spawns and supervises one watcher actor per subscriber, keeps
// the recent changes in a ring, and fans every applied batch out to the live watchers. It owns
// the ring and the live set; the catalog hands it changes without waiting, and a watcher that
// cannot keep up leaves the live set instead of slowing the hub.
type Hub struct {
	cfg     Config
	catalog *actor.PID

	// ring[head:] are the recent changes, oldest first: at most RingChanges, of at most
	// RingBytes; ring[:head] is room that evictions left, reclaimed as the slice is compacted.
	ring      []*change
	head      int
	ringBytes int
	floor     uint64 // every change after floor is in the ring
	upTo      uint64 // the catalog's applied index
	pushed    uint64 // the upTo of the last push: what every live watcher has seen
	known     bool   // upTo and floor are set (the catalog has spoken)

	live map[string]*actor.PID // the live watchers
	// Of them, those that get every push, and the others by route: a batch goes to the watchers
	// of its changes' routes (change.routes), so the cost of a change follows the watchers it
	// may concern, not all watchers. A watcher a batch skips has seen nothing of it it would
	// have kept, so its bookmarks stay true; its position lags, which costs nothing.
	broad   map[string]*actor.PID
	routed  map[route]map[string]*actor.PID
	routeOf map[string]route
	byNode  int                // of the routed watchers, those routed by spec.nodeName
	pushTo  map[route]struct{} // scratch of one flush: the routes pushed to
	// The live watchers that asked for bookmarks, grouped by interval: a tick costs one check per
	// interval in use (at most one per second of the allowed range), not one per watcher.
	bookmarks  map[time.Duration]*bookmarkGroup
	bookmarked map[string]time.Duration // watcher id → its group
	watchers   int                      // watcher children
	pending    []*change                // changes not yet pushed
	dirty      bool                     // a flush is queued

	streams  map[string]*streamRef // by mux address/id: the streams, children too
	streamOf map[string]string     // watcher id → its stream's key
	// released are the streams told to stop after their last watcher, until their Terminated
	// comes: without it that Terminated was counted as a watcher's, and the watcher count (the
	// MaxWatchers bound, kstore_watchers) drifted down by one per released stream.
	released map[string]bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// bookmarkGroup is the live watchers that get a bookmark every one interval.
type bookmarkGroup struct {
	pids map[string]*actor.PID
	next time.Time // when they get the next; zero until the first tick sets it
}

// tickEvery is how often the hub looks for bookmarks due: the finest interval a watch may ask
// for, or the node's own when that is finer (tests).
func (c *Config) tickEvery() time.Duration { return min(c.BookmarkInterval, MinBookmarkInterval) }

// bookmarkEvery is the interval a request gets: its own (whole seconds, validated by
// bookmarkInterval), or the node's.
func (c *Config) bookmarkEvery(req *messages.WatchRequest) time.Duration {
	if !req.GetBookmarks() {
		return 0
	}
	if ms := req.GetBookmarkIntervalMs(); ms != 0 {
		return (time.Duration(ms) * time.Millisecond).Round(time.Second)
	}
	return c.BookmarkInterval
}

// checkBookmarkInterval refuses an interval outside [MinBookmarkInterval, MaxBookmarkInterval].
func checkBookmarkInterval(req *messages.WatchRequest) error {
	ms := req.GetBookmarkIntervalMs()
	if ms == 0 {
		return nil
	}
	if !req.GetBookmarks() {
		return invalid("bookmark_interval_ms %d is set but bookmarks is not: ask for bookmarks too, or leave the interval out", ms)
	}
	if d := time.Duration(ms) * time.Millisecond; ms > uint64(MaxBookmarkInterval/time.Millisecond) || d < MinBookmarkInterval {
		return invalid("bookmark_interval_ms %d is outside [%d, %d]: ask for a bookmark between every second and every ten minutes, or leave it out for the node's interval",
			ms, MinBookmarkInterval.Milliseconds(), MaxBookmarkInterval.Milliseconds())
	}
	return nil
}

func (h *Hub) bookmark(id string, pid *actor.PID, every time.Duration) {
	h.unbookmark(id)
	g := h.bookmarks[every]
	if g == nil {
		g = &bookmarkGroup{pids: map[string]*actor.PID{}}
		h.bookmarks[every] = g
	}
	g.pids[id] = pid
	h.bookmarked[id] = every
}

func (h *Hub) unbookmark(id string) {
	every, ok := h.bookmarked[id]
	if !ok {
		return
	}
	delete(h.bookmarked, id)
	if g := h.bookmarks[every]; g != nil {
		if delete(g.pids, id); len(g.pids) == 0 {
			delete(h.bookmarks, every)
		}
	}
}

// NewHub returns the props of a hub.
func NewHub(cfg Config) *actor.Props {
	cfg.withDefaults()
	return actor.PropsFromProducer(func() actor.Actor {
		return &Hub{cfg: cfg, live: map[string]*actor.PID{}, broad: map[string]*actor.PID{},
			routed: map[route]map[string]*actor.PID{}, routeOf: map[string]route{}, pushTo: map[route]struct{}{},
			bookmarks: map[time.Duration]*bookmarkGroup{}, bookmarked: map[string]time.Duration{},
			streams: map[string]*streamRef{}, streamOf: map[string]string{}, released: map[string]bool{}}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive {
		// A watcher that failed ends its watch; its subscriber resumes from its last revision.
		return actor.StopDirective
	})))
}

func (h *Hub) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		h.stop = make(chan struct{})
		root, self, every := ctx.ActorSystem().Root, ctx.Self(), h.cfg.tickEvery()
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-h.stop:
					return
				case now := <-t.C:
					root.Send(self, hubTick{now: now})
				}
			}
		}()
	case *Attach:
		h.catalog = m.Catalog
	case *catalogactor.Changes:
		h.changes(ctx, m)
	case flush:
		h.dirty = false
		h.pushed = h.upTo
		p := &push{changes: h.pending, upTo: h.upTo}
		h.pending = nil
		h.pushOut(ctx, p)
	case *messages.WatchRequest:
		h.watch(ctx, m)
	case join:
		h.join(ctx, m)
	case leave:
		h.unlive(ctx.Sender().GetId())
	case *actor.Terminated:
		h.terminated(ctx, m.Who)
	case hubTick:
		// At what live watchers have been pushed, not at upTo: changes up to upTo may still
		// wait for their flush, and a bookmark must not overtake them.
		b := bookmark{rv: h.pushed}
		tick := h.cfg.tickEvery()
		for every, g := range h.bookmarks {
			if g.next.IsZero() {
				// The group began within the last tick.
				g.next = m.now.Add(every - tick)
			}
			// Half a tick early counts: ticks jitter, and one a hair early would delay the
			// bookmarks by a whole tick.
			if m.now.Add(tick / 2).Before(g.next) {
				continue
			}
			g.next = m.now.Add(every)
			for _, pid := range g.pids {
				ctx.Send(pid, b)
			}
		}
	case *actor.Stopping:
		if h.stop != nil {
			close(h.stop)
			h.wg.Wait()
		}
	}
}

func (h *Hub) changes(ctx actor.Context, m *catalogactor.Changes) {
	if m.Reset {
		pushed := h.pushed
		clear(h.ring)
		h.ring, h.head, h.ringBytes, h.pending = h.ring[:0], 0, 0, nil
		h.known, h.floor, h.upTo, h.pushed = true, m.Applied, m.Applied, m.Applied
		for id, w := range h.live {
			ctx.Send(w, rewind{from: pushed})
			h.unlive(id)
		}
		return
	}
	if !h.known {
		// The catalog's first word: nothing before its applied index is in the ring.
		h.known, h.floor = true, m.Applied
		if len(m.Changes) > 0 {
			h.floor = m.Changes[0].ResourceVersion - 1
		}
	}
	for _, ch := range m.Changes {
		c := prepare(ch)
		h.ring = append(h.ring, c)
		h.ringBytes += changeBytes(c)
		for len(h.ring)-h.head > h.cfg.RingChanges || h.ringBytes > h.cfg.RingBytes && len(h.ring)-h.head > 1 {
			old := h.ring[h.head]
			h.ring[h.head] = nil
			h.head++
			h.floor, h.ringBytes = old.ResourceVersion, h.ringBytes-changeBytes(old)
		}
		h.pending = append(h.pending, c)
	}
	if h.head > 0 && h.head >= len(h.ring)/2 {
		n := copy(h.ring, h.ring[h.head:])
		clear(h.ring[n:]) // no stale references keep evicted objects alive
		h.ring, h.head = h.ring[:n], 0
	}
	h.upTo = m.Applied
	// Changes below the compacted revision may still be in the ring (after a restart the
	// catalog applies its log again from its durable point), but a watch from there is Gone
	// like any read: a join below it goes to the catalog, which says so.
	h.floor = max(h.floor, m.Compacted)
	if !h.dirty && len(h.live) > 0 {
		// Flush a little later: batches that arrive meanwhile go out together, so the fan-out
		// cost follows the watcher count and the flush rate, not the write rate.
		h.dirty = true
		root, self := ctx.ActorSystem().Root, ctx.Self()
		time.AfterFunc(h.cfg.FlushDelay, func() { root.Send(self, flush{}) })
	} else if len(h.live) == 0 {
		h.pending = nil
		h.pushed = h.upTo
	}
}

// changeBytes is what a change in the ring holds: its object and the previous one.
func changeBytes(c *change) int { return len(c.Object) + len(c.Prev) + eventOverhead }

func (h *Hub) watch(ctx actor.Context, req *messages.WatchRequest) {
	sub := ctx.Sender()
	if sub == nil {
		return // nowhere to say anything
	}
	f, err := newFilter(req)
	if err == nil {
		err = checkBookmarkInterval(req)
	}
	if err == nil && h.watchers >= h.cfg.MaxWatchers {
		err = messages.Errorf(messages.StatusReason_UNAVAILABLE, "this node serves %d watches, its limit: retry later or watch through another node", h.watchers)
	}
	if err == nil && (h.catalog == nil || !h.known) {
		err = messages.Errorf(messages.StatusReason_UNAVAILABLE, "the node is still starting: retry shortly")
	}
	if err != nil {
		ctx.Send(sub, &messages.WatchEvents{WatchId: req.GetWatchId(), Seq: 1, Events: []*messages.WatchEvent{errorEvent(err)}})
		return
	}
	cfg := h.cfg
	var stream *actor.PID
	var key string
	if req.GetMux() != "" {
		stream, key = h.stream(ctx, actor.NewPID(sub.GetAddress(), req.GetMux()))
	}
	// Watchers run on the goroutine of whoever sends them a message (the hub, mostly): their
	// Receive never blocks, and a fan-out to thousands of them then starts no goroutine each.
	w := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &watcher{cfg: cfg, req: req, f: f, sub: sub, hub: ctx.Self(), catalog: h.catalog, stream: stream}
	}, actor.WithDispatcher(watcherDispatcher)))
	h.watchers++
	h.cfg.Metrics.watchers(h.watchers)
	if stream != nil {
		h.streamOf[w.GetId()] = key
		h.streams[key].watchers[w.GetId()] = w
	}
}

// watcherDispatcher runs a mailbox on its sender's goroutine, a few hundred messages at a turn.
var watcherDispatcher = actor.NewSynchronizedDispatcher(300)

type streamRef struct {
	pid      *actor.PID
	watchers map[string]*actor.PID // by id
}

func streamKey(mux *actor.PID) string { return mux.GetAddress() + "/" + mux.GetId() }

// stream returns the stream to a mux and its key, spawning it on the mux's first watch.
func (h *Hub) stream(ctx actor.Context, mux *actor.PID) (*actor.PID, string) {
	key := streamKey(mux)
	if s, ok := h.streams[key]; ok {
		return s.pid, key
	}
	flushWait := h.cfg.FlushDelay
	pid := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return &stream{mux: mux, flushWait: flushWait} }))
	h.streams[key] = &streamRef{pid: pid, watchers: map[string]*actor.PID{}}
	h.streamOf[pid.GetId()] = key
	return pid, key
}

// terminated forgets a child: a watcher (and its stream, when it was the stream's last) or a
// stream whose mux died.
func (h *Hub) terminated(ctx actor.Context, who *actor.PID) {
	id := who.GetId()
	if h.released[id] {
		delete(h.released, id) // a stream released after its last watcher
		return
	}
	key, hasStream := h.streamOf[id]
	delete(h.streamOf, id)
	if s, ok := h.streams[key]; ok && s.pid.Equal(who) {
		// The stream itself, stopped with watchers: its mux is gone (the client process died,
		// or its connection), or it failed. Its watchers do not watch their subscribers (the
		// stream watches the mux for all of them, which spares the node a remote watch per
		// watch), so they stop here; their Terminated comes later.
		delete(h.streams, key)
		for _, w := range s.watchers {
			ctx.Stop(w)
		}
		return
	}
	h.watchers--
	h.cfg.Metrics.watchers(h.watchers)
	h.unlive(id)
	if s, ok := h.streams[key]; hasStream && ok {
		if delete(s.watchers, id); len(s.watchers) == 0 {
			// Behind the watchers' last deliveries in the stream's mailbox: it sends them, then
			// stops. A new watch of the same process gets a new stream.
			ctx.Send(s.pid, streamRelease{})
			delete(h.streams, key)
			delete(h.streamOf, s.pid.GetId())
			h.released[s.pid.GetId()] = true
		}
	}
}

// join makes a watcher live after revision from, handing it the ring's changes after from, or
// tells it the ring does not reach back that far.
func (h *Hub) join(ctx actor.Context, m join) {
	w := ctx.Sender()
	if m.from < h.floor {
		ctx.Send(w, tooFar{})
		return
	}
	var out []*change
	for _, c := range h.ring[h.head:] {
		if c.ResourceVersion > m.from {
			out = append(out, c)
		}
	}
	// Changes still pending a flush are in the ring too; the watcher skips them when the flush
	// repeats them, by revision.
	ctx.Send(w, joined{push{changes: out, upTo: h.upTo}})
	id := w.GetId()
	h.unlive(id)
	h.live[id] = w
	if m.route.by == broad || m.waitFor > h.upTo {
		h.broad[id] = w
	} else {
		set := h.routed[m.route]
		if set == nil {
			set = map[string]*actor.PID{}
			h.routed[m.route] = set
		}
		set[id] = w
		h.routeOf[id] = m.route
		if m.route.by == byNodeName {
			h.byNode++
		}
	}
	if m.bookmarkEvery > 0 {
		h.bookmark(id, w, m.bookmarkEvery)
	}
}

// unlive takes a watcher off the live set, its route and its bookmarks.
func (h *Hub) unlive(id string) {
	delete(h.live, id)
	delete(h.broad, id)
	if r, ok := h.routeOf[id]; ok {
		delete(h.routeOf, id)
		if r.by == byNodeName {
			h.byNode--
		}
		if set := h.routed[r]; set != nil {
			if delete(set, id); len(set) == 0 {
				delete(h.routed, r)
			}
		}
	}
	h.unbookmark(id)
}

// pushOut sends a batch to the broad watchers and to the routed ones it may concern, once each.
func (h *Hub) pushOut(ctx actor.Context, p *push) {
	for _, pid := range h.broad {
		ctx.Send(pid, p)
	}
	if len(h.routed) == 0 {
		return
	}
	// A routed watcher is indexed under one route, so a batch reaches each of them once when
	// each route is pushed to once: the check is per route a change names, not per watcher
	// (1,000 watchers of one namespace and a batch of 16 changes to it made 16,000 look-ups).
	clear(h.pushTo)
	for _, c := range p.changes {
		// Routing by node decodes the object; only when some watcher needs it.
		rs, n := c.routes(h.byNode > 0)
		for _, r := range rs[:n] {
			set := h.routed[r]
			if len(set) == 0 {
				continue
			}
			if _, done := h.pushTo[r]; done {
				continue
			}
			h.pushTo[r] = struct{}{}
			for _, pid := range set {
				ctx.Send(pid, p)
			}
		}
	}
}
