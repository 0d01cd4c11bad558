package messages

import (
	"errors"
	"fmt"
)

// Error is a Status as a Go error. It is what crosses the wire in the status field of a reply
// and what a client hands its caller, so a NotFound on one node is a NotFound everywhere.
//
// Match it with the Is helpers (IsNotFound, IsConflict, ...), with errors.Is against the
// sentinels (ErrNotFound, ...), or with errors.As to read the message and resourceVersion.
type Error struct {
	Reason          StatusReason
	Message         string
	ResourceVersion uint64
}

// Sentinels for errors.Is: an *Error matches the sentinel of its reason.
var (
	ErrNotFound      = &Error{Reason: StatusReason_NOT_FOUND}
	ErrAlreadyExists = &Error{Reason: StatusReason_ALREADY_EXISTS}
	ErrConflict      = &Error{Reason: StatusReason_CONFLICT}
	ErrGone          = &Error{Reason: StatusReason_GONE}
	ErrInvalid       = &Error{Reason: StatusReason_INVALID}
	ErrTooLarge      = &Error{Reason: StatusReason_TOO_LARGE}
	ErrUnavailable   = &Error{Reason: StatusReason_UNAVAILABLE}
	ErrTimeout       = &Error{Reason: StatusReason_TIMEOUT}
	ErrInternal      = &Error{Reason: StatusReason_INTERNAL}
)

// Errorf returns an *Error with the reason and a message formatted as by fmt.Sprintf.
func Errorf(reason StatusReason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Error formats as "Reason: message", the reason in its Kubernetes spelling.
func (e *Error) Error() string {
	if e.Message == "" {
		return ReasonName(e.Reason)
	}
	return ReasonName(e.Reason) + ": " + e.Message
}

// Is reports whether target is an *Error of the same reason, so errors.Is(err, ErrNotFound)
// holds for every NotFound whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// Status is the wire form of the error.
func (e *Error) Status() *Status {
	return &Status{Reason: e.Reason, Message: e.Message, ResourceVersion: e.ResourceVersion}
}

// Err returns the status as an *Error, or nil for a nil status (success).
func (s *Status) Err() error {
	if s == nil || s.Reason == StatusReason_STATUS_REASON_UNSPECIFIED {
		return nil
	}
	return &Error{Reason: s.Reason, Message: s.Message, ResourceVersion: s.ResourceVersion}
}

// StatusOf returns the wire form of err: its own status when err is (or wraps) an *Error,
// otherwise an InternalError carrying err's text. It returns nil for a nil err.
func StatusOf(err error) *Status {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status()
	}
	return &Status{Reason: StatusReason_INTERNAL, Message: err.Error()}
}

// ReasonOf returns the reason of err, STATUS_REASON_UNSPECIFIED when err is nil and INTERNAL
// when err is not an *Error.
func ReasonOf(err error) StatusReason {
	if err == nil {
		return StatusReason_STATUS_REASON_UNSPECIFIED
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return StatusReason_INTERNAL
}

func IsNotFound(err error) bool      { return ReasonOf(err) == StatusReason_NOT_FOUND }
func IsAlreadyExists(err error) bool { return ReasonOf(err) == StatusReason_ALREADY_EXISTS }
func IsConflict(err error) bool      { return ReasonOf(err) == StatusReason_CONFLICT }
func IsGone(err error) bool          { return ReasonOf(err) == StatusReason_GONE }
func IsInvalid(err error) bool       { return ReasonOf(err) == StatusReason_INVALID }
func IsTooLarge(err error) bool      { return ReasonOf(err) == StatusReason_TOO_LARGE }
func IsUnavailable(err error) bool   { return ReasonOf(err) == StatusReason_UNAVAILABLE }
func IsTimeout(err error) bool       { return ReasonOf(err) == StatusReason_TIMEOUT }

var reasonNames = map[StatusReason]string{
	StatusReason_NOT_FOUND:      "NotFound",
	StatusReason_ALREADY_EXISTS: "AlreadyExists",
	StatusReason_CONFLICT:       "Conflict",
	StatusReason_GONE:           "Gone",
	StatusReason_INVALID:        "Invalid",
	StatusReason_TOO_LARGE:      "TooLarge",
	StatusReason_UNAVAILABLE:    "Unavailable",
	StatusReason_TIMEOUT:        "Timeout",
	StatusReason_INTERNAL:       "InternalError",
}

// ReasonName is the Kubernetes spelling of a reason (metav1.StatusReason): NotFound, Conflict...
func ReasonName(r StatusReason) string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return "Unknown"
}
