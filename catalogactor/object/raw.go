package object

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"

	"github.com/kstore/kstore/messages"
)

// The hot path of a write reads and sets a handful of metadata fields of an object that is
// already canonical JSON (admission encoded it; the catalog stored it). Decoding the whole object
// into maps and encoding it again for that cost more than everything else a write does, so the
// functions here work on the bytes: they split an object into its members without decoding the
// values, and write members back in canonical order. Given canonical input they produce exactly
// the bytes Decode+Encode would (the fuzz test holds them to it).

var errNotObject = errors.New("not a JSON object")

// member is one "key": value of an object, the value as raw JSON.
type member struct {
	key    string // unquoted
	rawKey []byte // as written, quotes included
	value  []byte
}

// members splits a JSON object into its members in written order. It checks structure only as
// far as it needs to find the boundaries; the input is JSON that Decode accepted earlier.
func members(b []byte) ([]member, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errNotObject
	}
	i = skipSpace(b, i+1)
	out := make([]member, 0, 8)
	if i < len(b) && b[i] == '}' {
		return out, checkEnd(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, errNotObject
		}
		end, err := skipString(b, i)
		if err != nil {
			return nil, err
		}
		rawKey := b[i:end]
		key, err := unquote(rawKey)
		if err != nil {
			return nil, err
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, errNotObject
		}
		i = skipSpace(b, i+1)
		vend, err := skipValue(b, i)
		if err != nil {
			return nil, err
		}
		out = append(out, member{key: key, rawKey: rawKey, value: b[i:vend]})
		i = skipSpace(b, vend)
		if i >= len(b) {
			return nil, errNotObject
		}
		if b[i] == '}' {
			return out, checkEnd(b, i+1)
		}
		if b[i] != ',' {
			return nil, errNotObject
		}
		i = skipSpace(b, i+1)
	}
}

func checkEnd(b []byte, i int) error {
	if skipSpace(b, i) != len(b) {
		return errNotObject
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errors.New("unterminated string")
}

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("missing value")
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("unterminated object or array")
	default:
		j := i
		for j < len(b) && !bytes.ContainsRune([]byte(",}] \t\n\r"), rune(b[j])) {
			j++
		}
		if j == i {
			return 0, errors.New("missing value")
		}
		return j, nil
	}
}

func unquote(raw []byte) (string, error) {
	if !bytes.ContainsRune(raw, '\\') {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// quote writes s as a JSON string the way Encode does (no HTML escaping).
func quote(s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return []byte(`"` + s + `"`)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// stringValue returns a member's value when it is a JSON string, "" otherwise.
func stringValue(m []member, key string) string {
	for _, f := range m {
		if f.key == key {
			if len(f.value) > 0 && f.value[0] == '"' {
				s, _ := unquote(f.value)
				return s
			}
			return ""
		}
	}
	return ""
}

func find(m []member, key string) []byte {
	for _, f := range m {
		if f.key == key {
			return f.value
		}
	}
	return nil
}

// writeObject writes members as an object, in the order given.
func writeObject(buf []byte, m []member) []byte {
	buf = append(buf, '{')
	for i, f := range m {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, f.rawKey...)
		buf = append(buf, ':')
		buf = append(buf, f.value...)
	}
	return append(buf, '}')
}

// set replaces, adds (in sorted place) or, for a nil value, removes the member key.
func set(m []member, key string, value []byte) []member {
	for i := range m {
		if m[i].key == key {
			if value == nil {
				return slices.Delete(m, i, i+1)
			}
			m[i].value = value
			return m
		}
	}
	if value == nil {
		return m
	}
	i := 0
	for i < len(m) && m[i].key < key {
		i++
	}
	return slices.Insert(m, i, member{key: key, rawKey: quote(key), value: value})
}

// Raw is a canonical object held as bytes, with its members and its metadata's members split
// out for reading and setting a few fields without decoding the rest.
type Raw struct {
	top  []member
	meta []member
}

// ParseRaw splits canonical object bytes. Input that is not canonical still parses; writing it
// back then keeps the members' order and the values' bytes as they were.
func ParseRaw(b []byte) (*Raw, error) {
	top, err := members(b)
	if err != nil {
		return nil, err
	}
	r := &Raw{top: top}
	if md := find(top, "metadata"); len(md) > 0 && md[0] == '{' {
		if r.meta, err = members(md); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Raw) APIVersion() string { return stringValue(r.top, "apiVersion") }
func (r *Raw) Kind() string       { return stringValue(r.top, "kind") }
func (r *Raw) Meta(key string) string {
	return stringValue(r.meta, key)
}

// Spec returns the string spec[key] ("" when spec or the key is missing or not a string):
// the fields a field selector may test beside metadata (spec.nodeName).
func (r *Raw) Spec(key string) string {
	sp := find(r.top, "spec")
	if len(sp) == 0 || sp[0] != '{' {
		return ""
	}
	m, err := members(sp)
	if err != nil {
		return ""
	}
	return stringValue(m, key)
}

// HasMetadata reports whether the object has a metadata object.
func (r *Raw) HasMetadata() bool { return find(r.top, "metadata") != nil && r.meta != nil }

// SetMeta sets metadata[key] to the string v; "" removes it.
func (r *Raw) SetMeta(key, v string) {
	if v == "" {
		r.meta = set(r.meta, key, nil)
		return
	}
	r.meta = set(r.meta, key, quote(v))
}

// SetResourceVersion sets metadata.resourceVersion to rv, as a decimal string.
func (r *Raw) SetResourceVersion(rv uint64) { r.SetMeta("resourceVersion", strconv.FormatUint(rv, 10)) }

// LabelsRaw returns metadata.labels as raw JSON, nil when absent.
func (r *Raw) LabelsRaw() []byte { return find(r.meta, "labels") }

// Labels decodes metadata.labels; non-string values are left out.
func (r *Raw) Labels() map[string]string {
	raw := r.LabelsRaw()
	if raw == nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return nil
	}
	l := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			l[k] = s
		}
	}
	return l
}

// Bytes writes the object back, metadata included, keeping canonical order.
func (r *Raw) Bytes() []byte {
	var md []byte
	if r.meta != nil {
		md = writeObject(make([]byte, 0, 256), r.meta)
	}
	top := set(slices.Clone(r.top), "metadata", md)
	n := 2
	for _, f := range top {
		n += len(f.rawKey) + len(f.value) + 2
	}
	return writeObject(make([]byte, 0, n), top)
}

// KeyOf returns the key an object (JSON or YAML) names, reading only what it needs of JSON.
func KeyOf(b []byte) (*messages.ResourceKey, error) {
	if r, err := ParseRaw(b); err == nil {
		g, v := SplitAPIVersion(r.APIVersion())
		return &messages.ResourceKey{Group: g, Version: v, Kind: r.Kind(), Namespace: r.Meta("namespace"), Name: r.Meta("name")}, nil
	}
	o, err := Decode(b)
	if err != nil {
		return nil, err
	}
	return o.Key(), nil
}
