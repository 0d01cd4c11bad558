package object

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is how deeply objects and arrays may nest in an object the store takes, the
// outermost object counting as 1. Real Kubernetes objects nest a few dozen levels (a CRD whose
// OpenAPI schema describes nested schemas is among the deepest, still well under 100), so 1000
// refuses nothing real, while code that recurses over an object (Canonical, patching,
// validation) stays within a thousand small stack frames and cannot be made to copy a large
// object once per level ten thousand times. encoding/json allows 10000.
const MaxDepth = 1000

// maxNumberLen bounds the bytes of one number, sign, point and exponent included. The Kubernetes
// API server decodes a number into an int64 or a float64: an int64 takes at most 20 bytes
// ("-9223372036854775808") and the shortest form of any float64 at most 24
// ("-2.2250738585072014e-308"); 64 leaves room for decimals written out in full, while a
// megabyte of digits, which no decoder can hold exactly and every reader of the object would
// parse again, is refused.
const maxNumberLen = 64

// Canonical returns the canonical JSON of a JSON object: exactly the bytes Decode followed by
// Encode would give (keys sorted and unique, the last of duplicates kept, no insignificant space,
// strings escaped as encoding/json escapes them, numbers as written), in one pass over the input
// and without building maps.
//
// It refuses, with a plain error, what Decode refuses: input that is not valid JSON, or not a
// single object. It also refuses, as Invalid (a *messages.Error saying where and what to do),
// JSON that encoding/json would decode but the store does not take:
//   - invalid UTF-8 in a key or a string, which encoding/json turns into U+FFFD without a word;
//   - a \u escape of a lone UTF-16 surrogate (\ud800 not followed by a low surrogate escape, or a
//     low one alone), which it turns into U+FFFD too: RFC 7493 (I-JSON) forbids them and
//     encoding/json/v2 refuses them by default;
//   - a number whose magnitude overflows a float64 (1e400), which the API server cannot decode,
//     or longer than 64 bytes; a number that underflows (1e-400) decodes, to 0, and is kept;
//   - objects and arrays nested deeper than MaxDepth.
//
// On every other input its output is Decode+Encode's; the fuzz test holds it to that.
func Canonical(b []byte) ([]byte, error) {
	return canonical(b, true)
}

// canonical is Canonical; offsets says whether a refusal gives the byte offset, which means
// nothing to a user when b is JSON converted from YAML.
func canonical(b []byte, offsets bool) ([]byte, error) {
	// As Decode trims (bytes.TrimSpace, which trims more than JSON's whitespace), keeping count
	// of what was trimmed in front so that offsets are the caller's.
	lead := len(b) - len(bytes.TrimLeftFunc(b, unicode.IsSpace))
	b = bytes.TrimRightFunc(b[lead:], unicode.IsSpace)
	if len(b) == 0 || b[0] != '{' {
		return nil, errNotObject
	}
	c := canon{in: b, out: make([]byte, 0, len(b))}
	if err := c.object(1); err != nil {
		var r *refusal
		if errors.As(err, &r) {
			return nil, r.status(lead, offsets)
		}
		return nil, err
	}
	c.space()
	if c.i != len(c.in) {
		return nil, errors.New("data after the object")
	}
	return c.out, nil
}

type canon struct {
	in  []byte
	i   int
	out []byte
	// ms holds the members of the objects being read, as a stack: an object appends its
	// members above those of the objects around it and truncates back when it ends.
	ms []canonMember
	// tmp is scratch space for putting one object's members in order.
	tmp []byte
	// scratch is where string values with escapes are decoded before being written to out.
	scratch []byte
}

// canonMember is one member of an object being read, already written to out.
type canonMember struct {
	key        []byte // decoded; part of the input when the key has no escapes
	start, end int    // `"key":value` in out
}

var errSyntax = errors.New("invalid JSON")

