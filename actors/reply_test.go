package actors

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// TestRequest: request returns the first reply and drops a second, and says ErrDeadLetter, ErrTimeout
// or errCancelled for a request to no actor, one not answered in time and one whose context ended;
// a reply racing the caller's cancellation is no data race (an actor.Future's result is, which
// -race caught in CI); and the reply box leaves the registry with the call.
func TestRequest(t *testing.T) {
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	twice := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(string); ok {
			c.Respond(m)
			c.Respond("again")
		}
	}))
	silent := sys.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	nobody := actor.NewPID(sys.Address(), "nobody")

	cases := []struct {
		name    string
		to      *actor.PID
		ctx     func() context.Context
		want    any
		wantErr error
	}{
		{"a reply", twice, context.Background, "ping", nil},
		{"no actor", nobody, context.Background, nil, actor.ErrDeadLetter},
		{"no reply in time", silent, context.Background, nil, actor.ErrTimeout},
		{"context ended", silent, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, nil, errCancelled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := request(c.ctx(), sys.Root, c.to, "ping", 100*time.Millisecond)
			if !errors.Is(err, c.wantErr) || res != c.want {
				t.Fatalf("request: %v, %v; want %v, %v", res, err, c.want, c.wantErr)
			}
		})
	}

	t.Run("a reply racing the cancellation", func(t *testing.T) {
		var replies, cancels int
		for range 500 {
			ctx, cancel := context.WithCancel(context.Background())
			go cancel()
			switch res, err := request(ctx, sys.Root, twice, "ping", time.Second); {
			case err == nil && res == "ping":
				replies++
			case err == errCancelled:
				cancels++
			default:
				t.Fatalf("request: %v, %v; want ping or errCancelled", res, err)
			}
		}
		t.Logf("%d replies, %d cancellations", replies, cancels)
	})

	// Every call's box left the registry with it.
	n := 0
	for _, bucket := range sys.ProcessRegistry.LocalPIDs.LocalPIDs {
		for _, id := range bucket.Keys() {
			if strings.HasPrefix(id, "reply") {
				n++
			}
		}
	}
	if n != 0 {
		t.Errorf("%d reply boxes are still registered after their calls returned", n)
	}
}
