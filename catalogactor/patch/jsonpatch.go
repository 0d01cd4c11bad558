package patch

import (
	"fmt"
	"slices"

	"github.com/kstore/kstore/messages"
)

type opKind uint8

const (
	opAdd opKind = iota + 1
	opRemove
	opReplace
	opMove
	opCopy
	opTest
)

var opNames = [...]string{opAdd: "add", opRemove: "remove", opReplace: "replace", opMove: "move", opCopy: "copy", opTest: "test"}

func opNamed(s string) opKind {
	for k, n := range opNames {
		if n != "" && n == s {
			return opKind(k)
		}
	}
	return 0
}

// operation is one decoded, checked JSON patch operation.
type operation struct {
	kind       opKind
	path, from []string // tokens
	pathText   string   // the pointers as written, for messages
	fromText   string
	value      value // add, replace, test
	valueDepth int
}

// describe names an operation in messages: "remove /metadata/labels/x", "move /a to /b".
func (op *operation) describe() string {
	switch op.kind {
	case opMove, opCopy:
		return fmt.Sprintf("%s %s to %s", opNames[op.kind], showPointer(op.fromText), showPointer(op.pathText))
	default:
		return fmt.Sprintf("%s %s", opNames[op.kind], showPointer(op.pathText))
	}
}

const jsonPatchExample = `[{"op":"replace","path":"/spec/replicas","value":3}]`

// CheckJSON admits a JSON patch before it is proposed: at most object.MaxSize bytes and MaxOps
// operations (TooLarge); valid JSON and UTF-8, nested at most MaxDepth deep, an array of
// operation objects each with a known op, a path that is a JSON pointer, a from pointer for
// move and copy and a value for add, replace and test (Invalid). Members an operation does not
// use are ignored, as RFC 6902 says. An admitted patch may still fail against the document.
func CheckJSON(patch []byte) error {
	_, err := decodeJSON(newTree(sized(patch)), len(patch))
	return err
}

// decodeJSON decodes t.src[:end], a JSON patch, into its operations.
func decodeJSON(t *tree, end int) ([]operation, error) {
	if err := checkSize("JSON patch", end); err != nil {
		return nil, err
	}
	p, _, err := decode(t, "JSON patch", 0, end)
	if err != nil {
		return nil, err
	}
	if p.k != kArray {
		return nil, messages.Errorf(messages.StatusReason_INVALID,
			"JSON patch must be an array of operations, such as %s, not %s", jsonPatchExample, p.k)
	}
	elems := t.elems(p)
	if len(elems) > MaxOps {
		return nil, messages.Errorf(messages.StatusReason_TOO_LARGE,
			"JSON patch has %d operations, over the limit of %d: split it into several patches", len(elems), MaxOps)
	}
	w := &work{left: 1 << 62} // lookups in operation objects: a few units each, bounded by decode
	ops := make([]operation, len(elems))
	for i, e := range elems {
		if err := decodeOperation(t, w, i, e, &ops[i]); err != nil {
			return nil, err
		}
	}
	return ops, nil
}

func decodeOperation(t *tree, w *work, i int, e value, op *operation) error {
	invalid := func(format string, args ...any) error {
		return messages.Errorf(messages.StatusReason_INVALID, "JSON patch operation %d "+format, append([]any{i}, args...)...)
	}
	if e.k != kObject {
		return invalid(`is %s, not an operation object such as {"op":"remove","path":"/metadata/labels/app"}`, e.k)
	}
	o := t.obj(e)
	name := o.get(t, w, "op")
	if name.k != kString {
		return invalid(`has no "op" string: give one of add, remove, replace, move, copy or test`)
	}
	if op.kind = opNamed(t.text(name)); op.kind == 0 {
		return invalid("has op %q: use add, remove, replace, move, copy or test", t.text(name))
	}
	path := o.get(t, w, "path")
	if path.k != kString {
		return invalid(`(%s) has no "path" string: give a JSON pointer such as /metadata/labels/app`, opNames[op.kind])
	}
	op.pathText = t.text(path)
	var err error
	if op.path, err = parsePointer(op.pathText); err != nil {
		return invalid("(%s): path %v", opNames[op.kind], err)
	}
	if op.kind == opMove || op.kind == opCopy {
		from := o.get(t, w, "from")
		if from.k != kString {
			return invalid(`(%s to %s) has no "from" string: give the JSON pointer to %s from`, opNames[op.kind], showPointer(op.pathText), opNames[op.kind])
		}
		op.fromText = t.text(from)
		if op.from, err = parsePointer(op.fromText); err != nil {
			return invalid("(%s): from %v", op.describe(), err)
		}
	}
	if op.kind == opAdd || op.kind == opReplace || op.kind == opTest {
		if op.value = o.get(t, w, "value"); op.value.k == kRemoved {
			return invalid(`(%s) has no "value": give the value to %s (null is a value)`, op.describe(), opNames[op.kind])
		}
		_, op.valueDepth = measure(t, w, op.value)
	}
	return nil
}

