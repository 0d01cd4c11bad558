package selector

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		give string
		want string // String() of the parsed selector
	}{
		{give: "", want: ""},
		{give: " \t\r\n", want: ""},
		{give: "a=b", want: "a=b"},
		{give: "a==b", want: "a==b"},
		{give: "a!=b", want: "a!=b"},
		{give: "a in (x,y)", want: "a in (x,y)"},
		{give: "a notin (x,y)", want: "a notin (x,y)"},
		{give: "a", want: "a"},
		{give: "!a", want: "!a"},
		{give: "a>5", want: "a>5"},
		{give: "a<5", want: "a<5"},
		{give: "a>007", want: "a>007"},

		// whitespace around tokens
		{give: "  a  =  b  ", want: "a=b"},
		{give: "a\t!=\nb", want: "a!=b"},
		{give: "a in(x)", want: "a in (x)"},
		{give: " a  notin  ( y , x ) ", want: "a notin (x,y)"},
		{give: "! a", want: "!a"},
		{give: "a > 5 , b < 6", want: "a>5,b<6"},

		// canonical form: requirements sorted by key, stably; values sorted and deduplicated
		{give: "c=1,a=2,b", want: "a=2,b,c=1"},
		{give: "a!=2,a=1", want: "a!=2,a=1"},
		{give: "a in (z,x,z,y)", want: "a in (x,y,z)"},
		{give: "x in (a), !b, c notin (d)", want: "!b,c notin (d),x in (a)"},

		// empty values, as Kubernetes
		{give: "a=", want: "a="},
		{give: "a==,b!=", want: "a==,b!="},
		{give: "a in ()", want: "a in ()"},
		{give: "a in (,)", want: "a in ()"},
		{give: "a in (x,)", want: "a in (,x)"},
		{give: "a notin (,x)", want: "a notin (,x)"},
		// labels.Parse refuses "(x,,)" but takes "(x,,,)", a quirk of its list parser; Parse
		// takes both, as the grammar (VALUE may be empty) does.
		{give: "a in (x,,)", want: "a in (,x)"},
		{give: "a in (x,,,)", want: "a in (,x)"},

		// "in" and "notin" are keys or values where no operator is due
		{give: "in", want: "in"},
		{give: "in in (in,notin)", want: "in in (in,notin)"},
		{give: "notin=in", want: "notin=in"},

		// keys and values at their limits
		{give: "example.com/My_Name-1.x=V-1_b.c", want: "example.com/My_Name-1.x=V-1_b.c"},
		{give: "a-b.c-d/e=f", want: "a-b.c-d/e=f"},
		{give: strings.Repeat("k", 63) + "=" + strings.Repeat("v", 63), want: strings.Repeat("k", 63) + "=" + strings.Repeat("v", 63)},
		{give: "a>9223372036854775807", want: "a>9223372036854775807"},
		{give: "a<0", want: "a<0"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			s, err := Parse(tt.give)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.give, err)
			}
			if got := s.String(); got != tt.want {
				t.Errorf("Parse(%q).String() = %q, want %q", tt.give, got, tt.want)
			}
			if got, want := s.Empty(), tt.want == ""; got != want {
				t.Errorf("Parse(%q).Empty() = %v, want %v", tt.give, got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("x", 64)
	tests := []struct {
		give string
		want string // a fragment of the error's text
	}{
		{give: "a in (x", want: `selector "a in (x": missing closing ')' after "(x"`},
		{give: "a in (", want: `missing closing ')' after "("`},
		{give: "a in (x,", want: `missing closing ')' after "(x,"`},
		{give: "a in (x y)", want: `expected ',' or ')' after "(x", found "y"`},
		{give: "a in ((x))", want: `expected a value, ',' or ')' after "(", found "("`},
		{give: "a in x", want: `expected '(' after "a in", found "x"`},
		{give: "a notin", want: `expected '(' after "a notin", found the end of the selector`},
		{give: "a b", want: `expected an operator (=, ==, !=, in, notin, >, <) or ',' after "a", found "b"`},
		{give: "a=b c", want: `unexpected "c" after "a=b": separate requirements with ','`},
		{give: "a=b=c", want: `unexpected "=" after "a=b"`},
		{give: "a===b", want: `expected a value after "a==", found "="`},
		{give: "a=(b)", want: `unexpected '(' after "a=": only 'in' and 'notin' take a list`},
		{give: "a=b,", want: `trailing ',' after "a=b,"`},
		{give: ",a", want: `expected a label key or '!key' at the start of the selector, found ","`},
		{give: "a=b,,c", want: `expected a label key or '!key' after "a=b,", found ","`},
		{give: "=b", want: `at the start of the selector, found "="`},
		{give: "(", want: `found "("`},
		{give: "!", want: `expected a label key after '!', found the end of the selector`},
		{give: "!!a", want: `expected a label key after '!', found "!"`},
		{give: "!a=b", want: `unexpected "=" after "!a": '!key' selects objects without label "a"`},
		{give: "!a in (b)", want: `to exclude values write "a!=value" or "a notin (v1,v2)"`},

		// integers
		{give: "a>", want: `missing integer after "a>"`},
		{give: "a>x", want: `invalid value "x" in "a>x": '>' and '<' compare with a non-negative decimal integer`},
		{give: "a<-1", want: `invalid value "-1" in "a<-1"`},
		{give: "a>1.5", want: `invalid value "1.5"`},
		{give: "a>=1", want: `'>=' and '<=' are not supported`},
		{give: "a<=1", want: `'>=' and '<=' are not supported`},
		{give: "a>9223372036854775808", want: `the integer is out of range`},
		{give: "a><", want: `expected a value after "a>", found "<"`},

		// keys
		{give: "-a", want: `invalid label key "-a": the name must consist of letters, digits`},
		{give: "a_=b", want: `invalid label key "a_"`},
		{give: long, want: `the name is 64 characters long; at most 63 are allowed`},
		{give: "Example.com/a", want: `the prefix "Example.com" must be a DNS subdomain`},
		{give: "a..b/c", want: `the prefix "a..b" must be a DNS subdomain`},
		{give: "/a", want: `the prefix before '/' is empty`},
		{give: "a/", want: `invalid label key "a/": the name after '/' is empty`},
		{give: "a/b/c", want: `a key has at most one '/'`},
		{give: strings.Repeat("p", 254) + "/a", want: `the prefix before '/' is 254 characters long; at most 253 are allowed`},
		{give: "é=1", want: `invalid label key "é"`},
		{give: "a\x00=1", want: `invalid label key "a\x00"`},
		// labels.Parse reads a NUL byte as a separator: "a=b\x00" is a=b there.
		{give: "a=b\x00", want: `invalid value "b\x00" for label key "a"`},
		{give: "a\vb", want: `invalid label key "a\vb"`},

		// values
		{give: "a=-b", want: `invalid value "-b" for label key "a": a label value must be empty or consist of letters`},
		{give: "a!=b_", want: `invalid value "b_" for label key "a"`},
		{give: "a in (x,-y)", want: `invalid value "-y" for label key "a"`},
		{give: "a=" + long, want: `a label value is at most 63 characters long; this one has 64`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			s, err := Parse(tt.give)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error containing %q", tt.give, s, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) error %v does not match ErrInvalid", tt.give, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error\n  %s\nwant it to contain\n  %s", tt.give, err, tt.want)
			}
			if !s.Empty() {
				t.Errorf("Parse(%q) returned a non-empty selector with its error", tt.give)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	labels := Labels{"env": "prod", "tier": "web", "n": "10", "neg": "-3", "empty": "", "text": "ten"}
	tests := []struct {
		give   string
		labels Labels
		want   bool
	}{
		{give: "", labels: nil, want: true},
		{give: "", labels: labels, want: true},

		{give: "env=prod", labels: labels, want: true},
		{give: "env==prod", labels: labels, want: true},
		{give: "env=dev", labels: labels, want: false},
		{give: "missing=prod", labels: labels, want: false},
		{give: "empty=", labels: labels, want: true},
		{give: "missing=", labels: labels, want: false},

		// != and notin match when the label is absent
		{give: "env!=dev", labels: labels, want: true},
		{give: "env!=prod", labels: labels, want: false},
		{give: "missing!=prod", labels: labels, want: true},
		{give: "missing!=prod", labels: nil, want: true},
		{give: "empty!=", labels: labels, want: false},

		{give: "env in (dev,prod)", labels: labels, want: true},
		{give: "env in (dev,qa)", labels: labels, want: false},
		{give: "missing in (dev,prod)", labels: labels, want: false},
		{give: "empty in ()", labels: labels, want: true},
		{give: "env in ()", labels: labels, want: false},
		{give: "env notin (dev,qa)", labels: labels, want: true},
		{give: "env notin (dev,prod)", labels: labels, want: false},
		{give: "missing notin (dev,prod)", labels: labels, want: true},
		{give: "empty notin (,x)", labels: labels, want: false},

		{give: "env", labels: labels, want: true},
		{give: "empty", labels: labels, want: true},
		{give: "missing", labels: labels, want: false},
		{give: "!missing", labels: labels, want: true},
		{give: "!env", labels: labels, want: false},
		{give: "!empty", labels: labels, want: false},

		{give: "n>9", labels: labels, want: true},
		{give: "n>10", labels: labels, want: false},
		{give: "n<11", labels: labels, want: true},
		{give: "n<10", labels: labels, want: false},
		{give: "n>009", labels: labels, want: true},
		{give: "neg<0", labels: labels, want: true}, // a stored label is read with ParseInt, sign and all
		{give: "text>0", labels: labels, want: false},
		{give: "text<99", labels: labels, want: false},
		{give: "empty<1", labels: labels, want: false},
		{give: "missing<1", labels: labels, want: false},

		// requirements are a conjunction
		{give: "env=prod,tier=web", labels: labels, want: true},
		{give: "env=prod,tier=db", labels: labels, want: false},
		{give: "env=prod,env!=prod", labels: labels, want: false},
		{give: "env,!missing,n>1,tier in (web),text notin (x)", labels: labels, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			s, err := Parse(tt.give)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.give, err)
			}
			if got := s.Matches(tt.labels); got != tt.want {
				t.Errorf("Parse(%q).Matches(%v) = %v, want %v", tt.give, tt.labels, got, tt.want)
			}
		})
	}
}

func TestEverything(t *testing.T) {
	for _, s := range []Selector{Everything(), {}} {
		if !s.Empty() || s.String() != "" || !s.Matches(nil) || !s.Matches(Labels{"a": "b"}) {
			t.Errorf("%#v: want an empty selector that matches all labels and prints as \"\"", s)
		}
	}
}
