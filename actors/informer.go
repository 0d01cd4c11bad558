package actors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/catalogactor/selector"
	"github.com/kstore/kstore/messages"
)

// ResourceType names one type: group (empty for core), version, kind. e.g.
// {"apps","v1","ReplicaSet"}, {"","v1","Pod"}.
type ResourceType struct{ Group, Version, Kind string }

// Selectors restrict what an informer sees, in the grammar of ListRequest.label_selector and
// WatchRequest.field_selector. Empty selects everything.
type Selectors struct{ Label, Field string }

// Object is one object in an informer's cache. An informer hands out the same *Object to its
// cache readers and its handlers: treat it, and its Key and JSON, as read-only.
type Object struct {
	Key *messages.ResourceKey
	// ResourceVersion is the object's metadata.resourceVersion: the revision that wrote it.
	// In OnDelete it is instead the revision of the deletion (the DELETED event's, or for a
	// deletion a re-list found, the list's revision: the object was gone by then), so that
	// every notification's ResourceVersion is that of the change it reports, as a deleted
	// object's is in Kubernetes.
	ResourceVersion uint64
	// JSON is the stored object as the store returned it (metadata.resourceVersion, uid
	// included). In OnDelete it is the last state the informer knew, whose
	// metadata.resourceVersion is older than ResourceVersion.
	JSON []byte
}

// InformerHandler receives an informer's notifications, in resourceVersion order, on the
// informer's one handler goroutine: one call at a time, each after the cache already holds the
// change (so Get and List may be ahead of the notification in hand, never behind it).
type InformerHandler interface {
	// OnAdd: obj entered the informer's view (created, relabelled into the selector, or found by
	// a list).
	OnAdd(obj *Object)
	// OnUpdate: the object changed from old to new (new.ResourceVersion > old.ResourceVersion).
	OnUpdate(old, new *Object)
	// OnDelete: obj left the informer's view (deleted, or relabelled out of the selector); obj
	// is the last state known, with the deletion's revision (see Object.ResourceVersion).
	OnDelete(obj *Object)
}

// HandlerFuncs adapts functions to InformerHandler; nil funcs are skipped.
type HandlerFuncs struct {
	AddFunc    func(obj *Object)
	UpdateFunc func(old, new *Object)
	DeleteFunc func(obj *Object)
}

var _ InformerHandler = HandlerFuncs{}

func (h HandlerFuncs) OnAdd(obj *Object) {
	if h.AddFunc != nil {
		h.AddFunc(obj)
	}
}

func (h HandlerFuncs) OnUpdate(old, new *Object) {
	if h.UpdateFunc != nil {
		h.UpdateFunc(old, new)
	}
}

func (h HandlerFuncs) OnDelete(obj *Object) {
	if h.DeleteFunc != nil {
		h.DeleteFunc(obj)
	}
}

// InformerOptions tune an informer. Zero fields take the defaults.
type InformerOptions struct {
	// QueueSize bounds the notifications waiting for the handlers; default
	// DefaultInformerQueueSize. At the bound the informer stops reading its watch (see Informer).
	QueueSize int
	// PageSize is the objects one list request asks for; default DefaultInformerPageSize.
	PageSize int64
	// WatchWindow is the watch's window (WatchOptions.Window): the events that may wait in the
	// client, beside the queue, before the node holds the rest. Default that of WatchOptions.
	// The informer takes its watch's events in runs (WatchOptions.Batches), so at its bound it
	// may also hold up to a window of them taken and not yet queued.
	WatchWindow int
}

const (
	// DefaultInformerQueueSize holds a burst of several watch windows (256 events by default),
	// so a handler that is only briefly slower than the store never makes the informer stop
	// reading its watch. Queued notifications point at objects the cache holds anyway, so a full
	// queue costs little beyond what the cache costs.
	DefaultInformerQueueSize = 1024
	// DefaultInformerPageSize is ListAll's page, for the same reasons (see DefaultListPageSize).
	DefaultInformerPageSize = DefaultListPageSize
)

