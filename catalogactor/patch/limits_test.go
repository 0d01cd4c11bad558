package patch

import (
	"fmt"
	"math/rand"
	"regexp"
	"strings"
	"testing"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

// Builders of large inputs, shared with bench_test.go.

// labelsDoc is an object with n labels l000000..., each "v": 14 bytes a label, so 100,000
// labels make 1.4 MB, within object.MaxSize.
func labelsDoc(n int, value string) []byte {
	var b strings.Builder
	b.WriteString(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"labels":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"l%06d":%q`, i, value)
	}
	b.WriteString(`},"name":"big","namespace":"default"}}`)
	return []byte(b.String())
}

// labelsMerge is a merge patch setting labels l000000... to value.
func labelsMerge(n int, value string) []byte {
	var b strings.Builder
	b.WriteString(`{"metadata":{"labels":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"l%06d":%q`, i, value)
	}
	b.WriteString(`}}}`)
	return []byte(b.String())
}

// labelAdds is a JSON patch of n adds of labels first..first+n-1, in an order shuffled with
// seed (so that keys do not arrive sorted).
func labelAdds(first, n int, seed int64) []byte {
	order := rand.New(rand.NewSource(seed)).Perm(n)
	ops := make([]string, n)
	for i, k := range order {
		ops[i] = fmt.Sprintf(`{"op":"add","path":"/metadata/labels/l%06d","value":"v"}`, first+k)
	}
	return []byte("[" + strings.Join(ops, ",") + "]")
}

// bigArrayDoc is {"a":[0,0,...]} with n zeros.
func bigArrayDoc(n int) []byte {
	return []byte(`{"a":[` + strings.TrimSuffix(strings.Repeat("0,", n), ",") + `]}`)
}

// bigObjectDoc is {"a":{"k0000000":0,...},"b":{"c":{}}} with n members.
func bigObjectDoc(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"a":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%07d":0`, i)
	}
	b.WriteString(`},"b":{"c":{}}}`)
	return []byte(b.String())
}

// frontInserts is the worst case for array shifting: adds at index 0 of the 700,000-element
// array of bigArrayDoc, as many as MaxOps allows.
func frontInserts() (doc, patch []byte) {
	return bigArrayDoc(700_000), []byte(ops(MaxOps, `{"op":"add","path":"/a/0","value":0}`))
}

// deeperMoves is the worst case for measuring depth: an object of 100,000 members moved one
// level deeper and back, as many times as MaxOps allows.
func deeperMoves() (doc, patch []byte) {
	return bigObjectDoc(100_000), []byte(ops(MaxOps/2, `{"op":"move","from":"/a","path":"/b/c/a"},{"op":"move","from":"/b/c/a","path":"/a"}`))
}

// deepWalks is the worst case for walking pointers: tests 999 levels down a chain of objects,
// as many as fit in object.MaxSize (a token costs two bytes, "/a").
func deepWalks() (doc, patch []byte) {
	doc = []byte(nested(MaxDepth-1, `{"a":`, `}`, `{}`))
	op := `{"op":"test","path":"` + strings.Repeat("/a", MaxDepth-1) + `","value":{}}`
	n := (object.MaxSize - 2) / (len(op) + 1)
	return doc, []byte(ops(n, op))
}

// deepArrayWalks is deepWalks down a chain of arrays: [[[...]]] and /0/0/0...
func deepArrayWalks() (doc, patch []byte) {
	doc = []byte(`{"a":` + nested(MaxDepth-1, `[`, `]`, ``) + `}`)
	op := `{"op":"test","path":"/a` + strings.Repeat("/0", MaxDepth-2) + `","value":[]}`
	n := (object.MaxSize - 2) / (len(op) + 1)
	return doc, []byte(ops(n, op))
}

// copyBomb doubles an array with each copy: [x] becomes [x,[x]], then [x,[x],[x,[x]]]...
func copyBomb() (doc, patch []byte) {
	return []byte(`{"a":["` + strings.Repeat("x", 1000) + `"]}`),
		[]byte(ops(40, `{"op":"copy","from":"/a","path":"/a/-"}`))
}

// numberTests is the worst case for test: a document of about object.MaxSize whose large array
// of numbers one test compares, element by element, with the same numbers written differently
// (1.0 against 1).
func numberTests() (doc, patch []byte) {
	n := (object.MaxSize - 64) / 4
	return []byte(`{"a":[` + strings.TrimSuffix(strings.Repeat("1.0,", n), ",") + `]}`),
		[]byte(`[{"op":"test","path":"/a","value":[` + strings.TrimSuffix(strings.Repeat("1,", n), ",") + `]}]`)
}

// smallCopies is the worst case for copying: copies of an array of 1000 empty arrays, the
// most containers per byte of MaxCopied, until MaxCopied refuses one.
func smallCopies() (doc, patch []byte) {
	return []byte(`{"a":[` + strings.TrimSuffix(strings.Repeat("[],", 1000), ",") + `]}`),
		[]byte(ops(1000, `{"op":"copy","from":"/a","path":"/b"}`))
}

