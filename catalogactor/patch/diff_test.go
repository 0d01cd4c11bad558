package patch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The differential tests hold Merge and JSON to json-patch v5 on generated inputs: both fail,
// or both succeed with the same canonical bytes, or they differ for a reason doc.go lists (the
// counts are logged). The generators are seeded, so a failure reproduces.

var (
	genKeys    = []string{"a", "b", "c", "d", "k", "a/b", "~1", "~", "é", "x y", "0", "1"}
	genStrings = []string{"", "a", "b", "é", "\u2028", "<&>", "a/b", "~0", "x y", `"q"`, `\`, "\n", "\u00e9", "😀"}
	genNumbers = []string{"0", "1", "-1", "2", "10", "1.5", "1.0", "1e2", "100", "-0", "12345678901234567890", "0.1"}
)

// genValue returns a random JSON value (Go form, json.Number for numbers) nested at most depth.
func genValue(r *rand.Rand, depth int, keys []string) any {
	n := 6
	if depth > 0 {
		n = 9
	}
	switch r.Intn(n) {
	case 0:
		return nil
	case 1:
		return r.Intn(2) == 0
	case 2, 3:
		return json.Number(genNumbers[r.Intn(len(genNumbers))])
	case 4, 5:
		return genStrings[r.Intn(len(genStrings))]
	case 6:
		a := make([]any, r.Intn(4))
		for i := range a {
			a[i] = genValue(r, depth-1, keys)
		}
		return a
	default:
		return genObject(r, depth-1, keys)
	}
}

func genObject(r *rand.Rand, depth int, keys []string) map[string]any {
	m := map[string]any{}
	for range r.Intn(5) {
		m[keys[r.Intn(len(keys))]] = genValue(r, depth, keys)
	}
	return m
}

// marshal encodes v, escaping HTML or not at random (json-patch keeps what it is given).
func marshal(r *rand.Rand, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(r.Intn(2) == 0)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// genMergePatch returns a merge patch for doc: nulls that remove, objects that merge, values
// that replace (objects with nulls and arrays of them among them).
func genMergePatch(r *rand.Rand, doc map[string]any, depth int) map[string]any {
	p := map[string]any{}
	keys := append([]string{""}, genKeys...)
	for range 1 + r.Intn(4) {
		k := keys[r.Intn(len(keys))]
		if r.Intn(2) == 0 && len(doc) > 0 {
			k = mapKeys(doc)[r.Intn(len(doc))]
		}
		switch cur, _ := doc[k].(map[string]any); {
		case r.Intn(4) == 0:
			p[k] = nil
		case cur != nil && depth > 0 && r.Intn(2) == 0:
			p[k] = genMergePatch(r, cur, depth-1)
		default:
			p[k] = genValue(r, depth, keys)
		}
	}
	return p
}

func mapKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// pointers lists the pointer of every value in v.
func pointers(v any, at string, out []string) []string {
	out = append(out, at)
	switch x := v.(type) {
	case map[string]any:
		for _, k := range mapKeys(x) {
			out = pointers(x[k], at+"/"+strings.NewReplacer("~", "~0", "/", "~1").Replace(k), out)
		}
	case []any:
		for i, e := range x {
			out = pointers(e, fmt.Sprintf("%s/%d", at, i), out)
		}
	}
	return out
}

// lookup returns the value at pointer p of v.
func lookup(v any, p string) (any, bool) {
	tokens, err := parsePointer(p)
	if err != nil {
		return nil, false
	}
	for _, t := range tokens {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[t]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// genJSONPatch returns a JSON patch for doc. Each operation is made for the document as the
// operations before it leave it (this package's JSON computes that; json-patch stays the
// oracle): its paths are mostly that document's own, plus paths one past them, the end of
// arrays, missing members and the root, and most tests test the value there.
func genJSONPatch(r *rand.Rand, doc map[string]any) []byte {
	var cur any = doc
	kinds := []string{"add", "add", "remove", "replace", "move", "copy", "test", "test"}
	var ops []string
	for range 1 + r.Intn(6) {
		ps := pointers(cur, "", nil)
		// at returns an existing value's pointer; fresh (for add and the targets of move and
		// copy) a new place beside or inside one; now and then something odd.
		at := func(fresh bool) string {
			p := "" // the root, now and then
			if len(ps) > 1 && r.Intn(20) > 0 {
				p = ps[1+r.Intn(len(ps)-1)]
			}
			if r.Intn(30) == 0 {
				return []string{"", "/", "/a/01", "x", "/~2", "/missing" + p, p + "/-", p + "/9"}[r.Intn(8)]
			}
			if !fresh || r.Intn(3) == 0 {
				return p
			}
			switch v, _ := lookup(cur, p); v := v.(type) {
			case map[string]any:
				return p + "/" + genKeys[r.Intn(len(genKeys))]
			case []any:
				if r.Intn(3) == 0 {
					return p + "/-"
				}
				return fmt.Sprintf("%s/%d", p, r.Intn(len(v)+1))
			}
			return p
		}
		kind := kinds[r.Intn(len(kinds))]
		op := map[string]any{"op": kind}
		switch kind {
		case "move", "copy":
			op["from"] = at(false)
			op["path"] = at(true)
		case "add", "replace":
			op["path"] = at(kind == "add")
			op["value"] = genValue(r, 2, genKeys[:8])
		case "test":
			op["path"] = at(false)
			if v, ok := lookup(cur, op["path"].(string)); ok && r.Intn(5) > 0 {
				op["value"] = v
			} else {
				op["value"] = genValue(r, 2, genKeys[:8])
			}
		default:
			op["path"] = at(false)
		}
		b := marshal(r, op)
		ops = append(ops, string(b))
		next, err := JSON(marshal(r, cur), []byte("["+string(b)+"]"))
		if err != nil {
			if r.Intn(2) == 0 {
				break // this operation fails the patch: stop here, or go on to make it longer
			}
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(next))
		dec.UseNumber()
		if err := dec.Decode(&cur); err != nil {
			panic(err)
		}
	}
	return []byte("[" + strings.Join(ops, ",") + "]")
}

func TestMergeDifferential(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	r := rand.New(rand.NewSource(7386))
	seen := map[string]int{}
	for range n {
		doc := genObject(r, 3, genKeys)
		patch := genMergePatch(r, doc, 3)
		seen[checkMerge(t, marshal(r, doc), marshal(r, patch))]++
	}
	logDifferences(t, n, seen)
}

func TestJSONDifferential(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	r := rand.New(rand.NewSource(6902))
	seen := map[string]int{}
	for range n {
		doc := genObject(r, 3, genKeys[:8])
		seen[checkJSON(t, marshal(r, doc), genJSONPatch(r, doc))]++
	}
	logDifferences(t, n, seen)
}

func logDifferences(t *testing.T, n int, seen map[string]int) {
	t.Logf("%d cases: %d agree on a result, %d both fail", n, seen[""], seen[bothFail])
	for _, why := range mapKeys(anyMap(seen)) {
		if why != "" && why != bothFail {
			t.Logf("  %d differ by design: %s", seen[why], why)
		}
	}
}

func anyMap(m map[string]int) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// fuzzSeeds are the starting corpus of both fuzzers: the table tests' inputs.
func fuzzSeeds() (merges, patches [][2]string) {
	merges = [][2]string{
		{`{"a":"b"}`, `{"a":"c"}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`},
		{`{"a":1}`, `{"a":[{"b":null},null]}`},
		{`{"a":{"x":1}}`, `{"a":[{"b":null}]}`},
		{`{"a":1.0}`, `{"b":1e5,"c":"\u00e9\u2028"}`},
		{`{"":1}`, `{"":{"":null}}`},
		{`{"a":[1]}`, `{"a":{"b":[{"c":null}]}}`},
	}
	patches = [][2]string{
		{`{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`},
		{`{"foo":["all","grass","cows","eat"]}`, `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`},
		{`{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":10}]`},
		{`{"a":{"b":1,"c":[1,2,3]}}`, `[{"op":"copy","from":"/a","path":"/b"},{"op":"replace","path":"/b/b","value":2},{"op":"test","path":"/b","value":{"c":[1,2,3],"b":2}}]`},
		{`{"a":{"b":1,"c":[1,2,3]}}`, `[{"op":"remove","path":"/a/c/0"},{"op":"add","path":"/a/c/-","value":[]},{"op":"move","from":"/a/b","path":"/a/c/2/0"}]`},
		{`{"a":1}`, `[{"op":"add","path":"","value":{"k":[1]}},{"op":"test","path":"/k/0","value":1}]`},
	}
	return merges, patches
}

func FuzzMerge(f *testing.F) {
	merges, _ := fuzzSeeds()
	for _, s := range merges {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, doc, patch string) {
		slow(t, "Merge", func() { _, _ = Merge([]byte(doc), []byte(patch)) })
		checkMerge(t, []byte(doc), []byte(patch))
	})
}

func FuzzJSON(f *testing.F) {
	_, patches := fuzzSeeds()
	for _, s := range patches {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, doc, patch string) {
		slow(t, "JSON", func() { _, _ = JSON([]byte(doc), []byte(patch)) })
		checkJSON(t, []byte(doc), []byte(patch))
	})
}

// slow fails t when f takes over a second: fuzz inputs are a few kilobytes, and this package's
// cost is linear, so only a bug (or a stalled machine) takes that long.
func slow(t *testing.T, name string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("%s took %v", name, d)
	}
}
