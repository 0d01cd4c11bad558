package selector

import (
	"errors"
	"strings"
	"testing"
)

func TestParseFields(t *testing.T) {
	tests := []struct {
		give string
		want string // String() of the parsed selector
	}{
		{give: "", want: ""},
		{give: ",", want: ""},
		{give: "metadata.name=x", want: "metadata.name=x"},
		{give: "metadata.name==x", want: "metadata.name=x"},
		{give: "metadata.name!=x", want: "metadata.name!=x"},
		{give: "metadata.namespace=ns", want: "metadata.namespace=ns"},
		{give: "metadata.name=", want: "metadata.name="},
		{give: "metadata.namespace=ns,metadata.name=x", want: "metadata.name=x,metadata.namespace=ns"},
		{give: "metadata.name=x,,metadata.name!=y,", want: "metadata.name!=y,metadata.name=x"},
		{give: `metadata.name=a\,b\=c\\d`, want: `metadata.name=a\,b\=c\\d`},
		{give: `metadata.name==\=x`, want: `metadata.name=\=x`},
		{give: "metadata.name= x ", want: "metadata.name= x "},
		{give: "metadata.name=!x", want: "metadata.name=!x"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			f, err := ParseFields(tt.give)
			if err != nil {
				t.Fatalf("ParseFields(%q): %v", tt.give, err)
			}
			if got := f.String(); got != tt.want {
				t.Errorf("ParseFields(%q).String() = %q, want %q", tt.give, got, tt.want)
			}
			if got, want := f.Empty(), tt.want == ""; got != want {
				t.Errorf("ParseFields(%q).Empty() = %v, want %v", tt.give, got, want)
			}
		})
	}
}

func TestParseFieldsErrors(t *testing.T) {
	tests := []struct {
		give string
		want string // a fragment of the error's text
	}{
		{give: "metadata.name", want: `field selector "metadata.name": term "metadata.name" has no operator; write field=value, field==value or field!=value`},
		{give: "spec.name=x", want: `unknown field "spec.name" in term "spec.name=x"; the only fields supported are metadata.name, metadata.namespace and spec.nodeName`},
		{give: " spec.nodeName=x", want: `(remove the whitespace around it)`},
		{give: "metadata.labels=x", want: `unknown field "metadata.labels"`},
		{give: "=x", want: `unknown field ""`},
		{give: "metadata.name =x", want: `unknown field "metadata.name " in term "metadata.name =x" (remove the whitespace around it)`},
		{give: "metadata.name=a=b", want: `term "metadata.name=a=b": the value contains an unescaped '='; write "\="`},
		{give: `metadata.name=a\`, want: `the value ends with a lone '\'`},
		{give: `metadata.name=a\n`, want: `invalid escape sequence "\\n" in the value`},
		{give: "metadata.name=x,metadata.namespace", want: `term "metadata.namespace" has no operator`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			f, err := ParseFields(tt.give)
			if err == nil {
				t.Fatalf("ParseFields(%q) = %q, want an error containing %q", tt.give, f, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseFields(%q) error %v does not match ErrInvalid", tt.give, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseFields(%q) error\n  %s\nwant it to contain\n  %s", tt.give, err, tt.want)
			}
		})
	}
}

func TestFieldMatches(t *testing.T) {
	tests := []struct {
		give      string
		name      string
		namespace string
		nodeName  string
		want      bool
		// wantKey is MatchesKey: the metadata terms alone.
		wantKey bool
	}{
		{give: "", name: "a", namespace: "ns", want: true, wantKey: true},
		{give: "metadata.name=a", name: "a", namespace: "ns", want: true, wantKey: true},
		{give: "metadata.name==a", name: "b", namespace: "ns", want: false},
		{give: "metadata.name!=a", name: "b", namespace: "ns", want: true, wantKey: true},
		{give: "metadata.name!=a", name: "a", namespace: "ns", want: false},
		{give: "metadata.namespace=ns", name: "a", namespace: "ns", want: true, wantKey: true},
		{give: "metadata.namespace=ns", name: "a", namespace: "other", want: false},
		{give: "metadata.namespace=", name: "node1", namespace: "", want: true, wantKey: true}, // cluster-scoped
		{give: "metadata.namespace!=kube-system", name: "a", namespace: "ns", want: true, wantKey: true},
		{give: "metadata.name=a,metadata.namespace=ns", name: "a", namespace: "ns", want: true, wantKey: true},
		{give: "metadata.name=a,metadata.namespace=ns", name: "a", namespace: "x", want: false},
		{give: "metadata.name=a,metadata.name=b", name: "a", namespace: "ns", want: false},
		{give: `metadata.name=a\,b`, name: "a,b", namespace: "ns", want: true, wantKey: true},
		{give: "spec.nodeName=n1", name: "a", namespace: "ns", nodeName: "n1", want: true, wantKey: true},
		{give: "spec.nodeName=n1", name: "a", namespace: "ns", nodeName: "n2", want: false, wantKey: true},
		{give: "spec.nodeName=", name: "a", namespace: "ns", nodeName: "", want: true, wantKey: true}, // unscheduled
		{give: "spec.nodeName!=", name: "a", namespace: "ns", nodeName: "n1", want: true, wantKey: true},
		{give: "spec.nodeName=n1,metadata.namespace=ns", name: "a", namespace: "x", nodeName: "n1", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			f, err := ParseFields(tt.give)
			if err != nil {
				t.Fatalf("ParseFields(%q): %v", tt.give, err)
			}
			o := Fields{Name: tt.name, Namespace: tt.namespace, NodeName: tt.nodeName}
			if got := f.Matches(o); got != tt.want {
				t.Errorf("ParseFields(%q).Matches(%+v) = %v, want %v", tt.give, o, got, tt.want)
			}
			if got := f.MatchesKey(tt.name, tt.namespace); got != tt.wantKey {
				t.Errorf("ParseFields(%q).MatchesKey(%q, %q) = %v, want %v", tt.give, tt.name, tt.namespace, got, tt.wantKey)
			}
			if got, want := f.ObjectTerms(), strings.Contains(tt.give, "spec.nodeName"); got != want {
				t.Errorf("ParseFields(%q).ObjectTerms() = %v, want %v", tt.give, got, want)
			}
		})
	}
}