// Backoff of an informer between failed attempts to list and watch: the first wait, and the
// most. The first is about an election's length, after which a cluster serves again; the most
// keeps an informer of an unreachable cluster to a request every few seconds.
const (
	informerFirstBackoff = 100 * time.Millisecond
	informerMaxBackoff   = 10 * time.Second
)

var errInformerRan = errors.New("actors: informer: Run was called before: an informer runs once")

// Informer keeps an in-memory copy of the objects of one type (in one namespace or all, within
// its selectors) and tells handlers how it changes, as client-go's informers do. Run lists (a
// page at a time, every page at the first page's revision), then watches from the list's
// resourceVersion: each event updates the cache, then is queued for the handlers, which run on
// one goroutine of the informer's, in resourceVersion order. BOOKMARK events only move
// LastSyncResourceVersion on. When the watch ends because its resourceVersion was compacted
// (Gone), the informer re-lists and hands the handlers the difference, as client-go's DeltaFIFO
// Replace does: OnAdd for the new objects and OnUpdate for those whose resourceVersion changed,
// by resourceVersion, then OnDelete (the last known state, at the list's revision) for those
// gone; nothing for the others. Any other end of the watch (it resumes by itself across broken
// streams and endpoints, so these are rare) and any failed list are followed by a backoff and a
// re-list, unless the request itself is at fault (Invalid), which ends Run.
//
// A slow handler slows only its informer. Notifications wait for the handlers in a bounded
// queue (InformerOptions.QueueSize); when it is full the informer stops taking events from its
// watch, so nothing is dropped and nothing piles up in the client. The watch's credits then pace
// the node: once the client holds a window of events, the node's watcher sends no more and
// keeps the events for this watch in its own bounded buffer (watcheractor.Config.MaxBufferBytes).
// Past that buffer it drops them and leaves the live stream, costing writers and other watchers
// nothing; when the handlers catch up it replays what it dropped from the store's history, or,
// if that history was compacted meanwhile (Config.HistoryRevisions), ends the watch with Gone,
// and the informer re-lists and hands the handlers the difference.
//
// An Informer is safe for concurrent use, except AddHandler, which must come before Run.
type Informer struct {
	client    *Client
	typ       ResourceType
	namespace string
	sel       Selectors
	opts      InformerOptions

	handlers []InformerHandler // set before Run, read-only after
	started  atomic.Bool

	mu    sync.RWMutex
	items map[string]*Object // by informerKey; written by Run's goroutine only, under mu

	lastRV atomic.Uint64 // the revision the cache is at
	synced atomic.Bool
	syncc  chan struct{} // closed once synced
	done   chan struct{} // closed when Run returns

	lists atomic.Int64 // completed lists, for tests
}

// NewInformer returns an informer of the objects of typ in namespace (all namespaces when empty)
// that sel selects, through client. It does nothing until Run.
func NewInformer(client *Client, typ ResourceType, namespace string, sel Selectors, opts ...InformerOptions) *Informer {
	var o InformerOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultInformerQueueSize
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultInformerPageSize
	}
	return &Informer{
		client: client, typ: typ, namespace: namespace, sel: sel, opts: o,
		items: map[string]*Object{},
		syncc: make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// AddHandler adds h to the handlers notified of every change. Call it before Run (it panics
// after: the handler would have missed what the others were told); it is safe to call
// concurrently with nothing else.
func (i *Informer) AddHandler(h InformerHandler) {
	if i.started.Load() {
		panic("actors: informer: AddHandler after Run")
	}
	i.handlers = append(i.handlers, h)
}

// HasSynced reports whether the first list is in the cache and its OnAdd notifications have
// been handed to the handlers (every handler returned from them). It stays true from then on.
func (i *Informer) HasSynced() bool { return i.synced.Load() }

// WaitForSync waits until the informer has synced, ctx ends or Run returns, and reports
// HasSynced.
func (i *Informer) WaitForSync(ctx context.Context) bool {
	select {
	case <-i.syncc:
	case <-ctx.Done():
	case <-i.done:
	}
	return i.HasSynced()
}

// Get returns the cached object namespace/name, from memory.
func (i *Informer) Get(namespace, name string) (*Object, bool) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	o, ok := i.items[informerKey(namespace, name)]
	return o, ok
}

