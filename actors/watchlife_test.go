package actors

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/watcheractor"
)

// liveHeap is the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func actorCount(system *actor.ActorSystem) int {
	n := 0
	for _, m := range system.ProcessRegistry.LocalPIDs.LocalPIDs {
		n += m.Count()
	}
	return n
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// bareSubscriber opens a watch and counts what it gets; it never cancels.
type bareSubscriber struct {
	node  *actor.PID
	hello chan<- struct{}
}

func (s *bareSubscriber) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.Request(s.node, &messages.WatchRequest{WatchId: ctx.Self().GetId(), Version: "v1", Kind: "Pod", ResourceVersion: 1, Credits: 10})
	case *messages.WatchEvents:
		if m.GetSeq() == 1 {
			s.hello <- struct{}{}
		}
	}
}

// abandonWatches opens 10,000 watches and stops their subscribers without a word.
func abandonWatches(t *testing.T, system *actor.ActorSystem, node *actor.PID) {
	t.Helper()
	const watches = 10_000
	hello := make(chan struct{}, watches)
	subs := make([]*actor.PID, watches)
	for i := range subs {
		subs[i] = system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &bareSubscriber{node: node, hello: hello} }))
	}
	for range watches {
		select {
		case <-hello:
		case <-time.After(30 * time.Second):
			t.Fatal("not every watch started within 30s")
		}
	}
	for _, pid := range subs {
		system.Root.Stop(pid)
	}
}

// TestAbandonedWatchesLeaveNothing opens 10,000 watches whose subscribers then stop without a
// word (as a killed client would): their watchers notice and stop, and the node's actor count,
// goroutines and heap go back to where they were.
func TestAbandonedWatchesLeaveNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 watches")
	}
	n, c := embedded(t, Config{})
	system := n.System()
	if _, err := c.Put(context.Background(), pod("p"), messages.Reason_OPERATOR); err != nil {
		t.Fatal(err)
	}
	actors0, goroutines0 := actorCount(system), runtime.NumGoroutine()
	// Three rounds: the first grows tables that never shrink (Go maps, protoactor's process
	// registry); a leak shows as growth from the first round's end to the third's.
	var heapAfterFirst uint64
	for round := range 3 {
		abandonWatches(t, system, n.PID())
		eventually(t, 30*time.Second, "actor count back to baseline", func() bool { return actorCount(system) <= actors0 })
		eventually(t, 10*time.Second, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= goroutines0+2 })
		heap := liveHeap()
		t.Logf("round %d: live heap %d bytes", round, heap)
		if round == 0 {
			heapAfterFirst = heap
		} else if grown := int64(heap) - int64(heapAfterFirst); grown > 16<<20 {
			t.Errorf("live heap grew by %d bytes over %d more rounds of 10,000 abandoned watches", grown, round)
		}
	}
	// The node still serves watches.
	w := c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "Pod"}, WatchOptions{})
	defer w.Stop()
	if ev := next(t, w); ev.GetType() != messages.EventType_EVENT_ADDED {
		t.Fatalf("first event %s, want ADDED", describe(ev))
	}
}

func TestWatchBookmarksWhenIdle(t *testing.T) {
	_, c := embedded(t, Config{Watch: watcheractor.Config{BookmarkInterval: 20 * time.Millisecond}})
	r, err := c.Put(context.Background(), pod("p"), messages.Reason_OPERATOR)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "ConfigMap", ResourceVersion: r.GetResourceVersion(), Bookmarks: true}, WatchOptions{})
	defer w.Stop()
	// Nothing matching changes, yet bookmarks come, at the current revision.
	for range 3 {
		ev := next(t, w)
		if ev.GetType() != messages.EventType_EVENT_BOOKMARK || ev.GetResourceVersion() < r.GetResourceVersion() {
			t.Fatalf("got %s, want a BOOKMARK at %d or later", describe(ev), r.GetResourceVersion())
		}
	}
	// Without asking, none (the client asks for them itself, but keeps them from the caller).
	w2 := c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "ConfigMap", ResourceVersion: r.GetResourceVersion()}, WatchOptions{})
	defer w2.Stop()
	r2, _ := c.Put(context.Background(), []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`), messages.Reason_OPERATOR)
	if ev := next(t, w2); ev.GetType() != messages.EventType_EVENT_ADDED || ev.GetResourceVersion() != r2.GetResourceVersion() {
		t.Fatalf("got %s, want only ADDED c@%d", describe(ev), r2.GetResourceVersion())
	}
}

// TestWatchResumesAcrossRestart stops a watch at N, restarts the node on the same data dir,
// writes more, and resumes from N: exactly the missed events, read from Badger's history.
func TestWatchResumesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	system := quietSystem()
	defer system.Shutdown()
	n, err := Spawn(system, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := NewClientPIDs(system, []*actor.PID{n.PID()}, 0)
	ctx := context.Background()
	first, err := c.Put(ctx, pod("before"), messages.Reason_OPERATOR)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	put := func(name string) {
		r, err := c.Put(ctx, pod(name), messages.Reason_OPERATOR)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("ADDED %s@%d", name, r.GetResourceVersion()))
	}
	put("missed-1")
	n.Stop()
	n, err = Spawn(system, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	c = NewClientPIDs(system, []*actor.PID{n.PID()}, 0)
	put("missed-2")
	w := c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: first.GetResourceVersion()}, WatchOptions{})
	defer w.Stop()
	for _, wnt := range want {
		if got := describe(next(t, w)); got != wnt {
			t.Fatalf("got %s, want %s", got, wnt)
		}
	}
}
