package checker

import (
	"cmp"
	"math"
	"slices"
)

// Resolve returns ops with the unknown outcomes that reference, every change of the namespace
// in rv order, settles, as etcd's robustness tests patch their history from what was
// persisted. A write with an unknown outcome stays pending until the end of the history, and
// porcupine must try it at every place after its call: with a few dozen of them, the search
// that shows a violation grows past any budget (Linearizable settles, by itself, only the
// writes a read saw). Settled, a write is gone, or is ok with an rv.
//
//   - A put, create or update whose value is in the reference at a change no ok write made
//     (values are unique per write) made that change: it becomes ok, with the result the
//     change's type says. One whose value is not there changed nothing, and is dropped.
//   - A deletion in the reference that no ok delete made was made by a delete of the key with
//     an unknown outcome called no later than a client saw the deletion (and whose
//     precondition, if any, is the deleted object's rv). Deletes carry no value, so which of
//     them made it may not be known, and it does not matter to the check: the deletion becomes
//     one ok delete, called when the first of them was, and the deletes of that key with an
//     unknown outcome are dropped, since each made one of those deletions or nothing. Its
//     interval holds that of whichever delete made it, so a linear order of the real history
//     is one of the settled history. (When the reference has a deletion of a key that none of
//     them can have made, the key's deletes are left as they are.)
//   - Reads with an unknown outcome are dropped: they observed nothing.
//
// A settled write takes effect in the interval the ok operations around its rv allow (see
// timeline.settle): after the latest call of those before it in rv order, before the earliest
// return of those after it. The model would reject any other place anyway.
//
// So the operations returned are not always the ones given: a settled write's interval is
// narrowed, and a settled deletion is written as a delete by the first client that may have
// made it, with the precondition they all had (or none).
//
// Resolve trusts the reference to hold every change up to the end of the history, and assumes
// ops are every write to the namespace; check both with Changes and Watches first (a reference
// cut short shows as ok writes missing from it). Where the reference contradicts itself or the ops (a value twice,
// a change of the wrong type), the write stays unknown, and Changes reports why.
func Resolve(ops []Op, reference []Event) []Op {
	clock := newTimeline(ops)
	claimed := map[uint64]bool{} // the changes ok writes made, by rv
	type keyValue struct{ key, value string }
	unknown := map[keyValue]int{} // puts, creates and updates with an unknown outcome, by what they wrote
	for i := range ops {
		op := &ops[i]
		switch {
		case op.ownIndex() && op.Result != ResultNoOp:
			claimed[op.RV] = true
		case op.Outcome == Unknown && op.isWrite() && op.Kind != Delete:
			unknown[keyValue{op.Key, op.Value}]++
		}
	}
	unclaimed := map[keyValue][]Event{} // ADDED and MODIFIED no ok write made, by what they stored
	for _, e := range reference {
		if (e.Type == EventAdded || e.Type == EventModified) && !claimed[e.RV] {
			unclaimed[keyValue{e.Key, e.Value}] = append(unclaimed[keyValue{e.Key, e.Value}], e)
		}
	}

	deletions := settleDeletions(ops, reference, claimed, clock)
	out := make([]Op, 0, len(ops))
	for i, op := range ops {
		out = append(out, deletions.at[i]...)
		if op.Outcome != Unknown {
			out = append(out, op)
			continue
		}
		switch op.Kind {
		case Get, List:
			continue
		case Delete:
			if !deletions.settled[op.Key] {
				out = append(out, op)
			}
			continue
		}
		kv := keyValue{op.Key, op.Value}
		es := unclaimed[kv]
		if len(es) == 0 {
			continue // it made no change
		}
		result := resultOf(op.Kind, es[0].Type)
		if len(es) > 1 || unknown[kv] > 1 || result == "" {
			out = append(out, op)
			continue
		}
		op.Outcome, op.Result, op.RV = OK, result, es[0].RV
		clock.settle(&op, op.RV)
		out = append(out, op)
	}
	return out
}

func resultOf(kind OpKind, event string) string {
	switch {
	case event == EventAdded && (kind == Put || kind == Create):
		return ResultCreated
	case event == EventModified && (kind == Put || kind == Update):
		return ResultReplaced
	}
	return ""
}

// deletions is what settleDeletions settled.
type deletions struct {
	settled map[string]bool // keys whose deletes with an unknown outcome the deletions replace
	at      map[int][]Op    // the deletions, by the position in ops of the first delete that may have made each
}