// List returns the cached objects, from memory, sorted by namespace, then name.
func (i *Informer) List() []*Object {
	i.mu.RLock()
	out := make([]*Object, 0, len(i.items))
	for _, o := range i.items {
		out = append(out, o)
	}
	i.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Object) int {
		return cmp.Or(cmp.Compare(a.Key.GetNamespace(), b.Key.GetNamespace()), cmp.Compare(a.Key.GetName(), b.Key.GetName()))
	})
	return out
}

// LastSyncResourceVersion is the revision the cache is at: that of the last list, event or
// bookmark it took in. 0 before the first list.
func (i *Informer) LastSyncResourceVersion() uint64 { return i.lastRV.Load() }

// Run lists, watches and notifies the handlers until ctx ends, and then returns nil; or until
// the store refuses the informer's request for good (Invalid: a selector or type it does not
// take), and then returns that error. Everything else (Unavailable, Timeout, InternalError,
// Gone) it retries, re-listing after a backoff. When it returns, its watch and its handler
// goroutine have stopped: it waits for the handler call in progress to return, and for a list
// request in flight (at most the client's timeout). An informer runs once.
func (i *Informer) Run(ctx context.Context) error {
	if !i.started.CompareAndSwap(false, true) {
		return errInformerRan
	}
	defer close(i.done)
	fields, err := selector.ParseFields(i.sel.Field)
	if err != nil {
		return messages.Errorf(messages.StatusReason_INVALID, "field selector is not valid: %v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	queue := make(chan informerNote, i.opts.QueueSize)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		i.notify(ctx, queue)
	}()
	defer wg.Wait()
	defer cancel()

	r := &informerRun{Informer: i, ctx: ctx, queue: queue, fields: fields}
	return r.loop()
}

// informerNote is one notification on its way to the handlers.
type informerNote struct {
	op       informerOp
	old, new *Object
}

type informerOp int

const (
	noteAdd informerOp = iota + 1
	noteUpdate
	noteDelete
	noteSynced // not a change: every notification of the first list is before it
)

// notify is the handler goroutine: it hands each queued notification to every handler, in
// order, until ctx ends.
func (i *Informer) notify(ctx context.Context, queue <-chan informerNote) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-queue:
			if ctx.Err() != nil {
				return
			}
			if n.op == noteSynced {
				i.synced.Store(true)
				close(i.syncc)
				continue
			}
			for _, h := range i.handlers {
				switch n.op {
				case noteAdd:
					h.OnAdd(n.new)
				case noteUpdate:
					h.OnUpdate(n.old, n.new)
				case noteDelete:
					h.OnDelete(n.old)
				}
			}
		}
	}
}

// informerRun is the state of one Run, owned by Run's goroutine: only it writes the cache.
type informerRun struct {
	*Informer
	ctx        context.Context
	queue      chan<- informerNote
	fields     selector.FieldSelector
	syncQueued bool          // the first list's notifications are queued, and the mark behind them
	backoff    time.Duration // the last wait between attempts; 0 after a watch that served
}

// loop lists and watches until ctx ends or an error is permanent.
func (r *informerRun) loop() error {
	for r.ctx.Err() == nil {
		rv, err := r.relist()
		if r.ctx.Err() != nil {
			return nil
		}
		if err == nil {
			var progressed bool
			progressed, err = r.watch(rv)
			if progressed {
				r.backoff = 0 // the watch served: the next failure waits little, if at all
			}
			if r.ctx.Err() != nil {
				return nil
			}
			if messages.IsGone(err) && progressed {
				continue // the watch fell behind the history it was served from: re-list now
			}
		}
		if r.ctx.Err() != nil {
			return nil
		}
		if !retriable(err) {
			return err
		}
		r.backoff = min(max(2*r.backoff, informerFirstBackoff), informerMaxBackoff)
		if !sleepCtx(r.ctx, r.backoff) {
			return nil
		}
	}
	return nil
}

