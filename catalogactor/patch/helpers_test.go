package patch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

// v5Options are the options catalogactor.PatchOptions sets (not imported, to keep this package
// below catalogactor).
func v5Options() *jsonpatch.ApplyOptions {
	o := jsonpatch.NewApplyOptions()
	o.SupportNegativeIndices = false
	o.AccumulatedCopySizeLimit = object.MaxSize
	return o
}

// v5 is the outcome of json-patch v5 on one input.
type v5 struct {
	out      []byte // canonical, when err is nil
	err      error
	panicked bool
}

func v5Merge(doc, patch []byte) (r v5) {
	defer func() {
		if p := recover(); p != nil {
			r = v5{err: fmt.Errorf("panic: %v", p), panicked: true}
		}
	}()
	out, err := jsonpatch.MergePatch(doc, patch)
	return v5Canonical(out, err)
}

func v5JSON(doc, patch []byte) (r v5) {
	defer func() {
		if p := recover(); p != nil {
			r = v5{err: fmt.Errorf("panic: %v", p), panicked: true}
		}
	}()
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return v5{err: err}
	}
	out, err := p.ApplyWithOptions(doc, v5Options())
	return v5Canonical(out, err)
}

// v5Canonical canonicalises a success; a result that is not an object becomes an error of its
// own (errNotObject), since kstore's caller refuses it.
func v5Canonical(out []byte, err error) v5 {
	if err != nil {
		return v5{err: err}
	}
	c, cerr := object.Canonical(out)
	var refused *messages.Error
	switch {
	case errors.As(cerr, &refused):
		return v5{err: fmt.Errorf("%w: %v", errRefused, cerr)}
	case cerr != nil:
		return v5{err: fmt.Errorf("%w: %s", errNotObject, out)}
	}
	return v5{out: c}
}

var (
	errNotObject = errors.New("json-patch result is not an object")
	// errRefused is a result that object.Canonical refuses (a number too large for a float64,
	// say): the catalog refuses it whichever package made it.
	errRefused = errors.New("object.Canonical refuses the result")
)

// agree compares ours with json-patch's. It returns "" when both succeed with the same
// canonical bytes, bothFail when both fail, the name of a documented difference (doc.go) when
// they differ for that reason, and otherwise fails t.
func agree(t testing.TB, name string, doc, patch, ours []byte, oursErr error, theirs v5, known func() string) string {
	t.Helper()
	if oursErr != nil {
		var e *messages.Error
		if !errors.As(oursErr, &e) {
			t.Fatalf("%s: error is %T, not *messages.Error: %v", name, oursErr, oursErr)
		}
		if e.Reason != messages.StatusReason_INVALID && e.Reason != messages.StatusReason_TOO_LARGE {
			t.Fatalf("%s: error reason %v, want Invalid or TooLarge: %v", name, e.Reason, oursErr)
		}
	} else {
		c, err := object.Canonical(ours)
		var refused *messages.Error
		switch {
		case errors.As(err, &refused):
			// The catalog refuses this result, as it refuses json-patch's.
			oursErr = fmt.Errorf("%w: %v", errRefused, err)
		case err != nil || !bytes.Equal(c, ours):
			t.Fatalf("%s: output is not canonical JSON:\n%s\ncanonical: %s (%v)", name, ours, c, err)
		}
	}
	switch {
	case oursErr != nil && theirs.err != nil:
		return bothFail
	case oursErr == nil && theirs.err == nil && bytes.Equal(ours, theirs.out):
		return ""
	}
	if why := known(); why != "" {
		return why
	}
	t.Fatalf("%s differs from json-patch v5:\n doc    %s\n patch  %s\n ours   %s %v\n theirs %s %v",
		name, doc, patch, ours, oursErr, theirs.out, theirs.err)
	return ""
}

// checkMerge runs Merge and json-patch's MergePatch on one input and compares them.
func checkMerge(t testing.TB, doc, patch []byte) string {
	t.Helper()
	ours, err := Merge(doc, patch)
	again, err2 := Merge(doc, patch)
	if !bytes.Equal(ours, again) || fmt.Sprint(err) != fmt.Sprint(err2) {
		t.Fatalf("Merge is not deterministic on %s + %s", doc, patch)
	}
	if cerr := CheckMerge(patch); cerr != nil && (err == nil || err.Error() != cerr.Error()) {
		t.Fatalf("Merge(%s, %s) = %v, but CheckMerge says %v", doc, patch, err, cerr)
	}
	theirs := v5Merge(doc, patch)
	return agree(t, "Merge", doc, patch, ours, err, theirs, func() string { return mergeDifference(doc, patch, theirs) })
}

// checkJSON runs JSON and json-patch's DecodePatch+ApplyWithOptions and compares them.
func checkJSON(t testing.TB, doc, patch []byte) string {
	t.Helper()
	ours, err := JSON(doc, patch)
	again, err2 := JSON(doc, patch)
	if !bytes.Equal(ours, again) || fmt.Sprint(err) != fmt.Sprint(err2) {
		t.Fatalf("JSON is not deterministic on %s + %s", doc, patch)
	}
	if cerr := CheckJSON(patch); cerr != nil && err == nil {
		t.Fatalf("JSON(%s, %s) applied a patch CheckJSON refuses: %v", doc, patch, cerr)
	} else if cerr != nil && err.Error() != cerr.Error() {
		t.Fatalf("JSON(%s, %s) = %v, but CheckJSON says %v", doc, patch, err, cerr)
	}
	theirs := v5JSON(doc, patch)
	return agree(t, "JSON", doc, patch, ours, err, theirs, func() string {
		return jsonDifference(doc, patch, ours, err, theirs)
	})
}

