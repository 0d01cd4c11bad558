package checker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// history parses a history written one operation a line, blank lines and # comments aside:
//
//	<client> <call> <return> <kind> [key] [value] [if=<rv>] -> <outcome>
//
// <return> is "-" for an unknown outcome (it means nothing). <outcome> is one of:
//
//	CREATED@5 REPLACED@5 DELETED@5 NO_OP@5   an ok write and its rv
//	v1@5                                     an ok get: the value and its rv
//	@9 a=v1@5 b=v2@7                         an ok list: its ListRV and items
//	NotFound AlreadyExists Conflict          failed with that reason
//	absent                                   a get that found nothing, recorded as ok
//	refused                                  failed with no reason
//	unknown
func history(t *testing.T, text string) []Op {
	t.Helper()
	var ops []Op
	for n, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		op, err := parseOp(line)
		if err != nil {
			t.Fatalf("history line %d %q: %v", n+1, line, err)
		}
		ops = append(ops, op)
	}
	return ops
}

func parseOp(line string) (Op, error) {
	call, result, ok := strings.Cut(line, "->")
	if !ok {
		return Op{}, errors.New("no ->")
	}
	f := strings.Fields(call)
	if len(f) < 4 {
		return Op{}, errors.New("want <client> <call> <return> <kind>")
	}
	var op Op
	var err error
	if op.Client, err = strconv.Atoi(f[0]); err != nil {
		return Op{}, err
	}
	if op.Call, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return Op{}, err
	}
	if f[2] != "-" {
		if op.Return, err = strconv.ParseInt(f[2], 10, 64); err != nil {
			return Op{}, err
		}
	}
	op.Kind = OpKind(f[3])
	args := f[4:]
	if len(args) > 0 && strings.HasPrefix(args[len(args)-1], "if=") {
		if op.IfRV, err = strconv.ParseUint(strings.TrimPrefix(args[len(args)-1], "if="), 10, 64); err != nil {
			return Op{}, err
		}
		args = args[:len(args)-1]
	}
	if len(args) > 0 {
		op.Key = args[0]
	}
	if len(args) > 1 {
		op.Value = args[1]
	}

	r := strings.Fields(result)
	if len(r) == 0 {
		return Op{}, errors.New("no outcome")
	}
	op.Outcome = OK
	switch r[0] {
	case "unknown":
		op.Outcome = Unknown
	case "refused":
		op.Outcome = Failed
	case ReasonNotFound, ReasonAlreadyExists, ReasonConflict:
		op.Outcome, op.Reason = Failed, r[0]
	case "absent":
		op.Reason = ReasonNotFound
	default:
		if op.Kind == List {
			if op.ListRV, err = strconv.ParseUint(strings.TrimPrefix(r[0], "@"), 10, 64); err != nil {
				return Op{}, err
			}
			for _, s := range r[1:] {
				key, rest, _ := strings.Cut(s, "=")
				it := Item{Key: key}
				if it.Value, it.RV, err = valueAt(rest); err != nil {
					return Op{}, err
				}
				op.Items = append(op.Items, it)
			}
			break
		}
		var v string
		if v, op.RV, err = valueAt(r[0]); err != nil {
			return Op{}, err
		}
		if op.Kind == Get {
			op.GotValue = v
		} else {
			op.Result = v
		}
	}
	return op, nil
}

// valueAt parses "v@5".
func valueAt(s string) (string, uint64, error) {
	v, rv, ok := strings.Cut(s, "@")
	if !ok {
		return "", 0, fmt.Errorf("%q: want value@rv", s)
	}
	n, err := strconv.ParseUint(rv, 10, 64)
	return v, n, err
}

// events parses a list of events, separated by spaces: "ADDED:a=v1@5", "BOOKMARK@7".
func events(t *testing.T, text string) []Event {
	t.Helper()
	var es []Event
	for _, s := range strings.Fields(text) {
		typ, rest, ok := strings.Cut(s, ":")
		if !ok {
			typ, rest, _ = strings.Cut(s, "@")
			rv, err := strconv.ParseUint(rest, 10, 64)
			if err != nil || typ != EventBookmark {
				t.Fatalf("event %q: want TYPE:key=value@rv or BOOKMARK@rv", s)
			}
			es = append(es, Event{Type: typ, RV: rv})
			continue
		}
		key, rest, _ := strings.Cut(rest, "=")
		v, rv, err := valueAt(rest)
		if err != nil {
			t.Fatalf("event %q: %v", s, err)
		}
		es = append(es, Event{Type: typ, Key: key, Value: v, RV: rv})
	}
	return es
}

// broken returns which of sentinels errs wrap, for comparing with a test's want.
func broken(errs []error, sentinels ...error) []error {
	var got []error
	for _, s := range sentinels {
		for _, err := range errs {
			if errors.Is(err, s) {
				got = append(got, s)
				break
			}
		}
	}
	return got
}
