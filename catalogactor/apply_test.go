package catalogactor

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

var rewriteApply = flag.Bool("rewrite-apply", false, "rewrite the expected outputs of testdata/apply.txt")

// applyCase is one block of testdata/apply.txt.
type applyCase struct {
	line    int      // of the command, for messages
	command string   // the command line
	body    string   // the value or patch
	want    []string // expected output lines
	outAt   [2]int   // [first, end) lines of the expected output in the file
}

// TestApplyData runs testdata/apply.txt: commands in, results out, against a map of stored
// objects that every successful command updates. The file's header explains the format; run
// with -rewrite-apply to rewrite the outputs (then read the diff: it is the change of semantics).
func TestApplyData(t *testing.T) {
	const path = "testdata/apply.txt"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	cases := parseApplyFile(t, lines)
	stored := map[string][]byte{}
	var got [][]string
	for _, tc := range cases {
		out := runApplyCase(t, stored, tc)
		got = append(got, out)
		if !*rewriteApply && strings.Join(out, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:%d: %s\n got:\n  %s\n want:\n  %s", path, tc.line, tc.command,
				strings.Join(out, "\n  "), strings.Join(tc.want, "\n  "))
		}
	}
	if *rewriteApply {
		var b strings.Builder
		next := 0
		for i, tc := range cases {
			for _, l := range lines[next:tc.outAt[0]] {
				b.WriteString(l + "\n")
			}
			for _, l := range got[i] {
				b.WriteString(l + "\n")
			}
			next = tc.outAt[1]
		}
		b.WriteString(strings.Join(lines[next:], "\n"))
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func parseApplyFile(t *testing.T, lines []string) []applyCase {
	var cases []applyCase
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		tc := applyCase{line: i + 1, command: l}
		var body []string
		for i++; i < len(lines) && lines[i] != "----"; i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("apply.txt:%d: %q has no ---- line", tc.line, l)
		}
		tc.body = strings.Join(body, "\n")
		tc.outAt[0] = i + 1
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			tc.want = append(tc.want, lines[i])
		}
		tc.outAt[1] = i
		cases = append(cases, tc)
	}
	return cases
}

// parseCommand reads "<kind> <name> key=value..." and the body into a Command and its index.
func parseCommand(t *testing.T, tc applyCase) (*messages.Command, uint64) {
	fields := strings.Fields(tc.command)
	if len(fields) < 2 {
		t.Fatalf("apply.txt:%d: want \"<kind> <name> index=N ...\", got %q", tc.line, tc.command)
	}
	kinds := map[string]messages.CommandKind{"put": messages.CommandKind_PUT, "create": messages.CommandKind_CREATE,
		"update": messages.CommandKind_UPDATE, "patch": messages.CommandKind_PATCH, "delete": messages.CommandKind_DELETE}
	kind, ok := kinds[fields[0]]
	if !ok {
		t.Fatalf("apply.txt:%d: unknown command %q", tc.line, fields[0])
	}
	opts := map[string]string{"ns": "default", "kind": "Pod", "version": "v1", "group": ""}
	for _, f := range fields[2:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("apply.txt:%d: option %q is not key=value", tc.line, f)
		}
		opts[k] = v
	}
	index, err := strconv.ParseUint(opts["index"], 10, 64)
	if err != nil {
		t.Fatalf("apply.txt:%d: index: %v", tc.line, err)
	}
	cmd := &messages.Command{
		Kind:   kind,
		Key:    &messages.ResourceKey{Group: opts["group"], Version: opts["version"], Kind: opts["kind"], Namespace: opts["ns"], Name: fields[1]},
		Reason: messages.Reason_OPERATOR,
	}
	if rv, ok := opts["rv"]; ok {
		if cmd.ResourceVersion, err = strconv.ParseUint(rv, 10, 64); err != nil {
			t.Fatalf("apply.txt:%d: rv: %v", tc.line, err)
		}
	}
	switch kind {
	case messages.CommandKind_PATCH:
		cmd.Patch = []byte(tc.body)
		switch pt := opts["type"]; pt {
		case "", "merge":
			cmd.PatchType = messages.PatchType_MERGE_PATCH
		case "json":
			cmd.PatchType = messages.PatchType_JSON_PATCH
		default:
			t.Fatalf("apply.txt:%d: patch type %q", tc.line, pt)
		}
	case messages.CommandKind_DELETE:
	default:
		cmd.Value = []byte(tc.body)
	}
	// Admission stamps puts and creates only.
	if kind == messages.CommandKind_PUT || kind == messages.CommandKind_CREATE {
		cmd.StampUid = fmt.Sprintf("00000000-0000-4000-8000-%012s", opts["index"])
		cmd.StampTime = "2024-05-01T10:00:00Z"
	}
	if v, ok := opts["uid"]; ok {
		cmd.StampUid = v
	}
	if v, ok := opts["time"]; ok {
		cmd.StampTime = v
	}
	return cmd, index
}

