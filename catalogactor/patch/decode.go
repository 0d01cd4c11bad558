package patch

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/kstore/kstore/messages"
)

// decode parses t.src[start:end], one JSON value, as encoding/json would (same grammar, same
// string decoding, the last of duplicate keys kept), with refusals of its own: invalid UTF-8, a
// \u escape of half a surrogate pair, nesting deeper than MaxDepth, and anything but JSON's four
// whitespace characters around the value. It returns the value and its depth. what names the
// input in errors ("merge patch"); offsets in errors are from start.
//
// Decoding is not counted against the work budget: it is linear in the input (plus sorting an
// object whose keys are out of order), which checkSize bounds.
func decode(t *tree, what string, start, end int) (value, int, error) {
	d := decoder{t: t, s: t.src[:end], i: start, start: start, what: what}
	// Size the scratch once rather than grow it: commas bound the elements of arrays, colons
	// the members of objects (both counted in one fast pass each).
	if n := strings.Count(d.s[start:], ","); n > 1024 {
		d.vals = make([]value, 0, n+1)
	}
	if n := strings.Count(d.s[start:], ":"); n > 1024 {
		d.mems = make([]member, 0, n)
	}
	d.space()
	v, depth, err := d.value(0)
	if err != nil {
		return value{}, 0, err
	}
	d.space()
	if d.i != len(d.s) {
		return value{}, 0, d.syntax()
	}
	return v, depth, nil
}

type decoder struct {
	t     *tree
	s     string // t.src up to the end of this input
	i     int
	start int // where this input starts in s
	what  string

	// The elements and members of the containers being parsed, innermost last.
	vals []value
	mems []member
}

func (d *decoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// syntax is the error for an unexpected byte at d.i, or for the end of the input.
func (d *decoder) syntax() error {
	if d.i >= len(d.s) {
		return messages.Errorf(messages.StatusReason_INVALID, "%s is not valid JSON: it ends too early: check it is complete", d.what)
	}
	c := d.s[d.i]
	if c >= utf8.RuneSelf {
		r, size := utf8.DecodeRuneInString(d.s[d.i:])
		if r == utf8.RuneError && size == 1 {
			return d.badUTF8(d.i)
		}
		return messages.Errorf(messages.StatusReason_INVALID, "%s is not valid JSON: unexpected %q at byte %d", d.what, r, d.i-d.start)
	}
	return messages.Errorf(messages.StatusReason_INVALID, "%s is not valid JSON: unexpected %q at byte %d", d.what, c, d.i-d.start)
}

func (d *decoder) badUTF8(at int) error {
	return messages.Errorf(messages.StatusReason_INVALID,
		"%s is not valid UTF-8 (at byte %d): JSON text must be UTF-8; escape binary data, e.g. as base64", d.what, at-d.start)
}

// value parses the value at d.i, which sits inside level containers.
func (d *decoder) value(level int) (value, int, error) {
	if d.i >= len(d.s) {
		return value{}, 0, d.syntax()
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return d.object(level + 1)
	case c == '[':
		return d.array(level + 1)
	case c == '"':
		v, err := d.str()
		return v, 0, err
	case c == '-' || c >= '0' && c <= '9':
		start := d.i
		if !d.number() {
			return value{}, 0, d.syntax()
		}
		return value{k: kNumber, n: int32(d.i - start), i: int32(start)}, 0, nil
	case c == 't':
		return d.literal("true", kTrue)
	case c == 'f':
		return d.literal("false", kFalse)
	case c == 'n':
		return d.literal("null", kNull)
	}
	return value{}, 0, d.syntax()
}

func (d *decoder) literal(lit string, k kind) (value, int, error) {
	if !strings.HasPrefix(d.s[d.i:], lit) {
		for j := 0; j < len(lit) && d.i < len(d.s) && d.s[d.i] == lit[j]; j++ {
			d.i++
		}
		return value{}, 0, d.syntax()
	}
	d.i += len(lit)
	return value{k: k}, 0, nil
}

func (d *decoder) tooDeep() error {
	return messages.Errorf(messages.StatusReason_INVALID,
		"%s is nested more than %d levels deep (at byte %d): flatten it", d.what, MaxDepth, d.i-d.start)
}

func (d *decoder) object(level int) (value, int, error) {
	if level > MaxDepth {
		return value{}, 0, d.tooDeep()
	}
	d.i++ // '{'
	d.space()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return d.t.newObject(nil), 1, nil
	}
	mark := len(d.mems)
	sorted := true
	depth := 0
	for {
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return value{}, 0, d.syntax()
		}
		key, err := d.str()
		if err != nil {
			return value{}, 0, err
		}
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return value{}, 0, d.syntax()
		}
		d.i++
		d.space()
		v, vd, err := d.value(level)
		if err != nil {
			return value{}, 0, err
		}
		depth = max(depth, vd)
		if len(d.mems) > mark && d.t.text(d.mems[len(d.mems)-1].key) >= d.t.text(key) {
			sorted = false
		}
		d.mems = append(d.mems, member{key, v})
		d.space()
		if d.i >= len(d.s) {
			return value{}, 0, d.syntax()
		}
		if d.s[d.i] == '}' {
			d.i++
			break
		}
		if d.s[d.i] != ',' {
			return value{}, 0, d.syntax()
		}
		d.i++
		d.space()
	}
	ms := d.mems[mark:]
	var out []member
	switch {
	case !sorted:
		out = d.sortMembers(ms) // a new slice
		d.mems = d.mems[:mark]
	case mark == 0 && len(ms) > 256:
		// The outermost object being parsed: hand the scratch over rather than copy it.
		out, d.mems = ms[:len(ms):len(ms)], nil
	default:
		out = d.t.membersOf(len(ms))
		copy(out, ms)
		d.mems = d.mems[:mark]
	}
	return d.t.newObject(out), depth + 1, nil
}

