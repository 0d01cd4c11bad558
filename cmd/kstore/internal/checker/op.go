package checker

import (
	"errors"
	"fmt"
	"strings"
)

// OpKind is what a client asked.
type OpKind string

const (
	// Put creates or replaces: absent → CREATED at rv; present with another value → REPLACED at
	// rv; present with the same value → NO_OP, and the result rv is the object's unchanged rv.
	Put OpKind = "put"
	// Create: absent → CREATED at rv; present → fails AlreadyExists.
	Create OpKind = "create"
	// Update replaces a stored object: absent → fails NotFound; IfRV != 0 and the stored rv
	// differs → fails Conflict; else REPLACED at rv, or NO_OP as for Put.
	Update OpKind = "update"
	// Delete: absent → NO_OP, and the result rv is a fresh index (the command's own: nothing
	// changed, but it was committed); IfRV != 0 and the stored rv differs → fails Conflict;
	// else DELETED at rv.
	Delete OpKind = "delete"
	// Get is a linearizable read of one key: absent → NotFound; else the value and its rv.
	Get OpKind = "get"
	// List is a linearizable read of the whole namespace at ListRV, an applied index: every
	// item's rv is at most ListRV, and every change after the list has an rv above it.
	List OpKind = "list"
)

// Outcome is how much the client knows of what its operation did.
type Outcome string

const (
	// OK: the operation took effect as its result says.
	OK Outcome = "ok"
	// Failed: certainly nothing changed. Reason says why.
	Failed Outcome = "failed"
	// Unknown: a write that timed out, which may or may not take effect, at any time after its
	// call; its Return is meaningless. A read with an unknown outcome observed nothing.
	Unknown Outcome = "unknown"

	// seen is internal to the check, never in a history: an unknown outcome the history
	// settled, a write whose change a read saw at RV (see settleSeen). Its Result is CREATED
	// for a create, REPLACED for an update, and empty for a put: either.
	seen Outcome = "unknown, seen"
)

// Reasons of a failed operation. An empty reason is a refusal: the command was not sent or was
// refused before it could take effect.
const (
	ReasonNotFound      = "NotFound"
	ReasonAlreadyExists = "AlreadyExists"
	ReasonConflict      = "Conflict"
)

// Results of an ok write, as the store names them (messages.ResourceOp).
const (
	ResultCreated  = "CREATED"
	ResultReplaced = "REPLACED"
	ResultDeleted  = "DELETED"
	ResultNoOp     = "NO_OP"
)

// Item is one object of a list.
type Item struct {
	Key, Value string
	RV         uint64
}

// Op is one operation as a client saw it.
type Op struct {
	Client int
	Kind   OpKind
	Key    string // not for List
	// Value is what a put, create or update writes. It should be unique per write: a read, or
	// the reference, names the write it saw by its value, and a value written twice (a retry)
	// names neither write.
	Value string
	// IfRV is the precondition of an update or delete: the stored rv must equal it. 0 is none.
	IfRV         uint64
	Call, Return int64 // unix nanoseconds as the client saw them
	Outcome      Outcome
	// Reason: for Failed, ReasonNotFound, ReasonAlreadyExists, ReasonConflict or "" (refused,
	// no effect). A get that found nothing may also be recorded as OK with ReasonNotFound: a
	// read that found nothing is an observation; the two mean the same here.
	Reason string

	// When OK:
	Result   string // writes: ResultCreated, ResultReplaced, ResultDeleted or ResultNoOp
	RV       uint64 // writes: the result rv; get: the object's rv
	GotValue string // get: the value read
	Items    []Item // list: the objects, in any order
	ListRV   uint64 // list
}

// ErrInvalidHistory is returned for an operation the checker cannot read: an unknown kind,
// outcome, reason or result, a missing rv, a return before the call. Fix the recorder.
var ErrInvalidHistory = errors.New("checker: invalid history")

func (op *Op) isWrite() bool {
	return op.Kind == Put || op.Kind == Create || op.Kind == Update || op.Kind == Delete
}

// foundNothing reports whether op is a get that found the key absent.
func (op *Op) foundNothing() bool {
	return op.Kind == Get && op.Reason == ReasonNotFound && (op.Outcome == OK || op.Outcome == Failed)
}

