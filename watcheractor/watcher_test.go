package watcheractor

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/messages"
)

// subscriber records what its watcher sends and grants no credit of its own accord.
type subscriber struct {
	mu      sync.Mutex
	watcher *actor.PID
	events  []*messages.WatchEvent
	seq     uint64
	gaps    int
}

func (s *subscriber) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*messages.WatchEvents)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.GetSeq() != s.seq+1 {
		s.gaps++
	}
	s.seq = m.GetSeq()
	if m.GetSeq() == 1 {
		s.watcher = ctx.Sender()
	}
	s.events = append(s.events, m.GetEvents()...)
}

func (s *subscriber) snapshot() (*actor.PID, []*messages.WatchEvent, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watcher, append([]*messages.WatchEvent(nil), s.events...), s.gaps
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

func podChange(rv uint64, size int) catalogactor.Change {
	obj := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p%d","namespace":"n"},"data":%q}`, rv, strings.Repeat("x", size))
	return catalogactor.Change{Type: catalogactor.Added, ResourceVersion: rv, Object: []byte(obj),
		Key: &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "n", Name: fmt.Sprintf("p%d", rv)}}
}

// TestStalledWatcherStaysBounded feeds a watcher whose subscriber stops granting credits far
// more than its buffer bound: it never holds more than the bound (plus one event), drops its
// buffer and leaves the live set; when credits come again it catches up, in order, with no gap
// and no duplicate.
func TestStalledWatcherStaysBounded(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()
	const limit = 16 << 10
	hub := system.Root.Spawn(NewHub(Config{MaxBufferBytes: limit, RingChanges: 10_000}))
	defer func() { _ = system.Root.StopFuture(hub).Wait() }()
	system.Root.Send(hub, &Attach{Catalog: actor.NewPID("nonhost", "no-catalog")})
	system.Root.Send(hub, &catalogactor.Changes{Applied: 10})

	sub := &subscriber{}
	subPID := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return sub }))
	system.Root.RequestWithCustomSender(hub, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: 10, Credits: 5}, subPID)
	waitFor(t, "the watcher's first message", func() bool { w, _, _ := sub.snapshot(); return w != nil })
	watcher, _, _ := sub.snapshot()
	st := func() statsResult {
		res, err := system.Root.RequestFuture(watcher, stats{}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res.(statsResult)
	}
	waitFor(t, "the watcher to go live", func() bool { return st().phase == live })

	// 400 changes of ~1 KiB, 10 to a batch: 40 times what the buffer may hold.
	rv := uint64(10)
	maxSeen := 0
	for range 40 {
		var chs []catalogactor.Change
		for range 10 {
			rv++
			chs = append(chs, podChange(rv, 1000))
		}
		system.Root.Send(hub, &catalogactor.Changes{Changes: chs, Applied: rv})
		s := st()
		maxSeen = max(maxSeen, s.bufBytes)
		if s.bufBytes > limit+1100+eventOverhead {
			t.Fatalf("the stalled watcher holds %d bytes, over its bound %d plus one event", s.bufBytes, limit)
		}
	}
	waitFor(t, "the watcher to drop its buffer and leave the live set", func() bool {
		s := st()
		maxSeen = max(maxSeen, s.bufBytes)
		if s.bufBytes > limit+1100+eventOverhead {
			t.Fatalf("the stalled watcher holds %d bytes, over its bound %d plus one event", s.bufBytes, limit)
		}
		return s.phase == lagging && s.buffered == 0
	})
	// The watcher sent its 5 before it went lagging; they may still be in the subscriber's
	// mailbox.
	waitFor(t, "the 5 events credits allowed", func() bool { _, got, _ := sub.snapshot(); return len(got) >= 5 })
	if _, got, _ := sub.snapshot(); len(got) != 5 {
		t.Fatalf("the subscriber got %d events on 5 credits", len(got))
	}
	t.Logf("largest buffer seen: %d bytes (bound %d)", maxSeen, limit)

	// Credits again: it catches up from the hub's ring, the remaining 395 in order.
	system.Root.Send(watcher, &messages.WatchCredit{Granted: 1000})
	waitFor(t, "the catch-up", func() bool { _, evs, _ := sub.snapshot(); return len(evs) == 400 })
	_, evs, gaps := sub.snapshot()
	for i, ev := range evs {
		if want := uint64(11 + i); ev.GetResourceVersion() != want {
			t.Fatalf("event %d at %d, want %d", i, ev.GetResourceVersion(), want)
		}
	}
	if gaps != 0 {
		t.Fatalf("%d sequence gaps", gaps)
	}
}
