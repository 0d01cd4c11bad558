package watcheractor

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/messages"
)

// probe joins the hub with a route, as a watcher does, and records the revisions of the
// changes of every push it gets.
type probe struct {
	hub    *actor.PID
	join   join
	mu     sync.Mutex
	joined bool
	rvs    []uint64
}

func (p *probe) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.Request(p.hub, p.join)
	case joined:
		p.mu.Lock()
		defer p.mu.Unlock()
		p.joined = true
	case *push:
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range m.changes {
			p.rvs = append(p.rvs, c.ResourceVersion)
		}
	}
}

func (p *probe) got() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.rvs)
}

// TestHubPushesByRoute: a batch goes to the broad watchers and to the watchers of its changes'
// routes (name, namespace, node before and after), and to no other: the cost of a change
// follows the watchers it may concern. A watch waiting for a revision the node has not applied
// gets every batch.
func TestHubPushesByRoute(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer sys.Shutdown()
	hub := sys.Root.Spawn(NewHub(Config{FlushDelay: time.Millisecond}))
	defer func() { _ = sys.Root.StopFuture(hub).Wait() }()
	sys.Root.Send(hub, &catalogactor.Changes{Applied: 1})

	routeOf := func(req *messages.WatchRequest) route {
		f, err := newFilter(req)
		if err != nil {
			t.Fatal(err)
		}
		return f.route()
	}
	pods := func(extra func(*messages.WatchRequest)) route {
		req := &messages.WatchRequest{Version: "v1", Kind: "Pod"}
		extra(req)
		return routeOf(req)
	}
	probes := map[string]*probe{
		"namespace a":     {join: join{from: 1, route: pods(func(r *messages.WatchRequest) { r.Namespace = "a" })}},
		"node n1":         {join: join{from: 1, route: pods(func(r *messages.WatchRequest) { r.FieldSelector = "spec.nodeName=n1" })}},
		"name x":          {join: join{from: 1, route: pods(func(r *messages.WatchRequest) { r.FieldSelector = "metadata.name=x,spec.nodeName=n1" })}},
		"fields ns a":     {join: join{from: 1, route: pods(func(r *messages.WatchRequest) { r.FieldSelector = "metadata.namespace=a" })}},
		"every Pod":       {join: join{from: 1, route: pods(func(*messages.WatchRequest) {})}},
		"not n1":          {join: join{from: 1, route: pods(func(r *messages.WatchRequest) { r.FieldSelector = "spec.nodeName!=n1" })}},
		"every type":      {join: join{from: 1, route: routeOf(&messages.WatchRequest{Namespace: "a"})}},
		"waits, ns b":     {join: join{from: 1, waitFor: 1000, route: pods(func(r *messages.WatchRequest) { r.Namespace = "b" })}},
		"ConfigMaps in a": {join: join{from: 1, route: routeOf(&messages.WatchRequest{Version: "v1", Kind: "ConfigMap", Namespace: "a"})}},
	}
	for _, p := range probes {
		p.hub = hub
		sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }))
	}
	for name, p := range probes {
		waitFor(t, name+" to join", func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.joined
		})
	}
	pod := func(ns, name, node string) []byte {
		return fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":%q},"spec":{"nodeName":%q}}`, name, ns, node)
	}
	key := func(ns, name string) *messages.ResourceKey {
		return &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: ns, Name: name}
	}
	changes := []catalogactor.Change{
		{Type: catalogactor.Added, Key: key("b", "p"), Object: pod("b", "p", "")},                                 // 2
		{Type: catalogactor.Added, Key: key("a", "q"), Object: pod("a", "q", "")},                                 // 3
		{Type: catalogactor.Modified, Key: key("b", "r"), Prev: pod("b", "r", ""), Object: pod("b", "r", "n1")},   // 4
		{Type: catalogactor.Modified, Key: key("b", "r"), Prev: pod("b", "r", "n1"), Object: pod("b", "r", "n2")}, // 5
		{Type: catalogactor.Added, Key: key("c", "x"), Object: pod("c", "x", "")},                                 // 6
		{Type: catalogactor.Deleted, Key: key("a", "q"), Prev: pod("a", "q", ""), Object: pod("a", "q", "")},      // 7
	}
	every := probes["every Pod"]
	for i, ch := range changes {
		rv := uint64(i + 2)
		ch.ResourceVersion = rv
		sys.Root.Send(hub, &catalogactor.Changes{Changes: []catalogactor.Change{ch}, Applied: rv})
		// One flush per change: the next goes out after the broad watcher got this one.
		waitFor(t, fmt.Sprintf("the push of %d", rv), func() bool { return slices.Contains(every.got(), rv) })
	}
	want := map[string][]uint64{
		"namespace a":     {3, 7},
		"node n1":         {4, 5},
		"name x":          {6},
		"fields ns a":     {3, 7},
		"every Pod":       {2, 3, 4, 5, 6, 7},
		"not n1":          {2, 3, 4, 5, 6, 7},
		"every type":      {2, 3, 4, 5, 6, 7},
		"waits, ns b":     {2, 3, 4, 5, 6, 7},
		"ConfigMaps in a": nil,
	}
	// A batch that concerns every probe, with changes that name the same routes (namespace a
	// and node n1 twice each): each probe gets it once. Then another that concerns every probe:
	// the hub pushes to each in order, so a probe that has it has had every push before it.
	sys.Root.Send(hub, &catalogactor.Changes{Applied: 10, Changes: []catalogactor.Change{
		{Type: catalogactor.Added, ResourceVersion: 8, Key: &messages.ResourceKey{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "cm"}, Object: []byte(`{}`)},
		{Type: catalogactor.Added, ResourceVersion: 9, Key: key("a", "x"), Object: pod("a", "x", "n1")},
		{Type: catalogactor.Added, ResourceVersion: 10, Key: key("a", "y"), Object: pod("a", "y", "n1")},
	}})
	sys.Root.Send(hub, &catalogactor.Changes{Applied: 12, Changes: []catalogactor.Change{
		{Type: catalogactor.Modified, ResourceVersion: 11, Key: &messages.ResourceKey{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "cm"}, Prev: []byte(`{}`), Object: []byte(`{}`)},
		{Type: catalogactor.Modified, ResourceVersion: 12, Key: key("a", "x"), Prev: pod("a", "x", "n1"), Object: pod("a", "x", "n1")},
	}})
	for name, p := range probes {
		waitFor(t, name+" to get the last batch", func() bool { return slices.Contains(p.got(), 12) })
		all := p.got()
		got := slices.DeleteFunc(slices.Clone(all), func(rv uint64) bool { return rv >= 8 })
		if !slices.Equal(got, want[name]) {
			t.Errorf("%s got the pushes of %v, want %v", name, got, want[name])
		}
		if last := slices.DeleteFunc(all, func(rv uint64) bool { return rv < 8 }); !slices.Equal(last, []uint64{8, 9, 10, 11, 12}) {
			t.Errorf("%s got the last two batches as %v, want each once: [8 9 10 11 12]", name, last)
		}
	}
}
