package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/watcheractor"
)

// ended waits for w to end, failing the test after a deadline.
func ended(t *testing.T, w *Watch, within time.Duration) {
	t.Helper()
	select {
	case <-w.Done():
	case <-time.After(within):
		t.Fatalf("the watch did not end within %v", within)
	}
}

// drained reports whether w's Events is closed once what it buffered is taken.
func drained(w *Watch) bool {
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				return true
			}
		default:
			return false
		}
	}
}

// callerDeadline checks that err is the end of a caller's deadline: it matches
// context.DeadlineExceeded and is a Timeout *messages.Error whose message says whose deadline
// passed and does not blame the node.
func callerDeadline(t *testing.T, err error) *messages.Error {
	t.Helper()
	var e *messages.Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &e) || e.Reason != messages.StatusReason_TIMEOUT {
		t.Fatalf("err = %v, want a Timeout *messages.Error matching context.DeadlineExceeded", err)
	}
	if !strings.Contains(e.Message, "caller's context deadline passed") || strings.Contains(e.Message, "no answer") {
		t.Fatalf("message %q: want it to say the caller's deadline passed, not that the node did not answer", e.Message)
	}
	return e
}

// TestWatchEndsWhenItsContextIsCancelled: cancelling the context ends a running watch with
// context.Canceled, closes Events, and stops the node's watcher and the subscriber, as Stop does.
func TestWatchEndsWhenItsContextIsCancelled(t *testing.T) {
	n, c := embedded(t, Config{})
	bg := context.Background()
	writeRV(t)(c.Put(bg, pod("a"), messages.Reason_OPERATOR))
	// The first watch starts the client's mux, which stays.
	w0 := c.Watch(bg, &messages.WatchRequest{Version: "v1", Kind: "Pod"}, WatchOptions{})
	next(t, w0)
	w0.Stop()
	actors0 := actorCount(n.System())

	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	w := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod"}, WatchOptions{})
	defer w.Stop()
	if ev := next(t, w); ev.GetType() != messages.EventType_EVENT_ADDED {
		t.Fatalf("first event %s, want ADDED a", describe(ev))
	}
	if actorCount(n.System()) <= actors0 {
		t.Fatal("a running watch added no actor: the count below cannot tell that it stopped")
	}
	cancel()
	ended(t, w, 10*time.Second)
	if err := w.Err(); !errors.Is(err, context.Canceled) || messages.IsTimeout(err) {
		t.Fatalf("Err = %v, want context.Canceled", err)
	}
	if !drained(w) {
		t.Fatal("Events is not closed after the watch ended")
	}
	eventually(t, 10*time.Second, "the subscriber and the node's watcher stop", func() bool { return actorCount(n.System()) <= actors0 })
	w.Stop()
	if err := w.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after Stop = %v, want context.Canceled still", err)
	}
}

// TestWatchEndsAtItsContextDeadline: a deadline ends the watch with a Timeout that says the
// caller's deadline passed, carries the resourceVersion of the last change delivered, and
// matches context.DeadlineExceeded.
func TestWatchEndsAtItsContextDeadline(t *testing.T) {
	_, c := embedded(t, Config{})
	bg := context.Background()
	from := writeRV(t)(c.Put(bg, pod("a"), messages.Reason_OPERATOR))
	ctx, cancel := context.WithTimeout(bg, 2*time.Second)
	defer cancel()
	w := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: from}, WatchOptions{})
	defer w.Stop()
	rv := writeRV(t)(c.Put(bg, pod("b"), messages.Reason_OPERATOR))
	if ev := next(t, w); ev.GetResourceVersion() != rv {
		t.Fatalf("got %s, want ADDED b@%d", describe(ev), rv)
	}
	ended(t, w, 10*time.Second)
	e := callerDeadline(t, w.Err())
	if e.ResourceVersion != rv || !strings.Contains(e.Message, fmt.Sprintf("watch from %d", rv)) {
		t.Fatalf("err = %v (resourceVersion %d), want the resume point %d", w.Err(), e.ResourceVersion, rv)
	}
}

// TestWatchDeadlineIsNotTheNodes: a watch whose node never answers ends at the caller's
// deadline with the caller's deadline as its reason, long before the client's own timeout.
func TestWatchDeadlineIsNotTheNodes(t *testing.T) {
	c, _ := scriptedCluster(t, 30*time.Second, ignores)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	w := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod"}, WatchOptions{})
	defer w.Stop()
	ended(t, w, 10*time.Second)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the watch ended after %v, with a 300ms deadline", took)
	}
	if e := callerDeadline(t, w.Err()); e.ResourceVersion != 0 {
		t.Fatalf("resume point %d, want none: nothing was delivered", e.ResourceVersion)
	}
}

