package checker

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// object is one stored object as the model knows it at a point of the linear order.
type object struct {
	key, value string
	// rv is the object's resourceVersion, or 0 while it is not known: the write that stored the
	// value had an unknown outcome and nothing has shown the rv since. Raft indices start at 1,
	// so 0 is never an rv.
	rv uint64
	// While rv is 0, floor ≤ rv ≤ ceil. floor starts one above lastRV when the write is
	// linearized (it committed after everything before it); ceil starts at MaxUint64 and drops
	// to one below each rv committed after it. Reads that show the rv bind it (see bind).
	floor, ceil uint64
}

// state is what the model knows at a point of a linear order: the objects and lastRV, a lower
// bound on every rv committed so far, so every later change has a greater rv.
//
// A state is immutable: a step that changes it returns a new one with a new objects slice
// (sorted by key; about ten keys, so a copy is cheaper than a persistent map), which keeps
// porcupine's cache of visited states valid.
//
// Invariants: lastRV ≥ every floor; of two objects whose rv is not known, the one with the
// greater floor was written later in the linear order (equal floors tell nothing).
type state struct {
	objects []object
	lastRV  uint64
}

func (s state) index(key string) (int, bool) {
	return slices.BinarySearchFunc(s.objects, key, func(o object, k string) int { return strings.Compare(o.key, k) })
}

// stored returns s with o stored at position i, where index placed o.key.
func (s state) stored(i int, found bool, o object) state {
	objs := make([]object, 0, len(s.objects)+1)
	objs = append(objs, s.objects[:i]...)
	objs = append(objs, o)
	if found {
		i++
	}
	objs = append(objs, s.objects[i:]...)
	return state{objects: objs, lastRV: s.lastRV}
}

func (s state) removed(i int) state {
	return state{objects: slices.Delete(slices.Clone(s.objects), i, i+1), lastRV: s.lastRV}
}

// commit is a change, or a NO_OP delete, committed at an rv the client saw: it must be above
// every rv before it, and every object whose rv is not known yet was written before it, so
// has a smaller rv. (Its floor is at most lastRV, so the new ceil stays at or above it.)
func (s state) commit(rv uint64) (state, bool) {
	if rv <= s.lastRV {
		return state{}, false
	}
	n := state{objects: s.objects, lastRV: rv}
	copied := false
	for i, o := range s.objects {
		if o.rv == 0 && o.ceil > rv-1 {
			if !copied {
				n.objects, copied = slices.Clone(s.objects), true
			}
			n.objects[i].ceil = rv - 1
		}
	}
	return n, true
}

// writtenUnknown returns s with value stored at key by a write whose rv the client did not see.
// It committed after everything before it: lastRV+1 is a lower bound on its rv, and on what
// lastRV is from now on.
func (s state) writtenUnknown(i int, found bool, key, value string) state {
	n := s.stored(i, found, object{key: key, value: value, floor: s.lastRV + 1, ceil: math.MaxUint64})
	n.lastRV++
	return n
}

// bind fixes the rv of the object at i to rv, which a read, a NO_OP or a matched precondition
// showed; it fails when the object's rv is known to be another one, or cannot be rv. Binding
// orders the other objects whose rv is not known: those written after it (greater floor) have
// rv above rv, those written before (smaller floor) below it.
func (s state) bind(i int, rv uint64) (state, bool) {
	o := s.objects[i]
	if o.rv != 0 {
		return s, o.rv == rv
	}
	if rv < o.floor || rv > o.ceil {
		return state{}, false
	}
	objs := slices.Clone(s.objects)
	objs[i] = object{key: o.key, value: o.value, rv: rv} // no bounds left: equal states look equal
	last := max(s.lastRV, rv)
	for j := range objs {
		p := &objs[j]
		if p.rv != 0 {
			continue
		}
		switch {
		case p.floor > o.floor:
			p.floor = max(p.floor, rv+1)
		case p.floor < o.floor:
			p.ceil = min(p.ceil, rv-1)
		}
		if p.floor > p.ceil {
			return state{}, false
		}
		// p took effect in this state, before now: an index at or above its floor was committed.
		last = max(last, p.floor)
	}
	return state{objects: objs, lastRV: last}, true
}

