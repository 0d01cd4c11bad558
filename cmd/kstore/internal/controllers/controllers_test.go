package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/messages"
)

// leakOptions: protoactor's dead-letter throttle keeps a goroutine per actor system that ends a
// little after the system (as in package actors' tests).
var leakOptions = []goleak.Option{goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1")}

// convergeWithin bounds each wait for the controllers to reach a state: on a 2-core machine
// under -race a write commits in milliseconds, so the few writes of each step take well under a
// second; the rest is slack for a loaded machine.
const convergeWithin = 10 * time.Second

func TestRunNeedsAClient(t *testing.T) {
	if err := Run(context.Background(), Config{}); err != errNoClient {
		t.Fatalf("Run without a client: %v, want %v", err, errNoClient)
	}
}

// TestControllers runs the three controllers against a node in this process: Pods wait for a
// Node, a ReplicaSet gets its Pods, each bound to a Node round robin; scaling up and down
// converges with no index made twice; deleting the ReplicaSet lets the garbage collector take
// its Pods. It is the package's one test with a protoactor remote (see package actors:
// inOwnProcess): one remote per test process.
func TestControllers(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions...)
	n, err := actors.Start(actors.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	c := actors.NewClientPIDs(n.System(), []*actor.PID{n.PID()}, 0)
	defer c.Close()
	ctx := context.Background()
	view := watchPods(t, c)
	defer view.w.Stop()

	// Pods wait for a Node. These controllers see one namespace only.
	stopEarly := run(t, n, c, "other")
	defer stopEarly()
	early := put(t, c, replicaSetJSON("other", "early", 2))
	view.waitFor(t, "2 Pods of other/early, unscheduled (there is no Node)", func(pods map[objectKey]*seenPod) string {
		return replicas(pods, "other", "early", early, 2, func(p *seenPod) string {
			if p.Spec.NodeName != "" {
				return fmt.Sprintf("%s is bound to %q with no Node there", p.Metadata.Name, p.Spec.NodeName)
			}
			return ""
		})
	})
	put(t, c, nodeJSON("node-b"))
	view.waitFor(t, "both Pods of other/early on node-b, the one Node", func(pods map[objectKey]*seenPod) string {
		return replicas(pods, "other", "early", early, 2, onNode("node-b"))
	})
	stopEarly()

	// The other Nodes arrive while no controller runs, so that the scheduler's cache holds all
	// three from its first list on: a Node added while Pods are being bound may reach the
	// scheduler after them (the informers are separate streams), and round robin would skip it.
	put(t, c, nodeJSON("node-c"))
	put(t, c, nodeJSON("node-a"))
	defer run(t, n, c, "")()

	// A ReplicaSet of 3 on 3 Nodes: one Pod each.
	web := put(t, c, replicaSetJSON("default", "web", 3))
	view.waitFor(t, "3 Pods of web, each on a Node of its own", func(pods map[objectKey]*seenPod) string {
		if s := replicas(pods, "default", "web", web, 3, bound); s != "" {
			return s
		}
		return spread(pods, "default", 1, 1)
	})

	scale(t, c, "web", 5)
	view.waitFor(t, "5 Pods of web (web-0..web-4), spread round robin", func(pods map[objectKey]*seenPod) string {
		if s := replicas(pods, "default", "web", web, 5, bound); s != "" {
			return s
		}
		return spread(pods, "default", 1, 2)
	})

	scale(t, c, "web", 1)
	view.waitFor(t, "1 Pod of web, web-0: the highest indices went first", func(pods map[objectKey]*seenPod) string {
		return replicas(pods, "default", "web", web, 1, bound)
	})
	got := slices.Sorted(slices.Values(view.created[web]))
	if !slices.Equal(got, []string{"web-0", "web-1", "web-2", "web-3", "web-4"}) {
		t.Errorf("Pods created for web over the test: %v; want web-0..web-4, each once", got)
	}

	if _, err := c.Delete(ctx, rsKey("default", "web"), 0, messages.Reason_OPERATOR); err != nil {
		t.Fatal(err)
	}
	view.waitFor(t, "no Pod of web left: the garbage collector took them", func(pods map[objectKey]*seenPod) string {
		var left []string
		for k := range pods {
			if k.namespace == "default" {
				left = append(left, k.name)
			}
		}
		if len(left) > 0 {
			sort.Strings(left)
			return "still there: " + strings.Join(left, ", ")
		}
		return ""
	})
	if _, ok := view.pods[objectKey{"other", "early-0"}]; !ok {
		t.Error("the garbage collector took a Pod of other/early, whose ReplicaSet exists")
	}
}

// run runs the controllers of namespace ns (all when empty) until the returned function is
// called; that stops them and checks that Run returned nil. Calling it again does nothing.
func run(t *testing.T, n *actors.Node, c *actors.Client, ns string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() {
		ran <- Run(ctx, Config{Client: c, System: n.System(), Namespace: ns, Logger: zaptest.NewLogger(t, zaptest.Level(zap.DebugLevel))})
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-ran; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
}

// seenPod is a Pod as the test's watch last saw it.
type seenPod struct {
	pod
	RV uint64
}

// podView is every Pod in the store, kept by a watch of the test's own (not an informer: the
// test does not read through the code the controllers read through).
type podView struct {
	w       *actors.Watch
	pods    map[objectKey]*seenPod
	created map[string][]string // ReplicaSet uid → names of the Pods created for it, in order
}

func watchPods(t *testing.T, c *actors.Client) *podView {
	return &podView{
		w:       c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "Pod"}, actors.WatchOptions{}),
		pods:    map[objectKey]*seenPod{},
		created: map[string][]string{},
	}
}

