package actors

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kstore/kstore/catalogactor/selector"
	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/watcheractor"
)

var informerSeed = flag.Uint64("informer.seed", 0, "seed of the informer tests' random writes (0: from the clock)")

var podType = ResourceType{Version: "v1", Kind: "Pod"}

// informerWait bounds every wait of these tests: generous, for -race on a busy machine.
const informerWait = 30 * time.Second

// quickBookmarks makes a node's watches bookmark often, so an informer whose selector sees
// none of the last writes still reaches their revision soon.
var quickBookmarks = watcheractor.Config{BookmarkInterval: 20 * time.Millisecond}

// podIn is a pod in namespace ns labelled app, with n in its spec, so that writing it again with
// another n is a change.
func podIn(ns, name, app string, n int) []byte {
	return []byte(fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":%q,"labels":{"app":%q}},"spec":{"n":%d}}`, name, ns, app, n))
}

func podKeyIn(ns, name string) *messages.ResourceKey {
	return &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: ns, Name: name}
}

// metaRV is an object's metadata.resourceVersion.
func metaRV(b []byte) uint64 {
	var o struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if json.Unmarshal(b, &o) != nil {
		return 0
	}
	rv, _ := strconv.ParseUint(o.Metadata.ResourceVersion, 10, 64)
	return rv
}

func objKey(o *Object) string { return o.Key.GetNamespace() + "/" + o.Key.GetName() }

// noteRecorder is a handler that keeps its own copy of the objects, as a controller's handlers
// do, from nothing but the notifications, and notes each notification a consistent stream would
// not send: an OnAdd of an object it has, an OnUpdate or OnDelete of one it has not or whose
// old object is not the one it has, a resourceVersion that goes backwards.
type noteRecorder struct {
	mu       sync.Mutex
	objs     map[string]*Object
	adds     map[string]int // OnAdd calls by key
	deletes  map[string]int // OnDelete calls by key
	after    map[string]int // notifications by key since mark
	rvs      []uint64       // every notification's ResourceVersion, in order
	log      []string       // every notification, as text
	problems []string
	gate     chan struct{} // while not nil, each notification first waits until it is closed
	held     atomic.Bool   // a notification waits at the gate
}

func newNoteRecorder() *noteRecorder {
	return &noteRecorder{objs: map[string]*Object{}, adds: map[string]int{}, deletes: map[string]int{}, after: map[string]int{}}
}

var _ InformerHandler = (*noteRecorder)(nil)

// hold makes the next notifications wait until release.
func (r *noteRecorder) hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate == nil {
		r.gate = make(chan struct{})
	}
}

// release lets the notifications through again; it may be called any number of times.
func (r *noteRecorder) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate != nil {
		close(r.gate)
		r.gate = nil
	}
}

func (r *noteRecorder) pass() {
	r.mu.Lock()
	g := r.gate
	r.mu.Unlock()
	if g != nil {
		r.held.Store(true)
		<-g
		r.held.Store(false)
	}
}

// mark starts counting the notifications of each key afresh.
func (r *noteRecorder) mark() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.after = map[string]int{}
}

func (r *noteRecorder) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *noteRecorder) noted(o *Object, text string) {
	if n := len(r.rvs); n > 0 && o.ResourceVersion < r.rvs[n-1] {
		r.problem("%s after a notification at %d", text, r.rvs[n-1])
	}
	r.rvs = append(r.rvs, o.ResourceVersion)
	r.log = append(r.log, text)
	r.after[objKey(o)]++
}

func (r *noteRecorder) OnAdd(o *Object) {
	r.pass()
	r.mu.Lock()
	defer r.mu.Unlock()
	k := objKey(o)
	text := fmt.Sprintf("ADD %s@%d", k, o.ResourceVersion)
	if _, ok := r.objs[k]; ok {
		r.problem("%s: the handler has it already", text)
	}
	if got := metaRV(o.JSON); got != o.ResourceVersion {
		r.problem("%s: its JSON is at %d", text, got)
	}
	r.objs[k] = o
	r.adds[k]++
	r.noted(o, text)
}

