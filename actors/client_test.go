package actors

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

// controller is an actor program, not a CLI: on start it creates a ConfigMap through the typed
// client, then reads it back, awaiting each reply with ReenterAfter so its Receive never blocks.
type controller struct {
	client *Client
	report chan<- string
}

func (c *controller) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); !ok {
		return
	}
	obj := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"kube-system"},"data":{"k":"v"}}`)
	key, _ := object.KeyOf(obj)
	create := c.client.Future(&messages.Command{Kind: messages.CommandKind_CREATE, Key: key, Value: obj, Reason: messages.Reason_CONTROLLER})
	ctx.ReenterAfter(create, func(res any, err error) {
		r, err := Reply[*messages.CommandResult](res, err)
		if err != nil {
			c.report <- "create: " + err.Error()
			return
		}
		if r.GetOp() != messages.ResourceOp_CREATED {
			c.report <- "create: op " + messages.OpJSON(r.GetOp())
			return
		}
		get := c.client.Future(&messages.GetRequest{Key: key})
		ctx.ReenterAfter(get, func(res any, err error) {
			g, err := Reply[*messages.GetResult](res, err)
			if err != nil {
				c.report <- "get: " + err.Error()
				return
			}
			if g.GetResourceVersion() != r.GetResourceVersion() {
				c.report <- "get: resourceVersion differs from the create's"
				return
			}
			c.report <- "ok"
		})
	})
}

// TestActorProgramUsesTypedClient runs a node inside the program's own actor system (as a
// library) and an actor that drives it with the typed client.
func TestActorProgramUsesTypedClient(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions...)
	system := quietSystem()
	defer system.Shutdown()
	n, err := Spawn(system, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	report := make(chan string, 1)
	client := NewClientPIDs(system, []*actor.PID{n.PID()}, 5*time.Second)
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &controller{client: client, report: report} }))
	defer system.Root.Stop(pid)
	select {
	case got := <-report:
		if got != "ok" {
			t.Fatal(got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the controller actor did not report within 10s")
	}
}

// TestClientErrorsKeepTheirReason checks that a refusal reaches a Go caller as a typed error.
func TestClientErrorsKeepTheirReason(t *testing.T) {
	system := quietSystem()
	defer system.Shutdown()
	n, err := Spawn(system, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	c := NewClientPIDs(system, []*actor.PID{n.PID()}, 0)
	ctx := context.Background()
	key := &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "missing"}
	if _, err := c.Get(ctx, key, 0); !messages.IsNotFound(err) {
		t.Errorf("get of a missing object: err = %v, want NotFound", err)
	}
	if _, err := c.Put(ctx, []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"Bad_Name"}}`), messages.Reason_OPERATOR); !messages.IsInvalid(err) {
		t.Errorf("put of a bad name: err = %v, want Invalid", err)
	}
	if _, err := c.Create(ctx, pod("x"), messages.Reason_OPERATOR); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, pod("x"), messages.Reason_OPERATOR); !messages.IsAlreadyExists(err) {
		t.Errorf("second create: err = %v, want AlreadyExists", err)
	}
}
