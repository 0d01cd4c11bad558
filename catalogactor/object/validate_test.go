package object

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/kstore/kstore/messages"
)

// TestValidateCommitted: Apply takes a value from the log only if admission could have written
// it; one row per rule.
func TestValidateCommitted(t *testing.T) {
	key := &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "a"}
	const pod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"},"spec":{"n":1}}`
	prepared, err := Prepare([]byte("{ \"spec\": {\"n\": 1},\n \"kind\": \"Pod\", \"apiVersion\": \"v1\", \"metadata\": {\"name\": \"a\"} }"), key)
	if err != nil {
		t.Fatal(err)
	}
	big := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"},"s":"` + strings.Repeat("x", MaxSize) + `"}`
	tests := []struct {
		name       string
		give       string
		wantReason messages.StatusReason // unspecified: valid
		wantMsg    string
		want       string // the object after, when valid
	}{
		{"canonical and valid", pod, 0, "", pod},
		{"what Prepare writes", string(prepared.Bytes()), 0, "", pod},
		{"a missing namespace is filled from the key, as Prepare fills it", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`, 0, "",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"}}`},
		{"a resourceVersion the store wrote", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default","resourceVersion":"63"}}`, 0, "",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default","resourceVersion":"63"}}`},

		{"over MaxSize", big, messages.StatusReason_TOO_LARGE, "over the limit of 1572864 bytes", ""},
		{"not JSON", `{"apiVersion":`, messages.StatusReason_INVALID, "object in the log is not a JSON object", ""},
		{"not an object", `[1]`, messages.StatusReason_INVALID, "object in the log is not a JSON object", ""},
		{"insignificant space", `{"apiVersion": "v1","kind":"Pod","metadata":{"name":"a","namespace":"default"}}`, messages.StatusReason_INVALID, "not canonical JSON", ""},
		{"keys out of order", `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","namespace":"default"}}`, messages.StatusReason_INVALID, "not canonical JSON", ""},
		{"a duplicate key", `{"apiVersion":"v1","kind":"Pod","kind":"Pod","metadata":{"name":"a","namespace":"default"}}`, messages.StatusReason_INVALID, "not canonical JSON", ""},
		{"an unneeded escape", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"},"s":"\u003c"}`, messages.StatusReason_INVALID, "not canonical JSON", ""},
		{"a trailing newline", pod + "\n", messages.StatusReason_INVALID, "not canonical JSON", ""},
		{"invalid UTF-8", "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"namespace\":\"default\"},\"s\":\"\xff\"}", messages.StatusReason_INVALID, "invalid UTF-8 at byte offset 83, in s", ""},
		{"a lone surrogate", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"},"s":"\udc00"}`, messages.StatusReason_INVALID, `the escape \udc00`, ""},
		{"a number over float64", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"},"n":1e999999999}`, messages.StatusReason_INVALID, "too large for a float64", ""},
		{"nested too deep", `{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `,"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"}}`, messages.StatusReason_INVALID, "nested more than 1000 deep", ""},
		{"another object than the key names", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":"default"}}`, messages.StatusReason_INVALID, `key says kind "Pod" but the object says "Service"`, ""},
		{"no name", `{"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"default"}}`, messages.StatusReason_INVALID, "metadata.name is missing", ""},
		{"a resourceVersion with a leading zero", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default","resourceVersion":"063"}}`, messages.StatusReason_INVALID, `metadata.resourceVersion "063" is not a resourceVersion this store gave`, ""},
		{"a resourceVersion of 0", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default","resourceVersion":"0"}}`, messages.StatusReason_INVALID, `metadata.resourceVersion "0"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ValidateCommitted([]byte(tt.give), key)
			if tt.wantReason == messages.StatusReason_STATUS_REASON_UNSPECIFIED {
				if err != nil {
					t.Fatalf("ValidateCommitted: %v", err)
				}
				if got := string(r.Bytes()); got != tt.want {
					t.Errorf("ValidateCommitted\n got  %s\n want %s", got, tt.want)
				}
				return
			}
			if messages.ReasonOf(err) != tt.wantReason || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ValidateCommitted: %.300v\nwant %s saying %q", err, messages.ReasonName(tt.wantReason), tt.wantMsg)
			}
		})
	}
}

