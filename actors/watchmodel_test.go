package actors

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/catalogactor/selector"
	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/watcheractor"
)

// change is one revision of the model's history, as the writers saw it acknowledged.
type modelChange struct {
	rv   uint64
	typ  messages.EventType
	key  *messages.ResourceKey
	obj  []byte // after; for DELETED the last stored object
	prev []byte // before; nil for ADDED
}

func keyString(k *messages.ResourceKey) string {
	return k.GetGroup() + "/" + k.GetVersion() + "/" + k.GetKind() + "/" + k.GetNamespace() + "/" + k.GetName()
}

// history orders the acknowledged writes by revision and fills in each change's previous
// object, replaying them on a map: the simple model every watch is compared with.
func history(results []*messages.CommandResult, keys map[uint64]*messages.ResourceKey) []modelChange {
	sort.Slice(results, func(i, j int) bool { return results[i].GetResourceVersion() < results[j].GetResourceVersion() })
	state := map[string][]byte{}
	var out []modelChange
	for _, r := range results {
		k := keys[r.GetResourceVersion()]
		c := modelChange{rv: r.GetResourceVersion(), key: k, obj: r.GetObject(), prev: state[keyString(k)]}
		switch r.GetOp() {
		case messages.ResourceOp_CREATED:
			c.typ = messages.EventType_EVENT_ADDED
			state[keyString(k)] = r.GetObject()
		case messages.ResourceOp_REPLACED, messages.ResourceOp_PATCHED:
			c.typ = messages.EventType_EVENT_MODIFIED
			state[keyString(k)] = r.GetObject()
		case messages.ResourceOp_DELETED:
			c.typ = messages.EventType_EVENT_DELETED
			delete(state, keyString(k))
		default:
			continue
		}
		out = append(out, c)
	}
	return out
}

// watchSpec is one watcher of the model test.
type watchSpec struct {
	kind, namespace, labels string
	from                    uint64 // 0: initial state
}

func (s watchSpec) keyMatches(k *messages.ResourceKey) bool {
	return (s.kind == "" || k.GetKind() == s.kind) && (s.namespace == "" || k.GetNamespace() == s.namespace)
}

func labelsMatch(t *testing.T, sel string, obj []byte) bool {
	if obj == nil {
		return false
	}
	s, err := selector.Parse(sel)
	if err != nil {
		t.Fatal(err)
	}
	o, err := object.Decode(obj)
	if err != nil {
		t.Fatal(err)
	}
	return s.Matches(o.Labels())
}

// expected is what the model says a watch from spec.from sees of changes after after.
func expected(t *testing.T, spec watchSpec, hist []modelChange, after uint64) []string {
	var out []string
	for _, c := range hist {
		if c.rv <= after || !spec.keyMatches(c.key) {
			continue
		}
		was, is := labelsMatch(t, spec.labels, c.prev), labelsMatch(t, spec.labels, c.obj)
		switch c.typ {
		case messages.EventType_EVENT_ADDED:
			if is {
				out = append(out, eventString(messages.EventType_EVENT_ADDED, c.key, c.rv, c.obj))
			}
		case messages.EventType_EVENT_DELETED:
			if is { // c.obj is the deleted object
				out = append(out, eventString(messages.EventType_EVENT_DELETED, c.key, c.rv, c.obj))
			}
		case messages.EventType_EVENT_MODIFIED:
			switch {
			case was && is:
				out = append(out, eventString(messages.EventType_EVENT_MODIFIED, c.key, c.rv, c.obj))
			case is:
				out = append(out, eventString(messages.EventType_EVENT_ADDED, c.key, c.rv, c.obj))
			case was:
				out = append(out, eventString(messages.EventType_EVENT_DELETED, c.key, c.rv, c.prev))
			}
		}
	}
	return out
}

// stateAt is the model's objects at revision rv matching spec, as initial ADDED events at rv.
func stateAt(t *testing.T, spec watchSpec, hist []modelChange, rv uint64) []string {
	state := map[string]modelChange{}
	for _, c := range hist {
		if c.rv > rv {
			break
		}
		if c.typ == messages.EventType_EVENT_DELETED {
			delete(state, keyString(c.key))
		} else {
			state[keyString(c.key)] = c
		}
	}
	var out []string
	for _, c := range state {
		if spec.keyMatches(c.key) && labelsMatch(t, spec.labels, c.obj) {
			out = append(out, eventString(messages.EventType_EVENT_ADDED, c.key, rv, c.obj))
		}
	}
	sort.Strings(out)
	return out
}

func eventString(typ messages.EventType, k *messages.ResourceKey, rv uint64, obj []byte) string {
	return fmt.Sprintf("%s %s @%d %s", messages.EventTypeJSON(typ), keyString(k), rv, obj)
}

