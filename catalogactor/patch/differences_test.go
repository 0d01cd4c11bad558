package patch

import (
	"fmt"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

// TestDifferences holds each deliberate difference from json-patch v5 that doc.go lists: what
// this package gives, what json-patch gives (raw, before object.Canonical), and the name the
// differential tests file it under. A want starting with '{' is an exact output; otherwise it
// is part of the error ("panic" for a panic). A wantDiff of bothFail means the catalog's outcome is
// the same all the same: object.Canonical, which the caller runs on the result, refuses
// json-patch's result.
func TestDifferences(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	mid := strings.Repeat("y", 600<<10)
	tests := []struct {
		name               string
		merge              bool
		giveDoc, givePatch string
		wantOurs           string
		wantTheirs         string
		wantDiff           string
	}{
		{"merge: invalid UTF-8", true, `{}`, "{\"a\":\"\xff\"}", "merge patch is not valid UTF-8", "{\"a\":\"\xff\"}", bothFail},
		{"merge: half a surrogate pair", true, `{}`, `{"a":"\ud800"}`, "holds \\ud800 at byte 6, half of a UTF-16 surrogate pair", `{"a":"\ud800"}`, bothFail},
		{"merge: deeper than MaxDepth", true, `{}`, `{"a":` + nested(MaxDepth, "[", "]", "") + `}`, "nested more than 1000 levels deep", `{"a":` + nested(MaxDepth, "[", "]", "") + `}`, bothFail},
		{"merge: patch not an object", true, `{"a":1}`, `[{"a":null}]`, "merge patch must be a JSON object", `[{}]`, bothFail},
		{"merge: document not an object", true, `[1]`, `{"a":null,"b":1}`, "document must be a JSON object", `{"b":1}`, diffInput},
		{"merge: duplicate key pruned", true, `{}`, `{"x":{"a":1,"a":null}}`, `{"x":{}}`, `{"x":{"a":null}}`, diffDuplicate},
		{"json: pointer without /", false, `{"a":1}`, `[{"op":"add","path":"x/b","value":2}]`, "path x/b is not a JSON pointer", `{"a":1,"b":2}`, diffPointer},
		{"json: ~2 in a pointer", false, `{"a":1}`, `[{"op":"add","path":"/~2","value":2}]`, "'~' must be followed by 0 or 1", `{"a":1,"~2":2}`, diffPointer},
		{"json: index with a leading zero", false, `{"a":[1,2]}`, `[{"op":"remove","path":"/a/01"}]`, `"01" is not an index`, `{"a":[1]}`, diffPointer},
		{"json: index with a plus", false, `{"a":[1,2]}`, `[{"op":"remove","path":"/a/+1"}]`, `"+1" is not an index`, `{"a":[1]}`, diffPointer},
		{"json: index -0", false, `{"a":[1,2]}`, `[{"op":"remove","path":"/a/-0"}]`, `"-0" is not an index`, `{"a":[2]}`, diffPointer},
		{"json: replace of the member \"\" that is not there", false, `{"a":1}`, `[{"op":"replace","path":"/","value":2}]`, `the document has no member ""`, `{"a":1,"":2}`, diffEmptyKey},
		{"json: test of the member \"\"", false, `{"":1}`, `[{"op":"test","path":"/","value":1}]`, `{"":1}`, "test failed", diffEmptyKey},
		{"json: test of a nested member \"\"", false, `{"a":{}}`, `[{"op":"test","path":"/a/","value":null}]`, `/a has no member ""`, `{"a":{}}`, diffEmptyKey},
		{"json: move to the root", false, `{"a":{"b":1}}`, `[{"op":"move","from":"/a","path":""}]`, `{"b":1}`, `{"":{"b":1}}`, diffEmptyKey},
		{"json: remove of the root", false, `{"":1,"a":2}`, `[{"op":"remove","path":""}]`, "cannot remove the whole document", `{"a":2}`, diffEmptyKey},
		{"json: copy from the root", false, `{"a":1}`, `[{"op":"add","path":"/b","value":2},{"op":"copy","from":"","path":"/c"}]`, `{"a":1,"b":2,"c":{"a":1,"b":2}}`, `{"a":1,"b":2,"c":{"a":1}}`, diffCopyRoot},
		{"json: move into a child of from", false, `{"a":[[1],{}]}`, `[{"op":"move","from":"/a/0","path":"/a/0/x"}]`, "a value cannot be moved into itself", `{"a":[{"x":[1]}]}`, diffMoveChild},
		{"json: test without value", false, `{"a":1}`, `[{"op":"test","path":"/b"}]`, `(test /b) has no "value"`, `{"a":1}`, diffTest},
		{"json: test of null at a missing member", false, `{"a":1}`, `[{"op":"test","path":"/b","value":null}]`, `the document has no member "b"`, `{"a":1}`, diffTest},
		{"json: test compares numbers by value", false, `{"a":1}`, `[{"op":"test","path":"/a","value":1.0}]`, `{"a":1}`, "test failed", diffNumbers},
		{"json: test of an array holding null", false, `{"a":[null]}`, `[{"op":"test","path":"/a","value":[null]}]`, `{"a":[null]}`, "panic", diffPanic},
		{"json: test of a null that add wrote", false, `{"a":{}}`, `[{"op":"add","path":"/a/x","value":null},{"op":"test","path":"/a","value":{"x":null}}]`, `{"a":{"x":null}}`, "test failed", diffAddedNull},
		{"json: add values count against MaxCopied", false, `{"s":"` + mid + `"}`, `[{"op":"add","path":"/big","value":"` + big + `"},{"op":"remove","path":"/big"},{"op":"copy","from":"/s","path":"/t"}]`,
			"copies and values add up to more than 1572864 bytes", `{"s":"` + mid + `","t":"` + mid + `"}`, diffBudget},
		{"json: a scalar document in between", false, `{"a":1}`, `[{"op":"replace","path":"","value":1},{"op":"replace","path":"","value":{"b":2}}]`, `{"b":2}`, "replace operation value must be object or array", diffRoot},
		{"json: null patch", false, `{"a":1}`, `null`, "JSON patch must be an array of operations", `{"a":1}`, diffNullPatch},
		{"json: result not an object", false, `{"a":1}`, `[{"op":"add","path":"","value":[1]}]`, "the patched document is an array, not an object", `[1]`, bothFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, patch := []byte(tt.giveDoc), []byte(tt.givePatch)
			var ours, theirs []byte
			var oursErr, theirsErr error
			var diff string
			if tt.merge {
				ours, oursErr = Merge(doc, patch)
				theirs, theirsErr = rawMerge(doc, patch)
				diff = checkMerge(t, doc, patch)
			} else {
				ours, oursErr = JSON(doc, patch)
				theirs, theirsErr = rawJSON(doc, patch)
				diff = checkJSON(t, doc, patch)
			}
			wantOutcome(t, "ours", ours, oursErr, tt.wantOurs)
			wantOutcome(t, "json-patch", theirs, theirsErr, tt.wantTheirs)
			if diff != tt.wantDiff {
				t.Errorf("the differential tests file this under %q, want %q", diff, tt.wantDiff)
			}
		})
	}
}

func wantOutcome(t *testing.T, who string, out []byte, err error, want string) {
	t.Helper()
	if strings.HasPrefix(want, "{") || strings.HasPrefix(want, "[") {
		if err != nil || string(out) != want {
			t.Errorf("%s: got %.200s, %v; want %.200s", who, out, err, want)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: got %.200s, %v; want an error containing %q", who, out, err, want)
	}
}

func rawMerge(doc, patch []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return jsonpatch.MergePatch(doc, patch)
}

func rawJSON(doc, patch []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, err
	}
	return p.ApplyWithOptions(doc, v5Options())
}