// runApplyCase applies one command to the key's stored bytes, checks the invariants every
// result obeys, updates stored, and returns the output lines.
func runApplyCase(t *testing.T, stored map[string][]byte, tc applyCase) []string {
	cmd, index := parseCommand(t, tc)
	key := string(objectKey(cmd.GetKey()))
	prev := stored[key]
	prevCopy := bytes.Clone(prev)
	res, err := Apply(prev, cmd, index)
	if !bytes.Equal(prev, prevCopy) {
		t.Errorf("apply.txt:%d: Apply changed the stored bytes it was given", tc.line)
	}
	// Apply is deterministic: the same arguments give the same result, byte for byte.
	res2, err2 := Apply(prevCopy, cmd, index)
	if fmt.Sprint(err) != fmt.Sprint(err2) || res.Op != res2.Op || res.ResourceVersion != res2.ResourceVersion || !bytes.Equal(res.Object, res2.Object) {
		t.Errorf("apply.txt:%d: Apply is not deterministic:\n %v %v\n %v %v", tc.line, res, err, res2, err2)
	}
	if err != nil {
		var e *messages.Error
		if !asError(err, &e) {
			t.Errorf("apply.txt:%d: error %v is not a *messages.Error", tc.line, err)
			return []string{"error " + err.Error()}
		}
		head := "error " + messages.ReasonName(e.Reason)
		if e.ResourceVersion != 0 {
			head += fmt.Sprintf(" rv=%d", e.ResourceVersion)
		}
		return []string{head, e.Message}
	}
	checkResult(t, tc, prev, res, index)
	switch res.Op {
	case messages.ResourceOp_CREATED, messages.ResourceOp_REPLACED, messages.ResourceOp_PATCHED:
		stored[key] = res.Object
	case messages.ResourceOp_DELETED:
		delete(stored, key)
	}
	out := []string{fmt.Sprintf("%s rv=%d", messages.OpJSON(res.Op), res.ResourceVersion)}
	if res.Object != nil {
		out = append(out, string(res.Object))
	}
	return out
}

// checkResult holds a successful result to the rules of Result's doc comment.
func checkResult(t *testing.T, tc applyCase, prev []byte, res Result, index uint64) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Errorf("apply.txt:%d: %s: %s", tc.line, tc.command, fmt.Sprintf(format, args...))
	}
	switch res.Op {
	case messages.ResourceOp_CREATED, messages.ResourceOp_REPLACED, messages.ResourceOp_PATCHED:
		if res.ResourceVersion != index {
			fail("resourceVersion %d, want the index %d", res.ResourceVersion, index)
		}
		o, err := object.Decode(res.Object)
		if err != nil {
			fail("stored object does not decode: %v", err)
			return
		}
		if !bytes.Equal(o.Encode(), res.Object) {
			fail("stored object is not canonical JSON:\n %s\n %s", res.Object, o.Encode())
		}
		if o.ResourceVersion() != strconv.FormatUint(index, 10) {
			fail("metadata.resourceVersion %q, want %d", o.ResourceVersion(), index)
		}
		if (res.Op == messages.ResourceOp_CREATED) != (prev == nil) {
			fail("op %v with stored object %q", res.Op, prev)
		}
	case messages.ResourceOp_DELETED:
		if res.ResourceVersion != index || !bytes.Equal(res.Object, prev) || prev == nil {
			fail("deleted: resourceVersion %d object %q, want %d and the last stored object %q", res.ResourceVersion, res.Object, index, prev)
		}
	case messages.ResourceOp_NO_OP:
		if prev == nil {
			if res.ResourceVersion != index || res.Object != nil {
				fail("NoOp on an absent key: resourceVersion %d object %q, want %d and no object", res.ResourceVersion, res.Object, index)
			}
			return
		}
		o, err := object.Decode(prev)
		if err != nil {
			fail("stored object does not decode: %v", err)
			return
		}
		if !bytes.Equal(res.Object, prev) || strconv.FormatUint(res.ResourceVersion, 10) != o.ResourceVersion() {
			fail("NoOp: resourceVersion %d object %q, want the stored object and its resourceVersion %s", res.ResourceVersion, res.Object, o.ResourceVersion())
		}
	default:
		fail("unknown op %v", res.Op)
	}
}

