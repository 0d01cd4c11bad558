package selector

import (
	"fmt"
	"slices"
	"strings"
)

// The fields a FieldSelector may test: the only ones kstore's watches and lists filter on.
// spec.nodeName is the field kubelets watch their Pods by (an object without it has "").
const (
	fieldName      = "metadata.name"
	fieldNamespace = "metadata.namespace"
	fieldNodeName  = "spec.nodeName"
)

// Fields are the values of an object a field selector tests.
type Fields struct{ Name, Namespace, NodeName string }

// FieldSelector is a parsed field selector: a conjunction of terms on metadata.name,
// metadata.namespace and spec.nodeName. It is immutable once parsed; the zero value matches
// every object.
type FieldSelector struct {
	terms []fieldTerm // sorted by their String form; never modified after ParseFields returns
}

type fieldTerm struct {
	field string // fieldName, fieldNamespace or fieldNodeName
	value string // unescaped
	not   bool   // != rather than = or ==
}

// ParseFields parses a field selector with the grammar of Kubernetes' fields.ParseSelector:
// terms separated by ',', each "field=value", "field==value" or "field!=value", where field is
// metadata.name, metadata.namespace or spec.nodeName. Nothing is trimmed: whitespace belongs to the field or
// value it touches. In a value, '\', ',' and '=' are written "\\", "\," and "\=". Empty terms
// are skipped, so "" and "," parse to the selector that matches everything. An error wraps
// ErrInvalid.
func ParseFields(s string) (FieldSelector, error) {
	fail := func(format string, args ...any) (FieldSelector, error) {
		return FieldSelector{}, &syntaxError{kind: "field selector", input: s, msg: fmt.Sprintf(format, args...)}
	}
	var terms []fieldTerm
	for _, term := range splitTerms(s) {
		if term == "" {
			continue
		}
		field, op, raw, ok := splitTerm(term)
		if !ok {
			return fail("term %q has no operator; write field=value, field==value or field!=value", term)
		}
		if !known(field) {
			hint := ""
			if known(strings.TrimSpace(field)) {
				hint = " (remove the whitespace around it)"
			}
			return fail("unknown field %q in term %q%s; the only fields supported are %s, %s and %s", field, term, hint, fieldName, fieldNamespace, fieldNodeName)
		}
		value, msg := unescape(raw)
		if msg != "" {
			return fail("term %q: %s", term, msg)
		}
		terms = append(terms, fieldTerm{field: field, value: value, not: op == "!="})
	}
	slices.SortFunc(terms, func(a, b fieldTerm) int { return strings.Compare(a.String(), b.String()) })
	return FieldSelector{terms: terms}, nil
}

// splitTerms splits s at each ',' not escaped by '\'.
func splitTerms(s string) []string {
	var terms []string
	start, escaped := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case escaped:
			escaped = false
		case s[i] == '\\':
			escaped = true
		case s[i] == ',':
			terms = append(terms, s[start:i])
			start = i + 1
		}
	}
	return append(terms, s[start:])
}

// splitTerm splits term at its first operator, trying "!=" and "==" before "=", as Kubernetes
// does; ok is false when term has none.
func splitTerm(term string) (field, op, value string, ok bool) {
	for i := range len(term) {
		for _, op := range [...]string{"!=", "==", "="} {
			if strings.HasPrefix(term[i:], op) {
				return term[:i], op, term[i+len(op):], true
			}
		}
	}
	return "", "", "", false
}

// unescape undoes escaper; msg says what is wrong with raw, or is "".
func unescape(raw string) (value, msg string) {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '\\':
			if i+1 == len(raw) {
				return "", `the value ends with a lone '\'; write "\\" for a backslash`
			}
			i++
			switch c := raw[i]; c {
			case '\\', ',', '=':
				b.WriteByte(c)
			default:
				return "", fmt.Sprintf(`invalid escape sequence %q in the value; only "\\", "\," and "\=" are allowed`, raw[i-1:i+1])
			}
		case ',', '=':
			return "", fmt.Sprintf(`the value contains an unescaped '%c'; write "\%c"`, c, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

var escaper = strings.NewReplacer(`\`, `\\`, `,`, `\,`, `=`, `\=`)

func known(field string) bool {
	return field == fieldName || field == fieldNamespace || field == fieldNodeName
}

// Matches reports whether an object with these fields satisfies every term of f. A
// cluster-scoped object has namespace "".
func (f FieldSelector) Matches(o Fields) bool {
	for _, t := range f.terms {
		var got string
		switch t.field {
		case fieldName:
			got = o.Name
		case fieldNamespace:
			got = o.Namespace
		default:
			got = o.NodeName
		}
		if (got == t.value) == t.not {
			return false
		}
	}
	return true
}

// MatchesKey reports whether an object of this name and namespace satisfies f's terms on
// metadata, which never change over an object's life; the others (ObjectTerms) may.
func (f FieldSelector) MatchesKey(name, namespace string) bool {
	for _, t := range f.terms {
		if t.field == fieldNodeName {
			continue
		}
		got := name
		if t.field == fieldNamespace {
			got = namespace
		}
		if (got == t.value) == t.not {
			return false
		}
	}
	return true
}

// Required returns the value a term field=value (or ==) of f requires of field
// ("metadata.name", "metadata.namespace" or "spec.nodeName"), and whether f has one: a watch
// hub indexes watchers by it.
func (f FieldSelector) Required(field string) (string, bool) {
	for _, t := range f.terms {
		if t.field == field && !t.not {
			return t.value, true
		}
	}
	return "", false
}

// ObjectTerms reports whether f tests a field of the object's body (spec.nodeName), which
// changes over its life: matching then needs the object, and a watch sees an object that moves
// into or out of the selection as ADDED or DELETED, as with labels.
func (f FieldSelector) ObjectTerms() bool {
	for _, t := range f.terms {
		if t.field == fieldNodeName {
			return true
		}
	}
	return false
}

// Empty reports whether f has no terms, and so matches everything.
func (f FieldSelector) Empty() bool { return len(f.terms) == 0 }

// String returns the canonical form of f: terms written "field=value" or "field!=value" with
// values escaped, sorted and joined by ','. ParseFields(f.String()) gives back f.
func (f FieldSelector) String() string {
	parts := make([]string, len(f.terms))
	for i, t := range f.terms {
		parts[i] = t.String()
	}
	return strings.Join(parts, ",")
}

func (t fieldTerm) String() string {
	op := "="
	if t.not {
		op = "!="
	}
	return t.field + op + escaper.Replace(t.value)
}