// mayDiffer reports whether o's rv can be other than rv, as a Conflict says it is.
func (o object) mayDiffer(rv uint64) bool {
	if o.rv != 0 {
		return o.rv != rv
	}
	return o.floor != rv || o.ceil != rv
}

// precondition returns s with the precondition ifRV of a write that passed it applied to the
// object at i: the object's rv is ifRV.
func (s state) precondition(i int, ifRV uint64) (state, bool) {
	if ifRV == 0 {
		return s, true
	}
	return s.bind(i, ifRV)
}

// stepOK is an operation that took effect as the client saw it.
func (s state) stepOK(op *Op) (state, bool) {
	if op.foundNothing() {
		_, found := s.index(op.Key)
		return s, !found
	}
	if op.Kind == List {
		return s.list(op)
	}
	i, found := s.index(op.Key)
	switch op.Kind {
	case Put, Create, Update:
		// A put seen with an unknown outcome has no Result: it created or replaced.
		if !found {
			if op.Kind == Update || op.Result != ResultCreated && op.Result != "" {
				return state{}, false
			}
			n, ok := s.commit(op.RV)
			if !ok {
				return state{}, false
			}
			return n.stored(i, false, object{key: op.Key, value: op.Value, rv: op.RV}), true
		}
		if op.Kind == Create {
			return state{}, false
		}
		n := s
		if op.Kind == Update {
			var ok bool
			if n, ok = s.precondition(i, op.IfRV); !ok {
				return state{}, false
			}
		}
		same := n.objects[i].value == op.Value
		switch {
		case (op.Result == ResultReplaced || op.Result == "") && !same:
			n, ok := n.commit(op.RV)
			if !ok {
				return state{}, false
			}
			return n.stored(i, true, object{key: op.Key, value: op.Value, rv: op.RV}), true
		case op.Result == ResultNoOp && same:
			return n.bind(i, op.RV)
		}
		return state{}, false
	case Delete:
		if !found {
			if op.Result != ResultNoOp {
				return state{}, false
			}
			return s.commit(op.RV)
		}
		if op.Result != ResultDeleted {
			return state{}, false
		}
		n, ok := s.precondition(i, op.IfRV)
		if !ok {
			return state{}, false
		}
		if n, ok = n.commit(op.RV); !ok {
			return state{}, false
		}
		return n.removed(i), true
	case Get:
		if !found || s.objects[i].value != op.GotValue {
			return state{}, false
		}
		// The read was at an index at or above the object's rv, so every later change is above
		// it: bind raises lastRV to an rv it learns (a known one is at or below lastRV already).
		return s.bind(i, op.RV)
	}
	return state{}, false
}

// list is a list that returned Items (sorted by key) at ListRV.
func (s state) list(op *Op) (state, bool) {
	if len(op.Items) != len(s.objects) {
		return state{}, false
	}
	n := s
	for j, it := range op.Items {
		o := n.objects[j]
		if it.Key != o.key || it.Value != o.value || it.RV > op.ListRV {
			return state{}, false
		}
		var ok bool
		if n, ok = n.bind(j, it.RV); !ok {
			return state{}, false
		}
	}
	// The list read at ListRV, at or above everything committed before it, and every change
	// after it is above ListRV.
	if n.lastRV > op.ListRV {
		return state{}, false
	}
	n.lastRV = op.ListRV
	return n, true
}

// stepFailed reports whether op can fail as it did in s; a failed operation changes nothing.
func (s state) stepFailed(op *Op) bool {
	i, found := s.index(op.Key)
	switch op.Reason {
	case "":
		return true
	case ReasonNotFound:
		return !found && (op.Kind == Update || op.Kind == Get)
	case ReasonAlreadyExists:
		return found && op.Kind == Create
	case ReasonConflict:
		return found && op.IfRV != 0 && (op.Kind == Update || op.Kind == Delete) && s.objects[i].mayDiffer(op.IfRV)
	}
	return false
}

