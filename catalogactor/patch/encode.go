package patch

import (
	"unicode/utf8"

	"github.com/kstore/kstore/catalogactor/object"
)

// encode appends v as canonical JSON: the bytes object.Canonical gives (keys sorted, no space,
// strings escaped as encoding/json escapes them with HTML escaping off, numbers as written).
// Sorting a JSON patch's added keys (compact) is counted against w; the rest is linear in the
// output and not counted. It returns nil once the budget is spent.
func encode(t *tree, w *work, out []byte, v value) []byte {
	switch v.k {
	case kNull:
		return append(out, "null"...)
	case kTrue:
		return append(out, "true"...)
	case kFalse:
		return append(out, "false"...)
	case kNumber:
		return append(out, t.text(v)...)
	case kString:
		return appendString(out, t.text(v))
	case kArray:
		out = append(out, '[')
		for i, e := range t.elems(v) {
			if i > 0 {
				out = append(out, ',')
			}
			if out = encode(t, w, out, e); out == nil {
				return nil
			}
		}
		return append(out, ']')
	default:
		t.obj(v).compact(t, w)
		if w.out() {
			return nil
		}
		out = append(out, '{')
		for i, m := range t.members(v) {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendString(out, t.text(m.key))
			out = append(out, ':')
			if out = encode(t, w, out, m.val); out == nil {
				return nil
			}
		}
		return append(out, '}')
	}
}

// appendString writes s (valid UTF-8: decode refuses anything else) as canonical JSON does.
func appendString(out []byte, s string) []byte { return object.AppendString(out, s) }

// stringSize is len(appendString(nil, s)).
func stringSize(s string) int {
	n := 2 + len(s)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
				n++
			case c < 0x20:
				n += 5
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			n += 3
		}
		i += size
	}
	return n
}
