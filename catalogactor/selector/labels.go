package selector

import (
	"slices"
	"strconv"
	"strings"
)

// Labels are an object's labels, key to value.
type Labels map[string]string

// Selector is a parsed label selector: a conjunction of requirements. It is immutable once
// parsed; the zero value, like Everything(), has no requirements and matches all labels.
type Selector struct {
	// reqs is sorted by key, stably (requirements on one key keep their written order), as
	// Kubernetes sorts them; it is never modified after Parse returns.
	reqs []requirement
}

// requirement is one comma-separated term of a label selector.
type requirement struct {
	key string
	op  operator
	// values is sorted and free of duplicates. It holds one value (possibly "") for =, == and
	// !=, one or more for in and notin, the integer as written for > and <, none for exists
	// and does-not-exist.
	values []string
	// n is the integer of > and <.
	n int64
}

type operator uint8

const (
	opEquals       operator = iota + 1 // key=value
	opDoubleEquals                     // key==value: means key=value; kept apart so String gives back "==", as Kubernetes does
	opNotEquals                        // key!=value
	opIn                               // key in (v1,v2)
	opNotIn                            // key notin (v1,v2)
	opExists                           // key
	opNotExists                        // !key
	opGreaterThan                      // key>N
	opLessThan                         // key<N
)

// Everything returns the selector that matches all labels.
func Everything() Selector { return Selector{} }

// Empty reports whether s has no requirements, and so matches all labels.
func (s Selector) Empty() bool { return len(s.reqs) == 0 }

// Matches reports whether labels l satisfy every requirement of s.
func (s Selector) Matches(l Labels) bool {
	for _, r := range s.reqs {
		if !r.matches(l) {
			return false
		}
	}
	return true
}

// matches follows Kubernetes: != and notin match when the label is absent; > and < match
// only a present label whose value is a decimal integer.
func (r requirement) matches(l Labels) bool {
	v, ok := l[r.key]
	switch r.op {
	case opEquals, opDoubleEquals, opIn:
		return ok && slices.Contains(r.values, v)
	case opNotEquals, opNotIn:
		return !ok || !slices.Contains(r.values, v)
	case opExists:
		return ok
	case opNotExists:
		return !ok
	case opGreaterThan, opLessThan:
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		if r.op == opGreaterThan {
			return n > r.n
		}
		return n < r.n
	}
	return false
}

// String returns the canonical form of s, as Kubernetes writes it: requirements sorted by key
// and joined by ',', with no spaces except around in and notin, and the values of a set
// sorted. Parse(s.String()) gives back s. The zero Selector gives "".
func (s Selector) String() string {
	var b strings.Builder
	for i, r := range s.reqs {
		if i > 0 {
			b.WriteByte(',')
		}
		r.write(&b)
	}
	return b.String()
}

func (r requirement) write(b *strings.Builder) {
	if r.op == opNotExists {
		b.WriteByte('!')
	}
	b.WriteString(r.key)
	switch r.op {
	case opExists, opNotExists:
	case opIn, opNotIn:
		if r.op == opIn {
			b.WriteString(" in (")
		} else {
			b.WriteString(" notin (")
		}
		b.WriteString(strings.Join(r.values, ","))
		b.WriteByte(')')
	default:
		b.WriteString(symbols[r.op])
		b.WriteString(r.values[0])
	}
}

var symbols = [...]string{
	opEquals:       "=",
	opDoubleEquals: "==",
	opNotEquals:    "!=",
	opGreaterThan:  ">",
	opLessThan:     "<",
}
