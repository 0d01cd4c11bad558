package selector

import (
	"fmt"
	"slices"
	"strings"
)

// The fields a FieldSelector may test: the only ones kstore's watches filter on.
const (
	fieldName      = "metadata.name"
	fieldNamespace = "metadata.namespace"
)

// FieldSelector is a parsed field selector: a conjunction of terms on metadata.name and
// metadata.namespace. It is immutable once parsed; the zero value matches every object.
type FieldSelector struct {
	terms []fieldTerm // sorted by their String form; never modified after ParseFields returns
}

type fieldTerm struct {
	field string // fieldName or fieldNamespace
	value string // unescaped
	not   bool   // != rather than = or ==
}

// ParseFields parses a field selector with the grammar of Kubernetes' fields.ParseSelector:
// terms separated by ',', each "field=value", "field==value" or "field!=value", where field is
// metadata.name or metadata.namespace. Nothing is trimmed: whitespace belongs to the field or
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
		if field != fieldName && field != fieldNamespace {
			hint := ""
			if f := strings.TrimSpace(field); f == fieldName || f == fieldNamespace {
				hint = " (remove the whitespace around it)"
			}
			return fail("unknown field %q in term %q%s; the only fields supported are %s and %s", field, term, hint, fieldName, fieldNamespace)
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

// Matches reports whether an object with this name and namespace satisfies every term of f.
// A cluster-scoped object has namespace "".
func (f FieldSelector) Matches(name, namespace string) bool {
	for _, t := range f.terms {
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