// TestValidateStamps: stamps of the form admission writes (newUID in actors/intake.go and
// time.RFC3339 in UTC) pass; anything else is Invalid.
func TestValidateStamps(t *testing.T) {
	const (
		uid  = "6ba7b810-9dad-41d1-80b4-00c04fd430c8"
		when = "2024-05-01T10:00:00Z"
	)
	tests := []struct {
		name      string
		uid, time string
		wantMsg   string // "" is valid
	}{
		{"as a node stamps", uid, when, ""},
		{"variant 9, a and b", "6ba7b810-9dad-41d1-90b4-00c04fd430c8", "1999-12-31T23:59:59Z", ""},
		{"the year 9999", "6ba7b810-9dad-41d1-a0b4-00c04fd430c8", "9999-12-31T23:59:59Z", ""},

		{"no uid", "", when, `stamped uid "" is not a lowercase version 4 UUID`},
		{"a uid in capitals", strings.ToUpper(uid), when, "is not a lowercase version 4 UUID"},
		{"a version 1 uid", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", when, "is not a lowercase version 4 UUID"},
		{"a uid of another variant", "6ba7b810-9dad-41d1-c0b4-00c04fd430c8", when, "is not a lowercase version 4 UUID"},
		{"a uid without dashes", "6ba7b8109dad41d180b400c04fd430c8", when, "is not a lowercase version 4 UUID"},
		{"a uid with braces", "{" + uid + "}", when, "is not a lowercase version 4 UUID"},
		{"a uid with a dash misplaced", "6ba7b81-09dad-41d1-80b4-00c04fd430c8", when, "is not a lowercase version 4 UUID"},
		{"a uid with a non-hex letter", "6ba7b810-9dad-41d1-80b4-00c04fd430cg", when, "is not a lowercase version 4 UUID"},
		{"a made-up uid", "u-10", when, "is not a lowercase version 4 UUID"},

		{"no time", uid, "", `stamped creationTimestamp "" is not an RFC 3339 time in UTC to the second`},
		{"fractional seconds", uid, "2024-05-01T10:00:00.5Z", "is not an RFC 3339 time"},
		{"an offset", uid, "2024-05-01T12:00:00+02:00", "is not an RFC 3339 time"},
		{"a zero offset", uid, "2024-05-01T10:00:00+00:00", "is not an RFC 3339 time"},
		{"a lowercase z", uid, "2024-05-01t10:00:00z", "is not an RFC 3339 time"},
		{"a space for T", uid, "2024-05-01 10:00:00Z", "is not an RFC 3339 time"},
		{"no such day", uid, "2024-02-30T10:00:00Z", "is not an RFC 3339 time"},
		{"a leap second", uid, "2016-12-31T23:59:60Z", "is not an RFC 3339 time"},
		{"a date only", uid, "2024-05-01", "is not an RFC 3339 time"},
		{"trailing space", uid, when + " ", "is not an RFC 3339 time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateStamps(tt.uid, tt.time)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("ValidateStamps(%q, %q): %v", tt.uid, tt.time, err)
				}
				return
			}
			if !messages.IsInvalid(err) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ValidateStamps(%q, %q): %v, want Invalid saying %q", tt.uid, tt.time, err, tt.wantMsg)
			}
		})
	}
}

// TestValidateStampsTakesNewUID: every uid made the way actors/intake.go's newUID makes them
// passes.
func TestValidateStampsTakesNewUID(t *testing.T) {
	for range 200 {
		var b [16]byte
		_, _ = rand.Read(b[:])
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		uid := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
		if err := ValidateStamps(uid, "2024-05-01T10:00:00Z"); err != nil {
			t.Fatalf("ValidateStamps(%q): %v", uid, err)
		}
	}
}