// bothFail is an agreement: both refuse the input.
const bothFail = "(both fail)"

// Names of the documented differences (doc.go), as the differential tests count them.
const (
	diffInput     = "input json-patch takes and this package refuses (not UTF-8, too deep, too large, not an object)"
	diffDuplicate = "duplicate keys"
	diffPointer   = "pointer or array index outside RFC 6901"
	diffEmptyKey  = `empty reference token or path ""`
	diffTest      = "test without value, or of null"
	diffNumbers   = "test compares numbers by value"
	diffPanic     = "json-patch panics"
	diffAddedNull = "test of a null that add or replace wrote"
	diffRoot      = `a scalar document in between`
	diffMoveChild = "move into a child of from"
	diffNullPatch = "null JSON patch"
	diffCopyRoot  = `copy from ""`
	diffBudget    = "bounds (MaxCopied, MaxWork, MaxOps)"
)

func inputDifference(doc, patch []byte) string {
	for _, b := range [][]byte{doc, patch} {
		if !utf8.Valid(b) || tooDeep(b) || len(b) > object.MaxSize {
			return diffInput
		}
	}
	if !isObject(doc) {
		return diffInput
	}
	if hasDuplicateKeys(doc) {
		return diffDuplicate
	}
	return ""
}

func mergeDifference(doc, patch []byte, theirs v5) string {
	if why := inputDifference(doc, patch); why != "" {
		return why
	}
	if !isObject(patch) {
		return diffInput
	}
	if hasDuplicateKeys(patch) {
		return diffDuplicate
	}
	if theirs.panicked {
		return diffPanic
	}
	return ""
}

var (
	indexLike = regexp.MustCompile(`^[+-]?[0-9]+$`)
	rfcIndex  = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)
)

func jsonDifference(doc, patch, ours []byte, oursErr error, theirs v5) string {
	if why := inputDifference(doc, patch); why != "" {
		return why
	}
	if theirs.panicked {
		return diffPanic
	}
	if bytes.Equal(bytes.TrimSpace(patch), []byte("null")) {
		return diffNullPatch
	}
	if messages.IsTooLarge(oursErr) {
		return diffBudget
	}
	var ops []map[string]json.RawMessage
	if json.Unmarshal(patch, &ops) != nil {
		return "" // not an array of objects: both must refuse it
	}
	wroteNull := false
	for _, op := range ops {
		var name, path, from string
		_ = json.Unmarshal(op["op"], &name)
		_ = json.Unmarshal(op["path"], &path)
		_, hasFrom := op["from"]
		_ = json.Unmarshal(op["from"], &from)
		for _, p := range []string{path, from} {
			if p == "" {
				continue
			}
			if p[0] != '/' || regexp.MustCompile(`~([^01]|$)`).MatchString(p) {
				return diffPointer
			}
			for _, tok := range strings.Split(p[1:], "/") {
				if tok == "" {
					return diffEmptyKey
				}
				if indexLike.MatchString(tok) && !rfcIndex.MatchString(tok) {
					return diffPointer
				}
			}
		}
		if name == "move" && path != from && strings.HasPrefix(path, from+"/") {
			return diffMoveChild
		}
		switch name {
		case "remove", "move", "copy":
			if path == "" {
				return diffEmptyKey
			}
		}
		if name == "copy" && hasFrom && from == "" {
			return diffCopyRoot
		}
		v, hasValue := op["value"]
		if (name == "add" || name == "replace") && path == "" && !bytes.HasPrefix(v, []byte("{")) && !bytes.HasPrefix(v, []byte("[")) {
			return diffRoot
		}
		if name == "test" && (!hasValue || string(v) == "null") {
			return diffTest
		}
		if (name == "add" || name == "replace") && string(v) == "null" {
			wroteNull = true
		}
		if name == "test" && wroteNull && containsNull(v) {
			return diffAddedNull
		}
	}
	if oursErr == nil && theirs.err != nil {
		// Does comparing numbers as written, as json-patch does, give json-patch's outcome?
		if _, err := applyJSON(doc, patch, true); err != nil {
			return diffNumbers
		}
	}
	return ""
}

// containsNull reports whether the JSON value v holds a null anywhere.
func containsNull(v json.RawMessage) bool {
	var x any
	if json.Unmarshal(v, &x) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(x any) bool {
		switch x := x.(type) {
		case nil:
			return true
		case []any:
			return slices.ContainsFunc(x, walk)
		case map[string]any:
			for _, e := range x {
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(x)
}

func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// tooDeep reports whether b nests deeper than MaxDepth (brackets inside strings skipped).
func tooDeep(b []byte) bool {
	depth, in, esc := 0, false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		case in:
		case c == '{' || c == '[':
			depth++
			if depth > MaxDepth {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

// hasDuplicateKeys reports whether any object in b (valid JSON) repeats a key.
func hasDuplicateKeys(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	var stack []*dupFrame
	valueDone := func() {
		if len(stack) > 0 && stack[len(stack)-1].keys != nil {
			stack[len(stack)-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if n := len(stack); n > 0 && stack[n-1].keys != nil && stack[n-1].expectKey {
			if k, ok := tok.(string); ok {
				if stack[n-1].keys[k] {
					return true
				}
				stack[n-1].keys[k] = true
				stack[n-1].expectKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &dupFrame{keys: map[string]bool{}, expectKey: true})
		case json.Delim('['):
			stack = append(stack, &dupFrame{})
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

type dupFrame struct {
	keys      map[string]bool // nil for an array
	expectKey bool
}
