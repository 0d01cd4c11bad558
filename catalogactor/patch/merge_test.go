package patch

import (
	"strings"
	"testing"

	"github.com/kstore/kstore/messages"
)

// TestMergeRFC7386 holds the examples of RFC 7386 (section 3 and appendix A). The rows whose
// document or patch is not an object are refused here (doc.go); json-patch returns the patch
// as the result, which the catalog refused as not an object.
func TestMergeRFC7386(t *testing.T) {
	tests := []struct {
		name               string
		giveDoc, givePatch string
		want               string
		wantErr            string
	}{
		{"section 3", `{"title":"Goodbye!","author":{"givenName":"John","familyName":"Doe"},"tags":["example","sample"],"content":"This will be unchanged"}`,
			`{"title":"Hello!","phoneNumber":"+01-123-456-7890","author":{"familyName":null},"tags":["example"]}`,
			`{"author":{"givenName":"John"},"content":"This will be unchanged","phoneNumber":"+01-123-456-7890","tags":["example"],"title":"Hello!"}`, ""},
		{"A1 replace member", `{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`, ""},
		{"A2 add member", `{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`, ""},
		{"A3 null removes", `{"a":"b"}`, `{"a":null}`, `{}`, ""},
		{"A4 null removes one", `{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`, ""},
		{"A5 array replaced by string", `{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`, ""},
		{"A6 string replaced by array", `{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`, ""},
		{"A7 nested merge", `{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`, ""},
		{"A8 arrays replaced whole", `{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`, ""},
		{"A9 array document", `["a","b"]`, `["c","d"]`, "", "merge patch must be a JSON object"},
		{"A10 array patch", `{"a":"b"}`, `["c"]`, "", "merge patch must be a JSON object"},
		{"A11 null patch", `{"a":"foo"}`, `null`, "", "merge patch must be a JSON object"},
		{"A12 string patch", `{"a":"foo"}`, `"bar"`, "", "merge patch must be a JSON object"},
		{"A13 null in document kept", `{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`, ""},
		{"A14 array document, object patch", `[1,2]`, `{"a":"b","c":null}`, "", "document must be a JSON object"},
		{"A15 nulls pruned in new member", `{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Merge([]byte(tt.giveDoc), []byte(tt.givePatch))
			if tt.wantErr != "" {
				if err == nil || !messages.IsInvalid(err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Merge = %s, %v; want Invalid error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Merge = %s, %v; want %s", got, err, tt.want)
			}
			checkMerge(t, []byte(tt.giveDoc), []byte(tt.givePatch))
		})
	}
}

// TestMergeLikeJSONPatch holds the cases where json-patch v5 does something RFC 7386 leaves
// open or does otherwise, and this package does the same.
func TestMergeLikeJSONPatch(t *testing.T) {
	tests := []struct {
		name               string
		giveDoc, givePatch string
		want               string
	}{
		{"nulls pruned inside arrays for a new member", `{}`, `{"a":[{"b":null},null,[{"c":null}]]}`, `{"a":[{},null,[{}]]}`},
		{"nulls pruned inside arrays replacing a scalar", `{"a":1}`, `{"a":[{"b":null}]}`, `{"a":[{}]}`},
		{"nulls pruned inside arrays replacing an array", `{"a":[1]}`, `{"a":[{"b":null}]}`, `{"a":[{}]}`},
		{"nulls pruned replacing a null", `{"a":null}`, `{"a":{"b":null,"c":{"d":null}}}`, `{"a":{"c":{}}}`},
		{"nulls kept in an array replacing an object", `{"a":{"x":1}}`, `{"a":[{"b":null}]}`, `{"a":[{"b":null}]}`},
		{"object merged into object", `{"a":{"x":1}}`, `{"a":{"b":null,"c":{"d":null}}}`, `{"a":{"c":{},"x":1}}`},
		{"numbers kept as written", `{"a":1.0,"b":-0}`, `{"c":1E+400,"d":12345678901234567890123}`, `{"a":1.0,"b":-0,"c":1E+400,"d":12345678901234567890123}`},
		{"last duplicate wins", `{"a":1}`, `{"a":null,"a":{"x":1},"a":{"y":2}}`, `{"a":{"y":2}}`},
		{"escapes decoded and re-encoded", `{"k":"\u00e9"}`, `{"\u006b":"\u2028<&>\/"}`, `{"k":"\u2028<&>/"}`},
		{"empty key is a key", `{"":1}`, `{"":{"":null}}`, `{"":{}}`},
		{"whitespace around", `{"a":1}`, " \t\r\n{ \"b\" : [ 1 , 2 ] }\n", `{"a":1,"b":[1,2]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Merge([]byte(tt.giveDoc), []byte(tt.givePatch))
			if err != nil || string(got) != tt.want {
				t.Fatalf("Merge = %s, %v; want %s", got, err, tt.want)
			}
			checkMerge(t, []byte(tt.giveDoc), []byte(tt.givePatch))
		})
	}
}

