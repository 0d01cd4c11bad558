package actors

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kstore/kstore/messages"
)

// TestClientWithoutRemoteFailsAtOnce: a client whose actor system has no remote cannot reach a
// node in another process. Every call, and a watch, fails at once with Unavailable saying so,
// instead of waiting out its timeout and blaming the node; even with something listening at
// the endpoint.
func TestClientWithoutRemoteFailsAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	system := quietSystem()
	defer system.Shutdown()
	c := NewClient(system, []string{l.Addr().String()}, 30*time.Second)
	defer c.Close()
	ctx := context.Background()
	check := func(what string, err error) {
		t.Helper()
		if !messages.IsUnavailable(err) || !strings.Contains(err.Error(), "has no protoactor remote") ||
			!strings.Contains(err.Error(), "nothing was sent") || !strings.Contains(err.Error(), l.Addr().String()) {
			t.Fatalf("%s: err = %v, want Unavailable saying the client's system has no remote, naming %s", what, err, l.Addr())
		}
	}
	start := time.Now()
	_, err = c.Put(ctx, pod("a"), messages.Reason_OPERATOR)
	check("put", err)
	_, err = c.Get(ctx, &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "a"}, 0)
	check("get", err)
	yields := 0
	for _, err := range c.ListAll(ctx, &messages.ListRequest{Version: "v1", Kind: "Pod"}) {
		check("list", err)
		yields++
	}
	if yields != 1 {
		t.Fatalf("the list yielded %d times, want once: its error", yields)
	}
	_, err = c.Status(ctx)
	check("status", err)
	w := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod"}, WatchOptions{})
	if !isClosed(w.Done()) {
		t.Fatal("the watch did not end at once")
	}
	check("watch", w.Err())
	w.Stop()
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the calls took %v: want each to fail at once", took)
	}
}

// TestClientWithoutRemoteReachesItsOwnNodes: in a system without remote, a node in the same
// system is served, alone or listed beside endpoints in other processes (which are skipped).
func TestClientWithoutRemoteReachesItsOwnNodes(t *testing.T) {
	n, _ := embedded(t, Config{})
	tests := []struct {
		name string
		give []*actor.PID
	}{
		{"its own node", []*actor.PID{n.PID()}},
		{"after a remote endpoint", []*actor.PID{actor.NewPID("127.0.0.1:1", DefaultName), n.PID()}},
		{"by the system's address", []*actor.PID{n.System().NewLocalPID(n.PID().GetId())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClientPIDs(n.System(), tt.give, 10*time.Second)
			defer c.Close()
			ctx := context.Background()
			start := time.Now()
			if _, err := c.Put(ctx, pod("a"), messages.Reason_OPERATOR); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(ctx, &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "a"}, 0); err != nil {
				t.Fatal(err)
			}
			w := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod"}, WatchOptions{})
			defer w.Stop()
			if ev := next(t, w); ev.GetType() != messages.EventType_EVENT_ADDED {
				t.Fatalf("first event %s, want ADDED a", describe(ev))
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("took %v: the remote endpoint was waited on", took)
			}
		})
	}
}