func (c *canon) space() {
	for c.i < len(c.in) {
		switch c.in[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// value reads the value at c.i; depth is the number of objects and arrays around it.
func (c *canon) value(depth int) error {
	c.space()
	if c.i >= len(c.in) {
		return errSyntax
	}
	switch ch := c.in[c.i]; {
	case ch == '{':
		return c.object(depth + 1)
	case ch == '[':
		return c.array(depth + 1)
	case ch == '"':
		s, plain, err := c.str(&c.scratch)
		if err != nil {
			return err
		}
		if plain {
			c.out = append(c.out, c.in[c.i-len(s)-2:c.i]...)
		} else {
			c.out = AppendString(c.out, s)
		}
		return nil
	case ch == '-' || ch >= '0' && ch <= '9':
		return c.number()
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	}
	return errSyntax
}

func (c *canon) literal(lit string) error {
	if len(c.in)-c.i < len(lit) || string(c.in[c.i:c.i+len(lit)]) != lit {
		return errSyntax
	}
	c.i += len(lit)
	c.out = append(c.out, lit...)
	return nil
}

// object reads the object at c.i, at nesting depth (the outermost object is 1). It writes the
// members as they come and puts them in order afterwards only if they were not: input that is
// already canonical is copied once.
func (c *canon) object(depth int) error {
	if depth > MaxDepth {
		return tooDeep(c.i)
	}
	c.i++ // '{'
	start := len(c.out)
	c.out = append(c.out, '{')
	c.space()
	if c.i < len(c.in) && c.in[c.i] == '}' {
		c.i++
		c.out = append(c.out, '}')
		return nil
	}
	base := len(c.ms)
	inOrder := true
	for {
		c.space()
		if c.i >= len(c.in) || c.in[c.i] != '"' {
			return errSyntax
		}
		mstart := len(c.out)
		key, plain, err := c.str(nil) // a key outlives the next string: sorting reads it
		if err != nil {
			if r, ok := err.(*refusal); ok {
				r.inKey = true
			}
			return err
		}
		if plain {
			c.out = append(c.out, c.in[c.i-len(key)-2:c.i]...)
		} else {
			c.out = AppendString(c.out, key)
		}
		c.space()
		if c.i >= len(c.in) || c.in[c.i] != ':' {
			return errSyntax
		}
		c.i++
		c.out = append(c.out, ':')
		if err := c.value(depth); err != nil {
			return inMember(err, key)
		}
		if n := len(c.ms); n > base && bytes.Compare(c.ms[n-1].key, key) >= 0 {
			inOrder = false
		}
		c.ms = append(c.ms, canonMember{key: key, start: mstart, end: len(c.out)})
		c.space()
		if c.i >= len(c.in) {
			return errSyntax
		}
		if c.in[c.i] == '}' {
			c.i++
			break
		}
		if c.in[c.i] != ',' {
			return errSyntax
		}
		c.i++
		c.out = append(c.out, ',')
	}
	c.out = append(c.out, '}')
	if !inOrder {
		c.order(start, c.ms[base:])
	}
	c.ms = c.ms[:base]
	return nil
}

// order rewrites the object written at out[start:] with its members ms sorted by key; of equal
// keys the last written wins, as decoding into a map does.
func (c *canon) order(start int, ms []canonMember) {
	slices.SortStableFunc(ms, func(a, b canonMember) int { return bytes.Compare(a.key, b.key) })
	c.tmp = append(c.tmp[:0], c.out[start:]...)
	c.out = append(c.out[:start], '{')
	first := true
	for j, m := range ms {
		if j+1 < len(ms) && bytes.Equal(ms[j+1].key, m.key) {
			continue
		}
		if !first {
			c.out = append(c.out, ',')
		}
		first = false
		c.out = append(c.out, c.tmp[m.start-start:m.end-start]...)
	}
	c.out = append(c.out, '}')
}

func (c *canon) array(depth int) error {
	if depth > MaxDepth {
		return tooDeep(c.i)
	}
	c.i++ // '['
	c.out = append(c.out, '[')
	c.space()
	if c.i < len(c.in) && c.in[c.i] == ']' {
		c.i++
		c.out = append(c.out, ']')
		return nil
	}
	for n := 0; ; n++ {
		if err := c.value(depth); err != nil {
			return inElement(err, n)
		}
		c.space()
		if c.i >= len(c.in) {
			return errSyntax
		}
		if c.in[c.i] == ']' {
			c.i++
			c.out = append(c.out, ']')
			return nil
		}
		if c.in[c.i] != ',' {
			return errSyntax
		}
		c.i++
		c.out = append(c.out, ',')
	}
}

// number copies a number, checking it against JSON's grammar as encoding/json does, and
// refusing one longer than maxNumberLen or too large for a float64.
func (c *canon) number() error {
	start, in := c.i, c.in
	i := c.i
	if in[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case digits() == 0:
		return errSyntax
	}
	if i < len(in) && in[i] == '.' {
		i++
		if digits() == 0 {
			return errSyntax
		}
	}
	exponent := false
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		exponent = true
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if digits() == 0 {
			return errSyntax
		}
	}
	n := in[start:i]
	if len(n) > maxNumberLen {
		return &refusal{at: start,
			what: fmt.Sprintf("a number of %d bytes (%s...)", len(n), n[:16]),
			why:  fmt.Sprintf("over the limit of %d", maxNumberLen),
			fix:  "the API server decodes a number into an int64 or a float64, neither of which needs more than 24 bytes; write a long digit string as a string"}
	}
	// Without an exponent, 64 bytes of digits stay below 1e64: only an exponent can overflow.
	if exponent {
		if _, err := strconv.ParseFloat(string(n), 64); err != nil {
			return &refusal{at: start,
				what: fmt.Sprintf("the number %s", n),
				why:  "too large for a float64",
				fix:  "the API server could not decode it; write a number of magnitude at most 1.7976931348623157e308, or a string"}
		}
	}
	c.i = i
	c.out = append(c.out, n...)
	return nil
}

// str reads the string starting at c.in[c.i] == '"' and returns its value. plain reports that
// it is printable ASCII without escapes, so that its canonical form is exactly what was read.
// Without escapes the value is part of the input. With escapes it is decoded into new memory,
// or into *scratch, which then keeps the memory for the next string; s is then valid only
// until that next string.
func (c *canon) str(scratch *[]byte) (s []byte, plain bool, err error) {
	in := c.in
	start := c.i + 1
	var seen byte // every byte or'ed: has one of them the high bit?
	for i := start; i < len(in); i++ {
		ch := in[i]
		switch {
		case ch == '"':
			c.i = i + 1
			s = in[start:i]
			if seen < utf8.RuneSelf {
				return s, true, nil
			}
			if err := checkUTF8(s, start); err != nil {
				return nil, false, err
			}
			return s, false, nil
		case ch == '\\':
			return c.unescape(start, i, scratch)
		case ch < 0x20:
			return nil, false, errSyntax
		}
		seen |= ch
	}
	return nil, false, errSyntax
}

// checkUTF8 refuses invalid UTF-8 in s, which starts at offset at of the input.
func checkUTF8(s []byte, at int) error {
	if utf8.Valid(s) {
		return nil
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			return badUTF8(at + i)
		}
		i += size
	}
	return nil // not reached: utf8.Valid said there is an invalid byte
}

func badUTF8(at int) error {
	return &refusal{at: at, what: "invalid UTF-8", fix: "send UTF-8 text"}
}

// unescape reads the rest of a string whose value starts at offset start and whose first
// escape is at offset i, decoding as encoding/json does, except that invalid UTF-8 and lone
// surrogates are refused instead of becoming U+FFFD.
func (c *canon) unescape(start, i int, scratch *[]byte) ([]byte, bool, error) {
	in := c.in
	if err := checkUTF8(in[start:i], start); err != nil {
		return nil, false, err
	}
	// The value is no longer than the string as written: size the buffer for that, once.
	end := i
	for end < len(in) && in[end] != '"' {
		if in[end] == '\\' {
			end++
		}
		end++
	}
	var buf []byte
	if scratch != nil && cap(*scratch) >= end-start {
		buf = (*scratch)[:0]
	} else {
		buf = make([]byte, 0, end-start)
	}
	if scratch != nil {
		*scratch = buf
	}
	buf = append(buf, in[start:i]...)
	for i < len(in) {
		switch ch := in[i]; {
		case ch == '"':
			c.i = i + 1
			return buf, false, nil
		case ch < 0x20:
			return nil, false, errSyntax
		case ch < utf8.RuneSelf && ch != '\\':
			buf = append(buf, ch)
			i++
		case ch >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false, badUTF8(i)
			}
			buf = append(buf, in[i:i+size]...)
			i += size
		default: // '\\'
			if i+1 >= len(in) {
				return nil, false, errSyntax
			}
			if e := unescaped[in[i+1]]; e != 0 {
				buf = append(buf, e)
				i += 2
				continue
			}
			if in[i+1] != 'u' {
				return nil, false, errSyntax
			}
			r, ok := hex4(in, i+2)
			if !ok {
				return nil, false, errSyntax
			}
			if !utf16.IsSurrogate(r) {
				buf = utf8.AppendRune(buf, r)
				i += 6
				continue
			}
			low := rune(-1)
			if i+7 < len(in) && in[i+6] == '\\' && in[i+7] == 'u' {
				if low, ok = hex4(in, i+8); !ok {
					return nil, false, errSyntax
				}
			}
			pair := utf16.DecodeRune(r, low)
			if pair == unicode.ReplacementChar {
				return nil, false, &refusal{at: i,
					what: fmt.Sprintf(`the escape %s`, in[i:i+6]),
					why:  "half of a UTF-16 surrogate pair without the other half",
					fix:  `escape a character above U+FFFF as a whole surrogate pair, such as \ud83d\ude00, or send it as UTF-8 (RFC 7493 section 2.1 forbids lone surrogates)`}
			}
			buf = utf8.AppendRune(buf, pair)
			i += 12
		}
	}
	return nil, false, errSyntax
}

