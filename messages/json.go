package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The JSON form of commands, keys, ops and results: the seed's wire format, byte for byte.
//
//	{"kind":"put","key":{"group":"","version":"v1","kind":"Pod","namespace":"default","name":"x"},"value":{...},"reason":"operator"}
//
// kstore adds the kinds create and update, and on a patch the optional "patch_type" ("merge",
// the seed's only kind and the default, or "json"), "resource_version" (a precondition) and
// "request_id". Fields at their zero value are left out, so a seed command reads and writes
// unchanged. The stamped fields of Command never appear: they are the proposing node's business.

var reasonJSON = map[Reason]string{
	Reason_OPERATOR:          "operator",
	Reason_CONTROLLER:        "controller",
	Reason_GARBAGE_COLLECTOR: "garbage_collector",
	Reason_ADMISSION:         "admission",
	Reason_SCHEDULER:         "scheduler",
}

var kindJSON = map[CommandKind]string{
	CommandKind_PUT:    "put",
	CommandKind_CREATE: "create",
	CommandKind_UPDATE: "update",
	CommandKind_PATCH:  "patch",
	CommandKind_DELETE: "delete",
}

var opJSON = map[ResourceOp]string{
	ResourceOp_NO_OP:    "NoOp",
	ResourceOp_CREATED:  "Created",
	ResourceOp_REPLACED: "Replaced",
	ResourceOp_PATCHED:  "Patched",
	ResourceOp_DELETED:  "Deleted",
}

var patchTypeJSON = map[PatchType]string{
	PatchType_MERGE_PATCH: "merge",
	PatchType_JSON_PATCH:  "json",
}

func lookup[K comparable](names map[K]string, name, what string) (K, error) {
	for k, n := range names {
		if n == name {
			return k, nil
		}
	}
	var zero K
	return zero, Errorf(StatusReason_INVALID, "unknown %s %q", what, name)
}

// ReasonJSON is the seed's spelling of a reason: operator, controller, garbage_collector,
// admission, scheduler.
func ReasonJSON(r Reason) string { return reasonJSON[r] }

// ParseReason reads a reason in the seed's spelling.
func ParseReason(s string) (Reason, error) {
	r, err := lookup(reasonJSON, s, "reason")
	if err != nil {
		return r, Errorf(StatusReason_INVALID, "unknown reason %q: use one of operator, controller, garbage_collector, admission, scheduler", s)
	}
	return r, nil
}

// OpJSON is the seed's spelling of an op: Created, Replaced, Patched, Deleted, NoOp.
func OpJSON(op ResourceOp) string { return opJSON[op] }

// ParsePatchType reads "merge" or "json".
func ParsePatchType(s string) (PatchType, error) {
	t, err := lookup(patchTypeJSON, s, "patch type")
	if err != nil {
		return t, Errorf(StatusReason_INVALID, "unknown patch type %q: use merge (RFC 7386) or json (RFC 6902)", s)
	}
	return t, nil
}