// TestWatchMatchesModel runs concurrent writers and 50 watchers with different filters and start
// points, then checks each watcher's events against the model of the history and asserts the
// properties etcd's robustness tests check of a watch: ordered, unique, atomic, bookmarkable,
// reliable and resumable.
func TestWatchMatchesModel(t *testing.T) {
	if testing.Short() {
		t.Skip("model test")
	}
	_, c := embedded(t, Config{Watch: watcheractor.Config{BookmarkInterval: 50 * time.Millisecond, RingChanges: 64, MaxBufferBytes: 64 << 10}})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))

	var mu sync.Mutex
	var results []*messages.CommandResult
	keys := map[uint64]*messages.ResourceKey{}
	record := func(k *messages.ResourceKey, r *messages.CommandResult) {
		mu.Lock()
		defer mu.Unlock()
		if r.GetOp() != messages.ResourceOp_NO_OP {
			results = append(results, r)
			keys[r.GetResourceVersion()] = k
		}
	}
	kinds, namespaces, apps := []string{"Pod", "ConfigMap"}, []string{"a", "b"}, []string{"x", "y", "z"}
	write := func(r *rand.Rand, n int) {
		for i := range n {
			k := &messages.ResourceKey{Version: "v1", Kind: kinds[r.IntN(2)], Namespace: namespaces[r.IntN(2)], Name: fmt.Sprintf("o%d", r.IntN(6))}
			var res *messages.CommandResult
			var err error
			switch r.IntN(5) {
			case 0:
				res, err = c.Delete(ctx, k, 0, messages.Reason_CONTROLLER)
			case 1:
				res, err = c.Patch(ctx, k, messages.PatchType_MERGE_PATCH, []byte(fmt.Sprintf(`{"metadata":{"labels":{"app":%q}}}`, apps[r.IntN(3)])), 0, messages.Reason_CONTROLLER)
			default:
				obj := fmt.Sprintf(`{"apiVersion":"v1","kind":%q,"metadata":{"name":%q,"namespace":%q,"labels":{"app":%q}},"data":{"i":"%d"}}`,
					k.GetKind(), k.GetName(), k.GetNamespace(), apps[r.IntN(3)], i%3)
				res, err = c.Put(ctx, []byte(obj), messages.Reason_OPERATOR)
			}
			if messages.IsNotFound(err) {
				continue
			}
			if err != nil {
				t.Error(err)
				return
			}
			record(k, res)
		}
	}

	specs := make([]watchSpec, 50)
	selectors := []string{"", "app=x", "app in (x,y)", "app!=z", "!app"}
	for i := range specs {
		specs[i] = watchSpec{kind: []string{"", "Pod", "ConfigMap"}[i%3], namespace: []string{"", "a"}[i/3%2], labels: selectors[i%5]}
	}
	type watching struct {
		spec   watchSpec
		w      *Watch
		mu     sync.Mutex
		events []*messages.WatchEvent
		done   chan struct{}
	}
	var ws []*watching
	startWatch := func(spec watchSpec) {
		req := &messages.WatchRequest{Kind: spec.kind, Namespace: spec.namespace, LabelSelector: spec.labels, ResourceVersion: spec.from, Bookmarks: true}
		if spec.kind != "" {
			req.Version = "v1"
		}
		// A small window makes the watchers take credits in many steps. Every other watch
		// takes its events in runs (WatchOptions.Batches), held to the same model.
		batched := len(ws)%2 == 1
		x := &watching{spec: spec, w: c.Watch(context.Background(), req, WatchOptions{Window: 8, Batches: batched}), done: make(chan struct{})}
		ws = append(ws, x)
		go func() {
			defer close(x.done)
			if batched {
				for run := range x.w.Batches() {
					x.mu.Lock()
					x.events = append(x.events, run...)
					x.mu.Unlock()
				}
				return
			}
			for ev := range x.w.Events() {
				x.mu.Lock()
				x.events = append(x.events, ev)
				x.mu.Unlock()
			}
		}()
	}

	write(rng, 60) // history before any watch
	for i, spec := range specs {
		if i%2 == 1 {
			mu.Lock()
			spec.from = results[rng.IntN(len(results))].GetResourceVersion()
			mu.Unlock()
		}
		startWatch(spec)
		if i%10 == 9 {
			var wg sync.WaitGroup
			for g := range 3 { // concurrent writers between waves of watchers
				wg.Add(1)
				go func() { defer wg.Done(); write(rand.New(rand.NewPCG(uint64(i), uint64(g))), 20) }()
			}
			wg.Wait()
		}
	}
	final, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Every watcher gets a bookmark at or past the final revision: then it has seen everything.
	deadline := time.Now().Add(30 * time.Second)
	for _, x := range ws {
		for {
			x.mu.Lock()
			n := len(x.events)
			reached := n > 0 && x.events[n-1].GetType() == messages.EventType_EVENT_BOOKMARK && x.events[n-1].GetResourceVersion() >= final.GetApplied()
			x.mu.Unlock()
			if reached {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("watch %+v did not reach revision %d", x.spec, final.GetApplied())
			}
			time.Sleep(10 * time.Millisecond) // polling the collector's progress with a deadline
		}
	}
	for _, x := range ws {
		x.w.Stop()
		<-x.done
	}
	hist := history(results, keys)

	for _, x := range ws {
		checkProperties(t, x.spec, x.events)
		var got []string
		after := x.spec.from
		evs := x.events
		if x.spec.from == 0 {
			// Initial state: ADDED at R for every matching object, then the BOOKMARK at R.
			i := 0
			for i < len(evs) && evs[i].GetType() != messages.EventType_EVENT_BOOKMARK {
				i++
			}
			if i == len(evs) {
				t.Fatalf("watch %+v: no initial bookmark", x.spec)
			}
			r := evs[i].GetResourceVersion()
			var init []string
			for _, ev := range evs[:i] {
				init = append(init, eventString(ev.GetType(), ev.GetKey(), ev.GetResourceVersion(), ev.GetObject()))
			}
			sort.Strings(init)
			if want := stateAt(t, x.spec, hist, r); fmt.Sprint(init) != fmt.Sprint(want) {
				t.Errorf("watch %+v: initial state at %d\n got  %v\n want %v", x.spec, r, init, want)
			}
			after, evs = r, evs[i+1:]
		}
		for _, ev := range evs {
			if ev.GetType() != messages.EventType_EVENT_BOOKMARK {
				got = append(got, eventString(ev.GetType(), ev.GetKey(), ev.GetResourceVersion(), ev.GetObject()))
			}
		}
		if want := expected(t, x.spec, hist, after); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("watch %+v after %d:\n got  %d events %v\n want %d events %v", x.spec, after, len(got), got, len(want), want)
		}
	}

	// Resumable: a watch from the revision of any event a watcher saw gets exactly the rest.
	x := ws[0]
	mid := x.events[len(x.events)/2]
	if mid.GetType() != messages.EventType_EVENT_BOOKMARK && mid.GetResourceVersion() > 0 {
		spec := x.spec
		spec.from = mid.GetResourceVersion()
		req := &messages.WatchRequest{Kind: spec.kind, Namespace: spec.namespace, LabelSelector: spec.labels, ResourceVersion: spec.from}
		if spec.kind != "" {
			req.Version = "v1"
		}
		w := c.Watch(context.Background(), req, WatchOptions{})
		want := expected(t, spec, hist, spec.from)
		for i := range want {
			ev := next(t, w)
			if got := eventString(ev.GetType(), ev.GetKey(), ev.GetResourceVersion(), ev.GetObject()); got != want[i] {
				t.Fatalf("resumed watch event %d: got %s, want %s", i, got, want[i])
			}
		}
		w.Stop()
	}
}

