package messages

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

var podKey = &ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "podinfo"}

const podKeyJSON = `{"group":"","version":"v1","kind":"Pod","namespace":"default","name":"podinfo"}`

// The seed's wire format, byte for byte: these strings are the contract with every client that
// speaks it, so a change here is a protocol change.
func TestCommandJSONGolden(t *testing.T) {
	tests := []struct {
		name string
		give *Command
		want string
	}{
		{"put, as the seed writes it", &Command{Kind: CommandKind_PUT, Key: podKey, Value: []byte(`{"spec":{}}`), Reason: Reason_OPERATOR},
			`{"kind":"put","key":` + podKeyJSON + `,"value":{"spec":{}},"reason":"operator"}`},
		{"patch, merge (the seed's only kind)", &Command{Kind: CommandKind_PATCH, Key: podKey, Patch: []byte(`{"data":{"k":"v2"}}`), PatchType: PatchType_MERGE_PATCH, Reason: Reason_ADMISSION},
			`{"kind":"patch","key":` + podKeyJSON + `,"patch":{"data":{"k":"v2"}},"reason":"admission"}`},
		{"delete", &Command{Kind: CommandKind_DELETE, Key: podKey, Reason: Reason_GARBAGE_COLLECTOR},
			`{"kind":"delete","key":` + podKeyJSON + `,"reason":"garbage_collector"}`},
		{"create", &Command{Kind: CommandKind_CREATE, Key: podKey, Value: []byte(`{}`), Reason: Reason_CONTROLLER},
			`{"kind":"create","key":` + podKeyJSON + `,"value":{},"reason":"controller"}`},
		{"update", &Command{Kind: CommandKind_UPDATE, Key: podKey, Value: []byte(`{}`), Reason: Reason_SCHEDULER},
			`{"kind":"update","key":` + podKeyJSON + `,"value":{},"reason":"scheduler"}`},
		{"JSON patch with a precondition and a request id", &Command{Kind: CommandKind_PATCH, Key: podKey, Patch: []byte(`[{"op":"remove","path":"/a"}]`),
			PatchType: PatchType_JSON_PATCH, ResourceVersion: 41, Reason: Reason_OPERATOR, RequestId: "r-1"},
			`{"kind":"patch","key":` + podKeyJSON + `,"patch":[{"op":"remove","path":"/a"}],"patch_type":"json","resource_version":41,"reason":"operator","request_id":"r-1"}`},
		{"delete with a precondition", &Command{Kind: CommandKind_DELETE, Key: podKey, ResourceVersion: 7, Reason: Reason_OPERATOR},
			`{"kind":"delete","key":` + podKeyJSON + `,"resource_version":7,"reason":"operator"}`},
		{"stamps never appear", &Command{Kind: CommandKind_PUT, Key: podKey, Value: []byte(`{}`), Reason: Reason_OPERATOR, StampUid: "u", StampTime: "t"},
			`{"kind":"put","key":` + podKeyJSON + `,"value":{},"reason":"operator"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalCommandJSON(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("MarshalCommandJSON\n got  %s\n want %s", got, tt.want)
			}
			back, err := UnmarshalCommandJSON(got)
			if err != nil {
				t.Fatalf("UnmarshalCommandJSON(%s): %v", got, err)
			}
			want := proto.Clone(tt.give).(*Command)
			want.StampUid, want.StampTime = "", ""
			if !proto.Equal(back, want) {
				t.Fatalf("round trip of %s\n got  %v\n want %v", got, back, want)
			}
		})
	}
}

func TestUnmarshalCommandJSONRefuses(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{`{"kind":"put","key":{},"value":{}}`, `unknown reason ""`},
		{`{"kind":"upsert","key":{},"reason":"operator"}`, `unknown command kind "upsert"`},
		{`{"kind":"put","key":{},"reason":"boss"}`, `unknown reason "boss"`},
		{`{"kind":"patch","key":{},"patch":{},"patch_type":"strategic","reason":"operator"}`, `unknown patch type "strategic"`},
		{`{"kind":"put","key":{},"reason":"operator","extra":1}`, `unknown field "extra"`},
		{`not json`, `not valid JSON`},
	}
	for _, tt := range tests {
		_, err := UnmarshalCommandJSON([]byte(tt.give))
		if !IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("UnmarshalCommandJSON(%s) = %v, want Invalid saying %q", tt.give, err, tt.want)
		}
	}
}

func TestSeedPatchWithoutTypeIsMerge(t *testing.T) {
	c, err := UnmarshalCommandJSON([]byte(`{"kind":"patch","key":` + podKeyJSON + `,"patch":{"data":{}},"reason":"admission"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.GetPatchType() != PatchType_MERGE_PATCH {
		t.Fatalf("patch type %v, want a merge patch", c.GetPatchType())
	}
}

func TestOpAndResultJSONGolden(t *testing.T) {
	for op, want := range map[ResourceOp]string{
		ResourceOp_CREATED: `"Created"`, ResourceOp_REPLACED: `"Replaced"`, ResourceOp_PATCHED: `"Patched"`,
		ResourceOp_DELETED: `"Deleted"`, ResourceOp_NO_OP: `"NoOp"`,
	} {
		if got := fmt.Sprintf("%q", OpJSON(op)); got != want {
			t.Errorf("OpJSON(%v) = %s, want %s", op, got, want)
		}
	}
	r := &CommandResult{Op: ResourceOp_CREATED, ResourceVersion: 42, Object: []byte(`{"a":1}`)}
	if got, want := string(MarshalResultJSON(r, false)), `{"op":"Created","resource_version":42}`; got != want {
		t.Errorf("MarshalResultJSON = %s, want %s", got, want)
	}
	if got, want := string(MarshalResultJSON(r, true)), `{"op":"Created","resource_version":42,"object":{"a":1}}`; got != want {
		t.Errorf("MarshalResultJSON with the object = %s, want %s", got, want)
	}
	if got := string(MarshalKeyJSON(&ResourceKey{Group: "apps", Version: "v1", Kind: "Deployment", Name: "web"})); got != `{"group":"apps","version":"v1","kind":"Deployment","namespace":"","name":"web"}` {
		t.Errorf("MarshalKeyJSON = %s", got)
	}
}

func TestEventJSONGolden(t *testing.T) {
	tests := []struct {
		give *WatchEvent
		want string
	}{
		{&WatchEvent{Type: EventType_EVENT_ADDED, Object: []byte(`{"kind":"Pod"}`), Key: podKey, ResourceVersion: 42},
			`{"type":"ADDED","object":{"kind":"Pod"},"key":` + podKeyJSON + `,"resource_version":42}`},
		{&WatchEvent{Type: EventType_EVENT_MODIFIED, Object: []byte(`{}`), Key: podKey, ResourceVersion: 43},
			`{"type":"MODIFIED","object":{},"key":` + podKeyJSON + `,"resource_version":43}`},
		{&WatchEvent{Type: EventType_EVENT_DELETED, Object: []byte(`{"last":true}`), Key: podKey, ResourceVersion: 44},
			`{"type":"DELETED","object":{"last":true},"key":` + podKeyJSON + `,"resource_version":44}`},
		{&WatchEvent{Type: EventType_EVENT_BOOKMARK, Object: []byte(`{"metadata":{"resourceVersion":"45"}}`), Key: &ResourceKey{}, ResourceVersion: 45},
			`{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"45"}},"key":{"group":"","version":"","kind":"","namespace":"","name":""},"resource_version":45}`},
		{&WatchEvent{Type: EventType_EVENT_ERROR, Status: &Status{Reason: StatusReason_GONE, Message: "re-list", ResourceVersion: 50}},
			`{"type":"ERROR","object":{"reason":"Gone","message":"re-list","resource_version":50}}`},
	}
	for _, tt := range tests {
		if got := string(MarshalEventJSON(tt.give)); got != tt.want {
			t.Errorf("MarshalEventJSON\n got  %s\n want %s", got, tt.want)
		}
	}
}

func TestStatusErrors(t *testing.T) {
	err := (&Status{Reason: StatusReason_CONFLICT, Message: "modified", ResourceVersion: 9}).Err()
	if !IsConflict(err) || !errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
		t.Fatalf("a Conflict status: %v", err)
	}
	var e *Error
	if !errors.As(fmt.Errorf("wrapped: %w", err), &e) || e.ResourceVersion != 9 {
		t.Fatalf("errors.As through a wrap: %v", e)
	}
	if got := err.Error(); got != "Conflict: modified" {
		t.Fatalf("Error() = %q", got)
	}
	if (*Status)(nil).Err() != nil || StatusOf(nil) != nil {
		t.Fatal("a nil status is no error")
	}
	if got := StatusOf(errors.New("disk on fire")); got.GetReason() != StatusReason_INTERNAL {
		t.Fatalf("a plain error's status: %v", got)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	c := &Command{Kind: CommandKind_PUT, Key: podKey, Value: []byte(`{}`), Reason: Reason_OPERATOR}
	want := ProposalID{Node: 3, Epoch: 1 << 40, Seq: 77}
	data, err := EncodeEntry(want, c)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := EntryProposalID(data); !ok || id != want {
		t.Fatalf("proposal id %v %v, want %v", id, ok, want)
	}
	// Format 1, as an older single-node kstore wrote it: the id without proposer or epoch.
	old := append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 9}, data[25:]...)
	if id, ok := EntryProposalID(old); !ok || id != (ProposalID{Seq: 9}) {
		t.Fatalf("format 1 proposal id %v %v, want seq 9 only", id, ok)
	}
	if back, err := DecodeEntry(old); err != nil || !proto.Equal(back, c) {
		t.Fatalf("DecodeEntry(format 1) = %v, %v", back, err)
	}
	back, err := DecodeEntry(data)
	if err != nil || !proto.Equal(back, c) {
		t.Fatalf("DecodeEntry = %v, %v", back, err)
	}
	if _, ok := EntryProposalID(nil); ok {
		t.Fatal("empty entry data has a proposal id")
	}
	if _, err := DecodeEntry([]byte{9, 1, 2}); err == nil {
		t.Fatal("foreign entry data decoded")
	}
}