func (r *noteRecorder) OnUpdate(old, new *Object) {
	r.pass()
	r.mu.Lock()
	defer r.mu.Unlock()
	k := objKey(new)
	text := fmt.Sprintf("UPDATE %s@%d->%d", k, old.ResourceVersion, new.ResourceVersion)
	switch have, ok := r.objs[k]; {
	case !ok:
		r.problem("%s: the handler does not have it", text)
	case have.ResourceVersion != old.ResourceVersion || string(have.JSON) != string(old.JSON):
		r.problem("%s: the handler has it at %d", text, have.ResourceVersion)
	}
	if new.ResourceVersion <= old.ResourceVersion || metaRV(new.JSON) != new.ResourceVersion {
		r.problem("%s: the new object (JSON at %d) is not newer", text, metaRV(new.JSON))
	}
	r.objs[k] = new
	r.noted(new, text)
}

func (r *noteRecorder) OnDelete(o *Object) {
	r.pass()
	r.mu.Lock()
	defer r.mu.Unlock()
	k := objKey(o)
	text := fmt.Sprintf("DELETE %s@%d (last %d)", k, o.ResourceVersion, metaRV(o.JSON))
	switch have, ok := r.objs[k]; {
	case !ok:
		r.problem("%s: the handler does not have it", text)
	case string(have.JSON) != string(o.JSON):
		r.problem("%s: not the last state the handler has (%d)", text, have.ResourceVersion)
	}
	if o.ResourceVersion <= metaRV(o.JSON) {
		r.problem("%s: the deletion is not after the last state", text)
	}
	delete(r.objs, k)
	r.deletes[k]++
	r.noted(o, text)
}

// state is what the handler has: JSON by namespace/name.
func (r *noteRecorder) state() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for k, o := range r.objs {
		out[k] = string(o.JSON)
	}
	return out
}

func (r *noteRecorder) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

// check fails the test with the problems the recorder noted.
func (r *noteRecorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) > 0 {
		t.Fatalf("inconsistent notifications:\n%s\nall of them:\n%s", strings.Join(r.problems, "\n"), strings.Join(r.log, "\n"))
	}
}

// cacheState is what the informer's cache has: JSON by namespace/name. It also checks that List
// is sorted and, when quiet (no event can arrive between List and Get), that it agrees with Get.
func cacheState(t *testing.T, inf *Informer, quiet bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	list := inf.List()
	for _, o := range list {
		k := objKey(o)
		out[k] = string(o.JSON)
		if !quiet {
			continue
		}
		if got, ok := inf.Get(o.Key.GetNamespace(), o.Key.GetName()); !ok || string(got.JSON) != string(o.JSON) {
			t.Errorf("Get(%s) = %v, %v; List has it at %d", k, got, ok, o.ResourceVersion)
		}
	}
	if !slices.IsSortedFunc(list, func(a, b *Object) int {
		return cmp.Or(cmp.Compare(a.Key.GetNamespace(), b.Key.GetNamespace()), cmp.Compare(a.Key.GetName(), b.Key.GetName()))
	}) {
		t.Errorf("List is not sorted by namespace, then name: %v", slices.Sorted(maps.Keys(out)))
	}
	return out
}

// freshList lists what an informer of pods in ns with sel should hold, a page at a time: JSON
// by namespace/name, and the list's revision.
func freshList(t *testing.T, c *Client, ns string, sel Selectors) (map[string]string, uint64) {
	t.Helper()
	fields, err := selector.ParseFields(sel.Field)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	req := &messages.ListRequest{Version: "v1", Kind: "Pod", Namespace: ns, LabelSelector: sel.Label, Limit: 100}
	var rv uint64
	for {
		res, err := c.List(context.Background(), req)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		rv = max(rv, res.GetResourceVersion())
		for _, b := range res.GetItems() {
			o, err := listedObject(b)
			if err != nil {
				t.Fatal(err)
			}
			if fields.MatchesKey(o.Key.GetName(), o.Key.GetNamespace()) {
				out[objKey(o)] = string(b)
			}
		}
		if res.GetContinue() == "" {
			return out, rv
		}
		req.Continue = res.GetContinue()
	}
}

// stateDiff describes how two states differ, for a failure message.
func stateDiff(got, want map[string]string) string {
	var d []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		switch g, ok := got[k]; {
		case !ok:
			d = append(d, "missing "+k)
		case g != want[k]:
			d = append(d, fmt.Sprintf("%s at %d, want %d", k, metaRV([]byte(g)), metaRV([]byte(want[k]))))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			d = append(d, "extra "+k)
		}
	}
	if len(d) == 0 {
		return "equal"
	}
	return strings.Join(d, "; ")
}