func TestCheckMerge(t *testing.T) {
	tests := []struct {
		name       string
		give       string
		wantReason messages.StatusReason
		wantErr    string
	}{
		{"object", `{"metadata":{"labels":{"a":"b"}}}`, 0, ""},
		{"empty object", `{}`, 0, ""},
		{"array", `[]`, messages.StatusReason_INVALID, "merge patch must be a JSON object, such as"},
		{"null", `null`, messages.StatusReason_INVALID, "not null"},
		{"empty", ``, messages.StatusReason_INVALID, "merge patch is not valid JSON: it ends too early"},
		{"syntax", `{"a":tru}`, messages.StatusReason_INVALID, `merge patch is not valid JSON: unexpected '}' at byte 8`},
		{"trailing data", `{"a":1}x`, messages.StatusReason_INVALID, `unexpected 'x' at byte 7`},
		{"two objects", `{} {}`, messages.StatusReason_INVALID, `unexpected '{' at byte 3`},
		{"leading zero", `{"a":01}`, messages.StatusReason_INVALID, `unexpected '1' at byte 6`},
		{"bad escape", `{"a":"\x"}`, messages.StatusReason_INVALID, `bad escape "\\x\"}" at byte 6`},
		{"control character", "{\"a\":\"\x01\"}", messages.StatusReason_INVALID, `control character '\x01' in a string at byte 6`},
		{"invalid UTF-8 in a value", "{\"a\":\"x\xff\"}", messages.StatusReason_INVALID, "merge patch is not valid UTF-8 (at byte 7)"},
		{"invalid UTF-8 in a key", "{\"\xc3\":1}", messages.StatusReason_INVALID, "merge patch is not valid UTF-8 (at byte 2)"},
		{"invalid UTF-8 after an escape", "{\"\\n\xc3\":1}", messages.StatusReason_INVALID, "merge patch is not valid UTF-8 (at byte 4)"},
		{"invalid UTF-8 outside strings", "{\xff}", messages.StatusReason_INVALID, "merge patch is not valid UTF-8 (at byte 1)"},
		{"deep but within MaxDepth", nested(MaxDepth, `{"a":`, `}`, `1`), 0, ""},
		{"deeper than MaxDepth", nested(MaxDepth+1, `{"a":`, `}`, `1`), messages.StatusReason_INVALID, "merge patch is nested more than 1000 levels deep"},
		{"deeper than MaxDepth in arrays", `{"a":` + nested(MaxDepth, `[`, `]`, ``) + `}`, messages.StatusReason_INVALID, "nested more than 1000 levels deep"},
		{"over MaxSize", `{"a":"` + strings.Repeat("x", 3<<19) + `"}`, messages.StatusReason_TOO_LARGE, "merge patch is 1572872 bytes, over the limit of 1572864 bytes (1.5 MiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckMerge([]byte(tt.give))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckMerge: %v", err)
				}
				return
			}
			if messages.ReasonOf(err) != tt.wantReason || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckMerge = %v; want %v containing %q", err, messages.ReasonName(tt.wantReason), tt.wantErr)
			}
			if _, merr := Merge([]byte(`{}`), []byte(tt.give)); merr == nil || merr.Error() != err.Error() {
				t.Fatalf("Merge refuses with %v, CheckMerge with %v", merr, err)
			}
		})
	}
}

// nested is open n times, then inner, then close n times.
func nested(n int, open, close, inner string) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}
