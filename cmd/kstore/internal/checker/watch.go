package checker

import (
	"errors"
	"fmt"
	"strings"
)

// Types of an Event.
const (
	EventAdded    = "ADDED"
	EventModified = "MODIFIED"
	EventDeleted  = "DELETED"
	EventBookmark = "BOOKMARK"
)

// Event is one watch event, or one change of the reference log.
type Event struct {
	Type       string // EventAdded, EventModified, EventDeleted or EventBookmark
	Key, Value string // empty for a bookmark; a DELETED event carries the last value
	RV         uint64
}

func (e Event) String() string {
	if e.Type == EventBookmark {
		return fmt.Sprintf("BOOKMARK@%d", e.RV)
	}
	return fmt.Sprintf("%s %s=%s@%d", e.Type, e.Key, e.Value, e.RV)
}

// WatchLog is what one watch delivered.
type WatchLog struct {
	Client  int
	Key     string // "" = the whole namespace; else the watch is filtered to that one key
	StartRV uint64 // the watch asked for the changes after StartRV
	// Events are as received, in order, across the client's automatic resumes: a resume starts
	// after the last rv the watch saw, so the properties hold across it as within one stream.
	Events []Event
}

func (w *WatchLog) String() string {
	on := "the namespace"
	if w.Key != "" {
		on = "key " + w.Key
	}
	return fmt.Sprintf("client %d's watch of %s from rv %d", w.Client, on, w.StartRV)
}

// The watch properties of etcd's robustness tests (tests/robustness/validate/watch.go), as one
// kstore watch gives them.
var (
	ErrNotOrdered      = errors.New("checker: watch not ordered")
	ErrNotUnique       = errors.New("checker: watch not unique")
	ErrNotAtomic       = errors.New("checker: watch not atomic")
	ErrNotBookmarkable = errors.New("checker: watch not bookmarkable")
	ErrNotReliable     = errors.New("checker: watch not reliable")
	ErrNotResumable    = errors.New("checker: watch not resumable")
)

// Watches checks every watch against reference, every change of the namespace in rv order
// (ADDED, MODIFIED and DELETED, no bookmarks). It returns one error per property a watch broke,
// in the order of the watches and then of the properties below, each wrapping its sentinel
// (ErrNotOrdered...), nil when all hold:
//
//   - ordered: the rvs of the events (not bookmarks) strictly increase;
//   - unique: no (key, rv) is delivered twice;
//   - atomic: the events of one rv come together, with no bookmark or other rv among them. A
//     command changes one key, so an rv has one event; a watch that splits it has also
//     repeated or reordered it;
//   - bookmarkable: a bookmark's rv is at least the rv of everything before it (events and
//     bookmarks), and every event after it has a greater rv: a bookmark says the watch has
//     delivered everything up to it;
//   - reliable: the events are exactly the changes of reference the watch's filter selects
//     with rv in (StartRV, the greatest rv the watch saw, of an event or a bookmark]: same
//     type, key, value and rv, none missing, none extra;
//   - resumable: nothing at or before StartRV (a bookmark may be at StartRV): a watch from an
//     rv, or resumed from one, starts after it.
func Watches(watches []WatchLog, reference []Event) []error {
	var errs []error
	for i := range watches {
		w := &watches[i]
		for _, p := range []struct {
			sentinel error
			check    func(*WatchLog, []Event) string
		}{
			{ErrNotOrdered, ordered},
			{ErrNotUnique, unique},
			{ErrNotAtomic, atomic},
			{ErrNotBookmarkable, bookmarkable},
			{ErrNotReliable, reliable},
			{ErrNotResumable, resumable},
		} {
			if broke := p.check(w, reference); broke != "" {
				errs = append(errs, fmt.Errorf("%w: %s: %s", p.sentinel, w, broke))
			}
		}
	}
	return errs
}

// findings counts a property's violations and keeps the first few, for one message.
type findings struct {
	n     int
	first []string
}

// maxShown is how many violations of one property a message names: enough to see a pattern,
// short enough to read.
const maxShown = 3

