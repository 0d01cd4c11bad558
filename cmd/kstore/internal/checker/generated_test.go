package checker

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// simulation is a sequentially consistent store in memory. Each operation takes effect at one
// instant inside its interval (a write with an unknown outcome at any instant after its call,
// or never), one at a time in the order of those instants, so the history it records is
// linearizable by construction. The Raft index advances by 1 to 3 per command, and now and then
// with no command the clients see, as elections and membership changes do.
type simulation struct {
	rng       *rand.Rand
	index     uint64
	objects   map[string]Item
	reference []Event
}

// simulate returns n operations of clients on keys, with unknownRate of them unknown, the
// reference change log, and three watches of it.
func simulate(seed uint64, clients, keys, n int, unknownRate float64) ([]Op, []Event, []WatchLog) {
	s := &simulation{rng: rand.New(rand.NewPCG(seed, 0)), objects: map[string]Item{}}
	type planned struct {
		op      Op
		at      int64 // when it takes effect
		applies bool
	}
	plan := make([]planned, n)
	clock := make([]int64, clients)
	for j := range plan {
		c := j % clients
		call := clock[c] + s.rng.Int64N(100)
		d := 1 + s.rng.Int64N(1000)
		clock[c] = call + d
		op := Op{Client: c, Key: fmt.Sprintf("k%d", s.rng.IntN(keys)), Call: call, Return: call + d, Outcome: OK}
		switch p := s.rng.IntN(100); {
		case p < 25:
			op.Kind = Get
		case p < 35:
			op.Kind, op.Key = List, ""
		case p < 55:
			op.Kind = Put
		case p < 65:
			op.Kind = Create
		case p < 85:
			op.Kind = Update
		default:
			op.Kind = Delete
		}
		if op.Kind == Put || op.Kind == Create || op.Kind == Update {
			op.Value = fmt.Sprintf("v%d", j)
		}
		pl := planned{op: op, at: call + s.rng.Int64N(d+1), applies: true}
		switch r := s.rng.Float64(); {
		case r < unknownRate:
			pl.op.Outcome = Unknown
			// A write that timed out may take effect long after, or never; a read observed nothing.
			pl.applies = op.isWrite() && s.rng.IntN(2) == 0
			pl.at = call + s.rng.Int64N(4*d)
		case r < unknownRate+0.02:
			pl.op.Outcome, pl.applies = Failed, false // refused
		}
		plan[j] = pl
	}
	slices.SortStableFunc(plan, func(a, b planned) int { return cmp.Compare(a.at, b.at) })
	for i := range plan {
		if plan[i].applies {
			s.apply(&plan[i].op)
		}
	}
	ops := make([]Op, n)
	for i, pl := range plan {
		ops[i] = pl.op
	}
	slices.SortStableFunc(ops, func(a, b Op) int { return cmp.Compare(a.Call, b.Call) })

	last := s.reference[len(s.reference)-1].RV
	watches := []WatchLog{
		s.watch(1000, "", 0, last),
		s.watch(1001, "", s.reference[len(s.reference)/4].RV, s.reference[len(s.reference)*3/4].RV),
		s.watch(1002, "k0", 0, last),
	}
	return ops, s.reference, watches
}

