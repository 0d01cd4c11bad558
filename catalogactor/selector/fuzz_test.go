package selector

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors match ErrInvalid, and that the
// canonical form of every selector that parses parses back to the same selector.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "a=b", "a==b", "a!=b", "a in (x,y)", "a notin (x,)", "a", "!a", "a>5", "a<5",
		"example.com/a=b, c in (), !d, e notin (,x)", "in in (in)", "a in (x", "a>=1", "!a=b",
		"a=b,,c", `a=b\x00`, "a===b", "x in (a,,b)", "  a  =  b  ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not match ErrInvalid", s, err)
			}
			return
		}
		canon := sel.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) gave %q, which does not parse: %v", s, canon, err)
		}
		if got := again.String(); got != canon {
			t.Fatalf("Parse(%q) gave %q, which parses to %q", s, canon, got)
		}
		if !reflect.DeepEqual(again, sel) {
			t.Fatalf("Parse(%q) = %#v, but Parse(%q) = %#v", s, sel, canon, again)
		}
	})
}

// FuzzFields checks the same of ParseFields.
func FuzzFields(f *testing.F) {
	for _, s := range []string{
		"", ",", "metadata.name=x", "metadata.name==x", "metadata.namespace!=y,metadata.name=x",
		`metadata.name=a\,b\=c\\d`, "metadata.name=a=b", `metadata.name=\`, "spec.x=y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseFields(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseFields(%q) error %v does not match ErrInvalid", s, err)
			}
			return
		}
		canon := sel.String()
		again, err := ParseFields(canon)
		if err != nil {
			t.Fatalf("ParseFields(%q) gave %q, which does not parse: %v", s, canon, err)
		}
		if got := again.String(); got != canon {
			t.Fatalf("ParseFields(%q) gave %q, which parses to %q", s, canon, got)
		}
		if !reflect.DeepEqual(again, sel) {
			t.Fatalf("ParseFields(%q) = %#v, but ParseFields(%q) = %#v", s, sel, canon, again)
		}
	})
}
