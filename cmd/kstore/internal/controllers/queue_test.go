package controllers

import (
	"slices"
	"testing"
	"time"
)

// step is one operation on a queue and, for next, the key it must hand out ("" for none).
type step struct {
	op   string // add, addAfter, next, done, due
	key  string
	d    time.Duration // addAfter: the delay; due: the time passed since the start
	want string        // next: the key expected
}

func TestQueue(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "fifo, a key added twice is handed out once",
			steps: []step{
				{op: "add", key: "a"}, {op: "add", key: "b"}, {op: "add", key: "a"},
				{op: "next", want: "a"}, {op: "next", want: "b"}, {op: "next", want: ""},
			},
		},
		{
			name: "a key dirtied while processing waits for done, then goes again",
			steps: []step{
				{op: "add", key: "a"}, {op: "next", want: "a"},
				{op: "add", key: "a"}, {op: "add", key: "a"},
				{op: "next", want: ""}, // at most one reconcile of a in flight
				{op: "done", key: "a"},
				{op: "next", want: "a"}, {op: "done", key: "a"},
				{op: "next", want: ""},
			},
		},
		{
			name: "a key done without being dirtied again is gone",
			steps: []step{
				{op: "add", key: "a"}, {op: "next", want: "a"}, {op: "done", key: "a"},
				{op: "next", want: ""},
			},
		},
		{
			name: "a retry comes due at its time, not before",
			steps: []step{
				{op: "addAfter", key: "a", d: 10 * time.Millisecond},
				{op: "due", d: 9 * time.Millisecond}, {op: "next", want: ""},
				{op: "due", d: 10 * time.Millisecond}, {op: "next", want: "a"},
			},
		},
		{
			name: "of two retries of a key the earlier stands",
			steps: []step{
				{op: "addAfter", key: "a", d: 50 * time.Millisecond},
				{op: "addAfter", key: "a", d: 10 * time.Millisecond},
				{op: "addAfter", key: "a", d: 80 * time.Millisecond},
				{op: "due", d: 10 * time.Millisecond}, {op: "next", want: "a"},
			},
		},
		{
			name: "an add drops the pending retry",
			steps: []step{
				{op: "addAfter", key: "a", d: 10 * time.Millisecond},
				{op: "add", key: "a"}, {op: "next", want: "a"}, {op: "done", key: "a"},
				{op: "due", d: time.Second}, {op: "next", want: ""},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue()
			start := time.Unix(1000, 0)
			for i, s := range tt.steps {
				k := objectKey{namespace: "ns", name: s.key}
				switch s.op {
				case "add":
					q.Add(k)
				case "addAfter":
					q.AddAfter(k, s.d, start)
				case "done":
					q.Done(k)
				case "due":
					q.Due(start.Add(s.d))
				case "next":
					got, ok := q.Next()
					if (s.want == "") == ok || (ok && got.name != s.want) {
						t.Fatalf("step %d: next = %v, %v; want %q", i, got, ok, s.want)
					}
				}
			}
		})
	}
}

func TestQueueBackoffDoublesToTheMost(t *testing.T) {
	q := newQueue()
	k := objectKey{name: "a"}
	var got []time.Duration
	for range 10 {
		got = append(got, q.Backoff(k))
	}
	want := []time.Duration{10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(got, want) {
		t.Fatalf("backoffs = %v, want %v", got, want)
	}
	q.Forget(k)
	if d := q.Backoff(k); d != firstBackoff {
		t.Fatalf("backoff after Forget = %v, want %v", d, firstBackoff)
	}
}

func TestQueueIdleAndNextDue(t *testing.T) {
	q := newQueue()
	now := time.Unix(1000, 0)
	if !q.Idle() {
		t.Fatal("a new queue is not idle")
	}
	q.AddAfter(objectKey{name: "a"}, 30*time.Millisecond, now)
	q.AddAfter(objectKey{name: "b"}, 20*time.Millisecond, now)
	if at, ok := q.NextDue(); !ok || !at.Equal(now.Add(20*time.Millisecond)) {
		t.Fatalf("NextDue = %v, %v; want %v", at, ok, now.Add(20*time.Millisecond))
	}
	q.Due(now.Add(time.Second))
	for range 2 {
		k, ok := q.Next()
		if !ok {
			t.Fatal("a due key was not handed out")
		}
		q.Done(k)
	}
	if !q.Idle() {
		t.Fatal("queue not idle after every key was done")
	}
}

func TestPodIndex(t *testing.T) {
	tests := []struct {
		give   string
		want   int
		wantOK bool
	}{
		{give: "web-0", want: 0, wantOK: true},
		{give: "web-12", want: 12, wantOK: true},
		{give: "web-012"},
		{give: "web-"},
		{give: "web-1-0"},
		{give: "web-x"},
		{give: "webby-1"},
		{give: "web-+1"},
	}
	for _, tt := range tests {
		got, ok := podIndex("web", tt.give)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("podIndex(web, %q) = %d, %v; want %d, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}
