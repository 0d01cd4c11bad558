package watcheractor

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/messages"
)

// TestHubJoinBelowCompactedGoesToTheCatalog: the ring may hold changes below the compacted
// revision (after a restart the catalog applies its log again from its durable point and hands
// the hub every change), but a watch from below it must be Gone like any read, so the hub sends
// such a join to the catalog (tooFar) instead of serving it from the ring.
func TestHubJoinBelowCompactedGoesToTheCatalog(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer sys.Shutdown()
	hub := sys.Root.Spawn(NewHub(Config{}))
	defer func() { _ = sys.Root.StopFuture(hub).Wait() }()
	var changes []catalogactor.Change
	for rv := uint64(2); rv <= 30; rv++ {
		changes = append(changes, catalogactor.Change{Type: catalogactor.Added, ResourceVersion: rv,
			Key: &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "p"}, Object: []byte(`{}`)})
	}
	sys.Root.Send(hub, &catalogactor.Changes{Changes: changes, Applied: 30, Compacted: 20})
	tests := []struct {
		from uint64
		want string
	}{
		{5, "tooFar"},
		{19, "tooFar"},
		{20, "joined"},
		{25, "joined"},
	}
	for _, tt := range tests {
		res, err := sys.Root.RequestFuture(hub, join{from: tt.from}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		got := "other"
		switch res.(type) {
		case tooFar:
			got = "tooFar"
		case joined:
			got = "joined"
		}
		if got != tt.want {
			t.Errorf("join from %d: %s, want %s", tt.from, got, tt.want)
		}
	}
}

// TestHubRingIsBoundedInBytes: the ring keeps at most RingBytes of objects, however few the
// changes: a stream of objects near the size limit once took a node's memory (24 GiB) with a
// ring bounded only in changes. A join from before what it holds goes to the catalog.
func TestHubRingIsBoundedInBytes(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer sys.Shutdown()
	hub := sys.Root.Spawn(NewHub(Config{RingBytes: 11 << 20})) // five changes of 2 MiB
	defer func() { _ = sys.Root.StopFuture(hub).Wait() }()
	big := make([]byte, 1<<20)
	for rv := uint64(2); rv <= 200; rv++ {
		sys.Root.Send(hub, &catalogactor.Changes{Applied: rv, Changes: []catalogactor.Change{{Type: catalogactor.Modified,
			ResourceVersion: rv, Key: &messages.ResourceKey{Version: "v1", Kind: "Pod", Name: "p"}, Object: big, Prev: big}}})
	}
	res, err := sys.Root.RequestFuture(hub, join{from: 195}, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	j, ok := res.(joined)
	if !ok || len(j.changes) != 5 {
		t.Fatalf("join from 195: %T with %d changes, want the 5 after it", res, len(j.changes))
	}
	if res, _ := sys.Root.RequestFuture(hub, join{from: 150}, 5*time.Second).Result(); res != (tooFar{}) {
		t.Fatalf("join from 150: %T, want tooFar: 50 changes of 2 MiB are over an 11 MiB ring", res)
	}
}