func asError(err error, e **messages.Error) bool { return errors.As(err, e) }

// stored5 is a pod as the store holds it after a create at index 5.
const stored5 = `{"apiVersion":"v1","kind":"Pod","metadata":{"creationTimestamp":"2024-05-01T10:00:00Z","labels":{"app":"web"},"name":"a","namespace":"default","resourceVersion":"5","uid":"u-5"},"spec":{"big":12345678901234567890123,"f":1.50,"list":[1,2,3],"n":1}}`

// TestApply holds Apply to the rules that take generated input (sizes, a copy bomb) or input
// the data file cannot spell, and to the reason of every error.
func TestApply(t *testing.T) {
	key := podKey("default", "a")
	big := strings.Repeat("x", object.MaxSize)
	// lt is a stored pod whose spec holds n bytes of '<', a character JSON libraries like to
	// escape as the six bytes \u003c.
	lt := func(n int) string {
		return `{"apiVersion":"v1","kind":"Pod","metadata":{"creationTimestamp":"2024-05-01T10:00:00Z","name":"a","namespace":"default","resourceVersion":"5","uid":"u-5"},"spec":{"s":"` + strings.Repeat("<", n) + `"}}`
	}
	// bomb doubles /spec/list 30 times with copy operations: 879 bytes of patch, gigabytes of
	// document without a limit.
	var bomb strings.Builder
	bomb.WriteString(`[{"op":"add","path":"/spec/x","value":["0123456789abcdef0123456789abcdef"]}`)
	for range 30 {
		bomb.WriteString(`,{"op":"copy","from":"/spec/x","path":"/spec/x/-"}`)
	}
	bomb.WriteString(`]`)

	tests := []struct {
		name       string
		prev       string // "" is absent
		give       *messages.Command
		index      uint64
		wantOp     messages.ResourceOp
		wantRV     uint64
		wantObject string // checked when set
		wantReason messages.StatusReason
		wantMsg    string // a fragment of the error message
	}{
		{
			name:       "put of a value over MaxSize is TooLarge",
			give:       putCmd(key, []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"},"spec":{"s":"`+big+`"}}`)),
			index:      6,
			wantReason: messages.StatusReason_TOO_LARGE,
			wantMsg:    "over the limit",
		},
		{
			name:       "value that is not an object with metadata is Invalid",
			give:       putCmd(key, []byte(`{"apiVersion":"v1","kind":"Pod"}`)),
			index:      6,
			wantReason: messages.StatusReason_INVALID,
			wantMsg:    "metadata is missing",
		},
		// What admission guarantees, checked again at apply: an entry can reach the log without
		// admission (a forged raft message), and every replica must refuse it alike.
		{
			name:       "value that is not canonical JSON is Invalid",
			give:       putCmd(key, []byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","namespace":"default"}}`)),
			index:      6,
			wantReason: messages.StatusReason_INVALID,
			wantMsg:    "not canonical",
		},
		{
			name:       "value with a NUL and a 0xFF byte is Invalid",
			give:       putCmd(key, []byte("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"namespace\":\"default\"},\"x\":\"\x00\xff\"}")),
			index:      6,
			wantReason: messages.StatusReason_INVALID,
		},
		{
			name: "command without a reason is Invalid",
			give: &messages.Command{Kind: messages.CommandKind_PUT, Key: key, Value: podValue("default", "a", "", ""),
				StampUid: testUID("a"), StampTime: "2024-05-01T10:00:00Z"},
			index:      6,
			wantReason: messages.StatusReason_INVALID,
			wantMsg:    "no reason",
		},
		{
			name: "command with an oversized request_id is Invalid",
			give: &messages.Command{Kind: messages.CommandKind_DELETE, Key: key, Reason: messages.Reason_OPERATOR,
				RequestId: strings.Repeat("r", messages.MaxRequestIDBytes+1)},
			index:      6,
			wantReason: messages.StatusReason_INVALID,
			wantMsg:    "request_id",
		},
		{
			name: "put with a uid stamp admission would not make is Invalid",
			give: &messages.Command{Kind: messages.CommandKind_PUT, Key: key, Value: podValue("default", "a", "", ""),
				Reason: messages.Reason_OPERATOR, StampUid: "../../etc", StampTime: "2024-05-01T10:00:00Z"},
			index:      6,
			wantReason: messages.StatusReason_INVALID,
			wantMsg:    "stamped uid",
		},
		{
			name: "patch over the size limit is TooLarge",
			prev: stored5,
			give: &messages.Command{Kind: messages.CommandKind_PATCH, Key: key, Reason: messages.Reason_OPERATOR,
				PatchType: messages.PatchType_MERGE_PATCH, Patch: []byte(`{"s":"` + strings.Repeat("p", object.MaxSize) + `"}`)},
			index:      6,
			wantReason: messages.StatusReason_TOO_LARGE,
		},
		{
			name:       "value that is not JSON is Invalid",
			give:       putCmd(key, []byte(`apiVersion: v1`)),
			index:      6,
			wantReason: messages.StatusReason_INVALID,
		},
		{
			name:       "missing key is Invalid",
			give:       &messages.Command{Kind: messages.CommandKind_DELETE, Reason: messages.Reason_OPERATOR},
			index:      6,
			wantReason: messages.StatusReason_INVALID,
			wantMsg:    "key is missing",
		},
		{
			name:       "unknown command kind is Invalid",
			prev:       stored5,
			give:       &messages.Command{Kind: messages.CommandKind(42), Key: key, Reason: messages.Reason_OPERATOR},
			index:      6,
			wantReason: messages.StatusReason_INVALID,
			wantMsg:    "unknown command kind",
		},
		{
			name:       "unspecified command kind is Invalid",
			prev:       stored5,
			give:       &messages.Command{Key: key, Reason: messages.Reason_OPERATOR},
			index:      6,
			wantReason: messages.StatusReason_INVALID,
		},
		{
			name:       "unknown patch type is Invalid",
			prev:       stored5,
			give:       &messages.Command{Kind: messages.CommandKind_PATCH, Key: key, Patch: []byte(`{}`), PatchType: messages.PatchType(9), Reason: messages.Reason_OPERATOR},
			index:      6,
			wantReason: messages.StatusReason_INVALID,
			wantMsg:    "unknown patch type",
		},
		{
			name:       "unspecified patch type is a merge patch",
			prev:       stored5,
			give:       &messages.Command{Kind: messages.CommandKind_PATCH, Key: key, Patch: []byte(`{"spec":{"n":2}}`), Reason: messages.Reason_OPERATOR},
			index:      6,
			wantOp:     messages.ResourceOp_PATCHED,
			wantRV:     6,
			wantObject: strings.Replace(strings.Replace(stored5, `"n":1`, `"n":2`, 1), `"resourceVersion":"5"`, `"resourceVersion":"6"`, 1),
		},
		{
			name:       "merge patch keeps numbers exactly",
			prev:       stored5,
			give:       mergePatchCmd(key, `{"spec":{"g":98765432109876543210987.000,"e":1e300}}`),
			index:      6,
			wantOp:     messages.ResourceOp_PATCHED,
			wantRV:     6,
			wantObject: `{"apiVersion":"v1","kind":"Pod","metadata":{"creationTimestamp":"2024-05-01T10:00:00Z","labels":{"app":"web"},"name":"a","namespace":"default","resourceVersion":"6","uid":"u-5"},"spec":{"big":12345678901234567890123,"e":1e300,"f":1.50,"g":98765432109876543210987.000,"list":[1,2,3],"n":1}}`,
		},
		{
			name:       "a merge patch writing a number no float64 holds is Invalid",
			prev:       stored5,
			give:       mergePatchCmd(key, `{"spec":{"e":1e400}}`),
			index:      6,
			wantReason: messages.StatusReason_INVALID,
			wantMsg:    "too large for a float64",
		},
		{
			name:       "a merge patch that is not an object is Invalid",
			prev:       stored5,
			give:       mergePatchCmd(key, `[1]`),
			index:      6,
			wantReason: messages.StatusReason_INVALID,
		},
		{
			name:       "a merge patch that is not JSON is Invalid",
			prev:       stored5,
			give:       mergePatchCmd(key, `{"spec":`),
			index:      6,
			wantReason: messages.StatusReason_INVALID,
			wantMsg:    "merge patch is not valid JSON",
		},
		{
			name:       "copy bomb is TooLarge",
			prev:       stored5,
			give:       &messages.Command{Kind: messages.CommandKind_PATCH, Key: key, Patch: []byte(bomb.String()), PatchType: messages.PatchType_JSON_PATCH, Reason: messages.Reason_OPERATOR},
			index:      6,
			wantReason: messages.StatusReason_TOO_LARGE,
			wantMsg:    "copies and values add up to more than",
		},
		{
			name:       "merge patch growing the object past MaxSize is TooLarge",
			prev:       stored5,
			give:       mergePatchCmd(key, `{"spec":{"s":"`+big+`"}}`),
			index:      6,
			wantReason: messages.StatusReason_TOO_LARGE,
			wantMsg:    "over the limit",
		},
		{
			name:       "JSON patch growing the object past MaxSize is TooLarge",
			prev:       stored5,
			give:       &messages.Command{Kind: messages.CommandKind_PATCH, Key: key, Patch: []byte(`[{"op":"add","path":"/spec/s","value":"` + big + `"}]`), PatchType: messages.PatchType_JSON_PATCH, Reason: messages.Reason_OPERATOR},
			index:      6,
			wantReason: messages.StatusReason_TOO_LARGE,
		},
		{
			// The size limit is on the stored (canonical) bytes. The patch library's output
			// escapes '<' as \u003c, six times its stored size: 300 KiB of '<' stored fine but
			// is refused as 1.8 MB the moment anything patches it.
			name:   "merge patch of an object full of '<' is measured by its stored size",
			prev:   lt(300 << 10),
			give:   mergePatchCmd(key, `{"metadata":{"labels":{"a":"b"}}}`),
			index:  6,
			wantOp: messages.ResourceOp_PATCHED,
			wantRV: 6,
		},
		{
			name:   "JSON patch of an object full of '<' is measured by its stored size",
			prev:   lt(300 << 10),
			give:   &messages.Command{Kind: messages.CommandKind_PATCH, Key: key, Patch: []byte(`[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]`), PatchType: messages.PatchType_JSON_PATCH, Reason: messages.Reason_OPERATOR},
			index:  6,
			wantOp: messages.ResourceOp_PATCHED,
			wantRV: 6,
		},
		{
			// A resourceVersion the patch writes is a precondition; written as a number it is
			// not a resourceVersion at all. Either way the patch must not apply silently.
			name:       "patch writing a numeric resourceVersion is refused, not ignored",
			prev:       stored5,
			give:       mergePatchCmd(key, `{"metadata":{"resourceVersion":4},"spec":{"n":9}}`),
			index:      6,
			wantReason: messages.StatusReason_INVALID,
		},
		{
			name:       "patch precondition Conflict carries the stored resourceVersion",
			prev:       stored5,
			give:       &messages.Command{Kind: messages.CommandKind_PATCH, Key: key, Patch: []byte(`{}`), ResourceVersion: 4, Reason: messages.Reason_OPERATOR},
			index:      6,
			wantReason: messages.StatusReason_CONFLICT,
			wantMsg:    "resourceVersion 4 asked, 5 stored",
		},
		{
			name:       "delete precondition Conflict",
			prev:       stored5,
			give:       &messages.Command{Kind: messages.CommandKind_DELETE, Key: key, ResourceVersion: 4, Reason: messages.Reason_OPERATOR},
			index:      6,
			wantReason: messages.StatusReason_CONFLICT,
			wantMsg:    "read it again",
		},
		{
			name:       "delete returns the last stored object at the deletion's index",
			prev:       stored5,
			give:       &messages.Command{Kind: messages.CommandKind_DELETE, Key: key, ResourceVersion: 5, Reason: messages.Reason_OPERATOR},
			index:      6,
			wantOp:     messages.ResourceOp_DELETED,
			wantRV:     6,
			wantObject: stored5,
		},
		{
			name:   "delete of an absent key is a NoOp",
			give:   &messages.Command{Kind: messages.CommandKind_DELETE, Key: key, ResourceVersion: 5, Reason: messages.Reason_OPERATOR},
			index:  6,
			wantOp: messages.ResourceOp_NO_OP,
			wantRV: 6,
		},
		{
			name:       "update of an absent key is NotFound",
			give:       &messages.Command{Kind: messages.CommandKind_UPDATE, Key: key, Value: podValue("default", "a", "", ""), Reason: messages.Reason_OPERATOR},
			index:      6,
			wantReason: messages.StatusReason_NOT_FOUND,
			wantMsg:    `Pod.v1 "default/a" not found`,
		},
		{
			name:       "patch of an absent key is NotFound",
			give:       mergePatchCmd(key, `{}`),
			index:      6,
			wantReason: messages.StatusReason_NOT_FOUND,
		},
		{
			name:       "create of a stored key is AlreadyExists",
			prev:       stored5,
			give:       &messages.Command{Kind: messages.CommandKind_CREATE, Key: key, Value: podValue("default", "a", "", ""), Reason: messages.Reason_OPERATOR, StampUid: testUID("a"), StampTime: "2024-05-01T10:00:00Z"},
			index:      6,
			wantReason: messages.StatusReason_ALREADY_EXISTS,
			wantMsg:    "already exists",
		},
		{
			name:       "stored bytes that do not decode are Internal",
			prev:       `not json`,
			give:       mergePatchCmd(key, `{}`),
			index:      6,
			wantReason: messages.StatusReason_INTERNAL,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prev []byte
			if tt.prev != "" {
				prev = []byte(tt.prev)
			}
			got, err := Apply(prev, tt.give, tt.index)
			if r := messages.ReasonOf(err); r != tt.wantReason {
				if tt.wantReason == messages.StatusReason_STATUS_REASON_UNSPECIFIED {
					t.Fatalf("Apply: %v, want %v rv=%d", err, tt.wantOp, tt.wantRV)
				}
				t.Fatalf("Apply: %v rv=%d (err %v), want reason %s", got.Op, got.ResourceVersion, err, messages.ReasonName(tt.wantReason))
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("Apply: error %q does not say %q", err, tt.wantMsg)
				}
				if len(err.Error()) > 2000 {
					t.Errorf("Apply: error message is %d bytes long: it should not quote the object", len(err.Error()))
				}
				if messages.IsConflict(err) {
					var e *messages.Error
					if asError(err, &e); e.ResourceVersion != 5 {
						t.Errorf("Conflict carries resourceVersion %d, want the stored 5", e.ResourceVersion)
					}
				}
				return
			}
			if got.Op != tt.wantOp || got.ResourceVersion != tt.wantRV {
				t.Errorf("Apply: %v rv=%d, want %v rv=%d", got.Op, got.ResourceVersion, tt.wantOp, tt.wantRV)
			}
			if tt.wantObject != "" && string(got.Object) != tt.wantObject {
				t.Errorf("Apply: object\n got  %s\n want %s", got.Object, tt.wantObject)
			}
		})
	}
}