// settleDeletions turns the deletions of reference no ok delete claims into ok deletes, for the
// keys where a delete of ops with an unknown outcome may have made each (see Resolve).
func settleDeletions(ops []Op, reference []Event, claimed map[uint64]bool, clock timeline) deletions {
	d := deletions{settled: map[string]bool{}, at: map[int][]Op{}}
	type deletion struct {
		rv, deletedRV uint64
		first         int    // the position of the first delete that may have made it, -1 for none
		ifRV          uint64 // the precondition all those deletes had, 0 when they differ
	}
	byKey := map[string][]deletion{}
	stored := map[string]uint64{} // the rv of the object stored, by key
	for _, e := range reference {
		switch e.Type {
		case EventAdded, EventModified:
			stored[e.Key] = e.RV
		case EventDeleted:
			if !claimed[e.RV] {
				byKey[e.Key] = append(byKey[e.Key], deletion{rv: e.RV, deletedRV: stored[e.Key], first: -1})
			}
			delete(stored, e.Key)
		}
	}
	for i := range ops {
		op := &ops[i]
		if op.Kind != Delete || op.Outcome != Unknown {
			continue
		}
		d.settled[op.Key] = true
		for j := range byKey[op.Key] {
			del := &byKey[op.Key][j]
			if op.IfRV != 0 && op.IfRV != del.deletedRV || clock.seen(del.rv) < op.Call {
				continue // it cannot have made this one
			}
			switch {
			case del.first < 0:
				del.first, del.ifRV = i, op.IfRV
			case op.IfRV != del.ifRV:
				del.ifRV = 0
			}
			if op.Call < ops[del.first].Call {
				del.first = i
			}
		}
	}
	for key, dels := range byKey {
		for _, del := range dels {
			if del.first < 0 {
				d.settled[key] = false // no recorded delete made it: leave the key as it is
			}
		}
	}
	for key, dels := range byKey {
		if !d.settled[key] {
			continue
		}
		for _, del := range dels {
			op := Op{Client: ops[del.first].Client, Kind: Delete, Key: key, IfRV: del.ifRV, Call: ops[del.first].Call,
				Outcome: OK, Result: ResultDeleted, RV: del.rv}
			clock.settle(&op, op.RV)
			d.at[del.first] = append(d.at[del.first], op)
		}
	}
	return d
}

// timeline bounds when a change took effect, from the ok operations that show where they are
// in rv order. A change at rv took effect after every operation linearized before it was
// called, and before every operation linearized after it returned.
//
// Positions in rv order are 2*rv for the change committed at rv (an ok write that made it, or
// a NO_OP delete, at its own index) and 2*rv+1 for a read at rv (a list at its ListRV); a get,
// or a NO_OP put or update, that shows an object's rv x is somewhere at or after 2*x+1.
type timeline struct {
	// after holds the (lowest) positions of every operation that shows one, sorted;
	// firstReturn[i] is the earliest return of those at after[i:].
	after       []uint64
	firstReturn []int64
	// before holds the positions of the operations whose position is exact, sorted;
	// lastCall[i] is the latest call of those at before[:i+1].
	before   []uint64
	lastCall []int64
	// end is after everything: the return of a change nobody saw.
	end int64
}

func newTimeline(ops []Op) timeline {
	type point struct {
		pos  uint64
		time int64
	}
	var after, before []point
	for i := range ops {
		op := &ops[i]
		switch {
		case op.Outcome != OK || op.foundNothing():
		case op.ownIndex():
			after = append(after, point{2 * op.RV, op.Return})
			before = append(before, point{2 * op.RV, op.Call})
		case op.Kind == List:
			after = append(after, point{2*op.ListRV + 1, op.Return})
			before = append(before, point{2*op.ListRV + 1, op.Call})
		default: // a get, a NO_OP put or update
			after = append(after, point{2*op.RV + 1, op.Return})
		}
	}
	byPos := func(a, b point) int { return cmp.Compare(a.pos, b.pos) }
	slices.SortFunc(after, byPos)
	slices.SortFunc(before, byPos)
	t := timeline{
		after: make([]uint64, len(after)), firstReturn: make([]int64, len(after)),
		before: make([]uint64, len(before)), lastCall: make([]int64, len(before)),
		end: latest(ops) + 1,
	}
	next := t.end
	for i := len(after) - 1; i >= 0; i-- {
		next = min(next, after[i].time)
		t.after[i], t.firstReturn[i] = after[i].pos, next
	}
	var prev int64 = math.MinInt64
	for i, p := range before {
		prev = max(prev, p.time)
		t.before[i], t.lastCall[i] = p.pos, prev
	}
	return t
}

// seen returns the earliest time a client had seen the change at rv, or anything after it:
// the change took effect before then.
func (t timeline) seen(rv uint64) int64 {
	i, _ := slices.BinarySearch(t.after, 2*rv+1)
	if i == len(t.after) {
		return t.end
	}
	return t.firstReturn[i]
}

// settle gives op, which made the change at rv, the interval it took effect in: from its call,
// or the latest call of an operation before the change when that is later, to the first
// return of an operation after it. The model puts every change in rv order among the
// operations that show an rv, so placing op outside that interval fails anyway: narrowing it
// changes no verdict, only how much porcupine has to search. (When the two bounds cross,
// which only a violation can make them do, the call stays.)
func (t timeline) settle(op *Op, rv uint64) {
	op.Return = max(op.Call, t.seen(rv))
	i, _ := slices.BinarySearch(t.before, 2*rv)
	if i > 0 && t.lastCall[i-1] > op.Call && t.lastCall[i-1] <= op.Return {
		op.Call = t.lastCall[i-1]
	}
}
