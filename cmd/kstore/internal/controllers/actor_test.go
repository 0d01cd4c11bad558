package controllers

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/kstore/kstore/messages"
)

// The controller actor's tests run in a synctest bubble with a scripted reconciler: the actor
// system and the retry timer live on a fake clock, so a backoff is checked to the nanosecond
// without being waited for, and "nothing started" is checked once every goroutine is idle.

// call is one reconcile in progress; the test answers it on reply.
type call struct {
	key   objectKey
	at    time.Time
	reply chan result
}

type result struct {
	out outcome
	err error
}

// script is a reconciler whose reconciles the test answers one by one.
type script struct {
	calls    chan call     // each reconcile hands itself to the test here
	syncc    chan struct{} // closed: the informers have synced
	inflight atomic.Int32  // reconciles running
	mark     atomic.Uint64 // the watermark
	all      []objectKey   // keys()
}

var _ reconciler = (*script)(nil)

func newScript(keys ...string) *script {
	s := &script{calls: make(chan call), syncc: make(chan struct{})}
	for _, k := range keys {
		s.all = append(s.all, objectKey{namespace: "ns", name: k})
	}
	return s
}

func (s *script) reconcile(ctx context.Context, k objectKey) (outcome, error) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	c := call{key: k, at: time.Now(), reply: make(chan result, 1)}
	select {
	case s.calls <- c:
	case <-ctx.Done():
		return outcome{}, ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r.out, r.err
	case <-ctx.Done():
		return outcome{}, ctx.Err()
	}
}

func (s *script) waitForSync(ctx context.Context) bool {
	select {
	case <-s.syncc:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *script) keys() []objectKey { return s.all }
func (s *script) watermark() uint64 { return s.mark.Load() }

// next waits for the next reconcile to start (the fake clock runs on meanwhile).
func (s *script) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-s.calls:
		return c
	case <-time.After(time.Hour):
		t.Fatal("no reconcile started within an hour (of the fake clock)")
	}
	return call{}
}

// none checks that no reconcile starts within d (of the fake clock).
func (s *script) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-s.calls:
		t.Fatalf("reconcile of %s started; want none within %v", c.key, d)
	case <-time.After(d):
	}
}

// harness runs one controller actor around a script.
type harness struct {
	sys     *actor.ActorSystem
	pid     *actor.PID
	inbox   *inbox
	stopped chan struct{}
}

func startActor(t *testing.T, rec reconciler) *harness {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	h := &harness{sys: sys, inbox: newInbox(sys.Root), stopped: make(chan struct{})}
	h.pid = sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return newController(context.Background(), rec, h.inbox, h.stopped, zap.NewNop())
	}))
	h.inbox.pid = h.pid
	return h
}

func (h *harness) add(keys ...string) {
	var ks []objectKey
	for _, k := range keys {
		ks = append(ks, objectKey{namespace: "ns", name: k})
	}
	h.inbox.add(ks...)
}

// stop stops the actor, which cancels and waits for the reconciles still running.
func (h *harness) stop() {
	h.sys.Root.Stop(h.pid)
	<-h.stopped
	h.sys.Shutdown()
}

func TestActorWaitsForSyncThenReconcilesEveryKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript("a", "b")
		h := startActor(t, s)
		defer h.stop()
		h.add("c")
		s.none(t, time.Minute)
		close(s.syncc)
		got := map[string]bool{}
		for range 3 {
			c := s.next(t)
			got[c.key.name] = true
			c.reply <- result{}
		}
		if !got["a"] || !got["b"] || !got["c"] {
			t.Fatalf("reconciled %v; want a, b (the caches) and c (enqueued before the sync)", got)
		}
		s.none(t, time.Minute)
	})
}

func TestActorReconcilesAKeyOnceAtATimeAndAgainWhenDirtied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		h := startActor(t, s)
		defer h.stop()
		close(s.syncc)
		h.add("a")
		first := s.next(t)
		h.add("a")
		h.add("a")
		s.none(t, time.Minute) // a is in flight: no second reconcile of it meanwhile
		first.reply <- result{}
		again := s.next(t) // dirtied while in flight: once more, once
		if again.key.name != "a" {
			t.Fatalf("reconciled %s; want a again", again.key)
		}
		again.reply <- result{}
		s.none(t, time.Minute)
	})
}

func TestActorBoundsWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		h := startActor(t, s)
		defer h.stop()
		close(s.syncc)
		keys := make([]string, 3*maxWorkers)
		for i := range keys {
			keys[i] = podName("k", i)
		}
		h.add(keys...)
		var running []call
		for range maxWorkers {
			running = append(running, s.next(t))
		}
		synctest.Wait()
		if n := s.inflight.Load(); n != maxWorkers {
			t.Fatalf("%d reconciles running; want maxWorkers, %d", n, maxWorkers)
		}
		s.none(t, time.Minute)
		running[0].reply <- result{}
		running = append(running[1:], s.next(t)) // one done, one more starts
		synctest.Wait()
		if n := s.inflight.Load(); n != maxWorkers {
			t.Fatalf("%d reconciles running; want %d", n, maxWorkers)
		}
		// Stopping cancels the rest; stop waits for them (h.stop, deferred).
	})
}