// apply makes op take effect now. An op with an unknown outcome changes the store but records
// nothing; one with a failure reason becomes Failed.
func (s *simulation) apply(op *Op) {
	known := op.Outcome == OK
	record := func(result string, rv uint64) {
		if known {
			op.Result, op.RV = result, rv
		}
	}
	fail := func(reason string) {
		if known {
			op.Outcome, op.Reason = Failed, reason
		}
	}
	o, found := s.objects[op.Key]
	if op.isWrite() {
		s.index += 1 + s.rng.Uint64N(3)
	}
	switch op.Kind {
	case Put, Create, Update:
		if op.Kind == Create && found {
			fail(ReasonAlreadyExists)
			return
		}
		if op.Kind == Update && !found {
			fail(ReasonNotFound)
			return
		}
		if op.Kind == Update {
			op.IfRV = s.precondition(o, found)
			if op.IfRV != 0 && op.IfRV != o.RV {
				fail(ReasonConflict)
				return
			}
		}
		if found && s.rng.IntN(30) == 0 {
			op.Value = o.Value // the same value again: a NO_OP
		}
		switch {
		case !found:
			s.change(EventAdded, Item{op.Key, op.Value, s.index})
			record(ResultCreated, s.index)
		case o.Value == op.Value:
			record(ResultNoOp, o.RV)
		default:
			s.change(EventModified, Item{op.Key, op.Value, s.index})
			record(ResultReplaced, s.index)
		}
	case Delete:
		if !found {
			record(ResultNoOp, s.index)
			return
		}
		op.IfRV = s.precondition(o, found)
		if op.IfRV != 0 && op.IfRV != o.RV {
			fail(ReasonConflict)
			return
		}
		s.change(EventDeleted, Item{op.Key, o.Value, s.index})
		record(ResultDeleted, s.index)
	case Get:
		switch {
		case found:
			op.GotValue, op.RV = o.Value, o.RV
		case s.rng.IntN(2) == 0:
			op.Reason = ReasonNotFound // recorded as an ok observation, as the fault tests do
		default:
			op.Outcome, op.Reason = Failed, ReasonNotFound
		}
	case List:
		s.index += s.rng.Uint64N(2) // a command no client sees
		op.ListRV = s.index
		for _, it := range s.objects {
			op.Items = append(op.Items, it)
		}
		slices.SortFunc(op.Items, func(a, b Item) int { return strings.Compare(a.Key, b.Key) })
		s.rng.Shuffle(len(op.Items), func(i, j int) { op.Items[i], op.Items[j] = op.Items[j], op.Items[i] })
	}
}

// precondition picks an update's or delete's IfRV: the stored rv most often, else none, or a
// stale one.
func (s *simulation) precondition(o Item, found bool) uint64 {
	switch p := s.rng.IntN(10); {
	case p < 5 && found:
		return o.RV
	case p < 8:
		return 0
	default:
		return 1 + s.rng.Uint64N(s.index)
	}
}

func (s *simulation) change(typ string, it Item) {
	if typ == EventDeleted {
		delete(s.objects, it.Key)
	} else {
		s.objects[it.Key] = it
	}
	s.reference = append(s.reference, Event{Type: typ, Key: it.Key, Value: it.Value, RV: it.RV})
}

// watch is what a correct watch of key ("" for all) from startRV delivers up to until, with
// bookmarks between its events now and then.
func (s *simulation) watch(client int, key string, startRV, until uint64) WatchLog {
	w := WatchLog{Client: client, Key: key, StartRV: startRV}
	var selected []Event
	for _, e := range s.reference {
		if e.RV > startRV && e.RV <= until && (key == "" || e.Key == key) {
			selected = append(selected, e)
		}
	}
	if s.rng.IntN(2) == 0 {
		w.Events = append(w.Events, Event{Type: EventBookmark, RV: startRV})
	}
	for i, e := range selected {
		w.Events = append(w.Events, e)
		next := until + 1
		if i+1 < len(selected) {
			next = selected[i+1].RV
		}
		if s.rng.IntN(10) == 0 {
			w.Events = append(w.Events, Event{Type: EventBookmark, RV: e.RV + s.rng.Uint64N(next-e.RV)})
		}
	}
	return w
}

// generated is the size of the generated histories: about what a fault test's run records.
const (
	generatedClients = 8
	generatedKeys    = 8
	generatedOps     = 5000
	generatedUnknown = 0.05
	// generatedBudget is the time a generated history must check in: a few seconds (it takes
	// about one on an idle core), times the race detector's slowdown.
	generatedBudget = 5 * time.Second * slowdown
)