// retriable reports whether listing and watching again may succeed where err failed: the
// node could not serve (Unavailable, InternalError), did not answer (Timeout), or no longer
// holds the revision asked for (Gone). Anything else (Invalid, TooLarge, NotFound, or an error
// not from the store) fails the same way again.
func retriable(err error) bool {
	var e *messages.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Reason {
	case messages.StatusReason_UNAVAILABLE, messages.StatusReason_TIMEOUT, messages.StatusReason_INTERNAL,
		messages.StatusReason_GONE:
		return true
	}
	return false
}

// relist reads every selected object, a page at a time at the first page's revision, makes
// the result the cache, and queues the difference for the handlers. It returns the list's
// revision, the watch's start.
func (r *informerRun) relist() (uint64, error) {
	req := &messages.ListRequest{
		Group: r.typ.Group, Version: r.typ.Version, Kind: r.typ.Kind, Namespace: r.namespace,
		LabelSelector: r.sel.Label, Limit: r.opts.PageSize,
	}
	items := map[string]*Object{}
	var rv uint64
	for first := true; ; first = false {
		res, err := r.client.List(r.ctx, req)
		if err != nil {
			return 0, err
		}
		if first {
			// Never 0 (the store's first revisions are Raft's own entries), which would make
			// the watch start with the initial state instead of the changes after the list.
			rv = res.GetResourceVersion()
		}
		for _, b := range res.GetItems() {
			o, err := listedObject(b)
			if err != nil {
				return 0, err
			}
			if r.matchesFields(o) {
				items[informerKey(o.Key.GetNamespace(), o.Key.GetName())] = o
			}
		}
		if res.GetContinue() == "" {
			break
		}
		req.Continue = res.GetContinue()
	}
	r.lists.Add(1)

	r.mu.Lock()
	old := r.items
	r.items = items
	r.lastRV.Store(rv)
	r.mu.Unlock()
	// Only this goroutine writes either map: it reads them without the lock.
	var changed, gone []informerNote
	for k, o := range items {
		switch prev, ok := old[k]; {
		case !ok:
			changed = append(changed, informerNote{op: noteAdd, new: o})
		case prev.ResourceVersion != o.ResourceVersion:
			changed = append(changed, informerNote{op: noteUpdate, old: prev, new: o})
		}
	}
	for k, o := range old {
		if _, ok := items[k]; !ok {
			gone = append(gone, informerNote{op: noteDelete, old: &Object{Key: o.Key, ResourceVersion: rv, JSON: o.JSON}})
		}
	}
	// In resourceVersion order: every change is at or below the list's revision, which the
	// deletions carry.
	slices.SortFunc(changed, func(a, b informerNote) int { return cmp.Compare(a.new.ResourceVersion, b.new.ResourceVersion) })
	slices.SortFunc(gone, func(a, b informerNote) int {
		return cmp.Compare(informerKey(a.old.Key.GetNamespace(), a.old.Key.GetName()), informerKey(b.old.Key.GetNamespace(), b.old.Key.GetName()))
	})
	for _, n := range append(changed, gone...) {
		if !r.enqueue(n) {
			return rv, r.ctx.Err()
		}
	}
	if !r.syncQueued {
		r.syncQueued = r.enqueue(informerNote{op: noteSynced})
	}
	return rv, nil
}

// matchesFields reports whether a listed object passes the informer's field selector.
func (r *informerRun) matchesFields(o *Object) bool {
	f := selector.Fields{Name: o.Key.GetName(), Namespace: o.Key.GetNamespace()}
	if r.fields.ObjectTerms() {
		if raw, err := object.ParseRaw(o.JSON); err == nil {
			f.NodeName = raw.Spec("nodeName")
		}
	}
	return r.fields.Matches(f)
}