// caughtUp waits until inf has reached the store's current state of what it selects: its
// revision at least the store's, its cache equal to a fresh list, and rec equal to its cache.
func caughtUp(t *testing.T, c *Client, inf *Informer, rec *noteRecorder, ns string, sel Selectors) map[string]string {
	t.Helper()
	want, rv := freshList(t, c, ns, sel)
	var why string
	waitFor(t, informerWait, func() bool {
		switch cache := cacheState(t, inf, false); {
		case inf.LastSyncResourceVersion() < rv:
			why = fmt.Sprintf("the informer is at %d, the store at %d", inf.LastSyncResourceVersion(), rv)
		case !maps.Equal(cache, want):
			why = "cache vs fresh list: " + stateDiff(cache, want)
		case !maps.Equal(rec.state(), cache):
			why = "handlers vs cache: " + stateDiff(rec.state(), cache)
		default:
			return true
		}
		return false
	}, func() string { return "the informer did not catch up: " + why })
	cacheState(t, inf, true) // caught up and no writes: List and Get see one state
	return want
}

// runInformer runs inf until the test ends (or stop is called), and fails the test if Run
// returns an error or does not return once stopped.
func runInformer(t *testing.T, inf *Informer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- inf.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run returned %v after its context ended, want nil", err)
				}
			case <-time.After(informerWait):
				t.Errorf("Run did not return within %v of its context's end", informerWait)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitSynced(t *testing.T, inf *Informer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), informerWait)
	defer cancel()
	if !inf.WaitForSync(ctx) {
		t.Fatalf("the informer did not sync within %v", informerWait)
	}
}

// writeRV returns a function that takes a write's result and returns its revision, failing
// the test on an error: writeRV(t)(c.Put(...)).
func writeRV(t *testing.T) func(*messages.CommandResult, error) uint64 {
	return func(res *messages.CommandResult, err error) uint64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return res.GetResourceVersion()
	}
}

// churner makes random writes to pods p<from>..p<to-1> in two namespaces: creates,
// relabels between app=web and app=db (so a label selector sees pods enter and leave), updates
// that keep the labels, and deletes.
type churner struct {
	c       *Client
	rng     *rand.Rand
	exists  map[string]string // the app label of each existing pod, by namespace/name
	n       int
	touched map[string]bool // namespace/name written since the churner was made
}

func newChurner(c *Client, seed uint64) *churner {
	return &churner{c: c, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), exists: map[string]string{}, touched: map[string]bool{}}
}

var (
	churnNamespaces = []string{"default", "other"}
	churnApps       = []string{"web", "db"}
)

// write makes one random write among pods p<from>..p<to-1> and returns its revision.
func (ch *churner) write(t *testing.T, from, to int) uint64 {
	t.Helper()
	ns := churnNamespaces[ch.rng.IntN(len(churnNamespaces))]
	name := fmt.Sprintf("p%d", from+ch.rng.IntN(to-from))
	k := ns + "/" + name
	ch.touched[k] = true
	ch.n++
	app, ok := ch.exists[k]
	switch r := ch.rng.IntN(10); {
	case !ok:
		app = churnApps[ch.rng.IntN(len(churnApps))]
		ch.exists[k] = app
		return writeRV(t)(ch.c.Create(context.Background(), podIn(ns, name, app, ch.n), messages.Reason_OPERATOR))
	case r < 4: // relabel
		app = churnApps[(slices.Index(churnApps, app)+1)%len(churnApps)]
		ch.exists[k] = app
		return writeRV(t)(ch.c.Put(context.Background(), podIn(ns, name, app, ch.n), messages.Reason_OPERATOR))
	case r < 7: // update, same labels
		return writeRV(t)(ch.c.Put(context.Background(), podIn(ns, name, app, ch.n), messages.Reason_OPERATOR))
	default:
		delete(ch.exists, k)
		return writeRV(t)(ch.c.Delete(context.Background(), podKeyIn(ns, name), 0, messages.Reason_OPERATOR))
	}
}

func (ch *churner) writes(t *testing.T, n, from, to int) (last uint64) {
	t.Helper()
	for range n {
		last = ch.write(t, from, to)
	}
	return last
}