func (f *findings) add(format string, args ...any) {
	f.n++
	if len(f.first) < maxShown {
		f.first = append(f.first, fmt.Sprintf(format, args...))
	}
}

func (f *findings) String() string {
	if f.n == 0 {
		return ""
	}
	s := strings.Join(f.first, "; ")
	if more := f.n - len(f.first); more > 0 {
		s += fmt.Sprintf("; and %d more", more)
	}
	return s
}

func ordered(w *WatchLog, _ []Event) string {
	var f findings
	var prev *Event
	for i := range w.Events {
		e := &w.Events[i]
		if e.Type == EventBookmark {
			continue
		}
		if prev != nil && e.RV <= prev.RV {
			f.add("event %d (%s) after %s", i, e, prev)
		}
		prev = e
	}
	return f.String()
}

func unique(w *WatchLog, _ []Event) string {
	type keyRV struct {
		key string
		rv  uint64
	}
	var f findings
	seen := map[keyRV]int{}
	for i, e := range w.Events {
		if e.Type == EventBookmark {
			continue
		}
		k := keyRV{e.Key, e.RV}
		if j, ok := seen[k]; ok {
			f.add("event %d (%s) repeats event %d", i, e, j)
			continue
		}
		seen[k] = i
	}
	return f.String()
}

func atomic(w *WatchLog, _ []Event) string {
	var f findings
	last := map[uint64]int{} // rv -> index of its latest event
	for i, e := range w.Events {
		if e.Type == EventBookmark {
			continue
		}
		if j, ok := last[e.RV]; ok && j != i-1 {
			f.add("event %d (%s) is apart from event %d of the same rv", i, e, j)
		}
		last[e.RV] = i
	}
	return f.String()
}

func bookmarkable(w *WatchLog, _ []Event) string {
	var f findings
	var seen, mark uint64 // the greatest rv before, and the greatest bookmark
	marked := false
	for i, e := range w.Events {
		if e.Type == EventBookmark {
			if e.RV < seen {
				f.add("bookmark %d at rv %d after rv %d", i, e.RV, seen)
			}
			mark, marked = max(mark, e.RV), true
		} else if marked && e.RV <= mark {
			f.add("event %d (%s) after the bookmark at rv %d", i, e, mark)
		}
		seen = max(seen, e.RV)
	}
	return f.String()
}

func reliable(w *WatchLog, reference []Event) string {
	until := w.StartRV
	for _, e := range w.Events {
		until = max(until, e.RV)
	}
	type keyRV struct {
		key string
		rv  uint64
	}
	want := map[keyRV]Event{}
	var order []keyRV
	for _, e := range reference {
		if e.RV > w.StartRV && e.RV <= until && (w.Key == "" || e.Key == w.Key) {
			k := keyRV{e.Key, e.RV}
			want[k] = e
			order = append(order, k)
		}
	}
	var missing, extra, differ findings
	got := map[keyRV]bool{}
	for i, e := range w.Events {
		if e.Type == EventBookmark {
			continue
		}
		k := keyRV{e.Key, e.RV}
		got[k] = true
		switch r, ok := want[k]; {
		case !ok:
			extra.add("event %d (%s)", i, e)
		case r != e:
			differ.add("event %d (%s), the reference has %s", i, e, r)
		}
	}
	for _, k := range order {
		if !got[k] {
			missing.add("%s", want[k])
		}
	}
	var parts []string
	for _, p := range []struct {
		what string
		f    *findings
	}{{"missing", &missing}, {"extra", &extra}, {"different", &differ}} {
		if p.f.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s (%s)", p.f.n, p.what, p.f))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("up to rv %d, %s", until, strings.Join(parts, ", "))
}

func resumable(w *WatchLog, _ []Event) string {
	var f findings
	for i, e := range w.Events {
		// A bookmark at StartRV says nothing new, but nothing false either.
		if e.RV <= w.StartRV && (e.Type != EventBookmark || e.RV < w.StartRV) {
			f.add("event %d (%s)", i, e)
		}
	}
	return f.String()
}
