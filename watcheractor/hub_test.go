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