// logSeed returns the seed of a test's random writes, logged so that a failure can be repeated.
func logSeed(t *testing.T) uint64 {
	s := *informerSeed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (go test -run '%s' -informer.seed=%d repeats these writes)", s, t.Name(), s)
	return s
}

// TestInformerCacheMatchesList writes at random under a running informer (from while its first
// list is read, in small pages) and checks that its cache ends equal to a fresh list, that
// handlers that kept a map of what they were told end equal to the cache, and that no
// notification was out of place or out of resourceVersion order.
func TestInformerCacheMatchesList(t *testing.T) {
	tests := []struct {
		name string
		ns   string
		sel  Selectors
	}{
		{name: "every pod", ns: "", sel: Selectors{}},
		{name: "one namespace, a label selector", ns: "default", sel: Selectors{Label: "app=web"}},
		{name: "label and field selectors", ns: "", sel: Selectors{Label: "app in (web)", Field: "metadata.name!=p3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := embedded(t, Config{Watch: quickBookmarks})
			ch := newChurner(c, logSeed(t))
			ch.writes(t, 40, 0, 20) // for the first list
			rec := newNoteRecorder()
			inf := NewInformer(c, podType, tt.ns, tt.sel, InformerOptions{PageSize: 3})
			inf.AddHandler(rec)
			runInformer(t, inf)
			ch.writes(t, 300, 0, 20)
			waitSynced(t, inf)
			caughtUp(t, c, inf, rec, tt.ns, tt.sel)
			rec.check(t)
			strictlyIncreasing(t, rec)
			if n := inf.lists.Load(); n != 1 {
				t.Errorf("the informer listed %d times, want once", n)
			}
			t.Logf("%d notifications for %d writes", rec.calls(), ch.n)
		})
	}
}

// TestInformerNotifiesInResourceVersionOrder spells out what the handlers of an informer with
// a label selector are told of each write, in order, with which resourceVersions.
func TestInformerNotifiesInResourceVersionOrder(t *testing.T) {
	_, c := embedded(t, Config{Watch: quickBookmarks})
	rec := newNoteRecorder()
	inf := NewInformer(c, podType, "default", Selectors{Label: "app=web"})
	inf.AddHandler(rec)
	runInformer(t, inf)
	waitSynced(t, inf)
	ctx := context.Background()
	put := func(name, app string, n int) func() (*messages.CommandResult, error) {
		return func() (*messages.CommandResult, error) {
			return c.Put(ctx, podIn("default", name, app, n), messages.Reason_OPERATOR)
		}
	}
	del := func(name string) func() (*messages.CommandResult, error) {
		return func() (*messages.CommandResult, error) {
			return c.Delete(ctx, podKeyIn("default", name), 0, messages.Reason_OPERATOR)
		}
	}
	// In want, {n} is the revision step n wrote.
	tests := []struct {
		give func() (*messages.CommandResult, error)
		want string
	}{
		{give: put("a", "web", 0), want: "ADD default/a@{1}"},
		{give: put("b", "db", 0), want: ""}, // not selected
		{give: put("b", "web", 0), want: "ADD default/b@{3}"},
		{give: put("a", "web", 1), want: "UPDATE default/a@{1}->{4}"},
		// Relabelled out: the object as it last matched, at the relabel's revision.
		{give: put("a", "db", 1), want: "DELETE default/a@{5} (last {4})"},
		{give: put("a", "db", 2), want: ""}, // changed, not selected
		// Deleted: the last stored object, at the deletion's revision.
		{give: del("b"), want: "DELETE default/b@{7} (last {3})"},
		{give: put("a", "web", 2), want: "ADD default/a@{8}"}, // relabelled in again
		{give: del("nobody"), want: ""},                       // nothing to delete
		{give: put("c", "web", 0), want: "ADD default/c@{10}"},
	}
	var want, revisions []string
	for i, tt := range tests {
		rv := writeRV(t)(tt.give())
		revisions = append(revisions, fmt.Sprintf("{%d}", i+1), strconv.FormatUint(rv, 10))
		if tt.want != "" {
			want = append(want, tt.want)
		}
	}
	caughtUp(t, c, inf, rec, "default", Selectors{Label: "app=web"})
	rec.check(t)
	steps := strings.NewReplacer(revisions...)
	for i := range want {
		want[i] = steps.Replace(want[i])
	}
	rec.mu.Lock()
	got := slices.Clone(rec.log)
	rec.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("notifications:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	strictlyIncreasing(t, rec)
}

// strictlyIncreasing checks that every notification's resourceVersion is above the one
// before: so it is without a re-list, whose deletions all carry the list's revision.
func strictlyIncreasing(t *testing.T, rec *noteRecorder) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := 1; i < len(rec.rvs); i++ {
		if rec.rvs[i] <= rec.rvs[i-1] {
			t.Fatalf("%s after %s: want resourceVersions strictly increasing", rec.log[i], rec.log[i-1])
		}
	}
}

