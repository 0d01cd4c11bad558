package cluster

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/kstore/kstore/messages"
)

func TestHealthAddress(t *testing.T) {
	tests := []struct {
		give, want, wantErr string
	}{
		{give: "127.0.0.1:7450", want: "127.0.0.1:8450"},
		{give: "10.0.0.5:1", want: "10.0.0.5:1001"},
		{give: "[::1]:7451", want: "[::1]:8451"},
		{give: "127.0.0.1:0", want: "127.0.0.1:0"},
		{give: "127.0.0.1:64535", want: "127.0.0.1:65535"},
		{give: "127.0.0.1:64536", wantErr: "above 65535"},
		{give: "127.0.0.1", wantErr: "missing port"},
		{give: "127.0.0.1:x", wantErr: "not a number"},
	}
	for _, tt := range tests {
		got, err := HealthAddress(tt.give)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("HealthAddress(%q) = %q, %v; want an error with %q", tt.give, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("HealthAddress(%q) = %q, %v; want %q", tt.give, got, err, tt.want)
		}
	}
}

// TestOwnerOfIsStableAndSpread: the owner is one of the members, the same whatever their
// order, and not always the same member for different member sets.
func TestOwnerOfIsStableAndSpread(t *testing.T) {
	addrs := []string{"127.0.0.1:7451", "127.0.0.1:7452", "127.0.0.1:7453"}
	owner := OwnerOf(addrs)
	if !strings.HasPrefix(owner, "127.0.0.1:745") {
		t.Fatalf("OwnerOf(%v) = %q, not one of them", addrs, owner)
	}
	if got := OwnerOf([]string{addrs[2], addrs[0], addrs[1]}); got != owner {
		t.Errorf("OwnerOf depends on the order of the members: %q, then %q", owner, got)
	}
	seen := map[string]bool{}
	for p := 7000; p < 7100; p++ {
		seen[OwnerOf([]string{"127.0.0.1:" + itoa(p), "127.0.0.1:" + itoa(p+1), "127.0.0.1:" + itoa(p+2)})] = true
	}
	if len(seen) < 10 {
		t.Errorf("100 member sets gave only %d owners: the hash does not spread", len(seen))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestStoreForwardsOnlyKstoreMessages: the store identity passes kstore's requests to the node
// actor with the caller as the sender, and nothing else.
func TestStoreForwardsOnlyKstoreMessages(t *testing.T) {
	sys := actor.NewActorSystem()
	got := make(chan any, 4)
	node := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *messages.GetRequest:
			ctx.Respond(&messages.GetResult{ResourceVersion: 7})
			got <- m
		case *emptypb.Empty:
			got <- m
		}
	}))
	s := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &store{node: node} }))
	sys.Root.Send(s, &emptypb.Empty{}) // not kstore's: dropped
	res, err := sys.Root.RequestFuture(s, &messages.GetRequest{}, 5*time.Second).Result()
	if r, ok := res.(*messages.GetResult); err != nil || !ok || r.GetResourceVersion() != 7 {
		t.Fatalf("a GetRequest through the store identity: %v, %v; want the node actor's reply", res, err)
	}
	if m := <-got; m == nil {
		t.Fatal("nothing reached the node actor")
	} else if _, ok := m.(*messages.GetRequest); !ok {
		t.Errorf("the node actor got %T before the GetRequest: a message not kstore's was forwarded", m)
	}
	_ = sys.Root.StopFuture(s).Wait()
	_ = sys.Root.StopFuture(node).Wait()
}

// TestPreferenceStartsWithTheOwner: the members in order of preference are all of them, once,
// the owner first, and the next is the owner once the first is gone.
func TestPreferenceStartsWithTheOwner(t *testing.T) {
	addrs := []string{"127.0.0.1:7451", "127.0.0.1:7452", "127.0.0.1:7453", "127.0.0.1:7454"}
	got := preference(slices.Clone(addrs))
	if len(got) != len(addrs) || got[0] != OwnerOf(addrs) {
		t.Fatalf("preference(%v) = %v; want all four, %s first", addrs, got, OwnerOf(addrs))
	}
	if rest := slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return a == got[0] }); OwnerOf(rest) != got[1] {
		t.Errorf("without %s the owner is %s, but preference puts %s second", got[0], OwnerOf(rest), got[1])
	}
	if sorted := slices.Sorted(slices.Values(got)); !slices.Equal(sorted, addrs) {
		t.Errorf("preference(%v) = %v: not a permutation", addrs, got)
	}
}
