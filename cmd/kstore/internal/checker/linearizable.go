package checker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

var (
	// ErrNotLinearizable: no linear order of the operations, consistent with their real-time
	// order, explains what the clients saw. Open the visualization to see how far it got.
	ErrNotLinearizable = errors.New("checker: not linearizable")
	// ErrCheckTimedOut: the search did not finish in time; nothing was found either way. Give
	// it longer, or Resolve the history first.
	ErrCheckTimedOut = errors.New("checker: linearizability check timed out")
)

// Linearizable checks ops with porcupine within timeout (0: none). It returns nil when they
// are linearizable; ErrNotLinearizable, naming the first operation porcupine could not place
// when it can tell, when they are not; ErrCheckTimedOut when the search did not finish; and
// ErrInvalidHistory for an operation it cannot read. When htmlPath is not empty and the history
// is not linearizable, or the check timed out, it writes porcupine's visualization there.
//
// Reads with an unknown outcome observed nothing and are dropped, and so are refused
// operations (failed with no reason): they change nothing and fit anywhere. A write with an
// unknown outcome may take effect at any time after its call, so it returns, for porcupine,
// after everything else has, as in etcd's robustness tests; except when a read saw its value,
// which settles where it took effect (see settleSeen). The writes left unknown are what makes
// the search long: a violation after a few dozen of them may take longer than any timeout to
// show. Resolve settles most of them from the reference.
func Linearizable(ops []Op, timeout time.Duration, htmlPath string) error {
	history, err := operations(ops)
	if err != nil {
		return err
	}
	result, info := porcupine.CheckOperationsVerbose(model, history, timeout)
	switch result {
	case porcupine.Ok:
		return nil
	case porcupine.Illegal:
		err = fmt.Errorf("%w%s", ErrNotLinearizable, unplaced(history, info))
	default:
		err = fmt.Errorf("%w after %v", ErrCheckTimedOut, timeout)
	}
	if htmlPath != "" {
		if verr := porcupine.VisualizePath(model, info, htmlPath); verr != nil {
			return errors.Join(err, fmt.Errorf("checker: writing the visualization: %w", verr))
		}
		err = fmt.Errorf("%w (visualization: %s)", err, htmlPath)
	}
	return err
}

// operations turns ops into porcupine's history. Each Input is a copy of an Op: its list items
// sorted by key as the model's objects are, and its outcome settled when the history shows it
// (see settleSeen).
func operations(ops []Op) ([]porcupine.Operation, error) {
	for i := range ops {
		if err := ops[i].validate(); err != nil {
			return nil, fmt.Errorf("%w: op %d (client %d, %s): %v", ErrInvalidHistory, i, ops[i].Client, &ops[i], err)
		}
	}
	end := latest(ops) + 1
	kept := make([]Op, 0, len(ops))
	for _, op := range ops {
		if op.Outcome == Unknown && !op.isWrite() || op.Outcome == Failed && op.Reason == "" {
			continue
		}
		if op.Kind == List {
			op.Items = slices.Clone(op.Items)
			slices.SortFunc(op.Items, func(a, b Item) int { return strings.Compare(a.Key, b.Key) })
		}
		if op.Outcome == Unknown {
			op.Return = end
		}
		kept = append(kept, op)
	}
	settleSeen(kept)
	history := make([]porcupine.Operation, len(kept))
	for i := range kept {
		op := &kept[i]
		history[i] = porcupine.Operation{ClientId: op.Client, Input: op, Call: op.Call, Return: op.Return}
	}
	return history, nil
}

// settleSeen settles, in place, the writes with an unknown outcome whose change a read saw: a
// get or list that returned value v of key k at rv R saw the change that stored it, and when
// only one put, create or update that did not fail wrote v to k, that write made it, at R. It
// becomes seen: applied at R, within the interval the ok operations around R in rv order allow
// (see timeline). This is the part of Resolve the history can do alone, with no reference: it
// trusts nothing but what the clients saw, and it spares porcupine most of the search for
// where those writes took effect.
func settleSeen(ops []Op) {
	type keyValue struct{ key, value string }
	writers := map[keyValue]int{}
	reads := map[keyValue]uint64{} // the rv a read saw of each value
	for i := range ops {
		op := &ops[i]
		switch {
		case op.isWrite() && op.Kind != Delete && op.Outcome != Failed:
			writers[keyValue{op.Key, op.Value}]++
		case op.Kind == Get && op.Outcome == OK && !op.foundNothing():
			reads[keyValue{op.Key, op.GotValue}] = op.RV
		case op.Kind == List && op.Outcome == OK:
			for _, it := range op.Items {
				reads[keyValue{it.Key, it.Value}] = it.RV
			}
		}
	}
	clock := newTimeline(ops)
	for i := range ops {
		op := &ops[i]
		kv := keyValue{op.Key, op.Value}
		rv, ok := reads[kv]
		if op.Outcome != Unknown || op.Kind == Delete || !ok || writers[kv] != 1 {
			continue
		}
		// Reads that disagree on the rv are a violation either way; the model finds it.
		op.Outcome, op.RV = seen, rv
		op.Result = map[OpKind]string{Create: ResultCreated, Update: ResultReplaced}[op.Kind] // a put's is either
		clock.settle(op, rv)
	}
}

// latest returns the latest time in ops: of the calls, and of the returns that mean something.
func latest(ops []Op) int64 {
	var t int64
	for i := range ops {
		t = max(t, ops[i].Call)
		if ops[i].Outcome != Unknown {
			t = max(t, ops[i].Return)
		}
	}
	return t
}

// unplaced names the operation the longest partial linearization porcupine found stopped at:
// of those it does not hold, the one that returned first. The search gave up when it reached
// that return with the operation still unplaced.
func unplaced(history []porcupine.Operation, info porcupine.LinearizationInfo) string {
	partitions := info.PartialLinearizations()
	if len(partitions) == 0 {
		return ""
	}
	var longest []int
	for _, l := range partitions[0] {
		if len(l) > len(longest) {
			longest = l
		}
	}
	placed := make([]bool, len(history))
	for _, id := range longest {
		placed[id] = true
	}
	first := -1
	for id, op := range history {
		if !placed[id] && (first < 0 || op.Return < history[first].Return) {
			first = id
		}
	}
	if first < 0 {
		return ""
	}
	op := history[first]
	return fmt.Sprintf(": after placing %d of %d operations, could not place client %d's %s (called at %d, returned at %d)",
		len(longest), len(history), op.ClientId, op.Input.(*Op), op.Call, op.Return)
}