func TestGeneratedHistory(t *testing.T) {
	ops, reference, watches := simulate(1, generatedClients, generatedKeys, generatedOps, generatedUnknown)
	counts := map[Outcome]int{}
	for _, op := range ops {
		counts[op.Outcome]++
	}
	if counts[Unknown] < generatedOps/40 {
		t.Fatalf("only %d of %d outcomes unknown, want about %v", counts[Unknown], len(ops), generatedUnknown)
	}

	start := time.Now()
	if err := Linearizable(ops, generatedBudget, ""); err != nil {
		t.Fatalf("Linearizable = %v, want nil", err)
	}
	t.Logf("%d ops (%v), %d changes: linearizable in %v", len(ops), counts, len(reference), time.Since(start))

	resolved := Resolve(ops, reference)
	start = time.Now()
	if err := Linearizable(resolved, generatedBudget, ""); err != nil {
		t.Fatalf("Linearizable(Resolve) = %v, want nil", err)
	}
	t.Logf("resolved to %d ops (%d unknown): linearizable in %v", len(resolved), unknowns(resolved), time.Since(start))

	if errs := Changes(ops, reference); errs != nil {
		t.Errorf("Changes = %v, want none", errs)
	}
	if errs := Watches(watches, reference); errs != nil {
		t.Errorf("Watches = %v, want none", errs)
	}
}

func TestGeneratedHistoryCorrupted(t *testing.T) {
	tests := []struct {
		name    string
		unknown float64
		resolve bool
	}{
		// With unknown outcomes, the history is resolved first: on the raw history porcupine
		// must try every place for every write with an unknown outcome no read settled before
		// it can say no order exists, which takes far longer than any budget here.
		{"resolved", generatedUnknown, true},
		{"no unknown outcomes", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, reference, _ := simulate(7, generatedClients, generatedKeys, generatedOps, tt.unknown)
			i, stale := staleRead(t, ops)
			was := ops[i]
			ops[i].GotValue, ops[i].RV = stale.Value, stale.RV
			t.Logf("op %d, client %d's %s, now reads %s@%d", i, was.Client, &was, stale.Value, stale.RV)
			if tt.resolve {
				ops = Resolve(ops, reference)
			}
			start := time.Now()
			if err := Linearizable(ops, generatedBudget, ""); !errors.Is(err, ErrNotLinearizable) {
				t.Fatalf("Linearizable = %v, want ErrNotLinearizable", err)
			}
			t.Logf("found in %v", time.Since(start))
		})
	}
}

// staleRead picks an ok get in the middle of ops (sorted by call) and an ok write to its key
// that another ok write to it followed, both wholly before the get was called. Values are
// unique, so the get cannot read that write's value.
func staleRead(t *testing.T, ops []Op) (int, Item) {
	t.Helper()
	for i := len(ops) / 2; i < len(ops); i++ {
		g := &ops[i]
		if g.Kind != Get || g.Outcome != OK || g.foundNothing() {
			continue
		}
		var first, followed *Op
		for j := range ops[:i] {
			w := &ops[j]
			if w.Key != g.Key || w.Outcome != OK || w.Return >= g.Call || w.Result != ResultCreated && w.Result != ResultReplaced {
				continue
			}
			if first == nil || w.Return < first.Return {
				first = w
			}
		}
		for j := range ops[:i] {
			w := &ops[j]
			if first != nil && w.Key == g.Key && w.Outcome == OK && w.Call > first.Return && w.Return < g.Call &&
				(w.Result == ResultCreated || w.Result == ResultReplaced) {
				followed = w
			}
		}
		if followed != nil {
			return i, Item{Key: g.Key, Value: first.Value, RV: first.RV}
		}
	}
	t.Fatal("no get to corrupt")
	return 0, Item{}
}

func unknowns(ops []Op) int {
	n := 0
	for _, op := range ops {
		if op.Outcome == Unknown {
			n++
		}
	}
	return n
}
