package actors

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/watcheractor"
)

// embedded starts a node inside a local actor system and returns a client of it.
func embedded(t *testing.T, cfg Config) (*Node, *Client) {
	t.Helper()
	system := quietSystem()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	n, err := Spawn(system, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Stop()
		system.Shutdown()
	})
	return n, NewClientPIDs(system, []*actor.PID{n.PID()}, 5*time.Second)
}

func labelled(name, app string) []byte {
	return []byte(fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":"default","labels":{"app":%q}}}`, name, app))
}

// next waits for the next event of w, failing the test after a deadline.
func next(t *testing.T, w *Watch) *messages.WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch ended: %v", w.Err())
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return nil
}

func describe(ev *messages.WatchEvent) string {
	return fmt.Sprintf("%s %s@%d", messages.EventTypeJSON(ev.GetType()), ev.GetKey().GetName(), ev.GetResourceVersion())
}

func TestWatchInitialStateThenChanges(t *testing.T) {
	_, c := embedded(t, Config{})
	ctx := context.Background()
	a, _ := c.Put(ctx, labelled("a", "web"), messages.Reason_OPERATOR)
	b, _ := c.Put(ctx, labelled("b", "db"), messages.Reason_OPERATOR)
	w := c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "Pod", LabelSelector: "app=web"}, WatchOptions{})
	defer w.Stop()
	ev := next(t, w)
	if ev.GetType() != messages.EventType_EVENT_ADDED || ev.GetKey().GetName() != "a" || ev.GetResourceVersion() < b.GetResourceVersion() {
		t.Fatalf("first event %s, want ADDED a at the initial revision (>= %d)", describe(ev), b.GetResourceVersion())
	}
	r := ev.GetResourceVersion()
	ev = next(t, w)
	if ev.GetType() != messages.EventType_EVENT_BOOKMARK || ev.GetResourceVersion() != r || !isInitialEnd(ev) {
		t.Fatalf("second event %s, want the initial-end BOOKMARK at %d", describe(ev), r)
	}
	_ = a
	// b relabelled into the selector: ADDED; a relabelled out: DELETED; a modified: nothing.
	rb, _ := c.Put(ctx, labelled("b", "web"), messages.Reason_OPERATOR)
	ra, _ := c.Put(ctx, labelled("a", "db"), messages.Reason_OPERATOR)
	c.Put(ctx, []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default","labels":{"app":"db"}},"spec":{}}`), messages.Reason_OPERATOR)
	rd, _ := c.Delete(ctx, &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "b"}, 0, messages.Reason_OPERATOR)
	for _, want := range []string{
		fmt.Sprintf("ADDED b@%d", rb.GetResourceVersion()),
		fmt.Sprintf("DELETED a@%d", ra.GetResourceVersion()),
		fmt.Sprintf("DELETED b@%d", rd.GetResourceVersion()),
	} {
		if got := describe(next(t, w)); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
}

func TestWatchResumeAndGone(t *testing.T) {
	_, c := embedded(t, Config{HistoryRevisions: 10, Watch: watcheractor.Config{RingChanges: 4}})
	ctx := context.Background()
	var rvs []uint64
	for i := range 30 {
		r, err := c.Put(ctx, labelled(fmt.Sprintf("p%d", i), "x"), messages.Reason_OPERATOR)
		if err != nil {
			t.Fatal(err)
		}
		rvs = append(rvs, r.GetResourceVersion())
	}
	// From a revision still in history (but not in the 4-change ring): exactly what follows.
	from := rvs[24]
	w := c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: from}, WatchOptions{})
	for _, rv := range rvs[25:] {
		if ev := next(t, w); ev.GetResourceVersion() != rv || ev.GetType() != messages.EventType_EVENT_ADDED {
			t.Fatalf("got %s, want ADDED at %d", describe(ev), rv)
		}
	}
	w.Stop()
	// From a compacted revision: Gone at once.
	w = c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: rvs[0]}, WatchOptions{})
	select {
	case _, ok := <-w.Events():
		if ok {
			t.Fatal("an event from a compacted revision")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch from a compacted revision did not end")
	}
	if !messages.IsGone(w.Err()) {
		t.Fatalf("err = %v, want Gone", w.Err())
	}
	w.Stop()
}

