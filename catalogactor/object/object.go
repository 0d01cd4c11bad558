// Package object holds the rules every stored object obeys: how it is decoded (JSON or YAML),
// how it is encoded (canonical JSON, so that every node stores the same bytes), the metadata
// fields the store reads and sets, and the validation that keeps bad input out of the Raft log.
//
// The package holds no state; the node's intake validates with it before proposing and the
// catalog applies with it.
package object

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"

	"github.com/kstore/kstore/messages"
)

// MaxSize is the largest object, encoded, that the store takes: 1.5 MiB, the request limit of
// both etcd (--max-request-bytes) and the Kubernetes API server.
const MaxSize = 3 << 19

// Object is a decoded object. Numbers are json.Number, so they round-trip exactly.
type Object map[string]any

// Decode reads an object from JSON or, when the input does not start with '{', YAML. It refuses
// input over MaxSize (TooLarge) and anything that is not a single object (Invalid). It reads
// what encoding/json reads; admission's stricter rules (see Canonical) are Prepare's, so that
// Decode still reads every object already stored.
func Decode(raw []byte) (Object, error) {
	if len(raw) > MaxSize {
		return nil, messages.Errorf(messages.StatusReason_TOO_LARGE,
			"object is %d bytes, over the limit of %d bytes (1.5 MiB); store large data elsewhere and reference it", len(raw), MaxSize)
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, messages.Errorf(messages.StatusReason_INVALID, "object is empty: give a JSON or YAML object with apiVersion, kind and metadata.name")
	}
	if trimmed[0] != '{' {
		if n := yamlDocuments(trimmed); n > 1 {
			return nil, messages.Errorf(messages.StatusReason_INVALID, "input holds %d YAML documents: give exactly one object", n)
		}
		j, err := yaml.YAMLToJSON(trimmed)
		if err != nil {
			return nil, messages.Errorf(messages.StatusReason_INVALID, "object is neither JSON nor valid YAML: %v", err)
		}
		trimmed = j
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, messages.Errorf(messages.StatusReason_INVALID, "object is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, messages.Errorf(messages.StatusReason_INVALID, "object is followed by more data: give exactly one object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, messages.Errorf(messages.StatusReason_INVALID, "object must be a JSON object, not %s", describe(v))
	}
	return Object(m), nil
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

// Encode returns the canonical JSON of o: keys sorted, no insignificant space, no HTML escaping.
// Equal objects encode to equal bytes, which is what makes apply deterministic and NoOp
// detection a byte comparison.
func (o Object) Encode() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any(o)); err != nil {
		// Only values Decode produced are ever encoded: maps, slices, strings, json.Number,
		// bools and nil. Anything else is a bug in this package.
		panic(fmt.Sprintf("object: encode: %v", err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

func (o Object) str(k string) string {
	s, _ := o[k].(string)
	return s
}

func (o Object) metadata() map[string]any {
	m, _ := o["metadata"].(map[string]any)
	return m
}

func (o Object) meta(k string) string {
	s, _ := o.metadata()[k].(string)
	return s
}

// setMeta sets metadata[k], creating metadata when absent; an empty v removes the field.
func (o Object) setMeta(k, v string) {
	m := o.metadata()
	if m == nil {
		if v == "" {
			return
		}
		m = map[string]any{}
		o["metadata"] = m
	}
	if v == "" {
		delete(m, k)
		return
	}
	m[k] = v
}

func (o Object) APIVersion() string        { return o.str("apiVersion") }
func (o Object) Kind() string              { return o.str("kind") }
func (o Object) Name() string              { return o.meta("name") }
func (o Object) Namespace() string         { return o.meta("namespace") }
func (o Object) UID() string               { return o.meta("uid") }
func (o Object) CreationTimestamp() string { return o.meta("creationTimestamp") }
func (o Object) ResourceVersion() string   { return o.meta("resourceVersion") }

func (o Object) SetNamespace(ns string)        { o.setMeta("namespace", ns) }
func (o Object) SetUID(uid string)             { o.setMeta("uid", uid) }
func (o Object) SetCreationTimestamp(t string) { o.setMeta("creationTimestamp", t) }

// SetResourceVersion stores rv as Kubernetes does: a decimal string.
func (o Object) SetResourceVersion(rv uint64) {
	o.setMeta("resourceVersion", strconv.FormatUint(rv, 10))
}

// Labels returns metadata.labels; values that are not strings are left out (validation refuses
// them before they are stored).
func (o Object) Labels() map[string]string {
	raw, _ := o.metadata()["labels"].(map[string]any)
	if len(raw) == 0 {
		return nil
	}
	l := make(map[string]string, len(raw))
	for k, v := range raw {
		if s, ok := v.(string); ok {
			l[k] = s
		}
	}
	return l
}

// Key is the key the object names: group and version from apiVersion, kind, namespace, name.
func (o Object) Key() *messages.ResourceKey {
	g, v := SplitAPIVersion(o.APIVersion())
	return &messages.ResourceKey{Group: g, Version: v, Kind: o.Kind(), Namespace: o.Namespace(), Name: o.Name()}
}

// SplitAPIVersion splits "apps/v1" into ("apps", "v1") and "v1" into ("", "v1").
func SplitAPIVersion(apiVersion string) (group, version string) {
	if i := bytes.IndexByte([]byte(apiVersion), '/'); i >= 0 {
		return apiVersion[:i], apiVersion[i+1:]
	}
	return "", apiVersion
}

// APIVersion joins a group and a version back: ("apps", "v1") → "apps/v1", ("", "v1") → "v1".
func APIVersion(group, version string) string {
	if group == "" {
		return version
	}
	return group + "/" + version
}

// ParseResourceVersion reads a metadata.resourceVersion: "" (none) is 0; otherwise it must be
// a resourceVersion the store writes, the decimal form of a Raft index: digits only, no leading
// zero, not 0 (no entry has index 0). Anything else is Invalid. Kubernetes reads "0" as none and
// "042" as 42; this store refuses both, since it compares a resourceVersion with the stored
// one as the strings they are, where "042" would be a Conflict that no retry could resolve.
func ParseResourceVersion(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	rv, err := strconv.ParseUint(s, 10, 64)
	if err != nil || s[0] == '0' {
		return 0, messages.Errorf(messages.StatusReason_INVALID,
			"metadata.resourceVersion %q is not a resourceVersion this store gave: use the value read from the object (a decimal number without leading zeros, such as \"42\"), or leave it out", s)
	}
	return rv, nil
}

// yamlDocuments counts the non-empty documents of a YAML stream, stopping at the first error
// (which YAMLToJSON then reports).
func yamlDocuments(b []byte) int {
	d := yamlv2.NewDecoder(bytes.NewReader(b))
	n := 0
	for {
		var v any
		if err := d.Decode(&v); err != nil {
			return n
		}
		if v != nil {
			n++
		}
	}
}
