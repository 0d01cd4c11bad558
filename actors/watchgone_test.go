package actors

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kstore/kstore/messages"
)

// TestWatchBelowCompactedIsGoneWhileTheRingHoldsIt: one rule for every read, a watch included:
// a start below the compacted revision is Gone, even though the hub's ring (16,384 changes by
// default) still holds every change after it; at the compacted revision the watch is served.
func TestWatchBelowCompactedIsGoneWhileTheRingHoldsIt(t *testing.T) {
	_, c := embedded(t, Config{HistoryRevisions: 10})
	ctx := context.Background()
	var last uint64
	for i := range 30 {
		r, err := c.Put(ctx, labelled(fmt.Sprintf("p%d", i), "x"), messages.Reason_OPERATOR)
		if err != nil {
			t.Fatal(err)
		}
		last = r.GetResourceVersion()
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	compacted := st.GetCompacted()
	if compacted <= 2 || compacted > last {
		t.Fatalf("compacted revision %d after %d writes with a history of 10: the test needs one above 2", compacted, last)
	}
	// Gone below the compacted revision: compaction only moves up, so these hold whatever it
	// does after the status read.
	for _, from := range []uint64{1, compacted - 1} {
		t.Run(fmt.Sprint(from), func(t *testing.T) {
			w := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: from}, WatchOptions{})
			defer w.Stop()
			select {
			case ev, ok := <-w.Events():
				if ok {
					t.Fatalf("watch from %d (compacted %d) got %s, want Gone", from, compacted, describe(ev))
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a watch from below the compacted revision did not end")
			}
			if !messages.IsGone(w.Err()) {
				t.Fatalf("err = %v, want Gone", w.Err())
			}
		})
	}
	// Served from the compacted revision itself. The catalog may compact one more batch after
	// the status read (it compacts behind the applied index of the batch before), so a Gone is
	// accepted only if status then reports a compacted revision above the one watched from.
	t.Run("at compacted", func(t *testing.T) {
		from := compacted
		for attempt := 0; ; attempt++ {
			w := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: from}, WatchOptions{})
			var ev *messages.WatchEvent
			var ok bool
			select {
			case ev, ok = <-w.Events():
			case <-time.After(10 * time.Second):
				t.Fatal("no watch event within 10s")
			}
			w.Stop()
			if ok {
				if ev.GetResourceVersion() != from+1 {
					t.Fatalf("first event %s, want the change at %d", describe(ev), from+1)
				}
				return
			}
			st, err := c.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !messages.IsGone(w.Err()) || st.GetCompacted() <= from || attempt == 3 {
				t.Fatalf("watch from the compacted revision %d ended: %v (compacted now %d)", from, w.Err(), st.GetCompacted())
			}
			from = st.GetCompacted()
		}
	})
	t.Run("near the newest", func(t *testing.T) {
		w := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: last - 1}, WatchOptions{})
		defer w.Stop()
		if ev := next(t, w); ev.GetResourceVersion() != last {
			t.Fatalf("first event %s, want the change at %d", describe(ev), last)
		}
	})
}
