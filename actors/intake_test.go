package actors

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

func admitKey(name string) *messages.ResourceKey {
	return &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: name}
}

// admitCmd is a command on Pod default/a with value (or patch) give.
func admitCmd(kind messages.CommandKind, give string) *messages.Command {
	c := &messages.Command{Kind: kind, Key: admitKey("a"), Reason: messages.Reason_OPERATOR}
	if kind == messages.CommandKind_PATCH {
		c.Patch = []byte(give)
	} else {
		c.Value = []byte(give)
	}
	return c
}

func admitWith(c *messages.Command, edit func(*messages.Command)) *messages.Command {
	edit(c)
	return c
}

// TestAdmitRefuses: bad input never enters the log. Every refusal has its reason and a message
// that says what is wrong.
func TestAdmitRefuses(t *testing.T) {
	put := func(v string) *messages.Command { return admitCmd(messages.CommandKind_PUT, v) }
	create := func(v string) *messages.Command { return admitCmd(messages.CommandKind_CREATE, v) }
	update := func(v string) *messages.Command { return admitCmd(messages.CommandKind_UPDATE, v) }
	merge := func(p string) *messages.Command {
		return admitWith(admitCmd(messages.CommandKind_PATCH, p), func(c *messages.Command) { c.PatchType = messages.PatchType_MERGE_PATCH })
	}
	jsonPatch := func(p string) *messages.Command {
		return admitWith(admitCmd(messages.CommandKind_PATCH, p), func(c *messages.Command) { c.PatchType = messages.PatchType_JSON_PATCH })
	}
	const pod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"}}`
	withKey := func(c *messages.Command, k *messages.ResourceKey) *messages.Command { c.Key = k; return c }
	big := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"data":"` + strings.Repeat("x", object.MaxSize) + `"}`
	// A YAML object under the limit whose JSON is over it: each "a," of a flow sequence
	// becomes "\"a\",", twice its size.
	yamlBig := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec: [" + strings.Repeat("a,", object.MaxSize*3/8) + "a]\n"
	// Under the limit as sent, over it with the uid, creationTimestamp and resourceVersion the
	// store adds: refused here, so that what is stored can always be read and written back.
	nearLimit := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"},"data":"` +
		strings.Repeat("x", object.MaxSize-len(pod)-20) + `"}`
	tests := []struct {
		name       string
		give       *messages.Command
		wantReason messages.StatusReason
		wantMsg    string
	}{
		{"object under the limit, over it as stored", put(nearLimit), messages.StatusReason_TOO_LARGE, "with the metadata the store adds"},
		{"request_id over 256 bytes", admitWith(put(pod), func(c *messages.Command) { c.RequestId = strings.Repeat("r", 257) }), messages.StatusReason_INVALID, "request_id"},
		{"resourceVersion with a leading zero", update(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default","resourceVersion":"00063"}}`), messages.StatusReason_INVALID, "resourceVersion"},
		{"invalid UTF-8", put("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\"},\"x\":\"\xff\"}"), messages.StatusReason_INVALID, "UTF-8"},
		{"a number no float64 holds", put(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"x":1e999999999}`), messages.StatusReason_INVALID, "float64"},
		{"invalid JSON", put(`{"apiVersion":"v1",`), messages.StatusReason_INVALID, "not valid JSON"},
		{"invalid YAML", put("apiVersion: [v1\nkind: Pod"), messages.StatusReason_INVALID, "neither JSON nor valid YAML"},
		{"empty value", put(""), messages.StatusReason_INVALID, "object is empty"},
		{"blank value", put(" \n\t"), messages.StatusReason_INVALID, "object is empty"},
		{"an array", put(`[1,2]`), messages.StatusReason_INVALID, "must be a JSON object, not an array"},
		{"a YAML list", put("- a\n- b\n"), messages.StatusReason_INVALID, "not an array"},
		{"a string", put(`"pod"`), messages.StatusReason_INVALID, "not a string"},
		{"a number", put(`42`), messages.StatusReason_INVALID, "not a number"},
		{"null", put(`null`), messages.StatusReason_INVALID, "not null"},
		{"two JSON objects", put(pod + ` {}`), messages.StatusReason_INVALID, "exactly one object"},
		// A second YAML document must not be dropped silently: the writer meant two objects.
		{"two YAML documents", put("apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n"), messages.StatusReason_INVALID, "one object"},
		{"missing apiVersion", put(`{"kind":"Pod","metadata":{"name":"a"}}`), messages.StatusReason_INVALID, "apiVersion is missing"},
		{"missing kind", put(`{"apiVersion":"v1","metadata":{"name":"a"}}`), messages.StatusReason_INVALID, "kind is missing"},
		{"missing metadata", put(`{"apiVersion":"v1","kind":"Pod"}`), messages.StatusReason_INVALID, "metadata is missing"},
		{"metadata not an object", put(`{"apiVersion":"v1","kind":"Pod","metadata":"a"}`), messages.StatusReason_INVALID, "metadata must be an object"},
		{"missing name", put(`{"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"default"}}`), messages.StatusReason_INVALID, "metadata.name is missing"},
		{"name not a string", put(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":7}}`), messages.StatusReason_INVALID, "metadata.name"},
		{"labels not strings", put(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"n":1}}}`), messages.StatusReason_INVALID, `metadata.labels["n"] must be a string`},
		{"labels not an object", put(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":["x"]}}`), messages.StatusReason_INVALID, "metadata.labels must be an object"},
		{"key says another apiVersion", put(`{"apiVersion":"v2","kind":"Pod","metadata":{"name":"a"}}`), messages.StatusReason_INVALID, `key says apiVersion "v1" but the object says "v2"`},
		{"key says another group", put(`{"apiVersion":"apps/v1","kind":"Pod","metadata":{"name":"a"}}`), messages.StatusReason_INVALID, `key says apiVersion "v1" but the object says "apps/v1"`},
		{"key says another kind", put(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}}`), messages.StatusReason_INVALID, `key says kind "Pod"`},
		{"key says another name", put(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"}}`), messages.StatusReason_INVALID, `key says name "a"`},
		{"key says another namespace", put(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"kube-system"}}`), messages.StatusReason_INVALID, `key says namespace "default"`},
		{"key is cluster-scoped, the object is not", withKey(put(pod), &messages.ResourceKey{Version: "v1", Kind: "Pod", Name: "a"}), messages.StatusReason_INVALID, `key says namespace ""`},
		{"name not a DNS subdomain", withKey(put(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"Bad_Name"}}`), admitKey("Bad_Name")), messages.StatusReason_INVALID, "RFC 1123 subdomain"},
		{"uppercase name", withKey(put(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"A"}}`), admitKey("A")), messages.StatusReason_INVALID, `name "A" is not valid`},
		{"name of 254 characters", withKey(put(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"`+strings.Repeat("a", 254)+`"}}`), admitKey(strings.Repeat("a", 254))), messages.StatusReason_INVALID, "at most 253 characters"},
		{"name ending in a dot", withKey(put(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a."}}`), admitKey("a.")), messages.StatusReason_INVALID, "is not valid"},
		{"object name bad, key name good", put(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a_b"}}`), messages.StatusReason_INVALID, "a_b"},
		{"missing key", withKey(put(pod), nil), messages.StatusReason_INVALID, "key is missing"},
		{"key without version", withKey(put(pod), &messages.ResourceKey{Kind: "Pod", Namespace: "default", Name: "a"}), messages.StatusReason_INVALID, "version is missing"},
		{"key with a bad kind", withKey(put(pod), &messages.ResourceKey{Version: "v1", Kind: "pod-x", Namespace: "default", Name: "a"}), messages.StatusReason_INVALID, `kind "pod-x" is not valid`},
		{"key with a bad group", withKey(put(pod), &messages.ResourceKey{Group: "Apps", Version: "v1", Kind: "Pod", Namespace: "default", Name: "a"}), messages.StatusReason_INVALID, `group "Apps" is not valid`},
		{"key with a bad namespace", withKey(put(pod), &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "Default", Name: "a"}), messages.StatusReason_INVALID, `namespace "Default" is not valid`},
		{"delete with a bad key", withKey(admitCmd(messages.CommandKind_DELETE, ""), admitKey("-a")), messages.StatusReason_INVALID, "is not valid"},
		{"patch with a bad key", withKey(merge(`{}`), admitKey("a/b")), messages.StatusReason_INVALID, "is not valid"},
		{"object over 1.5 MiB", put(big), messages.StatusReason_TOO_LARGE, "over the limit of 1572864 bytes"},
		{"YAML under 1.5 MiB whose JSON is over", put(yamlBig), messages.StatusReason_TOO_LARGE, "over the limit"},
		{"patch over 1.5 MiB", merge(`{"data":"` + strings.Repeat("x", object.MaxSize) + `"}`), messages.StatusReason_TOO_LARGE, "patch is"},
		{"unknown patch type", admitWith(merge(`{}`), func(c *messages.Command) { c.PatchType = messages.PatchType(7) }), messages.StatusReason_INVALID, "unknown patch type"},
		{"merge patch that is an array", merge(`[{"op":"add"}]`), messages.StatusReason_INVALID, "merge patch must be a JSON object"},
		{"merge patch that is null", merge(`null`), messages.StatusReason_INVALID, "merge patch must be a JSON object"},
		{"merge patch that is a string", merge(`"x"`), messages.StatusReason_INVALID, "merge patch must be a JSON object"},
		{"merge patch that is not JSON", merge(`{"spec":`), messages.StatusReason_INVALID, "merge patch is not valid JSON"},
		{"empty merge patch", merge(``), messages.StatusReason_INVALID, "merge patch is not valid JSON"},
		{"JSON patch that is an object", jsonPatch(`{"op":"add","path":"/a","value":1}`), messages.StatusReason_INVALID, "JSON patch must be an array of operations"},
		{"JSON patch that is not JSON", jsonPatch(`[{"op":`), messages.StatusReason_INVALID, "JSON patch is not valid JSON"},
		{"JSON patch with an unknown op", jsonPatch(`[{"op":"frobnicate","path":"/a"}]`), messages.StatusReason_INVALID, "JSON patch"},
		{"JSON patch without op", jsonPatch(`[{"path":"/a","value":1}]`), messages.StatusReason_INVALID, "JSON patch"},
		{"JSON patch add without path", jsonPatch(`[{"op":"add","value":1}]`), messages.StatusReason_INVALID, "path"},
		{"JSON patch replace without value", jsonPatch(`[{"op":"replace","path":"/a"}]`), messages.StatusReason_INVALID, "value"},
		{"JSON patch move without from", jsonPatch(`[{"op":"move","path":"/a"}]`), messages.StatusReason_INVALID, "from"},
		{"missing reason", admitWith(put(pod), func(c *messages.Command) { c.Reason = messages.Reason_REASON_UNSPECIFIED }), messages.StatusReason_INVALID, "command has no reason: give one of operator"},
		{"unknown reason", admitWith(put(pod), func(c *messages.Command) { c.Reason = messages.Reason(99) }), messages.StatusReason_INVALID, "reason"},
		{"missing reason on delete", admitWith(admitCmd(messages.CommandKind_DELETE, ""), func(c *messages.Command) { c.Reason = 0 }), messages.StatusReason_INVALID, "reason"},
		{"no command kind", admitWith(put(pod), func(c *messages.Command) { c.Kind = 0 }), messages.StatusReason_INVALID, "command has no kind"},
		{"unknown command kind", admitWith(put(pod), func(c *messages.Command) { c.Kind = 77 }), messages.StatusReason_INVALID, "use put, create, update, patch or delete"},
		{"create with a resourceVersion", create(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","resourceVersion":"5"}}`), messages.StatusReason_INVALID, "metadata.resourceVersion must not be set on create"},
		// A resourceVersion written as a number is no less set; Kubernetes refuses it as a
		// type error. Admitted, it would bypass the precondition it looks like.
		{"create with a numeric resourceVersion", create(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","resourceVersion":5}}`), messages.StatusReason_INVALID, "resourceVersion"},
		{"update with a numeric resourceVersion", update(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","resourceVersion":5}}`), messages.StatusReason_INVALID, "resourceVersion"},
		{"update with a resourceVersion that is not a number", update(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","resourceVersion":"abc"}}`), messages.StatusReason_INVALID, `metadata.resourceVersion "abc" is not a resourceVersion`},
		{"put with a negative resourceVersion", put(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","resourceVersion":"-1"}}`), messages.StatusReason_INVALID, "is not a resourceVersion"},
	}
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := proto.Clone(tt.give)
			got, err := admit(tt.give, now)
			if r := messages.ReasonOf(err); r != tt.wantReason {
				t.Fatalf("admit: %v, want reason %s", describeAdmitted(got, err), messages.ReasonName(tt.wantReason))
			}
			if got != nil {
				t.Errorf("admit refused the command and returned one to propose: %v", got)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("admit: %q does not say %q", err, tt.wantMsg)
			}
			if len(err.Error()) > 1000 {
				t.Errorf("admit: the message is %d bytes: it should not quote the input", len(err.Error()))
			}
			if !proto.Equal(before, tt.give) {
				t.Errorf("admit modified its input")
			}
		})
	}
}

func describeAdmitted(c *messages.Command, err error) string {
	if err != nil {
		return err.Error()
	}
	v := c.GetValue()
	if len(v) > 200 {
		v = append(v[:200:200], "..."...)
	}
	return fmt.Sprintf("admitted %v %s", c.GetKind(), v)
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestAdmitCanonicalises: what admit proposes is canonical JSON (keys sorted, no insignificant
// space, no HTML escaping, numbers as written), YAML included, with the namespace filled from
// the key, and stamped with a fresh UUID and the time for a put or create.
func TestAdmitCanonicalises(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	now := time.Date(2024, 5, 1, 21, 30, 15, 999, tokyo)
	const stampTime = "2024-05-01T12:30:15Z"
	tests := []struct {
		name      string
		give      *messages.Command
		wantValue string
		wantPatch string
		wantType  messages.PatchType
		wantStamp bool
	}{
		{
			name:      "YAML becomes JSON, the namespace comes from the key",
			give:      admitCmd(messages.CommandKind_PUT, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n    image: nginx\n    ports: [80, 443]\n"),
			wantValue: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"},"spec":{"containers":[{"image":"nginx","name":"c","ports":[80,443]}]}}`,
			wantStamp: true,
		},
		{
			name:      "JSON is re-encoded canonically",
			give:      admitCmd(messages.CommandKind_CREATE, " {\n \"spec\": {\"b\": 1.50, \"a\": \"<x & y>\", \"n\": 12345678901234567890123},\n \"metadata\": {\"namespace\": \"default\", \"name\": \"a\"},\n \"kind\": \"Pod\", \"apiVersion\": \"v1\"}\n"),
			wantValue: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"},"spec":{"a":"<x & y>","b":1.50,"n":12345678901234567890123}}`,
			wantStamp: true,
		},
		{
			name:      "update keeps its resourceVersion and gets no stamps",
			give:      admitCmd(messages.CommandKind_UPDATE, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","resourceVersion":"12"}}`),
			wantValue: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default","resourceVersion":"12"}}`,
		},
		{
			name:      "put may carry a resourceVersion",
			give:      admitCmd(messages.CommandKind_PUT, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","resourceVersion":"12"}}`),
			wantValue: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default","resourceVersion":"12"}}`,
			wantStamp: true,
		},
		{
			name: "cluster-scoped object gets no namespace",
			give: admitWith(admitCmd(messages.CommandKind_PUT, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"prod"}}`),
				func(c *messages.Command) {
					c.Key = &messages.ResourceKey{Version: "v1", Kind: "Namespace", Name: "prod"}
				}),
			wantValue: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"prod"}}`,
			wantStamp: true,
		},
		{
			name:      "a patch without a type is a merge patch",
			give:      admitCmd(messages.CommandKind_PATCH, `{"metadata":{"labels":{"a":"b"}}}`),
			wantPatch: `{"metadata":{"labels":{"a":"b"}}}`,
			wantType:  messages.PatchType_MERGE_PATCH,
		},
		{
			name:      "a JSON patch passes as it is",
			give:      admitWith(admitCmd(messages.CommandKind_PATCH, `[ {"op":"test","path":"/spec/n","value":1}, {"op":"copy","from":"/spec/n","path":"/spec/m"} ]`), func(c *messages.Command) { c.PatchType = messages.PatchType_JSON_PATCH }),
			wantPatch: `[ {"op":"test","path":"/spec/n","value":1}, {"op":"copy","from":"/spec/n","path":"/spec/m"} ]`,
			wantType:  messages.PatchType_JSON_PATCH,
		},
		{
			name: "delete with a precondition",
			give: admitWith(admitCmd(messages.CommandKind_DELETE, ""), func(c *messages.Command) { c.ResourceVersion = 9 }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := proto.Clone(tt.give)
			got, err := admit(tt.give, now)
			if err != nil {
				t.Fatalf("admit: %v", err)
			}
			if !proto.Equal(before, tt.give) {
				t.Errorf("admit modified its input")
			}
			if string(got.GetValue()) != tt.wantValue {
				t.Errorf("value\n got  %s\n want %s", got.GetValue(), tt.wantValue)
			}
			if string(got.GetPatch()) != tt.wantPatch || got.GetPatchType() != tt.wantType {
				t.Errorf("patch %s (%v), want %s (%v)", got.GetPatch(), got.GetPatchType(), tt.wantPatch, tt.wantType)
			}
			if tt.wantStamp {
				if !uuidV4.MatchString(got.GetStampUid()) {
					t.Errorf("stamp uid %q is not a random UUID", got.GetStampUid())
				}
				if got.GetStampTime() != stampTime {
					t.Errorf("stamp time %q, want %q (RFC 3339, UTC, seconds)", got.GetStampTime(), stampTime)
				}
			} else if got.GetStampUid() != "" || got.GetStampTime() != "" {
				t.Errorf("stamps %q %q on a %v", got.GetStampUid(), got.GetStampTime(), got.GetKind())
			}
			// Everything else passes unchanged.
			rest := proto.Clone(got).(*messages.Command)
			rest.Value, rest.PatchType, rest.StampUid, rest.StampTime = before.(*messages.Command).GetValue(), before.(*messages.Command).GetPatchType(), "", ""
			if !proto.Equal(rest, before) {
				t.Errorf("admit changed more than value, patch type and stamps:\n got  %v\n from %v", got, before)
			}
			// Canonical means stable: admitting the admitted value gives it back.
			if tt.wantValue != "" {
				again, err := admit(got, now)
				if err != nil || string(again.GetValue()) != tt.wantValue {
					t.Errorf("admit of the admitted value: %s %v", again.GetValue(), err)
				}
			}
		})
	}
}

func TestAdmitStampsAFreshUIDEachTime(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		got, err := admit(admitCmd(messages.CommandKind_CREATE, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if seen[got.GetStampUid()] {
			t.Fatalf("uid %s stamped twice", got.GetStampUid())
		}
		seen[got.GetStampUid()] = true
	}
}