// JSON applies an RFC 6902 JSON patch to doc, a JSON object, and returns the result as
// canonical JSON. Operations apply in order, each to the result of the one before; the first
// that fails fails the patch, and the error names it by its index in the array (from 0) and
// what it does: "JSON patch operation 3 (remove /metadata/labels/x): path does not exist: ...".
//
// It follows the RFC where json-patch v5 (with kstore's options: no negative indices, copies
// bounded) does not; doc.go lists the differences. Errors are *messages.Error: Invalid for a
// patch CheckJSON refuses, for an operation that does not apply (a missing path, a failed test,
// an index out of range) and for a result that is not an object or is nested deeper than
// MaxDepth; TooLarge for an input over object.MaxSize, more than MaxOps operations, copies and
// values over MaxCopied bytes, or a patch that spends MaxWork.
func JSON(doc, patch []byte) ([]byte, error) {
	return applyJSON(doc, patch, false)
}

// applyJSON is JSON; textual makes test compare numbers as written, as json-patch does (the
// differential tests use it to tell that difference from others).
func applyJSON(doc, patch []byte, textual bool) ([]byte, error) {
	// The patch first: of two bad inputs, the error about the user's is the useful one, and JSON
	// refuses what CheckJSON refuses with the same error.
	t := newTree(patch, sized(doc))
	ops, err := decodeJSON(t, len(patch))
	if err != nil {
		return nil, err
	}
	root, err := decodeDocument(t, doc, len(patch))
	if err != nil {
		return nil, err
	}
	a := applier{t: t, w: newWork(), root: root, textual: textual}
	for i := range ops {
		op := &ops[i]
		err := a.apply(op)
		if a.w.out() {
			// Whatever the operation did once the budget ran out is moot: report the budget.
			err = tooMuchWork("the patch")
		}
		if err != nil {
			if e, ok := err.(*messages.Error); ok {
				e.Message = fmt.Sprintf("JSON patch operation %d (%s): %s", i, op.describe(), e.Message)
				return nil, e
			}
			return nil, messages.Errorf(messages.StatusReason_INVALID, "JSON patch operation %d (%s): %v", i, op.describe(), err)
		}
	}
	if a.root.k != kObject {
		return nil, messages.Errorf(messages.StatusReason_INVALID,
			"the patched document is %s, not an object: a patch must leave an object", a.root.k)
	}
	out := encode(t, a.w, make([]byte, 0, len(doc)+len(patch)), a.root)
	if out == nil {
		return nil, tooMuchWork("JSON patch")
	}
	return out, nil
}

type applier struct {
	t       *tree
	w       *work
	root    value
	copied  int // bytes of copies and add/replace values so far, against MaxCopied
	textual bool
}

func (a *applier) apply(op *operation) error {
	a.w.spend(1)
	switch op.kind {
	case opAdd, opReplace:
		size, _ := measure(a.t, a.w, op.value)
		if err := a.account(size); err != nil {
			return err
		}
		if op.kind == opAdd {
			return a.add(op.path, op.value, op.valueDepth)
		}
		return a.replace(op.path, op.value, op.valueDepth)
	case opRemove:
		if len(op.path) == 0 {
			return fmt.Errorf(`cannot remove the whole document: replace it (path "") or delete the object`)
		}
		_, err := a.remove(op.path)
		return err
	case opMove:
		if len(op.from) == 0 {
			return fmt.Errorf(`cannot move the whole document (from ""): copy it, or replace the document`)
		}
		if isPrefix(op.from, op.path) {
			return fmt.Errorf("a value cannot be moved into itself: from %s is a prefix of path %s", showPointer(op.fromText), showPointer(op.pathText))
		}
		v, err := a.remove(op.from)
		if err != nil {
			return fmt.Errorf("from: %w", err)
		}
		depth := 0
		if len(op.path) > len(op.from) {
			// Deeper than it was: the depth bound needs the value's depth.
			depth = depthOf(a.t, a.w, v)
		}
		return a.add(op.path, v, depth)
	case opCopy:
		v, err := a.get(op.from)
		if err != nil {
			return fmt.Errorf("from: %w", err)
		}
		c, size, depth, ok := deepCopy(a.t, a.w, v)
		if !ok {
			return nil // budget spent; the caller reports it
		}
		if err := a.account(size); err != nil {
			return err
		}
		return a.add(op.path, c, depth)
	default: // opTest
		v, err := a.get(op.path)
		if err != nil {
			return err
		}
		if !equal(a.t, a.w, v, op.value, a.textual) {
			return fmt.Errorf("test failed: the value at %s is not the one given: read the object again before patching it", showPointer(op.pathText))
		}
		return nil
	}
}

// account adds size bytes to what the patch has materialised and refuses it past MaxCopied.
func (a *applier) account(size int) error {
	a.copied += size
	if a.copied > MaxCopied {
		return messages.Errorf(messages.StatusReason_TOO_LARGE,
			"copies and values add up to more than %d bytes (1.5 MiB, the object size limit): the result would be too large; copy less, or replace the object", MaxCopied)
	}
	return nil
}

