package actors_test

import (
	"context"
	"fmt"
	"os"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/messages"
)

// A node and a client in one program: put an object, read it back, list, and watch.
func Example() {
	dir, err := os.MkdirTemp("", "kstore-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	// A single-node store in this process (no Listen: no port, no remote), and a client of it in
	// the same actor system.
	node, err := actors.Start(actors.Config{DataDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Stop()
	client := actors.NewClientPIDs(node.System(), []*actor.PID{node.PID()}, 0)
	defer client.Close()
	ctx := context.Background()

	// Put files an object under its apiVersion, kind, namespace and name.
	obj := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"default"},"data":{"mode":"fast"}}`)
	put, err := client.Put(ctx, obj, messages.Reason_OPERATOR)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("put:", messages.OpJSON(put.GetOp()), "at", put.GetResourceVersion())

	// Get reads it back, with the resourceVersion the store stamped in.
	key, err := actors.KeyOf(obj)
	if err != nil {
		fmt.Println(err)
		return
	}
	cm, err := client.GetObject(ctx, key, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("get:", cm.GetNamespace()+"/"+cm.GetName(), "resourceVersion", cm.GetResourceVersion())

	// ListAll reads every page of a list at one revision.
	for _, name := range []string{"a", "b"} {
		pod := &actors.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod"}}
		pod.SetName(name)
		pod.SetNamespace("default")
		pod.SetLabels(map[string]string{"app": "web"})
		if _, err := client.PutObject(ctx, pod, messages.Reason_OPERATOR); err != nil {
			fmt.Println(err)
			return
		}
	}
	for pod, err := range client.ListObjects(ctx, &messages.ListRequest{Version: "v1", Kind: "Pod", Namespace: "default", Limit: 1}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("list:", pod.GetName(), pod.GetLabels(), "resourceVersion", pod.GetResourceVersion())
	}

	// Watch the ConfigMap's changes after the put; the context ends the watch.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := client.Watch(wctx, &messages.WatchRequest{Version: "v1", Kind: "ConfigMap", Namespace: "default", ResourceVersion: put.GetResourceVersion()}, actors.WatchOptions{})
	cm.Object["data"] = map[string]any{"mode": "safe"}
	if _, err := client.UpdateObject(ctx, cm, messages.Reason_OPERATOR); err != nil {
		fmt.Println(err)
		return
	}
	ev := <-w.Events()
	fmt.Println("watch:", messages.EventTypeJSON(ev.GetType()), ev.GetKey().GetName(), "at", ev.GetResourceVersion())
	cancel()
	<-w.Done()
	fmt.Println("watch ended:", w.Err())

	// Output:
	// put: Created at 3
	// get: default/settings resourceVersion 3
	// list: a map[app:web] resourceVersion 4
	// list: b map[app:web] resourceVersion 5
	// watch: MODIFIED settings at 6
	// watch ended: context canceled
}

// An Unstructured is an object of any type: typed accessors for its metadata, the rest as
// decoded JSON (numbers as json.Number, exact).
func ExampleUnstructured() {
	u, err := actors.DecodeUnstructured([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"prod","resourceVersion":"42"},"spec":{"replicas":3}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(u.GetAPIVersion(), u.GetKind(), u.GetNamespace()+"/"+u.GetName(), "at", u.GetResourceVersion())
	fmt.Println("replicas:", u.Object["spec"].(map[string]any)["replicas"])

	u.SetLabels(map[string]string{"app": "web"})
	u.SetResourceVersion("") // no precondition for the next update
	b, err := u.MarshalJSON()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))
	// Output:
	// apps/v1 Deployment prod/web at 42
	// replicas: 3
	// {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"app":"web"},"name":"web","namespace":"prod"},"spec":{"replicas":3}}
}

// KeyOf is the key Put files an object under.
func ExampleKeyOf() {
	key, err := actors.KeyOf([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("group %q version %q kind %q namespace %q name %q\n", key.GetGroup(), key.GetVersion(), key.GetKind(), key.GetNamespace(), key.GetName())
	// Output:
	// group "apps" version "v1" kind "Deployment" namespace "prod" name "web"
}