// TestWatchWithAnEndedContext: a context that has already ended gives a watch that has ended,
// sending nothing and starting no actor.
func TestWatchWithAnEndedContext(t *testing.T) {
	n, c := embedded(t, Config{})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	tests := []struct {
		name string
		give context.Context
		req  *messages.WatchRequest
		want func(t *testing.T, err error)
	}{
		{"cancelled", cancelled, &messages.WatchRequest{Version: "v1", Kind: "Pod"}, func(t *testing.T, err error) {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Err = %v, want context.Canceled", err)
			}
		}},
		{"deadline", expired, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: 7}, func(t *testing.T, err error) {
			if e := callerDeadline(t, err); e.ResourceVersion != 7 {
				t.Fatalf("resume point %d, want 7, where it was to start", e.ResourceVersion)
			}
		}},
		{"deadline during the initial state", expired, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: 7, InitialEvents: true}, func(t *testing.T, err error) {
			if e := callerDeadline(t, err); e.ResourceVersion != 0 {
				t.Fatalf("resume point %d, want none: the initial state was asked for", e.ResourceVersion)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := actorCount(n.System())
			w := c.Watch(tt.give, tt.req, WatchOptions{})
			if !isClosed(w.Done()) || !drained(w) {
				t.Fatal("the watch has not ended at once")
			}
			if got := actorCount(n.System()); got != before {
				t.Fatalf("%d actors after the watch, %d before: want none started", got, before)
			}
			tt.want(t, w.Err())
			w.Stop()
		})
	}
}

// TestWatchEndedBeforeItsContext: a context that ends after the watch ended for its own reason
// changes nothing.
func TestWatchEndedBeforeItsContext(t *testing.T) {
	_, c := embedded(t, Config{HistoryRevisions: 10, Watch: watcheractor.Config{RingChanges: 4}})
	bg := context.Background()
	var first uint64
	for i := range 30 {
		rv := writeRV(t)(c.Put(bg, pod(fmt.Sprintf("p%d", i)), messages.Reason_OPERATOR))
		if i == 0 {
			first = rv
		}
	}
	ctx, cancel := context.WithCancel(bg)
	w := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: first}, WatchOptions{})
	defer w.Stop()
	ended(t, w, 10*time.Second)
	cancel()
	w.Stop()
	if err := w.Err(); !messages.IsGone(err) || errors.Is(err, context.Canceled) {
		t.Fatalf("Err = %v, want Gone (from a compacted revision), kept after the context ended", err)
	}
}

// TestCallEndsWithItsContext: a request whose caller's context ends returns context.Canceled
// when it was cancelled, and for a deadline a Timeout that says it was the caller's (matching
// context.DeadlineExceeded), however long the client's own timeout; a write not answered says
// its outcome is unknown.
func TestCallEndsWithItsContext(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		give   func() (context.Context, context.CancelFunc)
		call   func(context.Context, *Client) error
		want   error
		unsent bool // the message says nothing was sent
		write  bool // the message says the outcome is unknown
	}{
		{name: "read, cancelled before", give: func() (context.Context, context.CancelFunc) { return cancelled, func() {} },
			call: getReq, want: context.Canceled},
		{name: "read, cancelled while waiting", give: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		}, call: getReq, want: context.Canceled},
		{name: "read, deadline while waiting", give: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, call: getReq, want: context.DeadlineExceeded},
		{name: "read, deadline before", give: func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, call: getReq, want: context.DeadlineExceeded, unsent: true},
		{name: "write, cancelled while waiting", give: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		}, call: putReq, want: context.Canceled, write: true},
		{name: "write, deadline while waiting", give: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, call: putReq, want: context.DeadlineExceeded, write: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := scriptedCluster(t, 30*time.Second, ignores)
			ctx, cancel := tt.give()
			defer cancel()
			start := time.Now()
			err := tt.call(ctx, c)
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("took %v: the context did not end the call", took)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want it to match %v", err, tt.want)
			}
			switch {
			case tt.write:
				if !messages.IsTimeout(err) || !strings.Contains(err.Error(), "outcome is unknown") {
					t.Fatalf("err = %v, want a Timeout saying the write's outcome is unknown", err)
				}
			case tt.want == context.DeadlineExceeded:
				callerDeadline(t, err)
				if tt.unsent != strings.Contains(err.Error(), "nothing was sent") {
					t.Fatalf("err = %v: want it to say whether anything was sent (%v)", err, !tt.unsent)
				}
			default:
				if err != context.Canceled {
					t.Fatalf("err = %#v, want context.Canceled itself", err)
				}
			}
		})
	}
}
