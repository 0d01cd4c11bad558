package actors

import (
	"bytes"
	"context"
	"encoding/json"
	"iter"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

// Unstructured is an object of any type held as its decoded JSON, with typed accessors for the
// metadata the store reads, as apimachinery's unstructured.Unstructured: what a program uses
// when it has no Go type for what it stores. The client takes and returns it beside raw JSON
// (PutObject, GetObject, ListObjects; DecodeUnstructured for a watch event's object).
//
// Object holds what encoding/json decodes into, except that numbers are json.Number, so that
// every number round-trips exactly (a 64-bit integer is not rounded through float64): read
// spec.replicas as a json.Number, not an int64. Set any value encoding/json encodes.
//
// metadata.resourceVersion is a string, as in Kubernetes (GetResourceVersion): the store stamps
// the Raft index that wrote the object into it as a decimal string, and sends it back as such;
// the client's methods that take a resourceVersion (Get, Delete, Patch) take that number, and
// GetResult, CommandResult and WatchEvent carry it as a uint64.
//
// An Unstructured is not safe for concurrent use; the client does not keep the ones it is given
// or returns.
type Unstructured struct {
	Object map[string]any
}

// DecodeUnstructured reads an object from JSON or YAML, as Put takes it: Invalid when it is not
// a single object, TooLarge over object.MaxSize.
func DecodeUnstructured(b []byte) (*Unstructured, error) {
	o, err := object.Decode(b)
	if err != nil {
		return nil, err
	}
	return &Unstructured{Object: o}, nil
}

// MarshalJSON encodes the object as the store keeps objects: keys sorted, no insignificant
// space, no HTML escaping (json.Marshal of an Unstructured escapes <, > and & again, which
// changes no value). A nil Object is {}.
func (u *Unstructured) MarshalJSON() ([]byte, error) {
	if u.Object == nil {
		return []byte("{}"), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(u.Object); err != nil {
		return nil, messages.Errorf(messages.StatusReason_INVALID, "object cannot be encoded as JSON: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// UnmarshalJSON replaces the object with the one b holds (see DecodeUnstructured).
func (u *Unstructured) UnmarshalJSON(b []byte) error {
	o, err := object.Decode(b)
	if err != nil {
		return err
	}
	u.Object = o
	return nil
}

func (u *Unstructured) obj() object.Object { return object.Object(u.Object) }

// set sets a top-level string field; "" removes it.
func (u *Unstructured) set(k, v string) {
	if v == "" {
		delete(u.Object, k)
		return
	}
	if u.Object == nil {
		u.Object = map[string]any{}
	}
	u.Object[k] = v
}

// setMeta sets metadata[k], creating metadata when absent; a nil v removes the field.
func (u *Unstructured) setMeta(k string, v any) {
	m, _ := u.Object["metadata"].(map[string]any)
	if m == nil {
		if v == nil {
			return
		}
		if u.Object == nil {
			u.Object = map[string]any{}
		}
		m = map[string]any{}
		u.Object["metadata"] = m // a metadata that is not an object is replaced
	}
	if v == nil {
		delete(m, k)
		return
	}
	m[k] = v
}

// setMetaString sets metadata[k] to v; "" removes it.
func (u *Unstructured) setMetaString(k, v string) {
	if v == "" {
		u.setMeta(k, nil)
		return
	}
	u.setMeta(k, v)
}

// GetAPIVersion is apiVersion: "v1", "apps/v1".
func (u *Unstructured) GetAPIVersion() string { return u.obj().APIVersion() }

// SetAPIVersion sets apiVersion; "" removes it.
func (u *Unstructured) SetAPIVersion(v string) { u.set("apiVersion", v) }

// GetKind is kind: "Pod", "ConfigMap".
func (u *Unstructured) GetKind() string { return u.obj().Kind() }

// SetKind sets kind; "" removes it.
func (u *Unstructured) SetKind(kind string) { u.set("kind", kind) }

// GetName is metadata.name.
func (u *Unstructured) GetName() string { return u.obj().Name() }

// SetName sets metadata.name; "" removes it.
func (u *Unstructured) SetName(name string) { u.setMetaString("name", name) }

// GetNamespace is metadata.namespace, "" for an object of no namespace.
func (u *Unstructured) GetNamespace() string { return u.obj().Namespace() }

// SetNamespace sets metadata.namespace; "" removes it.
func (u *Unstructured) SetNamespace(ns string) { u.setMetaString("namespace", ns) }

// GetLabels returns a copy of metadata.labels, nil when there are none. Values that are not
// strings are left out (the store refuses them).
func (u *Unstructured) GetLabels() map[string]string { return u.obj().Labels() }

// SetLabels replaces metadata.labels with a copy of labels; nil or empty removes them.
func (u *Unstructured) SetLabels(labels map[string]string) {
	if len(labels) == 0 {
		u.setMeta("labels", nil)
		return
	}
	m := make(map[string]any, len(labels))
	for k, v := range labels {
		m[k] = v
	}
	u.setMeta("labels", m)
}

// GetResourceVersion is metadata.resourceVersion: the decimal Raft index of the write that
// stored this state, "" for an object not read from the store. Sent back in an update
// (UpdateObject), it is the precondition: Conflict when the stored object has moved on.
func (u *Unstructured) GetResourceVersion() string { return u.obj().ResourceVersion() }

// SetResourceVersion sets metadata.resourceVersion; "" removes it (an update then takes
// whatever is stored).
func (u *Unstructured) SetResourceVersion(rv string) { u.setMetaString("resourceVersion", rv) }

// GetUID is metadata.uid, which the store gives an object when it creates it.
func (u *Unstructured) GetUID() string { return u.obj().UID() }

// Key is the key the object names: group and version from apiVersion, kind, namespace, name.
func (u *Unstructured) Key() *messages.ResourceKey { return u.obj().Key() }

func (c *Client) writeObject(ctx context.Context, kind messages.CommandKind, obj *Unstructured, reason messages.Reason) (*Unstructured, error) {
	b, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	res, err := c.Do(ctx, &messages.Command{Kind: kind, Key: obj.Key(), Value: b, Reason: reason})
	if err != nil {
		return nil, err
	}
	return storedObject(res.GetObject())
}

// storedObject decodes an object the store returned.
func storedObject(b []byte) (*Unstructured, error) {
	if len(b) == 0 {
		return nil, messages.Errorf(messages.StatusReason_INTERNAL, "the node's reply holds no object")
	}
	u, err := DecodeUnstructured(b)
	if err != nil {
		return nil, messages.Errorf(messages.StatusReason_INTERNAL, "the node returned an object that does not decode: %v", err)
	}
	return u, nil
}

// PutObject creates or replaces obj (as Put) and returns the object as stored: with the
// resourceVersion of the write, and the uid and creationTimestamp the store keeps. obj itself
// is not changed. A Put that changed nothing (NoOp) returns the stored object as it was.
func (c *Client) PutObject(ctx context.Context, obj *Unstructured, reason messages.Reason) (*Unstructured, error) {
	return c.writeObject(ctx, messages.CommandKind_PUT, obj, reason)
}

// CreateObject creates obj (as Create; AlreadyExists when its key exists) and returns it as
// stored.
func (c *Client) CreateObject(ctx context.Context, obj *Unstructured, reason messages.Reason) (*Unstructured, error) {
	return c.writeObject(ctx, messages.CommandKind_CREATE, obj, reason)
}

// UpdateObject replaces an existing object (as Update) and returns it as stored. With a
// metadata.resourceVersion, as an object read from the store has, it is a compare-and-swap:
// Conflict when the stored object has another; read it again, change that, and update again.
func (c *Client) UpdateObject(ctx context.Context, obj *Unstructured, reason messages.Reason) (*Unstructured, error) {
	return c.writeObject(ctx, messages.CommandKind_UPDATE, obj, reason)
}

// GetObject reads an object (as Get), as of resourceVersion when non-zero.
func (c *Client) GetObject(ctx context.Context, key *messages.ResourceKey, resourceVersion uint64) (*Unstructured, error) {
	res, err := c.Get(ctx, key, resourceVersion)
	if err != nil {
		return nil, err
	}
	return storedObject(res.GetObject())
}

// ListObjects is ListAll with each object decoded.
func (c *Client) ListObjects(ctx context.Context, req *messages.ListRequest) iter.Seq2[*Unstructured, error] {
	return func(yield func(*Unstructured, error) bool) {
		for b, err := range c.ListAll(ctx, req) {
			if err != nil {
				yield(nil, err)
				return
			}
			u, err := storedObject(b)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(u, nil) {
				return
			}
		}
	}
}