// waitFor takes in watch events until cond, given the Pods, returns "" (it says what is
// amiss otherwise), and fails the test after convergeWithin.
func (v *podView) waitFor(t *testing.T, want string, cond func(map[objectKey]*seenPod) string) {
	t.Helper()
	deadline := time.NewTimer(convergeWithin)
	defer deadline.Stop()
	for {
		amiss := cond(v.pods)
		if amiss == "" {
			return
		}
		select {
		case ev, ok := <-v.w.Events():
			if !ok {
				t.Fatalf("the Pod watch ended: %v", v.w.Err())
			}
			v.take(t, ev)
		case <-deadline.C:
			t.Fatalf("not within %v: want %s; but %s", convergeWithin, want, amiss)
		}
	}
}

func (v *podView) take(t *testing.T, ev *messages.WatchEvent) {
	t.Helper()
	k := objectKey{namespace: ev.GetKey().GetNamespace(), name: ev.GetKey().GetName()}
	switch ev.GetType() {
	case messages.EventType_EVENT_ADDED, messages.EventType_EVENT_MODIFIED:
		var p seenPod
		if err := json.Unmarshal(ev.GetObject(), &p.pod); err != nil {
			t.Fatalf("Pod %s: %v", k, err)
		}
		p.RV = ev.GetResourceVersion()
		if _, had := v.pods[k]; !had {
			for _, ref := range p.Metadata.OwnerReferences {
				v.created[ref.UID] = append(v.created[ref.UID], k.name)
			}
		}
		v.pods[k] = &p
	case messages.EventType_EVENT_DELETED:
		delete(v.pods, k)
	case messages.EventType_EVENT_ERROR:
		t.Fatalf("Pod watch: %v", ev.GetStatus().Err())
	}
}

