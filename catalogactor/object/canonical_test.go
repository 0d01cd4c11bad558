package object

import (
	"bytes"
	"testing"
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
}

func decodeEncode(b []byte) ([]byte, bool) {
	o, err := Decode(b)
	if err != nil {
		return nil, false
	}
	return o.Encode(), true
}

func TestCanonicalMatchesDecodeEncode(t *testing.T) {
	for _, give := range canonicalCases {
		want, ok := decodeEncode([]byte(give))
		got, err := Canonical([]byte(give))
		if ok != (err == nil) {
			t.Errorf("Canonical(%q) error %v, Decode ok %v", give, err, ok)
			continue
		}
		if ok && !bytes.Equal(got, want) {
			t.Errorf("Canonical(%q)\n got  %s\n want %s", give, got, want)
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
		want, ok := decodeEncode([]byte(give))
		got, err := Canonical([]byte(give))
		if ok != (err == nil) {
			t.Fatalf("Canonical(%q) error %v, Decode ok %v", give, err, ok)
		}
		if ok && !bytes.Equal(got, want) {
			t.Fatalf("Canonical(%q)\n got  %s\n want %s", give, got, want)
		}
	})
}
