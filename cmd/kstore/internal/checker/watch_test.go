package checker

import (
	"slices"
	"testing"
)

var watchProperties = []error{ErrNotOrdered, ErrNotUnique, ErrNotAtomic, ErrNotBookmarkable, ErrNotReliable, ErrNotResumable}

func TestWatches(t *testing.T) {
	reference := "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8 DELETED:b=w1@9 MODIFIED:a=v3@12"
	tests := []struct {
		name    string
		key     string
		startRV uint64
		give    string
		want    []error // the properties broken, in the order of watchProperties
	}{
		{
			name: "every change, with bookmarks",
			give: "ADDED:a=v1@5 ADDED:b=w1@6 BOOKMARK@7 MODIFIED:a=v2@8 DELETED:b=w1@9 BOOKMARK@9 BOOKMARK@9 MODIFIED:a=v3@12 BOOKMARK@15",
		},
		{
			name: "one key, from an rv", key: "a", startRV: 5,
			give: "BOOKMARK@5 BOOKMARK@6 MODIFIED:a=v2@8 BOOKMARK@10 MODIFIED:a=v3@12",
		},
		{
			name: "stopped early",
			give: "ADDED:a=v1@5 ADDED:b=w1@6",
		},
		{
			name: "nothing delivered", startRV: 12,
		},
		{
			name: "a gap",
			give: "ADDED:a=v1@5 MODIFIED:a=v2@8",
			want: []error{ErrNotReliable},
		},
		{
			name: "a gap before a bookmark",
			give: "ADDED:a=v1@5 BOOKMARK@7",
			want: []error{ErrNotReliable},
		},
		{
			name: "a duplicate",
			give: "ADDED:a=v1@5 ADDED:b=w1@6 ADDED:b=w1@6 MODIFIED:a=v2@8",
			want: []error{ErrNotOrdered, ErrNotUnique},
		},
		{
			name: "out of order",
			give: "ADDED:a=v1@5 MODIFIED:a=v2@8 ADDED:b=w1@6",
			want: []error{ErrNotOrdered},
		},
		{
			name: "an rv split by another",
			give: "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:c=x@5",
			want: []error{ErrNotOrdered, ErrNotAtomic, ErrNotReliable},
		},
		{
			name: "an rv split by a bookmark",
			give: "ADDED:a=v1@5 BOOKMARK@5 ADDED:a=v1@5",
			want: []error{ErrNotOrdered, ErrNotUnique, ErrNotAtomic, ErrNotBookmarkable},
		},
		{
			name: "a bookmark going backwards",
			give: "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8 BOOKMARK@7",
			want: []error{ErrNotBookmarkable},
		},
		{
			name: "a bookmark below an earlier bookmark",
			give: "ADDED:a=v1@5 BOOKMARK@7 BOOKMARK@6",
			want: []error{ErrNotBookmarkable, ErrNotReliable}, // b@6 is missing before the first
		},
		{
			name: "an event not after a bookmark",
			give: "ADDED:a=v1@5 BOOKMARK@6 ADDED:b=w1@6",
			want: []error{ErrNotBookmarkable},
		},
		{
			name: "an event at the start", startRV: 5,
			give: "ADDED:a=v1@5 ADDED:b=w1@6",
			want: []error{ErrNotReliable, ErrNotResumable},
		},
		{
			name: "a bookmark before the start", startRV: 6,
			give: "BOOKMARK@5 MODIFIED:a=v2@8",
			want: []error{ErrNotResumable},
		},
		{
			name: "a value nobody wrote",
			give: "ADDED:a=v1@5 ADDED:b=w0@6",
			want: []error{ErrNotReliable},
		},
		{
			name: "another type",
			give: "ADDED:a=v1@5 MODIFIED:b=w1@6",
			want: []error{ErrNotReliable},
		},
		{
			name: "a key outside the filter", key: "a",
			give: "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8",
			want: []error{ErrNotReliable},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := WatchLog{Client: 1, Key: tt.key, StartRV: tt.startRV, Events: events(t, tt.give)}
			errs := Watches([]WatchLog{w}, events(t, reference))
			if got := broken(errs, watchProperties...); !slices.Equal(got, tt.want) || len(errs) != len(tt.want) {
				t.Fatalf("Watches broke %v (%d errors: %v), want %v", got, len(errs), errs, tt.want)
			}
		})
	}
}

func TestWatchesChecksEveryWatch(t *testing.T) {
	reference := events(t, "ADDED:a=v1@5 ADDED:b=w1@6")
	watches := []WatchLog{
		{Client: 1, Events: events(t, "ADDED:a=v1@5 ADDED:b=w1@6")},
		{Client: 2, Events: events(t, "ADDED:b=w1@6")},
		{Client: 3, Events: events(t, "ADDED:a=v1@5 ADDED:a=v1@5")},
	}
	errs := Watches(watches, reference)
	// client 2: reliable; client 3: ordered, unique.
	if got := broken(errs, watchProperties...); len(errs) != 3 || !slices.Equal(got, []error{ErrNotOrdered, ErrNotUnique, ErrNotReliable}) {
		t.Fatalf("Watches = %v, want ordered and unique for client 3, reliable for client 2", errs)
	}
}