// stepUnknown returns the states a write with an unknown outcome may leave: s, when it did not
// take effect (or took effect as a NO_OP), and the state it leaves when it did.
func (s state) stepUnknown(op *Op) []any {
	i, found := s.index(op.Key)
	switch op.Kind {
	case Put, Create, Update:
		if found && op.Kind == Create || !found && op.Kind == Update {
			return []any{s}
		}
		n := s
		if found && op.Kind == Update {
			var ok bool
			if n, ok = s.precondition(i, op.IfRV); !ok {
				return []any{s}
			}
		}
		if found && n.objects[i].value == op.Value {
			// A NO_OP: nothing changes. (It would bind the rv to IfRV, but s allows that too.)
			return []any{s}
		}
		return []any{s, n.writtenUnknown(i, found, op.Key, op.Value)}
	case Delete:
		if !found {
			return []any{s} // a NO_OP at an index nobody saw
		}
		n, ok := s.precondition(i, op.IfRV)
		if !ok {
			return []any{s}
		}
		n = n.removed(i)
		n.lastRV++
		return []any{s, n}
	}
	return []any{s} // reads with an unknown outcome are dropped before the check
}

func step(st, in, _ any) []any {
	s, op := st.(state), in.(*Op)
	switch op.Outcome {
	case OK, seen:
		if n, ok := s.stepOK(op); ok {
			return []any{n}
		}
	case Failed:
		if s.stepFailed(op) {
			return []any{s}
		}
	case Unknown:
		return s.stepUnknown(op)
	}
	return nil
}

func equal(a, b any) bool {
	x, y := a.(state), b.(state)
	return x.lastRV == y.lastRV && slices.Equal(x.objects, y.objects)
}

// hash is FNV-1a over the state, so porcupine's cache compares few states.
func hash(st any) uint64 {
	s := st.(state)
	h := uint64(14695981039346656037)
	word := func(v uint64) {
		for range 8 {
			h = (h ^ v&0xff) * 1099511628211
			v >>= 8
		}
	}
	str := func(v string) {
		for i := 0; i < len(v); i++ {
			h = (h ^ uint64(v[i])) * 1099511628211
		}
		h = (h ^ 0xff) * 1099511628211 // ends the string: ("ab","c") differs from ("a","bc")
	}
	word(s.lastRV)
	for _, o := range s.objects {
		str(o.key)
		str(o.value)
		word(o.rv)
		word(o.floor)
		word(o.ceil)
	}
	return h
}

func describeState(st any) string {
	s := st.(state)
	var b strings.Builder
	b.WriteString("{")
	for i, o := range s.objects {
		if i > 0 {
			b.WriteString(" ")
		}
		switch {
		case o.rv != 0:
			fmt.Fprintf(&b, "%s=%s@%d", o.key, o.value, o.rv)
		case o.ceil == math.MaxUint64:
			fmt.Fprintf(&b, "%s=%s@[%d,∞)", o.key, o.value, o.floor)
		default:
			fmt.Fprintf(&b, "%s=%s@[%d,%d]", o.key, o.value, o.floor, o.ceil)
		}
	}
	fmt.Fprintf(&b, "} last rv ≥ %d", s.lastRV)
	return b.String()
}

// model is kstore's semantics for porcupine. It is nondeterministic because a write with an
// unknown outcome may or may not have taken effect; porcupine's power-set construction turns it
// into a model whose state is the set of states the store may be in. No Partition: a list reads
// every key, and lastRV orders writes of different keys.
var model = (&porcupine.NondeterministicModel{
	Init:              func() []any { return []any{state{}} },
	Step:              step,
	Equal:             equal,
	Hash:              hash,
	DescribeOperation: func(in, _ any) string { return in.(*Op).String() },
	DescribeState:     describeState,
}).ToModel()