// listedObject reads the key and resourceVersion of a listed object.
func listedObject(b []byte) (*Object, error) {
	raw, err := object.ParseRaw(b)
	if err != nil {
		return nil, messages.Errorf(messages.StatusReason_INTERNAL, "informer: a listed object is not JSON the store writes: %v", err)
	}
	rv, err := object.ParseResourceVersion(raw.Meta("resourceVersion"))
	if err != nil {
		return nil, messages.Errorf(messages.StatusReason_INTERNAL, "informer: a listed object has no resourceVersion the store writes: %v", err)
	}
	group, version := object.SplitAPIVersion(raw.APIVersion())
	key := &messages.ResourceKey{Group: group, Version: version, Kind: raw.Kind(), Namespace: raw.Meta("namespace"), Name: raw.Meta("name")}
	return &Object{Key: key, ResourceVersion: rv, JSON: b}, nil
}

// watch watches from rv and takes its events into the cache and the queue until the watch
// ends (its error) or ctx does (nil). progressed says whether it delivered anything.
func (r *informerRun) watch(rv uint64) (progressed bool, err error) {
	w := r.client.Watch(r.ctx, &messages.WatchRequest{
		Group: r.typ.Group, Version: r.typ.Version, Kind: r.typ.Kind, Namespace: r.namespace,
		LabelSelector: r.sel.Label, FieldSelector: r.sel.Field, ResourceVersion: rv, Bookmarks: true,
	}, WatchOptions{Window: r.opts.WatchWindow, Batches: true}) // a receive a run, not an event
	defer w.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return progressed, nil
		case run, ok := <-w.Batches():
			if !ok {
				if err := w.Err(); err != nil {
					return progressed, err
				}
				return progressed, messages.Errorf(messages.StatusReason_UNAVAILABLE, "informer: the watch ended without saying why")
			}
			progressed = true
			for _, ev := range run {
				if err := r.take(ev); err != nil {
					return progressed, err
				}
			}
		}
	}
}

// take applies one watch event to the cache and queues its notification. It returns the
// error of an ERROR event (the watch's subscriber ends the watch on one before passing it on,
// so this is only a safeguard).
func (r *informerRun) take(ev *messages.WatchEvent) error {
	rv := ev.GetResourceVersion()
	switch ev.GetType() {
	case messages.EventType_EVENT_BOOKMARK:
		r.lastRV.Store(max(r.lastRV.Load(), rv))
		return nil
	case messages.EventType_EVENT_ERROR:
		if err := ev.GetStatus().Err(); err != nil {
			return err
		}
		return messages.Errorf(messages.StatusReason_INTERNAL, "informer: an ERROR event without a status")
	case messages.EventType_EVENT_ADDED, messages.EventType_EVENT_MODIFIED:
		// The event's revision is the change's, the one the store stamped into the object.
		o := &Object{Key: ev.GetKey(), ResourceVersion: rv, JSON: ev.GetObject()}
		k := informerKey(o.Key.GetNamespace(), o.Key.GetName())
		r.mu.Lock()
		prev, had := r.items[k]
		r.items[k] = o
		r.lastRV.Store(rv)
		r.mu.Unlock()
		switch {
		case !had:
			r.enqueue(informerNote{op: noteAdd, new: o})
		case prev.ResourceVersion != rv:
			r.enqueue(informerNote{op: noteUpdate, old: prev, new: o})
		}
	case messages.EventType_EVENT_DELETED:
		k := informerKey(ev.GetKey().GetNamespace(), ev.GetKey().GetName())
		r.mu.Lock()
		prev, had := r.items[k]
		delete(r.items, k)
		r.lastRV.Store(rv)
		r.mu.Unlock()
		if had {
			last := ev.GetObject()
			if len(last) == 0 {
				last = prev.JSON
			}
			r.enqueue(informerNote{op: noteDelete, old: &Object{Key: prev.Key, ResourceVersion: rv, JSON: last}})
		}
	}
	return nil
}

// enqueue queues n for the handlers, waiting for room: a full queue stops the informer from
// taking events, which paces its watch. It reports false when ctx ended first.
func (r *informerRun) enqueue(n informerNote) bool {
	select {
	case r.queue <- n:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// informerKey is the cache's key of an object.
func informerKey(namespace, name string) string { return namespace + "/" + name }

func (i *Informer) String() string {
	return fmt.Sprintf("informer of %s in %q (%+v)", object.APIVersion(i.typ.Group, i.typ.Version)+"/"+i.typ.Kind, i.namespace, i.sel)
}