// ownIndex reports whether op is an ok write whose rv is its own command's index: a change, or
// the delete of an absent key. A NO_OP put or update reports the object's older rv instead.
func (op *Op) ownIndex() bool {
	return op.Outcome == OK && (op.Result == ResultCreated || op.Result == ResultReplaced ||
		op.Result == ResultDeleted || op.Kind == Delete && op.Result == ResultNoOp)
}

// validate reports what makes op unreadable; a result that the semantics rule out (a create
// that REPLACED, a put that failed NotFound) is not invalid but a violation, left to the model.
func (op *Op) validate() error {
	switch op.Kind {
	case Put, Create, Update, Delete, Get, List:
	default:
		return fmt.Errorf("kind %q: want put, create, update, delete, get or list", op.Kind)
	}
	switch op.Outcome {
	case OK:
		if op.Kind != Get && op.Reason != "" || op.Reason != "" && op.Reason != ReasonNotFound {
			return fmt.Errorf("ok with reason %q: only a get that found nothing has one (NotFound)", op.Reason)
		}
	case Failed:
		switch op.Reason {
		case "", ReasonNotFound, ReasonAlreadyExists, ReasonConflict:
		default:
			return fmt.Errorf("reason %q: want NotFound, AlreadyExists, Conflict or \"\" (refused)", op.Reason)
		}
	case Unknown:
	default:
		return fmt.Errorf("outcome %q: want ok, failed or unknown", op.Outcome)
	}
	if op.Outcome != Unknown && op.Return < op.Call {
		return fmt.Errorf("returned at %d, before its call at %d", op.Return, op.Call)
	}
	if op.Outcome != OK || op.foundNothing() {
		return nil
	}
	switch {
	case op.isWrite():
		switch op.Result {
		case ResultCreated, ResultReplaced, ResultDeleted, ResultNoOp:
		default:
			return fmt.Errorf("result %q: want CREATED, REPLACED, DELETED or NO_OP", op.Result)
		}
		if op.RV == 0 {
			return errors.New("ok write with no rv")
		}
	case op.Kind == Get:
		if op.RV == 0 {
			return errors.New("ok get with no rv")
		}
	case op.Kind == List:
		for _, it := range op.Items {
			if it.RV == 0 {
				return fmt.Errorf("list item %s with no rv", it.Key)
			}
		}
	}
	return nil
}

// String describes op for error messages and the visualization, as
// "update(a, v2, if rv 5) → CREATED@7".
func (op *Op) String() string {
	var b strings.Builder
	b.WriteString(string(op.Kind))
	switch op.Kind {
	case Put, Create:
		fmt.Fprintf(&b, "(%s, %s)", op.Key, op.Value)
	case Update:
		fmt.Fprintf(&b, "(%s, %s%s)", op.Key, op.Value, ifRV(op.IfRV))
	case Delete:
		fmt.Fprintf(&b, "(%s%s)", op.Key, ifRV(op.IfRV))
	case Get:
		fmt.Fprintf(&b, "(%s)", op.Key)
	}
	b.WriteString(" → ")
	switch {
	case op.Outcome == Unknown:
		b.WriteString("unknown")
	case op.Outcome == seen:
		fmt.Fprintf(&b, "unknown, seen at rv %d", op.RV)
	case op.foundNothing():
		b.WriteString(ReasonNotFound)
	case op.Outcome == Failed && op.Reason == "":
		b.WriteString("refused")
	case op.Outcome == Failed:
		b.WriteString(op.Reason)
	case op.Kind == Get:
		fmt.Fprintf(&b, "%s@%d", op.GotValue, op.RV)
	case op.Kind == List:
		fmt.Fprintf(&b, "@%d [", op.ListRV)
		for i, it := range op.Items {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%s=%s@%d", it.Key, it.Value, it.RV)
		}
		b.WriteString("]")
	default:
		fmt.Fprintf(&b, "%s@%d", op.Result, op.RV)
	}
	return b.String()
}

func ifRV(rv uint64) string {
	if rv == 0 {
		return ""
	}
	return fmt.Sprintf(", if rv %d", rv)
}