func TestActorRetries(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []time.Duration // the waits before each retry; none: not retried
	}{
		{name: "unavailable backs off", err: messages.Errorf(messages.StatusReason_UNAVAILABLE, "no leader"),
			want: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond}},
		{name: "timeout backs off", err: messages.Errorf(messages.StatusReason_TIMEOUT, "outcome unknown"),
			want: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}},
		{name: "conflict backs off", err: messages.Errorf(messages.StatusReason_CONFLICT, "modified"),
			want: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}},
		{name: "invalid waits for a change", err: messages.Errorf(messages.StatusReason_INVALID, "bad spec")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newScript()
				h := startActor(t, s)
				defer h.stop()
				close(s.syncc)
				h.add("a")
				c := s.next(t)
				for _, want := range tt.want {
					failed := time.Now()
					c.reply <- result{err: tt.err}
					c = s.next(t)
					if got := c.at.Sub(failed); got != want {
						t.Fatalf("retry after %v; want %v", got, want)
					}
				}
				c.reply <- result{err: tt.err}
				if len(tt.want) == 0 {
					s.none(t, time.Hour)
					return
				}
				c = s.next(t) // still retrying; a success ends it
				c.reply <- result{}
				s.none(t, time.Hour)
			})
		})
	}
}

func TestActorSuccessResetsTheBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		h := startActor(t, s)
		defer h.stop()
		close(s.syncc)
		unavailable := messages.Errorf(messages.StatusReason_UNAVAILABLE, "no leader")
		h.add("a")
		c := s.next(t)
		c.reply <- result{err: unavailable}
		c = s.next(t)
		c.reply <- result{err: unavailable}
		c = s.next(t) // after 20 ms
		c.reply <- result{}
		h.add("a")
		c = s.next(t)
		failed := time.Now()
		c.reply <- result{err: unavailable}
		if c = s.next(t); c.at.Sub(failed) != firstBackoff {
			t.Fatalf("retry after %v; want %v, the backoff starting over", c.at.Sub(failed), firstBackoff)
		}
		c.reply <- result{}
	})
}

func TestActorRetryAfterAsked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		h := startActor(t, s)
		defer h.stop()
		close(s.syncc)
		h.add("a")
		c := s.next(t)
		done := time.Now()
		c.reply <- result{out: outcome{retryAfter: time.Second}}
		c = s.next(t)
		if got := c.at.Sub(done); got != time.Second {
			t.Fatalf("again after %v; want the 1s asked for", got)
		}
		c.reply <- result{}
		s.none(t, time.Hour)
	})
}

func TestActorWaitsForTheCacheToHoldItsOwnWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		h := startActor(t, s)
		defer h.stop()
		close(s.syncc)
		s.mark.Store(50)
		h.add("a")
		c := s.next(t)
		c.reply <- result{out: outcome{wrote: 100}}
		h.add("a") // dirtied, say by an event older than the write
		s.none(t, time.Minute)
		s.mark.Store(100) // the informer has taken in the write
		if c = s.next(t); c.key.name != "a" {
			t.Fatalf("reconciled %s; want a", c.key)
		}
		c.reply <- result{}
		h.add("a") // the entry is gone: no wait now
		c = s.next(t)
		c.reply <- result{}
	})
}

func TestActorStopWaitsForReconciles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript()
		h := startActor(t, s)
		close(s.syncc)
		h.add("a", "b")
		s.next(t)
		s.next(t)
		h.stop() // cancels both; returns once both have returned
		if n := s.inflight.Load(); n != 0 {
			t.Fatalf("%d reconciles still running after the actor stopped", n)
		}
	})
}

func TestInboxWakesOncePerEmptying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(slog.DiscardHandler)
		}))
		defer sys.Shutdown()
		var wakes atomic.Int32
		pid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if _, ok := ctx.Message().(wake); ok {
				wakes.Add(1)
			}
		}))
		defer func() { _ = sys.Root.StopFuture(pid).Wait() }()
		in := newInbox(sys.Root)
		in.pid = pid
		for i := range 100 {
			in.add(objectKey{name: podName("k", i%10)})
		}
		synctest.Wait()
		if n := wakes.Load(); n != 1 {
			t.Fatalf("%d wakes for keys added while none was taken; want 1", n)
		}
		if got := in.take(); len(got) != 10 {
			t.Fatalf("took %d keys; want the 10 distinct ones", len(got))
		}
		in.add(objectKey{name: "again"})
		synctest.Wait()
		if n := wakes.Load(); n != 2 {
			t.Fatalf("%d wakes after the inbox was emptied and added to; want 2", n)
		}
	})
}