// sortMembers sorts ms by key and keeps the last of equal keys, as decoding into a Go map does.
func (d *decoder) sortMembers(ms []member) []member {
	type keyed struct {
		key string
		pos int
	}
	order := make([]keyed, len(ms))
	for i, m := range ms {
		order[i] = keyed{d.t.text(m.key), i}
	}
	slices.SortFunc(order, func(a, b keyed) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return a.pos - b.pos
	})
	out := make([]member, 0, len(ms))
	for j, k := range order {
		if j+1 < len(order) && order[j+1].key == k.key {
			continue
		}
		out = append(out, ms[k.pos])
	}
	return out
}

func (d *decoder) array(level int) (value, int, error) {
	if level > MaxDepth {
		return value{}, 0, d.tooDeep()
	}
	d.i++ // '['
	d.space()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		return d.t.newArray([]value{}), 1, nil
	}
	mark := len(d.vals)
	depth := 0
	for {
		v, vd, err := d.value(level)
		if err != nil {
			return value{}, 0, err
		}
		depth = max(depth, vd)
		d.vals = append(d.vals, v)
		d.space()
		if d.i >= len(d.s) {
			return value{}, 0, d.syntax()
		}
		if d.s[d.i] == ']' {
			d.i++
			break
		}
		if d.s[d.i] != ',' {
			return value{}, 0, d.syntax()
		}
		d.i++
		d.space()
	}
	var out []value
	if mark == 0 && len(d.vals) > 256 {
		// The outermost array being parsed: hand the scratch over rather than copy it.
		out, d.vals = d.vals[:len(d.vals):len(d.vals)], nil
	} else {
		out = d.t.values(len(d.vals) - mark)
		copy(out, d.vals[mark:])
		d.vals = d.vals[:mark]
	}
	return d.t.newArray(out), depth + 1, nil
}

// number consumes a number per JSON's grammar and reports whether there was one.
func (d *decoder) number() bool {
	s, i := d.s, d.i
	if s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		d.i = i
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			d.i = i
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			d.i = i
			return false
		}
	}
	d.i = i
	return true
}