type keyJSON struct {
	Group     string `json:"group"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

func toKeyJSON(k *ResourceKey) keyJSON {
	return keyJSON{k.GetGroup(), k.GetVersion(), k.GetKind(), k.GetNamespace(), k.GetName()}
}

func (k keyJSON) key() *ResourceKey {
	return &ResourceKey{Group: k.Group, Version: k.Version, Kind: k.Kind, Namespace: k.Namespace, Name: k.Name}
}

// MarshalKeyJSON writes a key as {"group":"","version":"v1","kind":"Pod","namespace":"default","name":"x"}.
func MarshalKeyJSON(k *ResourceKey) []byte {
	b, _ := json.Marshal(toKeyJSON(k)) // strings only: cannot fail
	return b
}

type commandJSON struct {
	Kind            string          `json:"kind"`
	Key             keyJSON         `json:"key"`
	Value           json.RawMessage `json:"value,omitempty"`
	Patch           json.RawMessage `json:"patch,omitempty"`
	PatchType       string          `json:"patch_type,omitempty"`
	ResourceVersion uint64          `json:"resource_version,omitempty"`
	Reason          string          `json:"reason"`
	RequestID       string          `json:"request_id,omitempty"`
}

// MarshalCommandJSON writes a command in the seed's JSON form. Value and patch must hold JSON.
func MarshalCommandJSON(c *Command) ([]byte, error) {
	kind, ok := kindJSON[c.GetKind()]
	if !ok {
		return nil, Errorf(StatusReason_INVALID, "command has no kind")
	}
	j := commandJSON{
		Kind:            kind,
		Key:             toKeyJSON(c.GetKey()),
		ResourceVersion: c.GetResourceVersion(),
		Reason:          reasonJSON[c.GetReason()],
		RequestID:       c.GetRequestId(),
	}
	switch c.GetKind() {
	case CommandKind_PATCH:
		j.Patch = c.GetPatch()
		if c.GetPatchType() == PatchType_JSON_PATCH {
			j.PatchType = "json"
		}
	case CommandKind_DELETE:
	default:
		j.Value = c.GetValue()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return nil, Errorf(StatusReason_INVALID, "command does not encode as JSON: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// UnmarshalCommandJSON reads a command in the seed's JSON form. A missing patch_type is a merge
// patch; a missing reason is Invalid, as in the seed.
func UnmarshalCommandJSON(b []byte) (*Command, error) {
	var j commandJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, Errorf(StatusReason_INVALID, "command is not valid JSON: %v", err)
	}
	kind, err := lookup(kindJSON, j.Kind, "command kind")
	if err != nil {
		return nil, Errorf(StatusReason_INVALID, "unknown command kind %q: use put, create, update, patch or delete", j.Kind)
	}
	reason, err := ParseReason(j.Reason)
	if err != nil {
		return nil, err
	}
	c := &Command{
		Kind:            kind,
		Key:             j.Key.key(),
		Value:           []byte(j.Value),
		Patch:           []byte(j.Patch),
		ResourceVersion: j.ResourceVersion,
		Reason:          reason,
		RequestId:       j.RequestID,
	}
	if kind == CommandKind_PATCH {
		c.PatchType = PatchType_MERGE_PATCH
		if j.PatchType != "" {
			if c.PatchType, err = ParsePatchType(j.PatchType); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// MarshalResultJSON writes {"op":"Created","resource_version":N}, with the object after them
// when withObject is set.
func MarshalResultJSON(r *CommandResult, withObject bool) []byte {
	if withObject && len(r.GetObject()) > 0 {
		return fmt.Appendf(nil, `{"op":%q,"resource_version":%d,"object":%s}`, opJSON[r.GetOp()], r.GetResourceVersion(), r.GetObject())
	}
	return fmt.Appendf(nil, `{"op":%q,"resource_version":%d}`, opJSON[r.GetOp()], r.GetResourceVersion())
}

var eventTypeJSON = map[EventType]string{
	EventType_EVENT_ADDED:    "ADDED",
	EventType_EVENT_MODIFIED: "MODIFIED",
	EventType_EVENT_DELETED:  "DELETED",
	EventType_EVENT_BOOKMARK: "BOOKMARK",
	EventType_EVENT_ERROR:    "ERROR",
}

// EventTypeJSON is the seed's spelling of an event type: ADDED, MODIFIED, DELETED, BOOKMARK, and
// ERROR for the event that ends a watch.
func EventTypeJSON(t EventType) string { return eventTypeJSON[t] }

// MarshalEventJSON writes a watch event in the seed's form:
//
//	{"type":"ADDED","object":{...},"key":{...},"resource_version":N}
//
// An ERROR event is {"type":"ERROR","object":{"reason":"Gone","message":"...","resource_version":N}}.
func MarshalEventJSON(e *WatchEvent) []byte {
	if e.GetType() == EventType_EVENT_ERROR {
		return fmt.Appendf(nil, `{"type":"ERROR","object":%s}`, StatusObjectJSON(e.GetStatus()))
	}
	obj := e.GetObject()
	if len(obj) == 0 {
		obj = []byte("null")
	}
	return fmt.Appendf(nil, `{"type":%q,"object":%s,"key":%s,"resource_version":%d}`,
		eventTypeJSON[e.GetType()], obj, MarshalKeyJSON(e.GetKey()), e.GetResourceVersion())
}

// StatusObjectJSON writes a status as the object of an ERROR event:
// {"reason":"Gone","message":"...","resource_version":N}.
func StatusObjectJSON(s *Status) []byte {
	b, _ := json.Marshal(struct {
		Reason          string `json:"reason"`
		Message         string `json:"message"`
		ResourceVersion uint64 `json:"resource_version"`
	}{ReasonName(s.GetReason()), s.GetMessage(), s.GetResourceVersion()})
	return b
}