func TestWatchAheadTimesOut(t *testing.T) {
	n, c := embedded(t, Config{Watch: watcheractor.Config{ReadWait: 300 * time.Millisecond}})
	_ = n
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := c.Watch(context.Background(), &messages.WatchRequest{ResourceVersion: st.GetApplied() + 100}, WatchOptions{})
	defer w.Stop()
	select {
	case <-w.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a watch ahead of the node did not end")
	}
	if !messages.IsTimeout(w.Err()) {
		t.Fatalf("err = %v, want Timeout", w.Err())
	}
}

// TestWatchCatchesUpThroughSmallBuffers resumes far behind (beyond a ring of 4) with a buffer
// bound smaller than one history batch: the catch-up comes in many cut-short batches and still
// delivers every change once, in order.
func TestWatchCatchesUpThroughSmallBuffers(t *testing.T) {
	_, c := embedded(t, Config{Watch: watcheractor.Config{RingChanges: 4, MaxBufferBytes: 1 << 10}})
	ctx := context.Background()
	first, err := c.Put(ctx, labelled("start", "x"), messages.Reason_OPERATOR)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i := range 50 {
		r, err := c.Put(ctx, labelled(fmt.Sprintf("p%d", i), "x"), messages.Reason_OPERATOR)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r.GetResourceVersion())
	}
	req := &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: first.GetResourceVersion()}
	w := c.Watch(context.Background(), req, WatchOptions{Window: 3})
	defer w.Stop()
	for _, rv := range want {
		if ev := next(t, w); ev.GetResourceVersion() != rv {
			t.Fatalf("got %s, want an event at %d", describe(ev), rv)
		}
	}

	// The same in runs: the window still counts events, so no run holds more than 3, and the
	// credits a run's events return let the rest come.
	b := c.Watch(context.Background(), req, WatchOptions{Window: 3, Batches: true})
	defer b.Stop()
	var got []uint64
	for len(got) < len(want) {
		select {
		case run, ok := <-b.Batches():
			if !ok {
				t.Fatalf("batched watch ended after %d events: %v", len(got), b.Err())
			}
			if len(run) == 0 || len(run) > 3 {
				t.Fatalf("a run of %d events, want 1 to 3 (the window)", len(run))
			}
			for _, ev := range run {
				got = append(got, ev.GetResourceVersion())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("batched watch: %d of %d events within 10s", len(got), len(want))
		}
	}
	for i, rv := range want {
		if got[i] != rv {
			t.Fatalf("batched watch: event %d at %d, want %d (all: %v)", i, got[i], rv, got)
		}
	}
	select {
	case ev, ok := <-b.Events():
		t.Fatalf("a batched watch delivered on Events: %v, %v", ev, ok)
	default:
	}
}

// TestRunQueue: the events a batched watch's channel still holds, from how many runs it holds.
func TestRunQueue(t *testing.T) {
	type step struct {
		push  int // a run of this many events, or
		inCh  int // the channel holds this many runs: left must say want
		want  uint64
		check bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"nothing pushed", []step{{check: true, inCh: 0, want: 0}}},
		{"none taken", []step{{push: 3}, {push: 2}, {check: true, inCh: 2, want: 5}}},
		{"oldest taken first", []step{{push: 3}, {push: 2}, {push: 4}, {check: true, inCh: 2, want: 6}, {check: true, inCh: 1, want: 4}}},
		{"all taken", []step{{push: 3}, {push: 2}, {check: true, inCh: 0, want: 0}, {push: 1}, {check: true, inCh: 1, want: 1}}},
		{"pushes between looks", []step{{push: 5}, {check: true, inCh: 1, want: 5}, {push: 1}, {push: 1}, {check: true, inCh: 1, want: 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var q runQueue
			for i, s := range c.steps {
				if !s.check {
					q.pushed(s.push)
					continue
				}
				if got := q.left(s.inCh); got != s.want {
					t.Fatalf("step %d: left(%d) = %d, want %d", i, s.inCh, got, s.want)
				}
				if len(q.sizes) != s.inCh {
					t.Fatalf("step %d: %d runs remembered, want %d", i, len(q.sizes), s.inCh)
				}
			}
		})
	}
}