// replicas says what is amiss with the Pods of ReplicaSet ns/rs (uid): want Pods named
// rs-0..rs-(want-1), no other Pod in ns, each labelled from the selector and the template,
// with the template's spec and rs as its controller, and each passing check.
func replicas(pods map[objectKey]*seenPod, ns, rs, uid string, want int, check func(*seenPod) string) string {
	var names []string
	for k := range pods {
		if k.namespace == ns {
			names = append(names, k.name)
		}
	}
	var wantNames []string
	for i := range want {
		wantNames = append(wantNames, podName(rs, i))
	}
	sort.Strings(names)
	sort.Strings(wantNames)
	if !slices.Equal(names, wantNames) {
		return fmt.Sprintf("the Pods in %s are %v, not %v", ns, names, wantNames)
	}
	for _, name := range names {
		p := pods[objectKey{ns, name}]
		refs := p.Metadata.OwnerReferences
		if len(refs) != 1 || refs[0].APIVersion != "apps/v1" || refs[0].Kind != "ReplicaSet" || refs[0].Name != rs ||
			refs[0].UID != uid || refs[0].Controller == nil || !*refs[0].Controller {
			return fmt.Sprintf("%s has ownerReferences %+v, not ReplicaSet %s (uid %s) as controller", name, refs, rs, uid)
		}
		if l := p.Metadata.Labels; l["app"] != rs || l["tier"] != "front" {
			return fmt.Sprintf("%s has labels %v, not app=%s (selector) and tier=front (template)", name, l, rs)
		}
		if s := check(p); s != "" {
			return s
		}
	}
	return ""
}

func bound(p *seenPod) string {
	if p.Spec.NodeName == "" {
		return p.Metadata.Name + " is not bound to a Node"
	}
	return ""
}

func onNode(node string) func(*seenPod) string {
	return func(p *seenPod) string {
		if p.Spec.NodeName != node {
			return fmt.Sprintf("%s is on %q, not %q", p.Metadata.Name, p.Spec.NodeName, node)
		}
		return ""
	}
}

// spread says what is amiss when the Pods of ns are not spread over node-a, node-b and node-c
// with at least least and at most most on each.
func spread(pods map[objectKey]*seenPod, ns string, least, most int) string {
	on := map[string]int{"node-a": 0, "node-b": 0, "node-c": 0}
	for k, p := range pods {
		if k.namespace == ns {
			on[p.Spec.NodeName]++
		}
	}
	for _, n := range on {
		if n < least || n > most {
			return fmt.Sprintf("the Pods per node are %v: want %d to %d on each of node-a, node-b, node-c", on, least, most)
		}
	}
	return ""
}

func rsKey(ns, name string) *messages.ResourceKey {
	return resourceKey(replicaSetType, objectKey{namespace: ns, name: name})
}

func replicaSetJSON(ns, name string, replicas int) string {
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":%q,"namespace":%q},
		"spec":{"replicas":%d,"selector":{"matchLabels":{"app":%q}},
		"template":{"metadata":{"labels":{"app":%q,"tier":"front"}},"spec":{"containers":[{"name":"app","image":"nginx"}]}}}}`,
		name, ns, replicas, name, name)
}

func nodeJSON(name string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Node","metadata":{"name":%q}}`, name)
}

// put applies obj as an operator and returns the stored object's uid.
func put(t *testing.T, c *actors.Client, obj string) string {
	t.Helper()
	res, err := c.Put(context.Background(), []byte(obj), messages.Reason_OPERATOR)
	if err != nil {
		t.Fatalf("put %s: %v", obj, err)
	}
	var m struct {
		Metadata objectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(res.GetObject(), &m); err != nil || m.Metadata.UID == "" {
		t.Fatalf("put %s: stored object %s has no uid (%v)", obj, res.GetObject(), err)
	}
	return m.Metadata.UID
}

// scale sets spec.replicas of ReplicaSet default/name, as kubectl scale does.
func scale(t *testing.T, c *actors.Client, name string, replicas int) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	if _, err := c.Patch(context.Background(), rsKey("default", name), messages.PatchType_MERGE_PATCH, []byte(patch), 0, messages.Reason_OPERATOR); err != nil {
		t.Fatalf("scale %s to %d: %v", name, replicas, err)
	}
}
