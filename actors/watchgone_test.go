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
	tests := []struct {
		from     uint64
		wantGone bool
	}{
		{1, true},
		{compacted - 1, true},
		{compacted, false},
		{last - 1, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.from), func(t *testing.T) {
			w := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: tt.from}, WatchOptions{})
			defer w.Stop()
			if !tt.wantGone {
				if ev := next(t, w); ev.GetResourceVersion() != tt.from+1 {
					t.Fatalf("first event %s, want the change at %d", describe(ev), tt.from+1)
				}
				return
			}
			select {
			case ev, ok := <-w.Events():
				if ok {
					t.Fatalf("watch from %d (compacted %d) got %s, want Gone", tt.from, compacted, describe(ev))
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a watch from below the compacted revision did not end")
			}
			if !messages.IsGone(w.Err()) {
				t.Fatalf("err = %v, want Gone", w.Err())
			}
		})
	}
}
