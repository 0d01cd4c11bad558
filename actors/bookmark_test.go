package actors

import (
	"context"
	"testing"
	"time"

	"github.com/kstore/kstore/messages"
)

// TestWatchBookmarkInterval: a watch that names its own bookmark interval gets bookmarks that
// often, while a watch on the node's interval (a minute here) gets none in the same time; an
// interval out of bounds is refused with Invalid.
func TestWatchBookmarkInterval(t *testing.T) {
	_, c := embedded(t, Config{}) // the node's interval: the default minute
	ctx := context.Background()
	// From the put's revision: nothing changes after it, so every event is a bookmark.
	put, err := c.Put(ctx, labelled("p", "x"), messages.Reason_OPERATOR)
	if err != nil {
		t.Fatal(err)
	}
	watch := func(ms uint64) *Watch {
		return c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: put.GetResourceVersion(),
			Bookmarks: true, BookmarkIntervalMs: ms}, WatchOptions{})
	}
	own, nodes := watch(1000), watch(0)
	defer own.Stop()
	defer nodes.Stop()
	start := time.Now()
	for got := 0; got < 2; {
		select {
		case ev := <-own.Events():
			if ev.GetType() != messages.EventType_EVENT_BOOKMARK {
				t.Fatalf("got %s, want only bookmarks", describe(ev))
			}
			got++
		case ev := <-nodes.Events():
			t.Fatalf("the watch on the node's minute got %s after %v", describe(ev), time.Since(start))
		case <-time.After(10 * time.Second):
			t.Fatal("no two bookmarks in 10 s on a watch that asked for one every second")
		}
	}
	t.Logf("two bookmarks at 1 s in %v", time.Since(start).Round(time.Millisecond))

	for _, tt := range []struct {
		name      string
		ms        uint64
		bookmarks bool
	}{
		{"under a second", 999, true},
		{"over ten minutes", 600_001, true},
		{"huge", 1 << 62, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod", Bookmarks: tt.bookmarks, BookmarkIntervalMs: tt.ms}, WatchOptions{})
			defer w.Stop()
			select {
			case <-w.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("a watch with a bookmark interval out of bounds was not refused")
			}
			if !messages.IsInvalid(w.Err()) {
				t.Fatalf("err = %v, want Invalid", w.Err())
			}
		})
	}
}
