package checker

import (
	"errors"
	"fmt"
)

// Findings of Changes.
var (
	// ErrReferenceOrder: the reference's rvs do not strictly increase.
	ErrReferenceOrder = errors.New("checker: reference out of rv order")
	// ErrReferenceReplay: replayed from an empty namespace, the reference adds a key that is
	// there, modifies or deletes one that is not, deletes a value other than the stored one, or
	// has an event that is not a change.
	ErrReferenceReplay = errors.New("checker: reference does not replay")
	// ErrWriteNotInReference: an ok write's change is not in the reference at its rv.
	ErrWriteNotInReference = errors.New("checker: ok write not in the reference")
	// ErrUnwrittenChange: a change in the reference no operation can have made: a value no put,
	// create or update wrote (or only one that failed, so changed nothing), a deletion neither
	// an ok delete at that rv nor a delete with an unknown outcome can have made.
	ErrUnwrittenChange = errors.New("checker: reference change no client made")
	// ErrSharedRV: two changes at one rv, as the ok writes report them (a NO_OP delete's rv
	// is its own command's index, so no change can be there either).
	ErrSharedRV = errors.New("checker: one rv for two changes")
)

// Changes checks reference, every change of the namespace in rv order, against the client ops.
// It returns one error per finding, each wrapping one of the sentinels above: the rvs strictly
// increase; replaying from an empty namespace is consistent; every ok write that changed
// something (CREATED, REPLACED, DELETED) is at its rv with its key, the matching type (ADDED,
// MODIFIED, DELETED) and value (a deletion's value is checked by the replay: the last stored
// one); every ADDED or MODIFIED value was written to that key by a put, create or update that
// did not fail, each write making at most one change; every deletion no ok delete claims is
// owed to a delete of the key with an unknown outcome, each making at most one; and no rv of
// an ok write is the rv of another change.
//
// It assumes ops are every write to the namespace: a change made by someone else is reported.
func Changes(ops []Op, reference []Event) []error {
	var errs []error
	report := func(sentinel error, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...)))
	}

	stored := map[string]Event{} // by key, the change that stored it
	byRV := map[uint64]int{}     // the first event at each rv
	for i, e := range reference {
		if i > 0 && e.RV <= reference[i-1].RV {
			report(ErrReferenceOrder, "event %d (%s) after %s", i, e, reference[i-1])
		}
		if _, ok := byRV[e.RV]; !ok {
			byRV[e.RV] = i
		}
		prev, present := stored[e.Key]
		switch e.Type {
		case EventAdded:
			if present {
				report(ErrReferenceReplay, "event %d (%s) adds a key stored by %s", i, e, prev)
			}
			stored[e.Key] = e
		case EventModified:
			if !present {
				report(ErrReferenceReplay, "event %d (%s) modifies a key not stored", i, e)
			}
			stored[e.Key] = e
		case EventDeleted:
			switch {
			case !present:
				report(ErrReferenceReplay, "event %d (%s) deletes a key not stored", i, e)
			case prev.Value != e.Value:
				report(ErrReferenceReplay, "event %d (%s) deletes another value than %s stored", i, e, prev)
			}
			delete(stored, e.Key)
		default:
			report(ErrReferenceReplay, "event %d (%s) is not ADDED, MODIFIED or DELETED", i, e)
		}
	}

	type keyValue struct{ key, value string }
	writers := map[keyValue]int{}      // writes that did not fail, by what they wrote
	failed := map[keyValue]bool{}      // writes that failed
	unknownDeletes := map[string]int{} // by key
	own := map[uint64]int{}            // ok writes by the index of their own command
	for i := range ops {
		op := &ops[i]
		switch {
		case op.Kind == Delete && op.Outcome == Unknown:
			unknownDeletes[op.Key]++
		case op.Kind == Delete, op.Result == ResultNoOp:
			// A delete writes no value; a NO_OP wrote the value already stored: no change.
		case op.isWrite() && op.Outcome == Failed:
			failed[keyValue{op.Key, op.Value}] = true
		case op.isWrite():
			writers[keyValue{op.Key, op.Value}]++
		}
		if !op.ownIndex() {
			continue
		}
		if j, ok := own[op.RV]; ok {
			report(ErrSharedRV, "client %d's %s and client %d's %s", ops[j].Client, &ops[j], op.Client, op)
		} else {
			own[op.RV] = i
		}
		j, ok := byRV[op.RV]
		if op.Result == ResultNoOp { // a delete of an absent key
			if ok {
				report(ErrSharedRV, "client %d's %s, and the reference has %s", op.Client, op, reference[j])
			}
			continue
		}
		if !ok {
			report(ErrWriteNotInReference, "client %d's %s: no change at rv %d", op.Client, op, op.RV)
			continue
		}
		e := reference[j]
		want := map[string]string{ResultCreated: EventAdded, ResultReplaced: EventModified, ResultDeleted: EventDeleted}[op.Result]
		if e.Key != op.Key || e.Type != want || op.Result != ResultDeleted && e.Value != op.Value {
			report(ErrWriteNotInReference, "client %d's %s: the reference has %s", op.Client, op, e)
		}
	}

	for i, e := range reference {
		switch e.Type {
		case EventAdded, EventModified:
			kv := keyValue{e.Key, e.Value}
			switch {
			case writers[kv] > 0:
				writers[kv]--
			case failed[kv]:
				report(ErrUnwrittenChange, "event %d (%s): only a write that failed wrote %s", i, e, e.Value)
			default:
				report(ErrUnwrittenChange, "event %d (%s): no write of %s to %s left to make it", i, e, e.Value, e.Key)
			}
		case EventDeleted:
			if j, ok := own[e.RV]; ok && ops[j].Kind == Delete {
				continue // claimed; whether it matches was checked above
			}
			if unknownDeletes[e.Key] > 0 {
				unknownDeletes[e.Key]--
				continue
			}
			report(ErrUnwrittenChange, "event %d (%s): no ok delete at rv %d, no delete of %s with an unknown outcome left to make it", i, e, e.RV, e.Key)
		}
	}
	return errs
}
