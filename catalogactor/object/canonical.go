package object

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"unicode/utf8"
)

// Canonical returns the canonical JSON of a JSON object: exactly the bytes Decode followed by
// Encode would give (keys sorted and unique, the last of duplicates kept, no insignificant space,
// strings escaped as encoding/json escapes them, numbers as written), in one pass over the input
// and without building maps. It refuses what Decode refuses: input that is not valid JSON, or
// not a single object. The fuzz test holds it to Decode+Encode.
func Canonical(b []byte) ([]byte, error) {
	b = bytes.TrimSpace(b) // as Decode does, which trims more than JSON's whitespace
	c := canon{in: b, out: make([]byte, 0, len(b))}
	c.space()
	if c.i >= len(c.in) || c.in[c.i] != '{' {
		return nil, errNotObject
	}
	if err := c.value(0); err != nil {
		return nil, err
	}
	c.space()
	if c.i != len(c.in) {
		return nil, errors.New("data after the object")
	}
	return c.out, nil
}

// maxDepth matches encoding/json's nesting limit.
const maxDepth = 10000

type canon struct {
	in  []byte
	i   int
	out []byte
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

func (c *canon) value(depth int) error {
	if depth > maxDepth {
		return errors.New("JSON nested too deep")
	}
	c.space()
	if c.i >= len(c.in) {
		return errSyntax
	}
	switch ch := c.in[c.i]; {
	case ch == '{':
		return c.object(depth)
	case ch == '[':
		return c.array(depth)
	case ch == '"':
		s, err := c.str()
		if err != nil {
			return err
		}
		c.out = appendString(c.out, s)
		return nil
	case ch == '-' || ch >= '0' && ch <= '9':
		return c.number()
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(c.in[c.i:], []byte(lit)) {
				c.i += len(lit)
				c.out = append(c.out, lit...)
				return nil
			}
		}
		return errSyntax
	}
}

type canonMember struct {
	key   string
	value []byte // canonical
}

func (c *canon) object(depth int) error {
	c.i++ // '{'
	var ms []canonMember
	c.space()
	if c.i < len(c.in) && c.in[c.i] == '}' {
		c.i++
		c.out = append(c.out, '{', '}')
		return nil
	}
	outer := c.out
	for {
		c.space()
		if c.i >= len(c.in) || c.in[c.i] != '"' {
			return errSyntax
		}
		key, err := c.str()
		if err != nil {
			return err
		}
		c.space()
		if c.i >= len(c.in) || c.in[c.i] != ':' {
			return errSyntax
		}
		c.i++
		c.out = nil
		if err := c.value(depth + 1); err != nil {
			return err
		}
		ms = append(ms, canonMember{key: key, value: c.out})
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
	}
	// Sorted by key; of equal keys the last written wins, as decoding into a map does.
	slices.SortStableFunc(ms, func(a, b canonMember) int { return bytesCompare(a.key, b.key) })
	c.out = append(outer, '{')
	first := true
	for j, m := range ms {
		if j+1 < len(ms) && ms[j+1].key == m.key {
			continue
		}
		if !first {
			c.out = append(c.out, ',')
		}
		first = false
		c.out = appendString(c.out, m.key)
		c.out = append(c.out, ':')
		c.out = append(c.out, m.value...)
	}
	c.out = append(c.out, '}')
	return nil
}

func bytesCompare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (c *canon) array(depth int) error {
	c.i++ // '['
	c.out = append(c.out, '[')
	c.space()
	if c.i < len(c.in) && c.in[c.i] == ']' {
		c.i++
		c.out = append(c.out, ']')
		return nil
	}
	for {
		if err := c.value(depth + 1); err != nil {
			return err
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

// number copies a number, checking it against JSON's grammar as encoding/json does.
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
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if digits() == 0 {
			return errSyntax
		}
	}
	c.i = i
	c.out = append(c.out, in[start:i]...)
	return nil
}

// str reads a string starting at c.in[c.i] == '"' and returns its value.
func (c *canon) str() (string, error) {
	start := c.i
	simple := true
	i := c.i + 1
	for ; i < len(c.in); i++ {
		ch := c.in[i]
		if ch == '"' {
			break
		}
		if ch < 0x20 {
			return "", errSyntax
		}
		if ch == '\\' {
			simple = false
			i++
		}
	}
	if i >= len(c.in) {
		return "", errSyntax
	}
	c.i = i + 1
	raw := c.in[start:c.i]
	if simple && !utf8.Valid(raw) {
		simple = false // encoding/json turns invalid UTF-8 into U+FFFD
	}
	if simple {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

// appendString writes s as encoding/json writes a string with HTML escaping off.
func appendString(out []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return appendStringSlow(out, s)
		}
	}
	out = append(out, '"')
	out = append(out, s...)
	return append(out, '"')
}

func appendStringSlow(out []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return append(out, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}