// checkDepth refuses a value of depth depth at a path of n tokens when the result would be
// nested deeper than MaxDepth.
func checkDepth(path []string, depth int) error {
	if len(path)+depth > MaxDepth {
		return fmt.Errorf("the result would be nested more than %d levels deep (the path is %d levels down and the value %d deep): flatten the value", MaxDepth, len(path), depth)
	}
	return nil
}

// container returns the array or object that holds the last token of path.
func (a *applier) container(path []string) (value, error) {
	n := a.root
	for i, tok := range path[:len(path)-1] {
		next, err := a.child(n, path[:i], tok)
		if err != nil {
			return value{}, err
		}
		n = next
	}
	if !n.isContainer() {
		return value{}, notContainer(path[:len(path)-1], n)
	}
	return n, nil
}

// child returns the member or element tok of n, which is at pointer at.
func (a *applier) child(n value, at []string, tok string) (value, error) {
	a.w.spend(1)
	switch n.k {
	case kObject:
		v := a.t.obj(n).get(a.t, a.w, tok)
		if v.k == kRemoved {
			return value{}, noMember(at, tok)
		}
		return v, nil
	case kArray:
		elems := a.t.elems(n)
		i, err := arrayIndex(tok, len(elems), false, at)
		if err != nil {
			return value{}, err
		}
		return elems[i], nil
	default:
		return value{}, notContainer(at, n)
	}
}

func noMember(at []string, tok string) error {
	if len(at) == 0 {
		return fmt.Errorf("path does not exist: the document has no member %q", tok)
	}
	return fmt.Errorf("path does not exist: %s has no member %q", formatPointer(at), tok)
}

func notContainer(at []string, n value) error {
	if len(at) == 0 {
		return fmt.Errorf("path does not exist: the document is %s, not an object or array", n.k)
	}
	return fmt.Errorf("path does not exist: %s is %s, not an object or array", showTokens(at), n.k)
}

func (a *applier) get(path []string) (value, error) {
	if len(path) == 0 {
		return a.root, nil
	}
	c, err := a.container(path)
	if err != nil {
		return value{}, err
	}
	return a.child(c, path[:len(path)-1], path[len(path)-1])
}

func (a *applier) add(path []string, v value, depth int) error {
	if len(path) == 0 {
		// Any value will do in between, as RFC 6902 says (json-patch refuses a scalar other
		// than null); JSON refuses a result that is not an object.
		a.root = v
		return nil
	}
	if err := checkDepth(path, depth); err != nil {
		return err
	}
	c, err := a.container(path)
	if err != nil {
		return err
	}
	last := path[len(path)-1]
	if c.k == kObject {
		a.t.obj(c).set(a.t, a.w, last, v)
		return nil
	}
	arr := a.t.arr(c)
	i, err := arrayIndex(last, len(arr.v), true, path[:len(path)-1])
	if err != nil {
		return err
	}
	if !a.shift(len(arr.v) - i) {
		return nil
	}
	arr.v = slices.Insert(arr.v, i, v)
	return nil
}

// shift spends the units for moving n array elements and reports whether the budget holds; the
// caller then skips the move, and JSON reports the budget.
func (a *applier) shift(n int) bool {
	return a.w.spend(1 + n/shiftsPerUnit)
}

func (a *applier) replace(path []string, v value, depth int) error {
	if len(path) == 0 {
		a.root = v
		return nil
	}
	if err := checkDepth(path, depth); err != nil {
		return err
	}
	c, err := a.container(path)
	if err != nil {
		return err
	}
	last := path[len(path)-1]
	if c.k == kObject {
		o := a.t.obj(c)
		i := o.find(a.t, a.w, last)
		if i < 0 || o.m[i].val.k == kRemoved {
			return noMember(path[:len(path)-1], last)
		}
		o.m[i].val = v
		return nil
	}
	elems := a.t.elems(c)
	i, err := arrayIndex(last, len(elems), false, path[:len(path)-1])
	if err != nil {
		return err
	}
	elems[i] = v
	return nil
}

// remove removes the value at path (not the root) and returns it.
func (a *applier) remove(path []string) (value, error) {
	c, err := a.container(path)
	if err != nil {
		return value{}, err
	}
	last := path[len(path)-1]
	if c.k == kObject {
		o := a.t.obj(c)
		v := o.get(a.t, a.w, last)
		if v.k == kRemoved {
			return value{}, noMember(path[:len(path)-1], last)
		}
		o.remove(a.t, a.w, last)
		return v, nil
	}
	arr := a.t.arr(c)
	i, err := arrayIndex(last, len(arr.v), false, path[:len(path)-1])
	if err != nil {
		return value{}, err
	}
	v := arr.v[i]
	if !a.shift(len(arr.v) - i - 1) {
		return v, nil
	}
	arr.v = slices.Delete(arr.v, i, i+1)
	return v, nil
}