// TestBatchedWatchStalledCallerStallsNoOtherWatch: a batched watch whose caller takes nothing
// holds no more than its window of events, in its channel or waiting for room, and stalls
// nothing of the client's mux, which every watch of the process shares: another watch still sees
// every change.
func TestBatchedWatchStalledCallerStallsNoOtherWatch(t *testing.T) {
	c, req := podsFromAStart(t)
	ctx := context.Background()
	// A window of twice the channel's runs: half of it must wait for room.
	const window = 2 * batchSlots
	stalled := c.Watch(ctx, req, WatchOptions{Window: window, Batches: true})
	defer func() {
		// Should the test fail with the mux blocked on this watch, taking its runs frees it.
		go func() {
			for range stalled.Batches() {
			}
		}()
		stalled.Stop()
	}()
	healthy := c.Watch(ctx, req, WatchOptions{Window: 3})
	defer healthy.Stop()
	for i := range 3 * window { // one at a time: a run each, far more runs than the stalled window
		r, err := c.Put(ctx, labelled(fmt.Sprintf("p%d", i), "x"), messages.Reason_OPERATOR)
		if err != nil {
			t.Fatal(err)
		}
		if ev := next(t, healthy); ev.GetResourceVersion() != r.GetResourceVersion() {
			t.Fatalf("healthy watch: got %s, want the put at %d", describe(ev), r.GetResourceVersion())
		}
	}
	// The node sent each change to both watches in one message, so the stalled one has had
	// every event it was granted.
	h := holds(t, stalled)
	if h.queued+uint64(h.pending) > window {
		t.Fatalf("the stalled batched watch holds %d events in its channel and %d waiting, over its window of %d", h.queued, h.pending, window)
	}
	if h.pending == 0 {
		t.Fatalf("the stalled batched watch holds %d events in its channel and none waiting: the test proves nothing", h.queued)
	}
}

// podsFromAStart starts a node, writes one Pod and returns a request for the Pod changes after it.
func podsFromAStart(t *testing.T) (*Client, *messages.WatchRequest) {
	t.Helper()
	_, c := embedded(t, Config{})
	first, err := c.Put(context.Background(), labelled("start", "x"), messages.Reason_OPERATOR)
	if err != nil {
		t.Fatal(err)
	}
	return c, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: first.GetResourceVersion()}
}

// holds asks w's subscriber what it holds of w's events that the caller has not taken.
func holds(t *testing.T, w *Watch) held {
	t.Helper()
	r, err := w.root.RequestFuture(w.pid, inspect{}, 5*time.Second).Result()
	if err != nil {
		t.Fatalf("inspect the watch: %v", err)
	}
	return r.(held)
}

// TestBatchedWatchJoinsRunsForASlowCaller: a batched watch's channel holds a few runs; when the
// caller is further behind, what comes next waits as one run, within the window, and reaches
// the caller once it takes the others, with no further message from the node to move it.
func TestBatchedWatchJoinsRunsForASlowCaller(t *testing.T) {
	c, req := podsFromAStart(t)
	ctx := context.Background()
	// The default window, which the writes leave more than half unspent: only the waiting run
	// itself can have the subscriber woken.
	slow := c.Watch(ctx, req, WatchOptions{Batches: true})
	defer slow.Stop()
	paced := c.Watch(ctx, req, WatchOptions{Window: 64})
	defer paced.Stop()
	const writes = 3 * batchSlots // one at a time: far more messages than the channel has slots
	var want []uint64
	for i := range writes {
		r, err := c.Put(ctx, labelled(fmt.Sprintf("p%d", i), "x"), messages.Reason_OPERATOR)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r.GetResourceVersion())
		next(t, paced) // the node has sent it to both watches
	}
	var got []uint64
	longest := 0
	for len(got) < writes {
		select {
		case run, ok := <-slow.Batches():
			if !ok {
				t.Fatalf("watch ended after %d events: %v", len(got), slow.Err())
			}
			longest = max(longest, len(run))
			for _, ev := range run {
				got = append(got, ev.GetResourceVersion())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d events within 10s: the waiting run did not move", len(got), writes)
		}
	}
	for i, rv := range want {
		if got[i] != rv {
			t.Fatalf("event %d at %d, want %d (all: %v)", i, got[i], rv, got)
		}
	}
	if longest < 2 {
		t.Fatalf("no run held more than one event: nothing waited, the test proves nothing")
	}
}
