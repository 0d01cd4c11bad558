package selector

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Parse parses a label selector with the grammar of Kubernetes' labels.Parse: requirements
// separated by ',', each one of
//
//	key=value  key==value  key!=value  key in (v1,v2)  key notin (v1,v2)  key  !key  key>N  key<N
//
// with optional whitespace (space, tab, CR, LF) around tokens. A value may be empty ("key=",
// "key in (a,)"); "key in ()" is, as in Kubernetes, the set holding only the empty value
// (labels.Parse reads "()" as {""}, and its doc gives "z notin ()" as valid; its "values set
// can't be empty" is NewRequirement's, refusing a requirement built with no values, which the
// string syntax cannot write). Keys must be qualified names ("example.com/name"), values valid
// label values, and N a non-negative decimal integer. "" and a selector of only whitespace
// parse to Everything. An error wraps ErrInvalid.
//
// Where labels.Parse errs, Parse does not follow: Kubernetes' lexer reads a NUL byte as a
// separator ("a\x00=b" is a=b there), which Parse refuses as part of a key or value; and
// Kubernetes refuses a set ending in an even number of commas ("(x,,)") while it takes an odd
// one ("(x,,,)"), which Parse reads, as the grammar does, as empty values.
func Parse(s string) (Selector, error) {
	p := &parser{input: s, toks: lex(s)}
	if p.peek().kind == tEnd {
		return Selector{}, nil
	}
	var reqs []requirement
	for {
		start := p.peek().pos
		r, err := p.requirement()
		if err != nil {
			return Selector{}, err
		}
		reqs = append(reqs, r)
		switch t := p.peek(); t.kind {
		case tEnd:
			slices.SortStableFunc(reqs, func(a, b requirement) int { return strings.Compare(a.key, b.key) })
			return Selector{reqs: reqs}, nil
		case tComma:
			p.next()
			if p.peek().kind == tEnd {
				return Selector{}, p.errorf("trailing ',' %s: expected another requirement after it", p.after(start))
			}
			p.prevReq = start
		default:
			return Selector{}, p.errorf("unexpected %s %s: separate requirements with ','", describe(t), p.after(start))
		}
	}
}

// tokenKind classifies the tokens of a label selector, as Kubernetes' lexer does.
type tokenKind uint8

const (
	tEnd   tokenKind = iota // end of the selector
	tIdent                  // a run of bytes that are neither whitespace nor one of "=!(),<>"; "in" and "notin" too, which the parser reads as operators where one is due
	tComma
	tOpen
	tClose
	tNot       // !
	tEquals    // =
	tDouble    // ==
	tNotEquals // !=
	tGreater   // >
	tLess      // <
)

type token struct {
	kind tokenKind
	text string
	pos  int // byte offset of text in the selector
}

// lex splits s into tokens, ending with one tEnd.
func lex(s string) []token {
	var toks []token
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			return append(toks, token{kind: tEnd, pos: i})
		}
		start := i
		twoChar := i+1 < len(s) && s[i+1] == '=' // longest match, as Kubernetes: "===" is "==" then "="
		var kind tokenKind
		switch s[i] {
		case ',':
			kind = tComma
		case '(':
			kind = tOpen
		case ')':
			kind = tClose
		case '>':
			kind = tGreater
		case '<':
			kind = tLess
		case '=':
			kind = tEquals
			if twoChar {
				kind, i = tDouble, i+1
			}
		case '!':
			kind = tNot
			if twoChar {
				kind, i = tNotEquals, i+1
			}
		default:
			kind = tIdent
			for i < len(s) && !isSpace(s[i]) && !isSymbol(s[i]) {
				i++
			}
		}
		if kind != tIdent {
			i++
		}
		toks = append(toks, token{kind: kind, text: s[start:i], pos: start})
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isSymbol(c byte) bool { return strings.IndexByte("=!(),<>", c) >= 0 }

// parser reads one label selector's tokens.
type parser struct {
	input   string
	toks    []token // ends with tEnd
	i       int     // next token
	prevReq int     // byte offset where the previous requirement started, to say where an error is
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEnd {
		p.i++
	}
	return t
}

// after says where the parser stands: after the text from byte offset from to the end of
// the last token read.
func (p *parser) after(from int) string {
	if p.read(from) == "" {
		return "at the start of the selector"
	}
	return fmt.Sprintf("after %q", p.read(from))
}

// read returns the text from byte offset from to the end of the last token read.
func (p *parser) read(from int) string {
	if p.i == 0 {
		return ""
	}
	t := p.toks[p.i-1]
	return p.input[from : t.pos+len(t.text)]
}

func describe(t token) string {
	if t.kind == tEnd {
		return "the end of the selector"
	}
	return fmt.Sprintf("%q", t.text)
}

func (p *parser) errorf(format string, args ...any) error {
	return &syntaxError{kind: "selector", input: p.input, msg: fmt.Sprintf(format, args...)}
}