// str consumes the string at d.i (d.s[d.i] == '"') and returns it as a kString value, decoded
// as encoding/json decodes it, except that an unpaired surrogate escape is refused.
func (d *decoder) str() (value, error) {
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.s); j++ {
		switch c := d.s[j]; {
		case c == '"':
			d.i = j + 1
			if !ascii {
				if k := invalidUTF8(d.s[start:j]); k >= 0 {
					return value{}, d.badUTF8(start + k)
				}
			}
			return value{k: kString, n: int32(j - start), i: int32(start)}, nil
		case c == '\\':
			s, err := d.strEscaped(start)
			if err != nil {
				return value{}, err
			}
			return d.t.newString(s), nil
		case c < 0x20:
			d.i = j
			return value{}, d.control()
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	d.i = len(d.s)
	return value{}, d.syntax()
}

func (d *decoder) control() error {
	return messages.Errorf(messages.StatusReason_INVALID,
		"%s is not valid JSON: control character %q in a string at byte %d: escape it (\\n, \\t, \\u00XX)", d.what, d.s[d.i], d.i-d.start)
}

// invalidUTF8 returns the offset of the first invalid UTF-8 byte of s, or -1.
func invalidUTF8(s string) int {
	if utf8.ValidString(s) {
		return -1
	}
	for k := 0; k < len(s); {
		r, size := utf8.DecodeRuneInString(s[k:])
		if r == utf8.RuneError && size == 1 {
			return k
		}
		k += size
	}
	return -1
}

func (d *decoder) strEscaped(start int) (string, error) {
	var b strings.Builder
	s := d.s
	j := start
	for j < len(s) {
		c := s[j]
		switch {
		case c == '"':
			d.i = j + 1
			return b.String(), nil
		case c < 0x20:
			d.i = j
			return "", d.control()
		case c < utf8.RuneSelf && c != '\\':
			b.WriteByte(c)
			j++
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[j:])
			if r == utf8.RuneError && size == 1 {
				return "", d.badUTF8(j)
			}
			b.WriteString(s[j : j+size])
			j += size
		default: // '\\'
			if j+1 >= len(s) {
				d.i = len(s)
				return "", d.syntax()
			}
			switch e := s[j+1]; e {
			case '"', '\\', '/':
				b.WriteByte(e)
				j += 2
			case 'b':
				b.WriteByte('\b')
				j += 2
			case 'f':
				b.WriteByte('\f')
				j += 2
			case 'n':
				b.WriteByte('\n')
				j += 2
			case 'r':
				b.WriteByte('\r')
				j += 2
			case 't':
				b.WriteByte('\t')
				j += 2
			case 'u':
				r := hex4(s[j+2:])
				if r < 0 {
					d.i = j
					return "", d.badEscape()
				}
				if utf16.IsSurrogate(r) {
					dec := utf16.DecodeRune(r, hex4u(s[j+6:]))
					if dec == utf8.RuneError {
						d.i = j
						return "", d.loneSurrogate()
					}
					r = dec
					j += 6
				}
				j += 6
				b.WriteRune(r)
			default:
				d.i = j
				return "", d.badEscape()
			}
		}
	}
	d.i = len(s)
	return "", d.syntax()
}

// loneSurrogate refuses a \u escape of half a UTF-16 surrogate pair, which encoding/json
// would turn into U+FFFD: RFC 7493 (I-JSON) forbids it, and object.Canonical refuses it in an
// object put to the store, so a patch may not write it either.
func (d *decoder) loneSurrogate() error {
	return messages.Errorf(messages.StatusReason_INVALID,
		"%s holds %s at byte %d, half of a UTF-16 surrogate pair: write the character itself, or both halves (such as \\ud83d\\ude00)", d.what, d.s[d.i:d.i+6], d.i-d.start)
}

func (d *decoder) badEscape() error {
	end := min(d.i+6, len(d.s))
	return messages.Errorf(messages.StatusReason_INVALID,
		"%s is not valid JSON: bad escape %s at byte %d: use \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX", d.what, fmt.Sprintf("%q", d.s[d.i:end]), d.i-d.start)
}

// hex4 decodes the four hex digits at the start of s, or returns -1.
func hex4(s string) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range []byte(s[:4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// hex4u decodes a \uXXXX escape at the start of s, or returns -1.
func hex4u(s string) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	return hex4(s[2:])
}