// checkProperties asserts what must hold of any watch stream, whatever the history.
func checkProperties(t *testing.T, spec watchSpec, evs []*messages.WatchEvent) {
	t.Helper()
	var last uint64
	initial := spec.from == 0
	seen := map[string]bool{}
	var bookmark uint64
	for i, ev := range evs {
		rv := ev.GetResourceVersion()
		switch {
		case ev.GetType() == messages.EventType_EVENT_BOOKMARK:
			if rv < last {
				t.Errorf("%+v: bookmark %d after event %d (event %d)", spec, rv, last, i)
			}
			bookmark, last, initial = rv, rv, false
			continue
		case initial:
			// Initial events all carry the initial revision.
			if last != 0 && rv != last {
				t.Errorf("%+v: initial events at %d and %d", spec, last, rv)
			}
		default:
			// Ordered and bookmarkable: strictly after the previous event and any bookmark.
			if rv <= last || rv <= bookmark {
				t.Errorf("%+v: event %d at %d after %d (bookmark %d)", spec, i, rv, last, bookmark)
			}
			if rv <= spec.from {
				t.Errorf("%+v: event at %d, at or before the start %d", spec, rv, spec.from)
			}
		}
		// Unique and atomic: one event per key and revision.
		id := fmt.Sprintf("%s@%d", keyString(ev.GetKey()), rv)
		if seen[id] {
			t.Errorf("%+v: duplicate event %s", spec, id)
		}
		seen[id] = true
		if bytes.Contains(ev.GetObject(), []byte(`"resourceVersion"`)) && ev.GetType() != messages.EventType_EVENT_DELETED && !initial {
			o, _ := object.Decode(ev.GetObject())
			if o.ResourceVersion() != fmt.Sprint(rv) {
				t.Errorf("%+v: %s event at %d carries an object at resourceVersion %s", spec, messages.EventTypeJSON(ev.GetType()), rv, o.ResourceVersion())
			}
		}
		last = rv
	}
}
