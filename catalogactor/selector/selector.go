// Package selector parses Kubernetes label and field selectors and matches objects against them. It holds no state.
//
// Label selectors follow k8s.io/apimachinery/pkg/labels.Parse; field selectors follow
// k8s.io/apimachinery/pkg/fields.ParseSelector, restricted to metadata.name and
// metadata.namespace. Parsed selectors are immutable values, safe to share between goroutines.
package selector

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched, with errors.Is, by every error Parse and ParseFields return. The
// error's text says what is wrong with the selector and where; it is written to reach users
// verbatim (in an Invalid status).
var ErrInvalid = errors.New("selector: invalid")

// syntaxError is the error Parse and ParseFields return.
type syntaxError struct {
	kind  string // "selector" or "field selector"
	input string // the whole selector as the caller gave it
	msg   string // what is wrong and where
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s %q: %s", e.kind, e.input, e.msg) }

func (e *syntaxError) Unwrap() error { return ErrInvalid }
