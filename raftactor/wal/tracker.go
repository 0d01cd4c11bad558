package wal

import (
	"fmt"
	"sort"

	"go.etcd.io/raft/v3/raftpb"
)

// termRun says that the entries from first on, up to the next run's first
// (or the last index), have term term.
type termRun struct {
	first, term uint64
}

// tracker applies raft's log rules (see the package doc, Replay) to the
// indexes and terms of the log. Replay uses it with keep set, to also build
// the entries; the live WAL uses it without, to know its last index and the
// terms it holds in as little memory as the number of term changes.
//
// Invariant: the log holds the indexes (base, last]; runs cover them, in
// order, runs[0].first == base+1 when last > base; with keep,
// ents[k].Index == base+1+k and len(ents) == last-base.
type tracker struct {
	hasSnap  bool
	snapIdx  uint64
	snapTerm uint64
	base     uint64
	last     uint64
	runs     []termRun
	keep     bool
	ents     []*raftpb.Entry
}

func newTracker(base uint64, keep bool) *tracker {
	return &tracker{base: base, last: base, keep: keep}
}

// termAt returns the term of entry i when the tracker knows it.
func (t *tracker) termAt(i uint64) (uint64, bool) {
	if t.hasSnap && i == t.snapIdx {
		return t.snapTerm, true
	}
	if i <= t.base || i > t.last {
		return 0, false
	}
	k := sort.Search(len(t.runs), func(k int) bool { return t.runs[k].first > i }) - 1
	return t.runs[k].term, true
}

// checkAppend reports why entries starting at index first cannot follow
// the log, or nil.
func (t *tracker) checkAppend(first uint64) error {
	switch {
	case first == 0:
		return fmt.Errorf("entry index 0 (raft indexes start at 1)")
	case first > t.last+1:
		return fmt.Errorf("entry %d leaves a gap after the last index %d", first, t.last)
	}
	return nil
}

// addEntry applies one entry: dropped at or below the snapshot, replacing
// the suffix from its index on otherwise. e is kept only with keep.
func (t *tracker) addEntry(e *raftpb.Entry) error {
	i, term := e.GetIndex(), e.GetTerm()
	if t.hasSnap && i <= t.snapIdx {
		return nil
	}
	if err := t.checkAppend(i); err != nil {
		return err
	}
	if i <= t.base {
		// The log lost what was before base (segments released under a
		// snapshot replay has not reached yet) and this entry overwrites
		// there: start the log over at i.
		t.base = i - 1
		t.last = t.base
		t.runs = t.runs[:0]
		clear(t.ents)
		t.ents = t.ents[:0]
	}
	if i <= t.last {
		k := sort.Search(len(t.runs), func(k int) bool { return t.runs[k].first >= i })
		t.runs = t.runs[:k]
		if t.keep {
			n := i - t.base - 1
			clear(t.ents[n:])
			t.ents = t.ents[:n]
		}
	}
	if len(t.runs) == 0 || t.runs[len(t.runs)-1].term != term {
		t.runs = append(t.runs, termRun{first: i, term: term})
	}
	t.last = i
	if t.keep {
		t.ents = append(t.ents, e)
	}
	return nil
}

// applySnapshot makes the log start after index i: the entries after i are
// kept when the log holds entry i with term term (a compaction), and all
// are dropped otherwise (a leader's snapshot replaced the log). A snapshot
// below the latest one changes nothing and reports false.
func (t *tracker) applySnapshot(i, term uint64) bool {
	if t.hasSnap && i < t.snapIdx {
		return false
	}
	switch have, ok := t.termAt(i); {
	case ok && have == term:
		t.dropThrough(i)
	case !ok && i <= t.base:
		// Below what the log holds and not the latest snapshot: only seen
		// while replaying the header of the first segment, whose entries
		// before it were released. Keep what follows.
	default:
		t.base, t.last = i, i
		t.runs = t.runs[:0]
		clear(t.ents)
		t.ents = t.ents[:0]
	}
	t.hasSnap, t.snapIdx, t.snapTerm = true, i, term
	return true
}

// dropThrough drops the entries at or below i, which the log holds.
func (t *tracker) dropThrough(i uint64) {
	if i <= t.base {
		return
	}
	k := sort.Search(len(t.runs), func(k int) bool { return t.runs[k].first > i }) - 1
	n := copy(t.runs, t.runs[k:])
	t.runs = t.runs[:n]
	if i < t.last {
		t.runs[0].first = i + 1
	} else {
		t.runs = t.runs[:0]
	}
	if t.keep {
		d := i - t.base
		clear(t.ents[:d])
		t.ents = t.ents[d:]
	}
	t.base = i
}