// unescaped maps the byte after '\' of JSON's two-character escapes to what it stands for.
var unescaped = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, ch := range b[i : i+4] {
		switch {
		case ch >= '0' && ch <= '9':
			ch -= '0'
		case ch >= 'a' && ch <= 'f':
			ch -= 'a' - 10
		case ch >= 'A' && ch <= 'F':
			ch -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(ch)
	}
	return r, true
}

const hexDigits = "0123456789abcdef"

// AppendString writes the valid UTF-8 s as encoding/json writes a string with HTML escaping
// off: '"', '\\' and control characters escaped (\b, \f, \n, \r, \t, or \u00XX), U+2028 and
// U+2029 escaped, everything else as it is: the string form of canonical JSON, which the patch
// engine writes too.
func AppendString[S ~string | ~[]byte](out []byte, s S) []byte {
	out = append(out, '"')
	done := 0
	for i := 0; i < len(s); {
		ch := s[i]
		if ch >= utf8.RuneSelf {
			// U+2028 and U+2029 are E2 80 A8 and E2 80 A9.
			if ch == 0xe2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9) {
				out = append(out, s[done:i]...)
				out = append(out, '\\', 'u', '2', '0', '2', hexDigits[s[i+2]&0xf])
				i += 3
				done = i
				continue
			}
			i++
			continue
		}
		if ch >= 0x20 && ch != '"' && ch != '\\' {
			i++
			continue
		}
		out = append(out, s[done:i]...)
		switch ch {
		case '"', '\\':
			out = append(out, '\\', ch)
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		default:
			out = append(out, '\\', 'u', '0', '0', hexDigits[ch>>4], hexDigits[ch&0xf])
		}
		i++
		done = i
	}
	out = append(out, s[done:]...)
	return append(out, '"')
}