// frontInserts1k is 10,000 inserts at the front of an array of 1,000 elements.
func frontInserts1k() (doc, patch []byte) {
	return bigArrayDoc(1000), []byte(ops(MaxOps, `{"op":"add","path":"/a/0","value":0}`))
}

// maxMerge is the largest merge: a document and a patch of about object.MaxSize, each an
// object of short keys, the patch's out of order (so decode sorts it), every value merged.
func maxMerge() (doc, patch []byte) {
	const n = 150_000 // "k000000":{}, is 13 bytes; 150,000 of them 1.95 MB... trimmed below
	var d, p strings.Builder
	d.WriteString(`{`)
	p.WriteString(`{`)
	perm := rand.New(rand.NewSource(1)).Perm(n)
	for i := range n {
		if d.Len() > object.MaxSize-64 || p.Len() > object.MaxSize-64 {
			break
		}
		if i > 0 {
			d.WriteByte(',')
			p.WriteByte(',')
		}
		fmt.Fprintf(&d, `"%06d":{}`, i)
		fmt.Fprintf(&p, `"%06d":{"":0}`, perm[i])
	}
	d.WriteString(`}`)
	p.WriteString(`}`)
	return []byte(d.String()), []byte(p.String())
}

func TestMaxDepth(t *testing.T) {
	deep := func(n int) string { return nested(n, `{"a":`, `}`, `1`) }   // n deep
	chain := func(n int) string { return nested(n, `{"a":`, `}`, `{}`) } // n+1 deep
	tests := []struct {
		name               string
		merge              bool
		giveDoc, givePatch string
		wantErr            string
	}{
		{"merge: document at MaxDepth", true, deep(MaxDepth), `{"a":` + deep(MaxDepth-1) + `}`, ""},
		{"merge: document over MaxDepth", true, deep(MaxDepth + 1), `{}`, "document is nested more than 1000 levels deep"},
		{"merge: patch over MaxDepth", true, `{}`, deep(MaxDepth + 1), "merge patch is nested more than 1000 levels deep"},
		{"json: document over MaxDepth", false, deep(MaxDepth + 1), `[]`, "document is nested more than 1000 levels deep"},
		{"json: patch over MaxDepth", false, `{}`, `[{"op":"add","path":"/a","value":` + deep(MaxDepth-1) + `}]`, "JSON patch is nested more than 1000 levels deep"},
		{"json: add to MaxDepth", false, chain(2), `[{"op":"add","path":"/a/a/b","value":` + deep(MaxDepth-3) + `}]`, ""},
		{"json: add past MaxDepth", false, chain(2), `[{"op":"add","path":"/a/a/b","value":` + deep(MaxDepth-2) + `}]`,
			"JSON patch operation 0 (add /a/a/b): the result would be nested more than 1000 levels deep (the path is 3 levels down and the value 998 deep): flatten the value"},
		{"json: replace past MaxDepth", false, deep(3), `[{"op":"replace","path":"/a/a/a","value":` + deep(MaxDepth-2) + `}]`, "the result would be nested more than 1000 levels deep"},
		{"json: copy past MaxDepth", false, `{"a":` + deep(600) + `,"b":` + deep(500) + `}`, `[{"op":"copy","from":"/a","path":"/b` + strings.Repeat("/a", 499) + `"}]`,
			"JSON patch operation 0 (copy /a to /b" + strings.Repeat("/a", 49) + "... (1000 bytes)): the result would be nested more than 1000 levels deep (the path is 500 levels down and the value 600 deep)"},
		{"json: move deeper past MaxDepth", false, `{"a":` + deep(600) + `,"b":` + deep(500) + `}`, `[{"op":"move","from":"/a","path":"/b` + strings.Repeat("/a", 499) + `"}]`,
			"the result would be nested more than 1000 levels deep (the path is 500 levels down and the value 600 deep)"},
		{"json: move shallower", false, `{"a":` + deep(998) + `}`, `[{"op":"move","from":"` + strings.Repeat("/a", 500) + `","path":"/b"}]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.merge {
				_, err = Merge([]byte(tt.giveDoc), []byte(tt.givePatch))
			} else {
				_, err = JSON([]byte(tt.giveDoc), []byte(tt.givePatch))
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !messages.IsInvalid(err) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v;\n want Invalid containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestMaxOps(t *testing.T) {
	_, err := JSON([]byte(`{}`), []byte(ops(MaxOps+1, `{"op":"test","path":"","value":{}}`)))
	if !messages.IsTooLarge(err) || !strings.Contains(err.Error(), "JSON patch has 10001 operations, over the limit of 10000") {
		t.Fatalf("JSON with MaxOps+1 operations: %v", err)
	}
	doc := labelsDoc(0, "")
	out, err := JSON(doc, labelAdds(0, MaxOps, 1))
	if err != nil {
		t.Fatalf("JSON with MaxOps adds: %v", err)
	}
	if want := labelsDoc(MaxOps, "v"); string(out) != string(want) {
		t.Fatalf("JSON with MaxOps adds gave %.200s", out)
	}
}

func TestMaxCopied(t *testing.T) {
	doc, patch := copyBomb()
	_, err := JSON(doc, patch)
	want := "JSON patch operation 10 (copy /a to /a/-): copies and values add up to more than 1572864 bytes (1.5 MiB, the object size limit)"
	if !messages.IsTooLarge(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("copy bomb: %v;\n want TooLarge containing %q", err, want)
	}
	// One copy of 1 MiB fits; a second does not, though json-patch counted its copies only.
	big := `{"a":"` + strings.Repeat("x", 1<<20) + `"}`
	if _, err := JSON([]byte(big), []byte(`[{"op":"copy","from":"/a","path":"/b"}]`)); err != nil {
		t.Fatalf("one 1 MiB copy: %v", err)
	}
	if _, err := JSON([]byte(big), []byte(`[{"op":"copy","from":"/a","path":"/b"},{"op":"remove","path":"/b"},{"op":"copy","from":"/a","path":"/b"}]`)); !messages.IsTooLarge(err) {
		t.Fatalf("two 1 MiB copies: %v", err)
	}
}

// TestMaxWork holds the crafted worst cases to the budget: each is refused, with the same error
// every time (the budget counts work, not time), at an operation that depends on the input only.
func TestMaxWork(t *testing.T) {
	tests := []struct {
		name    string
		give    func() ([]byte, []byte)
		wantErr string // "" when the case fits the budget
	}{
		{"inserts at the front of a large array", frontInserts, `^TooLarge: JSON patch operation 114 \(add /a/0\): the patch needs more than 10000000 units of work \(values visited, compared or copied, and array elements shifted\): split it into smaller patches, or replace the object$`},
		{"moves of a large object one level deeper", deeperMoves, `^TooLarge: JSON patch operation 1596 \(move /a to /b/c/a\): the patch needs more than 10000000 units`},
		// Shifts are priced for arrays larger than the caches, where they cost most (0.4 ns an
		// element): this patch, shifting 60 million elements of a small array, takes about 7 ms
		// but counts as 7.3 million units. It fits.
		{"10,000 inserts at the front of 1,000 elements", frontInserts1k, ""},
		{"walks down the deepest chain", deepWalks, ""},
		{"walks down the deepest chain of arrays", deepArrayWalks, ""},
		{"tests of numbers written differently", numberTests, ""},
		{"the largest merge", maxMerge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, patch := tt.give()
			apply := JSON
			if patch[0] == '{' {
				apply = Merge
			}
			_, err := apply(doc, patch)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !regexp.MustCompile(tt.wantErr).MatchString(err.Error()) {
				t.Fatalf("got %v;\n want %s", err, tt.wantErr)
			}
			if _, again := apply(doc, patch); again.Error() != err.Error() {
				t.Fatalf("second run: %v, first: %v", again, err)
			}
		})
	}
}

// TestWorkSpent reports how much of the budget large legitimate inputs spend, so that a change
// to the counting that would refuse them shows here first.
func TestWorkSpent(t *testing.T) {
	tests := []struct {
		name     string
		give     func() ([]byte, []byte)
		wantLess int
	}{
		{"the largest merge", maxMerge, MaxWork / 2},
		{"100,000 labels merged", func() ([]byte, []byte) { return labelsDoc(100_000, "v"), labelsMerge(100_000, "w") }, MaxWork / 10},
		{"10,000 label adds", func() ([]byte, []byte) { return labelsDoc(0, ""), labelAdds(0, MaxOps, 1) }, MaxWork / 10},
		{"the deepest walks", deepWalks, MaxWork / 2},
		{"1,000 inserts at the front of 10,000 elements", func() ([]byte, []byte) {
			return bigArrayDoc(10_000), []byte(ops(1000, `{"op":"add","path":"/a/0","value":0}`))
		}, MaxWork / 2},
		{"the largest test", numberTests, MaxWork / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, patch := tt.give()
			spent, err := spend(doc, patch)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d units (%.1f%% of MaxWork)", spent, 100*float64(spent)/MaxWork)
			if spent >= tt.wantLess {
				t.Fatalf("spent %d units, want less than %d", spent, tt.wantLess)
			}
		})
	}
}

// spend applies a merge patch (an object) or a JSON patch and returns the units it spent.
func spend(doc, patch []byte) (int, error) {
	t := newTree(patch, doc)
	if patch[0] == '{' {
		p, err := decodeMerge(t, len(patch))
		if err != nil {
			return 0, err
		}
		d, err := decodeDocument(t, doc, len(patch))
		if err != nil {
			return 0, err
		}
		w := newWork()
		mergeObject(t, w, t.obj(d), p)
		encode(t, w, nil, d)
		return int(MaxWork - w.left), nil
	}
	ops, err := decodeJSON(t, len(patch))
	if err != nil {
		return 0, err
	}
	root, err := decodeDocument(t, doc, len(patch))
	if err != nil {
		return 0, err
	}
	a := applier{t: t, w: newWork(), root: root}
	for i := range ops {
		if err := a.apply(&ops[i]); err != nil {
			return 0, err
		}
	}
	encode(t, a.w, nil, a.root)
	return int(MaxWork - a.w.left), nil
}
