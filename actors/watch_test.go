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
	w := c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: first.GetResourceVersion()}, WatchOptions{Window: 3})
	defer w.Stop()
	for _, rv := range want {
		if ev := next(t, w); ev.GetResourceVersion() != rv {
			t.Fatalf("got %s, want an event at %d", describe(ev), rv)
		}
	}
}