// refusal is JSON that encoding/json decodes but the store refuses. It travels up as an error
// while Canonical unwinds, each object and array around the place adding its step to path.
type refusal struct {
	at     int      // offset in the trimmed input
	what   string   // what the object holds there
	why    string   // why that is refused, when what does not say
	fix    string   // what to do about it
	inKey  bool     // the place is a key of the object path leads to
	noPath bool     // the path would be no help (too deep to read)
	path   []string // steps, innermost first: ".name", `["a/b"]` or "[3]"
}

func (r *refusal) Error() string { return r.what }

func tooDeep(at int) error {
	return &refusal{at: at, noPath: true,
		what: fmt.Sprintf("objects and arrays nested more than %d deep", MaxDepth),
		fix:  "flatten it"}
}

func inMember(err error, key []byte) error {
	if r, ok := err.(*refusal); ok && !r.noPath {
		if isIdentifier(key) {
			r.path = append(r.path, "."+string(key))
		} else {
			r.path = append(r.path, fmt.Sprintf("[%q]", key))
		}
	}
	return err
}

func inElement(err error, n int) error {
	if r, ok := err.(*refusal); ok && !r.noPath {
		r.path = append(r.path, "["+strconv.Itoa(n)+"]")
	}
	return err
}

func isIdentifier(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for i, ch := range k {
		letter := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch == '_'
		if !letter && (i == 0 || !(ch >= '0' && ch <= '9' || ch == '-')) {
			return false
		}
	}
	return true
}

// maxPathSteps is how much of the path to a refused place a message shows.
const maxPathSteps = 16

// status is the Invalid error a refusal becomes; lead is what Canonical trimmed in front.
func (r *refusal) status(lead int, offsets bool) error {
	var b strings.Builder
	b.WriteString("object holds ")
	b.WriteString(r.what)
	if offsets {
		fmt.Fprintf(&b, " at byte offset %d", lead+r.at)
	}
	if !r.noPath {
		steps := slices.Clone(r.path)
		slices.Reverse(steps)
		more := len(steps) > maxPathSteps
		if more {
			steps = steps[:maxPathSteps]
		}
		p := strings.TrimPrefix(strings.Join(steps, ""), ".")
		if more {
			p += "..."
		}
		switch {
		case r.inKey && p == "":
			b.WriteString(", in a top-level key")
		case r.inKey:
			b.WriteString(", in a key of " + p)
		default:
			b.WriteString(", in " + p)
		}
	}
	if r.why != "" {
		b.WriteString(", " + r.why)
	}
	return invalid("%s: %s", b.String(), r.fix)
}
