package actors

import (
	"context"
	"go.uber.org/zap"
	"testing"

	"github.com/kstore/kstore/messages"
)

func TestSmoke(t *testing.T) {
	lg, _ := zap.NewDevelopment()
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	sys, err := NewSystem("127.0.0.1:0", lg)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	c := NewClient(sys.ActorSystem, []string{n.Address()}, 0)
	res, err := c.Put(context.Background(), []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"}}`), messages.Reason_OPERATOR)
	t.Log(res, err)
	g, err := c.Get(context.Background(), &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "a"}, 0)
	t.Log(string(g.GetObject()), err)
	st, err := c.Status(context.Background())
	t.Log(st, err)
}
