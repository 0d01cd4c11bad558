package object

import (
	"bytes"
	"testing"
)

// rawCases are canonical-or-not objects the byte-level functions must agree with Decode+Encode on.
var rawCases = []string{
	`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`,
	`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"ns","labels":{"x":"y","a\"b":"c\\d"}},"spec":{"list":[1,2.50,{"k":"}{]["}],"n":null,"t":true}}`,
	`{"z":1,"a":{"b":[[],{}]},"metadata":{"uid":"u","resourceVersion":"7","creationTimestamp":"t","name":"n"}}`,
	` { "kind" : "K" , "metadata" : { "name" : "é\u00e9<>&" } } `,
	`{"apiVersion":"v1","kind":"Pod","metadata":{}}`,
	`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"big":12345678901234567890123}`,
}

func TestRawMatchesDecodeEncode(t *testing.T) {
	for _, give := range rawCases {
		o, err := Decode([]byte(give))
		if err != nil {
			t.Fatalf("Decode(%s): %v", give, err)
		}
		canonical := o.Encode()
		r, err := ParseRaw(canonical)
		if err != nil {
			t.Fatalf("ParseRaw(%s): %v", canonical, err)
		}
		if got := r.Bytes(); !bytes.Equal(got, canonical) {
			t.Errorf("ParseRaw(%s).Bytes() = %s", canonical, got)
		}
		if r.APIVersion() != o.APIVersion() || r.Kind() != o.Kind() || r.Meta("name") != o.Name() {
			t.Errorf("%s: raw reads %q %q %q, decoded %q %q %q", give, r.APIVersion(), r.Kind(), r.Meta("name"), o.APIVersion(), o.Kind(), o.Name())
		}
		r.SetMeta("uid", "1234")
		r.SetMeta("resourceVersion", "")
		r.SetResourceVersion(42)
		r.SetMeta("creationTimestamp", "")
		r.SetMeta("namespace", "zz")
		o.SetUID("1234")
		o.SetResourceVersion(42)
		o.SetCreationTimestamp("")
		o.SetNamespace("zz")
		if got, want := r.Bytes(), o.Encode(); !bytes.Equal(got, want) {
			t.Errorf("after setting metadata\n raw    %s\n decode %s", got, want)
		}
	}
}

func FuzzRaw(f *testing.F) {
	for _, c := range rawCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, give string) {
		o, err := Decode([]byte(give))
		if err != nil {
			return
		}
		if _, ok := o["metadata"].(map[string]any); !ok {
			return
		}
		canonical := o.Encode()
		r, err := ParseRaw(canonical)
		if err != nil {
			t.Fatalf("ParseRaw(%s): %v", canonical, err)
		}
		if got := r.Bytes(); !bytes.Equal(got, canonical) {
			t.Fatalf("round trip\n got  %s\n want %s", got, canonical)
		}
		r.SetMeta("uid", "u-1")
		r.SetResourceVersion(9)
		o.SetUID("u-1")
		o.SetResourceVersion(9)
		if got, want := r.Bytes(), o.Encode(); !bytes.Equal(got, want) {
			t.Fatalf("set\n got  %s\n want %s", got, want)
		}
		// Non-canonical input must not crash the byte-level reader.
		_, _ = ParseRaw([]byte(give))
	})
}