// requirement reads one requirement, leaving the token after it unread.
func (p *parser) requirement() (requirement, error) {
	start := p.peek().pos
	not := p.peek().kind == tNot
	if not {
		p.next()
	}
	if t := p.peek(); t.kind != tIdent {
		if not {
			return requirement{}, p.errorf("expected a label key after '!', found %s", describe(t))
		}
		return requirement{}, p.errorf("expected a label key or '!key' %s, found %s", p.after(p.prevReq), describe(t))
	}
	key := p.next().text
	if msg := checkKey(key); msg != "" {
		return requirement{}, p.errorf("invalid label key %q: %s", key, msg)
	}
	t := p.peek()
	if t.kind == tEnd || t.kind == tComma {
		if not {
			return requirement{key: key, op: opNotExists}, nil
		}
		return requirement{key: key, op: opExists}, nil
	}
	if not {
		return requirement{}, p.errorf("unexpected %s %s: '!key' selects objects without label %q and takes no operator or value; to exclude values write \"%s!=value\" or \"%s notin (v1,v2)\"",
			describe(t), p.after(start), key, key, key)
	}
	switch {
	case t.kind == tIdent && t.text == "in":
		p.next()
		return p.set(key, opIn, start)
	case t.kind == tIdent && t.text == "notin":
		p.next()
		return p.set(key, opNotIn, start)
	case t.kind == tEquals:
		p.next()
		return p.exact(key, opEquals, start)
	case t.kind == tDouble:
		p.next()
		return p.exact(key, opDoubleEquals, start)
	case t.kind == tNotEquals:
		p.next()
		return p.exact(key, opNotEquals, start)
	case t.kind == tGreater:
		p.next()
		return p.integer(key, opGreaterThan, start)
	case t.kind == tLess:
		p.next()
		return p.integer(key, opLessThan, start)
	}
	return requirement{}, p.errorf("expected an operator (=, ==, !=, in, notin, >, <) or ',' %s, found %s", p.after(start), describe(t))
}

// value reads the one value after =, ==, !=, > or <: empty when a ',' or the end follows.
func (p *parser) value(start int) (string, error) {
	switch t := p.peek(); t.kind {
	case tEnd, tComma:
		return "", nil
	case tIdent:
		return p.next().text, nil
	case tOpen:
		return "", p.errorf("unexpected '(' %s: only 'in' and 'notin' take a list of values in parentheses", p.after(start))
	default:
		return "", p.errorf("expected a value %s, found %s", p.after(start), describe(t))
	}
}

func (p *parser) exact(key string, op operator, start int) (requirement, error) {
	v, err := p.value(start)
	if err != nil {
		return requirement{}, err
	}
	if msg := checkValue(v); msg != "" {
		return requirement{}, p.errorf("invalid value %q for label key %q: %s", v, key, msg)
	}
	return requirement{key: key, op: op, values: []string{v}}, nil
}

// integer reads the N of key>N or key<N. Kubernetes requires N to be both an int64 and a
// valid label value, which leaves a non-empty run of decimal digits within int64.
func (p *parser) integer(key string, op operator, start int) (requirement, error) {
	if t := p.peek(); t.kind == tEquals {
		return requirement{}, p.errorf("unexpected '=' %s: '>=' and '<=' are not supported; use '>' or '<' with an adjusted integer", p.after(start))
	}
	v, err := p.value(start)
	if err != nil {
		return requirement{}, err
	}
	if v == "" {
		return requirement{}, p.errorf("missing integer %s: '>' and '<' compare with a non-negative decimal integer", p.after(start))
	}
	if strings.Trim(v, "0123456789") != "" {
		return requirement{}, p.errorf("invalid value %q in %q: '>' and '<' compare with a non-negative decimal integer", v, p.read(start))
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return requirement{}, p.errorf("invalid value %q in %q: the integer is out of range (at most %d)", v, p.read(start), int64(1<<63-1))
	}
	return requirement{key: key, op: op, values: []string{v}, n: n}, nil
}

// set reads the parenthesized values of in and notin. A value may be empty: "()" is {""} and
// "(a,)" is {"", "a"}, as in Kubernetes.
func (p *parser) set(key string, op operator, start int) (requirement, error) {
	if t := p.peek(); t.kind != tOpen {
		return requirement{}, p.errorf("expected '(' %s, found %s", p.after(start), describe(t))
	}
	open := p.next().pos
	var values []string
	for {
		v := ""
		switch t := p.peek(); t.kind {
		case tIdent:
			v = p.next().text
		case tComma, tClose:
		case tEnd:
			return requirement{}, p.errorf("missing closing ')' %s", p.after(open))
		default:
			return requirement{}, p.errorf("expected a value, ',' or ')' %s, found %s", p.after(open), describe(t))
		}
		if msg := checkValue(v); msg != "" {
			return requirement{}, p.errorf("invalid value %q for label key %q: %s", v, key, msg)
		}
		values = append(values, v)
		switch t := p.peek(); t.kind {
		case tComma:
			p.next()
		case tClose:
			p.next()
			slices.Sort(values)
			return requirement{key: key, op: op, values: slices.Compact(values)}, nil
		case tEnd:
			return requirement{}, p.errorf("missing closing ')' %s", p.after(open))
		default:
			return requirement{}, p.errorf("expected ',' or ')' %s, found %s", p.after(open), describe(t))
		}
	}
}