// TestInformerRelistsOnGone holds an informer's handler while the store writes far past its
// history, so that the informer stops reading its watch, the node's watcher drops what it held
// for it, and the changes it missed are compacted away: the watch ends with Gone. The informer
// re-lists by itself and hands the handlers the difference: they end equal to a fresh list,
// with no notification out of place, none at all for the pods nobody wrote meanwhile, and an
// OnDelete for each pod that left.
func TestInformerRelistsOnGone(t *testing.T) {
	_, c := embedded(t, Config{HistoryRevisions: 10, Watch: watcheractor.Config{
		RingChanges: 4, MaxBufferBytes: 1 << 10, BookmarkInterval: 20 * time.Millisecond}})
	ch := newChurner(c, logSeed(t))
	ch.writes(t, 60, 0, 30)
	sel := Selectors{Label: "app=web"}
	rec := newNoteRecorder()
	inf := NewInformer(c, podType, "", sel, InformerOptions{QueueSize: 2, WatchWindow: 2})
	inf.AddHandler(rec)
	runInformer(t, inf)
	waitSynced(t, inf)
	before := caughtUp(t, c, inf, rec, "", sel)

	// Hold the handler on a notification, then write 20 times the history past it, among pods
	// p0..p19 only.
	rec.hold()
	defer rec.release()
	writeRV(t)(c.Put(context.Background(), podIn("default", "held", "web", 0), messages.Reason_OPERATOR))
	waitFor(t, informerWait, rec.held.Load, func() string { return "the handler was not called" })
	rec.mark()
	ch.touched = map[string]bool{}
	ch.writes(t, 200, 0, 20)
	rec.release()

	after := caughtUp(t, c, inf, rec, "", sel)
	rec.check(t)
	if n := inf.lists.Load(); n < 2 {
		t.Fatalf("the informer listed %d times: its watch was not compacted away (Gone), the test proves nothing", n)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for k := range before {
		_, kept := after[k]
		switch {
		case !ch.touched[k] && rec.after[k] != 0:
			t.Errorf("%s was not written while the handler was held, yet got %d notifications after: want none", k, rec.after[k])
		case !ch.touched[k] && rec.adds[k] != 1:
			t.Errorf("%s, never written after the first list, got OnAdd %d times, want once", k, rec.adds[k])
		case !kept && rec.deletes[k] == 0:
			t.Errorf("%s left the selection but got no OnDelete", k)
		}
	}
	t.Logf("%d lists; %d notifications for %d writes", inf.lists.Load(), len(rec.log), ch.n)
}

// TestInformerSlowHandlerSlowsOnlyItsInformer holds the handler of one informer while the store
// takes writes: another informer on the same client keeps up, the held one stops taking events
// at its bound (its cache moves on by no more than its queue holds), and once released it
// catches up from what the node held for it.
func TestInformerSlowHandlerSlowsOnlyItsInformer(t *testing.T) {
	_, c := embedded(t, Config{Watch: quickBookmarks})
	const queue, window = 4, 4
	slowRec, quickRec := newNoteRecorder(), newNoteRecorder()
	slow := NewInformer(c, podType, "", Selectors{}, InformerOptions{QueueSize: queue, WatchWindow: window})
	slow.AddHandler(slowRec)
	quick := NewInformer(c, podType, "", Selectors{})
	quick.AddHandler(quickRec)
	runInformer(t, slow)
	runInformer(t, quick)
	waitSynced(t, slow)
	waitSynced(t, quick)

	slowRec.hold()
	defer slowRec.release()
	writeRV(t)(c.Put(context.Background(), pod("held"), messages.Reason_OPERATOR))
	waitFor(t, informerWait, slowRec.held.Load, func() string { return "the slow handler was not called" })
	heldAt := slow.LastSyncResourceVersion()
	var last uint64
	for i := range 300 {
		last = writeRV(t)(c.Put(context.Background(), pod(fmt.Sprintf("p%d", i)), messages.Reason_OPERATOR))
	}
	caughtUp(t, c, quick, quickRec, "", Selectors{})
	quickRec.check(t)

	// The held informer stopped taking events at its bound: its cache holds the pod whose
	// notification is held, those of a full queue, and the one it waits to queue. (The watch's
	// window holds more, not yet taken; the node the rest.)
	if n, bound := len(slow.List()), 1+queue+1; n > bound || slow.LastSyncResourceVersion() >= last {
		t.Fatalf("the held informer is at %d (held at %d, the store at %d) with %d objects: want it stopped at %d",
			slow.LastSyncResourceVersion(), heldAt, last, n, bound)
	}
	if n := slowRec.calls(); n != 0 || !slowRec.held.Load() {
		t.Fatalf("the held handler returned from %d calls, is held: %v", n, slowRec.held.Load())
	}
	slowRec.release()
	caughtUp(t, c, slow, slowRec, "", Selectors{})
	slowRec.check(t)
}

// TestInformerSyncAndStop: HasSynced is false before the first list, and after it while its
// OnAdd notifications have not all been handed over (though Get sees the objects); true after.
// Run returns nil when its context ends and leaves no goroutine behind; a second Run refuses.
func TestInformerSyncAndStop(t *testing.T) {
	_, c := embedded(t, Config{})
	for _, name := range []string{"a", "b", "c"} {
		writeRV(t)(c.Put(context.Background(), pod(name), messages.Reason_OPERATOR))
	}
	// What a client's first watch starts in the process (its mux) stays; nothing of the
	// informer's may.
	w := c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "Pod"}, WatchOptions{})
	next(t, w)
	w.Stop()
	defer goleak.VerifyNone(t, append(leakOptions, goleak.IgnoreCurrent())...)

	rec := newNoteRecorder()
	inf := NewInformer(c, podType, "default", Selectors{})
	inf.AddHandler(rec)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if inf.HasSynced() || inf.WaitForSync(cancelled) {
		t.Fatal("synced before Run")
	}
	rec.hold()
	defer rec.release()
	stop := runInformer(t, inf)
	waitFor(t, informerWait, func() bool { return rec.held.Load() && len(inf.List()) == 3 }, func() string {
		return fmt.Sprintf("the informer has %d objects (want 3) and its handler held: %v", len(inf.List()), rec.held.Load())
	})
	if _, ok := inf.Get("default", "c"); !ok || inf.HasSynced() {
		t.Fatalf("Get(default/c) found %v, HasSynced %v with OnAdd held: want the object found, not synced", ok, inf.HasSynced())
	}
	rec.release()
	waitSynced(t, inf)
	if got := len(rec.state()); got != 3 {
		t.Fatalf("synced with %d objects handed to the handler, want 3", got)
	}
	if err := inf.Run(context.Background()); err == nil {
		t.Fatal("a second Run did not refuse")
	}
	stop()
	if !inf.HasSynced() {
		t.Fatal("HasSynced went false")
	}
}

// TestInformerRunEndsOnInvalidSelector: a request the store refuses for good ends Run with its
// error, unsynced, instead of retrying.
func TestInformerRunEndsOnInvalidSelector(t *testing.T) {
	_, c := embedded(t, Config{})
	tests := []struct {
		name string
		give Selectors
	}{
		{name: "label selector", give: Selectors{Label: "app in (web"}},
		{name: "field selector", give: Selectors{Field: "spec.name=x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inf := NewInformer(c, podType, "", tt.give)
			ctx, cancel := context.WithTimeout(context.Background(), informerWait)
			defer cancel()
			if err := inf.Run(ctx); !messages.IsInvalid(err) {
				t.Fatalf("Run = %v, want Invalid", err)
			}
			if inf.WaitForSync(ctx) || ctx.Err() != nil {
				t.Fatalf("WaitForSync after Run ended: %v (ctx %v), want false at once", inf.HasSynced(), ctx.Err())
			}
		})
	}
}
