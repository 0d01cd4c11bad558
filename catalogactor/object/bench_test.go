package object

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kstore/kstore/messages"
)

// benchDeployment is a Deployment as kubectl apply sends it: a few KiB, labels, a container
// spec, and the last-applied-configuration annotation, a JSON document escaped into a string
// (the one part of a typical object that is full of escapes).
func benchDeployment() []byte {
	spec := map[string]any{
		"replicas": 3,
		"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
		"template": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "web", "tier": "frontend"}},
			"spec": map[string]any{
				"containers": []any{map[string]any{
					"name":  "web",
					"image": "registry.example.com/team/web:1.24.3",
					"args":  []any{"--port=8080", "--log-level=info", "--greeting=héllo wörld"},
					"env": []any{
						map[string]any{"name": "MODE", "value": "production"},
						map[string]any{"name": "QUOTE", "value": `say "hi" <now> & then`},
					},
					"ports":     []any{map[string]any{"containerPort": 8080, "protocol": "TCP"}},
					"resources": map[string]any{"limits": map[string]any{"cpu": "500m", "memory": "256Mi"}, "requests": map[string]any{"cpu": 0.25, "memory": "128Mi"}},
				}},
			},
		},
	}
	obj := map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata": map[string]any{
			"name":      "web",
			"namespace": "prod",
			"labels":    map[string]any{"app": "web", "team": "storefront", "app.kubernetes.io/version": "1.24.3"},
		},
		"spec": spec,
	}
	applied, _ := json.Marshal(obj)
	obj["metadata"].(map[string]any)["annotations"] = map[string]any{
		"kubectl.kubernetes.io/last-applied-configuration": string(applied) + "\n",
	}
	b, _ := json.MarshalIndent(obj, "", "  ")
	return b
}

// benchConfigMap is a large ConfigMap: about 100 KiB of multi-line text values.
func benchConfigMap() []byte {
	data := map[string]any{}
	for i := range 50 {
		data[fmt.Sprintf("file-%02d.conf", i)] = strings.Repeat(fmt.Sprintf("key%d = value %d\t# comment\n", i, i), 80)
	}
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "big", "namespace": "prod"},
		"data":     data,
	})
	return b
}

func BenchmarkCanonical(b *testing.B) {
	for _, bb := range []struct {
		name string
		give []byte
	}{
		{"deployment", benchDeployment()},
		{"deployment-unsorted", reverseKeys(benchDeployment())},
		{"configmap-100k", benchConfigMap()},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(bb.give)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Canonical(bb.give); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPrepare(b *testing.B) {
	give := benchDeployment()
	key := &messages.ResourceKey{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "prod", Name: "web"}
	b.SetBytes(int64(len(give)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Prepare(give, key); err != nil {
			b.Fatal(err)
		}
	}
}

// reverseKeys rewrites a JSON object with every object's keys in descending order, as a
// client that does not sort its keys might send it: the work Canonical does beyond copying.
func reverseKeys(b []byte) []byte {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		panic(err)
	}
	var buf bytes.Buffer
	var write func(v any)
	write = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			slices.Reverse(keys)
			buf.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					buf.WriteByte(',')
				}
				kb, _ := json.Marshal(k)
				buf.Write(kb)
				buf.WriteByte(':')
				write(v[k])
			}
			buf.WriteByte('}')
		case []any:
			buf.WriteByte('[')
			for i, e := range v {
				if i > 0 {
					buf.WriteByte(',')
				}
				write(e)
			}
			buf.WriteByte(']')
		default:
			eb, _ := json.Marshal(v)
			buf.Write(eb)
		}
	}
	write(v)
	return buf.Bytes()
}

// BenchmarkValidateCommitted is what Apply spends re-checking a put's value from the log.
func BenchmarkValidateCommitted(b *testing.B) {
	key := &messages.ResourceKey{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "prod", Name: "web"}
	r, err := Prepare(benchDeployment(), key)
	if err != nil {
		b.Fatal(err)
	}
	value := r.Bytes()
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ValidateCommitted(value, key); err != nil {
			b.Fatal(err)
		}
	}
}
