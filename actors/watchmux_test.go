package actors

import (
	"testing"

	"github.com/kstore/kstore/messages"
)

func TestDeliveryEvents(t *testing.T) {
	events := make([]*messages.WatchEvent, 5)
	for i := range events {
		events[i] = &messages.WatchEvent{ResourceVersion: uint64(10 + i)}
	}
	cases := []struct {
		name   string
		at     []uint32
		want   []uint64 // resourceVersions; nil: no events
		shared bool     // a slice of the message's events, not a copy
	}{
		{"every event", []uint32{0, 1, 2, 3, 4}, []uint64{10, 11, 12, 13, 14}, true},
		{"a range inside", []uint32{1, 2, 3}, []uint64{11, 12, 13}, true},
		{"the last one", []uint32{4}, []uint64{14}, true},
		{"a gap", []uint32{0, 2, 3}, []uint64{10, 12, 13}, false},
		{"out of order", []uint32{3, 1}, []uint64{13, 11}, false},
		{"a repeat", []uint32{1, 1}, []uint64{11, 11}, false},
		{"past the end, in order", []uint32{3, 4, 5}, nil, false},
		{"past the end, with a gap", []uint32{0, 7}, nil, false},
		{"none", nil, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := deliveryEvents(events, c.at)
			if len(got) != len(c.want) {
				t.Fatalf("got %d events, want %d", len(got), len(c.want))
			}
			for i, ev := range got {
				if ev.GetResourceVersion() != c.want[i] {
					t.Fatalf("event %d has resourceVersion %d, want %d", i, ev.GetResourceVersion(), c.want[i])
				}
			}
			if len(got) > 0 {
				if shared := &got[0] == &events[c.at[0]]; shared != c.shared {
					t.Fatalf("shares the message's slice: %v, want %v", shared, c.shared)
				}
				if cap(got) != len(got) {
					// An append by a receiver must not write into the message's events.
					t.Fatalf("cap %d, want %d", cap(got), len(got))
				}
			}
		})
	}
}
