package actors

import (
	"context"
	"encoding/json"
	"maps"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

func TestUnstructuredAccessors(t *testing.T) {
	u, err := DecodeUnstructured([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"prod","labels":{"app":"web","n":1},"resourceVersion":"42","uid":"u-1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"apiVersion", u.GetAPIVersion(), "apps/v1"},
		{"kind", u.GetKind(), "Deployment"},
		{"name", u.GetName(), "web"},
		{"namespace", u.GetNamespace(), "prod"},
		{"resourceVersion", u.GetResourceVersion(), "42"},
		{"uid", u.GetUID(), "u-1"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if got, want := u.GetLabels(), map[string]string{"app": "web"}; !maps.Equal(got, want) {
		t.Errorf("labels = %v, want %v (a label that is not a string left out)", got, want)
	}
	u.GetLabels()["app"] = "changed"
	if u.GetLabels()["app"] != "web" {
		t.Error("GetLabels returned the object's own map")
	}
	want := &messages.ResourceKey{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "prod", Name: "web"}
	if !proto.Equal(u.Key(), want) {
		t.Errorf("Key = %v, want %v", u.Key(), want)
	}
	b, _ := u.MarshalJSON()
	if k, err := KeyOf(b); err != nil || !proto.Equal(k, want) {
		t.Errorf("KeyOf = %v, %v, want %v", k, err, want)
	}
}

// TestUnstructuredSetters builds an object from nothing and takes fields away again; the
// encoding is the store's: keys sorted, no HTML escaping (which json.Marshal would add back).
func TestUnstructuredSetters(t *testing.T) {
	var u Unstructured
	if b, err := u.MarshalJSON(); err != nil || string(b) != "{}" {
		t.Fatalf("empty: %s, %v; want {}", b, err)
	}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetName("a<b>")
	u.SetNamespace("default")
	labels := map[string]string{"app": "web"}
	u.SetLabels(labels)
	labels["app"] = "changed"
	u.SetResourceVersion("7")
	tests := []struct {
		name   string
		change func(*Unstructured)
		want   string
	}{
		{"set", func(*Unstructured) {},
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"labels":{"app":"web"},"name":"a<b>","namespace":"default","resourceVersion":"7"}}`},
		{"cleared", func(u *Unstructured) {
			u.SetLabels(nil)
			u.SetResourceVersion("")
			u.SetNamespace("")
			u.SetKind("")
		}, `{"apiVersion":"v1","metadata":{"name":"a<b>"}}`},
		{"metadata not an object", func(u *Unstructured) {
			u.Object["metadata"] = "x"
			u.SetName("b")
		}, `{"apiVersion":"v1","metadata":{"name":"b"}}`},
	}
	for _, tt := range tests {
		tt.change(&u)
		b, err := u.MarshalJSON()
		if err != nil || string(b) != tt.want {
			t.Errorf("%s: %s, %v; want %s", tt.name, b, err, tt.want)
		}
	}
}

// TestUnstructuredRoundTrip: numbers come back exactly, YAML is read, and what is not one
// object is refused as Invalid.
func TestUnstructuredRoundTrip(t *testing.T) {
	in := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"spec":{"big":9007199254740993,"f":1.50}}`
	var u Unstructured
	if err := json.Unmarshal([]byte(in), &u); err != nil {
		t.Fatal(err)
	}
	if b, err := json.Marshal(&u); err != nil || string(b) != in {
		t.Fatalf("round trip: %s, %v; want %s", b, err, in)
	}
	if n, ok := u.Object["spec"].(map[string]any)["big"].(json.Number); !ok || n.String() != "9007199254740993" {
		t.Fatalf("spec.big = %#v, want json.Number 9007199254740993", u.Object["spec"].(map[string]any)["big"])
	}
	y, err := DecodeUnstructured([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\n"))
	if err != nil || y.GetName() != "from-yaml" {
		t.Fatalf("YAML: %v, %v", y, err)
	}
	for _, bad := range []string{`[1]`, `"x"`, `null`, `{"a":1} {"b":2}`, `{`} {
		if err := json.Unmarshal([]byte(bad), &u); err == nil {
			t.Errorf("%s: decoded, want an error", bad)
		}
		if _, err := DecodeUnstructured([]byte(bad)); !messages.IsInvalid(err) {
			t.Errorf("%s: err = %v, want Invalid", bad, err)
		}
	}
	u.Object["ch"] = make(chan int)
	if _, err := u.MarshalJSON(); !messages.IsInvalid(err) {
		t.Errorf("a channel in the object: err = %v, want Invalid", err)
	}
}

// TestClientObjects puts, gets and updates through Unstructured: what comes back is the object
// as stored, with the write's resourceVersion stamped into its metadata, and an update with a
// stale resourceVersion is a Conflict.
func TestClientObjects(t *testing.T) {
	_, c := embedded(t, Config{})
	ctx := context.Background()
	cm := &Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"k": "v"}}}
	cm.SetName("settings")
	cm.SetNamespace("default")
	stored, err := c.PutObject(ctx, cm, messages.Reason_OPERATOR)
	if err != nil {
		t.Fatal(err)
	}
	if stored.GetResourceVersion() == "" || stored.GetUID() == "" || cm.GetResourceVersion() != "" {
		t.Fatalf("stored %v (given %v): want resourceVersion and uid in what is returned, not in what was given", stored.Object, cm.Object)
	}
	rv, _ := strconv.ParseUint(stored.GetResourceVersion(), 10, 64)
	got, err := c.GetObject(ctx, stored.Key(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetResourceVersion() != stored.GetResourceVersion() || got.Object["data"].(map[string]any)["k"] != "v" {
		t.Fatalf("got %v, want %v", got.Object, stored.Object)
	}
	got.SetLabels(map[string]string{"tier": "1"})
	updated, err := c.UpdateObject(ctx, got, messages.Reason_OPERATOR)
	if err != nil {
		t.Fatal(err)
	}
	if updated.GetResourceVersion() == got.GetResourceVersion() || updated.GetLabels()["tier"] != "1" {
		t.Fatalf("updated %v: want a new resourceVersion and the label", updated.Object)
	}
	// got still carries the old resourceVersion: a compare-and-swap that lost.
	if _, err := c.UpdateObject(ctx, got, messages.Reason_OPERATOR); !messages.IsConflict(err) {
		t.Fatalf("update with a stale resourceVersion: err = %v, want Conflict", err)
	}
	if _, err := c.CreateObject(ctx, cm, messages.Reason_OPERATOR); !messages.IsAlreadyExists(err) {
		t.Fatalf("create of an existing object: err = %v, want AlreadyExists", err)
	}
	old, err := c.GetObject(ctx, stored.Key(), rv)
	if err != nil || old.GetLabels() != nil {
		t.Fatalf("get at %d: %v, %v; want the object before the label", rv, old, err)
	}
	if _, err := c.GetObject(ctx, &messages.ResourceKey{Version: "v1", Kind: "ConfigMap", Namespace: "default", Name: "nope"}, 0); !messages.IsNotFound(err) {
		t.Fatalf("get of a missing object: err = %v, want NotFound", err)
	}
}
