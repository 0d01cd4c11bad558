package object

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kstore/kstore/messages"
)

var canonicalCases = []string{
	`{}`,
	`{"b":1,"a":[true,false,null,-0.5e+10,{"z":"\u00e9\n\t\"<>&","y":[]}]}`,
	`{"a":1,"a":2}`,
	` {"k" : "v" } `,
	"{\"bad\xff\":\"x\xfe\"}",
	`{"s":"\ud800"}`,
	`{"s":"\u2028"}`,
	`{"n":01}`,
	`{"n":1.}`,
	`{"n":-}`,
	`{"a":1}x`,
	`{"a":tru}`,
	`{"a":"` + "\x01" + `"}`,
	`{"a":{"b":{"c":[1,[2,[3]]]}}}`,
	`{"e":"\ud83d\ude00","f":"\ufffd","g":"\uFFFD�","h":"\u0000\u001f\b\f\/"}`,
	"{\"s\":\"a\u2028b\u2029c\x7f<>&\"}",
	`{"b":2,"a":{"d":[{"z":1,"y":2}],"c":3},"a":0}`,
	`{"\u0062":1,"a":2,"\u0061":3}`,
	`{"n":1e-400,"m":1.7976931348623157e308,"z":0e999999999,"x":-0}`,
	`{"n":1e400}`,
	`{"k":"\udc00\ud800"}`,
	"{\"a\":\"\xed\xa0\x80\"}",
	`{"n":` + strings.Repeat("9", maxNumberLen) + `}`,
	`{"n":` + strings.Repeat("9", maxNumberLen+1) + `}`,
	nested(MaxDepth),
	nested(MaxDepth + 1),
}

// nested is an object whose member holds arrays nested so that there are depth levels in all.
func nested(depth int) string {
	return `{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
}

func decodeEncode(b []byte) ([]byte, bool) {
	o, err := Decode(b)
	if err != nil {
		return nil, false
	}
	return o.Encode(), true
}

// strictRefusal says why the store refuses b, JSON that Decode takes, or "" when it takes it
// too. It finds out by other means than Canonical's.
func strictRefusal(b []byte) string {
	b = bytes.TrimSpace(b) // as Decode does; encoding/json alone would refuse a trailing '\f'
	if !utf8.Valid(b) {
		return "invalid UTF-8"
	}
	if loneSurrogate(b) {
		return "a lone surrogate escape"
	}
	var v any
	if json.Unmarshal(b, &v) != nil { // only a number a float64 cannot hold fails here
		return "a number too large for a float64"
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '{' || tok == '[' {
				if depth++; depth > MaxDepth {
					return "nesting deeper than MaxDepth"
				}
			} else {
				depth--
			}
		case json.Number:
			if len(tok) > maxNumberLen {
				return "a number longer than maxNumberLen"
			}
		}
	}
}

// loneSurrogate reports whether valid JSON b holds a \u escape of half a surrogate pair.
func loneSurrogate(b []byte) bool {
	u4 := func(i int) uint64 {
		r, _ := strconv.ParseUint(string(b[i:i+4]), 16, 32)
		return r
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] != 'u' {
			i++
			continue
		}
		r := u4(i + 2)
		i += 5 // the last hex digit
		switch {
		case r >= 0xd800 && r < 0xdc00:
			if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if low := u4(i + 3); low >= 0xdc00 && low < 0xe000 {
					i += 6
					continue
				}
			}
			return true
		case r >= 0xdc00 && r < 0xe000:
			return true
		}
	}
	return false
}

// checkCanonical holds Canonical to Decode+Encode: the same bytes where both take the input,
// an error where Decode refuses it, and Invalid where the store is stricter than encoding/json
// (strictRefusal). There the property cannot hold: encoding/json turns invalid UTF-8 and lone
// surrogates into U+FFFD, keeps a number it could not decode into a float64 as a json.Number,
// and nests to 10000 levels.
func checkCanonical(give []byte) string {
	want, ok := decodeEncode(give)
	got, err := Canonical(give)
	if !ok {
		if err == nil {
			return "Decode refuses it, Canonical gives " + string(got)
		}
		return ""
	}
	switch why := strictRefusal(give); {
	case why != "":
		if !messages.IsInvalid(err) {
			return fmt.Sprintf("Canonical gives %s, %v; want Invalid for %s", got, err, why)
		}
	case err != nil:
		return "Decode takes it, Canonical refuses it: " + err.Error()
	case !bytes.Equal(got, want):
		return "Canonical gives\n " + string(got) + "\nDecode+Encode\n " + string(want)
	}
	return ""
}

func TestCanonicalMatchesDecodeEncode(t *testing.T) {
	for _, give := range canonicalCases {
		if msg := checkCanonical([]byte(give)); msg != "" {
			t.Errorf("Canonical(%.200q): %s", give, msg)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	for _, c := range canonicalCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, give string) {
		b := bytes.TrimSpace([]byte(give))
		if len(b) == 0 || b[0] != '{' {
			return // Decode reads YAML there; Canonical is for JSON
		}
		if msg := checkCanonical([]byte(give)); msg != "" {
			t.Fatalf("Canonical(%q): %s", give, msg)
		}
	})
}

// TestCanonicalRefuses: what encoding/json decodes but the store refuses, Invalid with the place
// (byte offset in the caller's input, and path) and what to do.
func TestCanonicalRefuses(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string // the whole message after "Invalid: ", or a prefix of it ending in "..."
	}{
		// UTF-8, which encoding/json would silently turn into U+FFFD
		{"invalid UTF-8 in a value", "{\"a\":{\"b\":\"x\xffy\"}}", "object holds invalid UTF-8 at byte offset 12, in a.b: send UTF-8 text"},
		{"invalid UTF-8 in a key", "{\"a\":{\"k\xff\":1}}", "object holds invalid UTF-8 at byte offset 8, in a key of a: send UTF-8 text"},
		{"invalid UTF-8 in a top-level key", "{\"\xff\":1}", "object holds invalid UTF-8 at byte offset 2, in a top-level key: send UTF-8 text"},
		{"invalid UTF-8 after an escape", "{\"a\":\"\\n\xff\"}", "object holds invalid UTF-8 at byte offset 8, in a: send UTF-8 text"},
		{"invalid UTF-8 before an escape", "{\"a\":\"\xff\\n\"}", "object holds invalid UTF-8 at byte offset 6, in a: send UTF-8 text"},
		{"a surrogate encoded in UTF-8", "{\"a\":\"\xed\xa0\x80\"}", "object holds invalid UTF-8 at byte offset 6, in a: send UTF-8 text"},
		{"a truncated sequence", "{\"a\":\"\xe2\x82\"}", "object holds invalid UTF-8 at byte offset 6, in a: send UTF-8 text"},
		{"an overlong encoding", "{\"a\":\"\xc0\xaf\"}", "object holds invalid UTF-8 at byte offset 6, in a: send UTF-8 text"},
		{"offsets count leading space", "  {\"a\":\"\xff\"}", "object holds invalid UTF-8 at byte offset 8, in a: send UTF-8 text"},
		{"a path through arrays and odd keys", "{\"spec\":{\"app.kubernetes.io/x\":[0,\"\xff\"]}}", `object holds invalid UTF-8 at byte offset 35, in spec["app.kubernetes.io/x"][1]: send UTF-8 text`},

		// \u escapes of half a surrogate pair, which encoding/json would turn into U+FFFD
		{"a lone high surrogate", `{"s":"\ud800"}`, `object holds the escape \ud800 at byte offset 6, in s, half of a UTF-16 surrogate pair without the other half: escape a character above U+FFFF as a whole surrogate pair, such as \ud83d\ude00, or send it as UTF-8 (RFC 7493 section 2.1 forbids lone surrogates)`},
		{"a lone low surrogate", `{"s":"ab\udc00"}`, `object holds the escape \udc00 at byte offset 8, in s, half of a UTF-16 surrogate pair...`},
		{"a high surrogate before a letter", `{"s":"\ud800\u0041"}`, `object holds the escape \ud800 at byte offset 6, in s, half...`},
		{"two high surrogates", `{"s":"\ud800\ud800"}`, `object holds the escape \ud800 at byte offset 6, in s, half...`},
		{"a pair the wrong way round", `{"s":"\udc00\ud800"}`, `object holds the escape \udc00 at byte offset 6, in s, half...`},
		{"a high surrogate at the end", `{"s":"x\uD83D"}`, `object holds the escape \uD83D at byte offset 7, in s, half...`},
		{"a lone surrogate in a key", `{"m":{"\uDBFF":1}}`, `object holds the escape \uDBFF at byte offset 7, in a key of m, half...`},

		// numbers the API server could not decode
		{"a number over float64", `{"n":1e999999999}`, "object holds the number 1e999999999 at byte offset 5, in n, too large for a float64: the API server could not decode it; write a number of magnitude at most 1.7976931348623157e308, or a string"},
		{"a negative number over float64", `{"a":[-1e309]}`, "object holds the number -1e309 at byte offset 6, in a[0], too large for a float64..."},
		{"just over the largest float64", `{"n":1.7976931348623159e308}`, "object holds the number 1.7976931348623159e308 at byte offset 5, in n, too large..."},
		{"a number of 65 bytes", `{"n":` + strings.Repeat("1", 65) + `}`, "object holds a number of 65 bytes (1111111111111111...) at byte offset 5, in n, over the limit of 64: the API server decodes a number into an int64 or a float64, neither of which needs more than 24 bytes; write a long digit string as a string"},
		{"a megabyte of digits", `{"n":` + strings.Repeat("7", 1<<20) + `}`, "object holds a number of 1048576 bytes (7777777777777777...) at byte offset 5, in n, over the limit of 64..."},
		{"a long fraction", `{"n":0.` + strings.Repeat("0", 70) + `1}`, "object holds a number of 73 bytes (0.00000000000000...) at byte offset 5, in n, over the limit of 64..."},

		// nesting
		{"arrays one level too deep", nested(MaxDepth + 1), "object holds objects and arrays nested more than 1000 deep at byte offset 1004: flatten it"},
		{"objects one level too deep", strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1), "object holds objects and arrays nested more than 1000 deep at byte offset 5000: flatten it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical([]byte(tt.give))
			if !messages.IsInvalid(err) {
				t.Fatalf("Canonical = %.80s, %v; want Invalid", got, err)
			}
			msg := strings.TrimPrefix(err.Error(), "Invalid: ")
			if prefix, ok := strings.CutSuffix(tt.want, "..."); ok {
				if !strings.HasPrefix(msg, prefix) {
					t.Errorf("Canonical: %s\nwant it to start with\n  %s", msg, prefix)
				}
			} else if msg != tt.want {
				t.Errorf("Canonical: %s\nwant\n  %s", msg, tt.want)
			}
		})
	}
}

// TestCanonicalTakes: what is at the limits but within them is kept exactly.
func TestCanonicalTakes(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"a surrogate pair", `{"s":"\ud83d\ude00\uD83D\uDE00"}`, `{"s":"😀😀"}`},
		{"the replacement character, escaped and not", `{"s":"\ufffd�"}`, `{"s":"��"}`},
		{"a number that underflows decodes to 0 and is kept", `{"n":1e-400}`, `{"n":1e-400}`},
		{"the largest float64", `{"n":-1.7976931348623157e308}`, `{"n":-1.7976931348623157e308}`},
		{"a zero with a huge exponent", `{"n":0e999999999}`, `{"n":0e999999999}`},
		{"a number of 64 bytes", `{"n":` + strings.Repeat("9", 64) + `}`, `{"n":` + strings.Repeat("9", 64) + `}`},
		{"nesting at MaxDepth", nested(MaxDepth), nested(MaxDepth)},
		{"escaped keys sort by their value", `{"\u0062":1,"a":2,"\u0061":3}`, `{"a":3,"b":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical([]byte(tt.give))
			if err != nil {
				t.Fatalf("Canonical: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Canonical\n got  %.200s\n want %.200s", got, tt.want)
			}
		})
	}
}

// TestPrepareRefuses: Prepare holds JSON and YAML to Canonical's rules and passes its words on.
func TestPrepareRefuses(t *testing.T) {
	key := &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "a"}
	tests := []struct {
		name    string
		give    string
		want    string // a fragment of the Invalid message
		wantNot string // what it must not say
	}{
		{"JSON, invalid UTF-8", "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"labels\":{\"x\":\"\xff\"}}}", `object holds invalid UTF-8 at byte offset 70, in metadata.labels.x: send UTF-8 text`, "not valid JSON"},
		{"JSON, a number over float64", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"n":1e400}}`, "the number 1e400 at byte offset 68, in spec.n", "not valid JSON"},
		{"YAML, nested too deep", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: " + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + "\n", "object holds objects and arrays nested more than 1000 deep: flatten it", "byte offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Prepare([]byte(tt.give), key)
			if !messages.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), tt.wantNot) {
				var got []byte
				if r != nil {
					got = r.Bytes()
				}
				t.Errorf("Prepare = %.100s, %v\nwant Invalid saying %q, not %q", got, err, tt.want, tt.wantNot)
			}
		})
	}
}
