package object

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

// TestDecodeEncode: Decode reads JSON or YAML; Encode writes the canonical JSON every node
// stores: keys sorted at every depth, no insignificant space, no HTML escaping, numbers exactly
// as written.
func TestDecodeEncode(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"already canonical", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`},
		{"keys sorted at every depth", `{"z":{"y":1,"b":{"d":1,"c":2}},"a":[{"k":1,"j":2}]}`, `{"a":[{"j":2,"k":1}],"z":{"b":{"c":2,"d":1},"y":1}}`},
		{"space removed", " \n{ \"b\" : [ 1 , 2 ] ,\t\"a\" : { } }\n ", `{"a":{},"b":[1,2]}`},
		{"no HTML escaping", `{"s":"<a href=\"x\">&amp;</a>"}`, `{"s":"<a href=\"x\">&amp;</a>"}`},
		{"unicode kept, escapes resolved", `{"s":"\u00e9\/é\t"}`, `{"s":"é/é\t"}`},
		{"line separators escaped", "{\"s\":\"a\u2028b\"}", `{"s":"a\u2028b"}`},
		{"large integers exact", `{"n":12345678901234567890123,"m":-98765432109876543210}`, `{"m":-98765432109876543210,"n":12345678901234567890123}`},
		{"decimals as written", `{"a":1.50,"b":1e3,"c":1E+3,"d":0.000001,"e":-0,"f":1.0}`, `{"a":1.50,"b":1e3,"c":1E+3,"d":0.000001,"e":-0,"f":1.0}`},
		{"null, booleans, empty containers", `{"n":null,"t":true,"f":false,"o":{},"l":[]}`, `{"f":false,"l":[],"n":null,"o":{},"t":true}`},
		{"YAML", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a   # a comment\n  labels: {app: web}\nspec:\n  ports: [80, 443]\n  ok: true\n  none: null\n", `{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"app":"web"},"name":"a"},"spec":{"none":null,"ok":true,"ports":[80,443]}}`},
		{"YAML with a document start", "---\na: b\n", `{"a":"b"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Decode([]byte(tt.give))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got := o.Encode()
			if string(got) != tt.want {
				t.Errorf("Encode\n got  %s\n want %s", got, tt.want)
			}
			// Canonical is a fixed point.
			again, err := Decode(got)
			if err != nil {
				t.Fatalf("Decode(Encode): %v", err)
			}
			if b := again.Encode(); !bytes.Equal(b, got) {
				t.Errorf("Encode(Decode(canonical)) = %s, want it unchanged", b)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	justRight := `{"s":"` + strings.Repeat("x", MaxSize-8) + `"}`
	if len(justRight) != MaxSize {
		t.Fatalf("fixture is %d bytes, want %d", len(justRight), MaxSize)
	}
	if _, err := Decode([]byte(justRight)); err != nil {
		t.Errorf("Decode of exactly MaxSize bytes: %v", err)
	}
	tests := []struct {
		name       string
		give       string
		wantReason messages.StatusReason
		wantMsg    string
	}{
		{"one byte over MaxSize", justRight + " ", messages.StatusReason_TOO_LARGE, "over the limit of 1572864 bytes (1.5 MiB)"},
		{"empty", "", messages.StatusReason_INVALID, "object is empty"},
		{"blank", " \n\t ", messages.StatusReason_INVALID, "object is empty"},
		{"broken JSON", `{"a":`, messages.StatusReason_INVALID, "not valid JSON"},
		{"JSON with a trailing comma", `{"a":1,}`, messages.StatusReason_INVALID, "not valid JSON"},
		{"two objects", `{} {}`, messages.StatusReason_INVALID, "exactly one object"},
		{"object and garbage", `{}x`, messages.StatusReason_INVALID, "exactly one object"},
		{"array", `[{}]`, messages.StatusReason_INVALID, "not an array"},
		{"string", `"x"`, messages.StatusReason_INVALID, "not a string"},
		{"number", `12`, messages.StatusReason_INVALID, "not a number"},
		{"boolean", `true`, messages.StatusReason_INVALID, "not a boolean"},
		{"null", `null`, messages.StatusReason_INVALID, "not null"},
		{"broken YAML", "a: [b\n", messages.StatusReason_INVALID, "neither JSON nor valid YAML"},
		{"YAML scalar", "hello", messages.StatusReason_INVALID, "not a string"},
		// Input starting with '{' is JSON, as documented: a YAML flow mapping is not read.
		{"YAML flow mapping", "{a: b}", messages.StatusReason_INVALID, "not valid JSON"},
		// Decode promises "anything that is not a single object (Invalid)"; JSON keeps that
		// promise, YAML drops every document after the first without a word.
		{"two YAML documents", "a: 1\n---\nb: 2\n", messages.StatusReason_INVALID, "one object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Decode([]byte(tt.give))
			if r := messages.ReasonOf(err); r != tt.wantReason {
				t.Fatalf("Decode: %v (object %v), want reason %s", err, o, messages.ReasonName(tt.wantReason))
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Decode: %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}

// TestNumbersStayExact: numbers decode as json.Number and encode as written, however large.
func TestNumbersStayExact(t *testing.T) {
	for _, n := range []string{"0", "-1", "9007199254740993", "18446744073709551617", "123456789012345678901234567890", "3.141592653589793238462643383279", "1e400", "-1.5E-300"} {
		o, err := Decode([]byte(`{"n":` + n + `}`))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if got, ok := o["n"].(json.Number); !ok || string(got) != n {
			t.Errorf("%s decoded as %T %v", n, o["n"], o["n"])
		}
		if got := string(o.Encode()); got != `{"n":`+n+`}` {
			t.Errorf("%s encoded as %s", n, got)
		}
	}
}

func TestMetadataAccessors(t *testing.T) {
	o, err := Decode([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"prod","uid":"u","creationTimestamp":"t","resourceVersion":"7","labels":{"a":"b","n":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if o.APIVersion() != "apps/v1" || o.Kind() != "Deployment" || o.Name() != "web" || o.Namespace() != "prod" ||
		o.UID() != "u" || o.CreationTimestamp() != "t" || o.ResourceVersion() != "7" {
		t.Errorf("accessors read %q %q %q %q %q %q %q", o.APIVersion(), o.Kind(), o.Name(), o.Namespace(), o.UID(), o.CreationTimestamp(), o.ResourceVersion())
	}
	if l := o.Labels(); len(l) != 1 || l["a"] != "b" {
		t.Errorf("Labels() = %v, want only the string label a=b", l)
	}
	want := &messages.ResourceKey{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "prod", Name: "web"}
	if !proto.Equal(o.Key(), want) {
		t.Errorf("Key() = %v, want %v", o.Key(), want)
	}
	o.SetResourceVersion(18446744073709551615)
	o.SetUID("")
	o.SetNamespace("")
	if got := string(o.Encode()); got != `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"creationTimestamp":"t","labels":{"a":"b","n":1},"name":"web","resourceVersion":"18446744073709551615"}}` {
		t.Errorf("after setting metadata: %s", got)
	}
	// Setting metadata on an object without any creates it; clearing creates nothing.
	bare := Object{"kind": "K"}
	bare.SetUID("")
	if _, ok := bare["metadata"]; ok {
		t.Errorf("clearing a field created metadata: %v", bare)
	}
	bare.SetUID("x")
	if got := string(bare.Encode()); got != `{"kind":"K","metadata":{"uid":"x"}}` {
		t.Errorf("setting a field on an object without metadata: %s", got)
	}
}

func TestAPIVersion(t *testing.T) {
	tests := []struct {
		give           string
		group, version string
	}{
		{"v1", "", "v1"},
		{"apps/v1", "apps", "v1"},
		{"example.com/v1beta1", "example.com", "v1beta1"},
		{"", "", ""},
	}
	for _, tt := range tests {
		g, v := SplitAPIVersion(tt.give)
		if g != tt.group || v != tt.version {
			t.Errorf("SplitAPIVersion(%q) = %q, %q, want %q, %q", tt.give, g, v, tt.group, tt.version)
		}
		if got := APIVersion(g, v); got != tt.give {
			t.Errorf("APIVersion(%q, %q) = %q, want %q", g, v, got, tt.give)
		}
	}
}

// TestParseResourceVersion: a resourceVersion is none ("") or one the store writes, the decimal
// form of a Raft index. Kubernetes reads "0" as none and "00063" as 63; the store compares
// resourceVersions as strings, so those are Invalid rather than a Conflict no retry resolves.
func TestParseResourceVersion(t *testing.T) {
	tests := []struct {
		give    string
		want    uint64
		wantErr bool
	}{
		{"", 0, false},
		{"1", 1, false},
		{"42", 42, false},
		{"10", 10, false},
		{"18446744073709551615", 18446744073709551615, false},
		{"0", 0, true},
		{"00", 0, true},
		{"00063", 0, true},
		{"01", 0, true},
		{"18446744073709551616", 0, true},
		{"-1", 0, true},
		{"+1", 0, true},
		{" 1", 0, true},
		{"1 ", 0, true},
		{"1.0", 0, true},
		{"1e3", 0, true},
		{"0x10", 0, true},
		{"1_000", 0, true},
		{"abc", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseResourceVersion(tt.give)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseResourceVersion(%q) = %d, %v; want %d, error %v", tt.give, got, err, tt.want, tt.wantErr)
		}
		want := fmt.Sprintf("metadata.resourceVersion %q is not a resourceVersion this store gave: use the value read from the object", tt.give)
		if err != nil && (!messages.IsInvalid(err) || !strings.Contains(err.Error(), want)) {
			t.Errorf("ParseResourceVersion(%q): %v, want Invalid saying %q", tt.give, err, want)
		}
	}
}

func TestFormatKey(t *testing.T) {
	tests := []struct {
		give *messages.ResourceKey
		want string
	}{
		{&messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "a"}, `Pod.v1 "default/a"`},
		{&messages.ResourceKey{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "prod", Name: "web"}, `Deployment.v1.apps "prod/web"`},
		{&messages.ResourceKey{Version: "v1", Kind: "Namespace", Name: "prod"}, `Namespace.v1 "prod"`},
	}
	for _, tt := range tests {
		if got := FormatKey(tt.give); got != tt.want {
			t.Errorf("FormatKey(%v) = %s, want %s", tt.give, got, tt.want)
		}
	}
}

func TestKeyOf(t *testing.T) {
	want := &messages.ResourceKey{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "prod", Name: "web"}
	for _, give := range []string{
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"prod"}}`,
		` { "metadata" : { "namespace" : "prod" , "name" : "web" } , "kind" : "Deployment" , "apiVersion" : "apps/v1" } `,
		"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\n",
	} {
		got, err := KeyOf([]byte(give))
		if err != nil || !proto.Equal(got, want) {
			t.Errorf("KeyOf(%q) = %v, %v; want %v", give, got, err, want)
		}
	}
	if _, err := KeyOf([]byte("[1]")); !messages.IsInvalid(err) {
		t.Errorf("KeyOf of an array: %v, want Invalid", err)
	}
}

// TestDNSNames holds the name rules to Kubernetes' IsDNS1123Label and IsDNS1123Subdomain.
func TestDNSNames(t *testing.T) {
	tests := []struct {
		give                 string
		wantLabel, wantSubdm bool
	}{
		{"a", true, true},
		{"0", true, true},
		{"my-name", true, true},
		{"a1-b2", true, true},
		{strings.Repeat("a", 63), true, true},
		{strings.Repeat("a", 64), false, true}, // a subdomain's parts have no limit of their own
		{"example.com", false, true},
		{"a.b-c.d", false, true},
		{strings.Repeat("a", 253), false, true},
		{strings.Repeat("a.", 126) + "a", false, true}, // 253
		{strings.Repeat("a", 254), false, false},
		{"", false, false},
		{"-a", false, false},
		{"a-", false, false},
		{"A", false, false},
		{"aB", false, false},
		{"a_b", false, false},
		{"a b", false, false},
		{"a..b", false, false},
		{".a", false, false},
		{"a.", false, false},
		{"a.-b", false, false},
		{"é", false, false},
		{"a/b", false, false},
	}
	for _, tt := range tests {
		if got := isDNS1123Label(tt.give); got != tt.wantLabel {
			t.Errorf("isDNS1123Label(%q) = %v, want %v", tt.give, got, tt.wantLabel)
		}
		if got := isDNS1123Subdomain(tt.give); got != tt.wantSubdm {
			t.Errorf("isDNS1123Subdomain(%q) = %v, want %v", tt.give, got, tt.wantSubdm)
		}
	}
}

func TestKinds(t *testing.T) {
	for give, want := range map[string]bool{
		"Pod": true, "ConfigMap": true, "pod": true, "V1Thing2": true, strings.Repeat("K", 63): true,
		"": false, "1Pod": false, "Pod-x": false, "Pod.x": false, "Pod x": false, strings.Repeat("K", 64): false,
	} {
		if got := isKind(give); got != want {
			t.Errorf("isKind(%q) = %v, want %v", give, got, want)
		}
	}
}

func TestValidateKey(t *testing.T) {
	key := func(group, version, kind, ns, name string) *messages.ResourceKey {
		return &messages.ResourceKey{Group: group, Version: version, Kind: kind, Namespace: ns, Name: name}
	}
	tests := []struct {
		name    string
		give    *messages.ResourceKey
		wantMsg string // "" is valid
	}{
		{"core namespaced", key("", "v1", "Pod", "default", "a"), ""},
		{"cluster-scoped", key("", "v1", "Namespace", "", "prod"), ""},
		{"named group", key("example.com", "v1beta1", "Widget", "ns-1", "a.b"), ""},
		{"nil", nil, "key is missing"},
		{"group with a capital", key("Apps", "v1", "Pod", "", "a"), `group "Apps" is not valid`},
		{"group with an underscore", key("my_group", "v1", "Pod", "", "a"), `group "my_group" is not valid`},
		{"no version", key("", "", "Pod", "", "a"), "version is missing"},
		{"version with a capital", key("", "V1", "Pod", "", "a"), `version "V1" is not valid`},
		{"version with a dot", key("", "v1.2", "Pod", "", "a"), `version "v1.2" is not valid`},
		{"no kind", key("", "v1", "", "", "a"), "kind is missing"},
		{"kind with a dash", key("", "v1", "Pod-x", "", "a"), `kind "Pod-x" is not valid`},
		{"namespace with a dot", key("", "v1", "Pod", "a.b", "a"), `namespace "a.b" is not valid`},
		{"namespace of 64", key("", "v1", "Pod", strings.Repeat("n", 64), "a"), "at most 63 characters"},
		{"no name", key("", "v1", "Pod", "", ""), "name is missing"},
		{"name with a capital", key("", "v1", "Pod", "", "A"), `name "A" is not valid`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateKey(tt.give)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("ValidateKey: %v", err)
				}
				return
			}
			if !messages.IsInvalid(err) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ValidateKey: %v, want Invalid saying %q", err, tt.wantMsg)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	key := &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "a"}
	tests := []struct {
		name    string
		give    string
		key     *messages.ResourceKey
		wantMsg string // "" is valid
		want    string // the object after, when valid
	}{
		{"the namespace comes from the key", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`, key, "",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default"}}`},
		{"labels of strings", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"x":"y"}}}`, key, "",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"x":"y"},"name":"a","namespace":"default"}}`},
		{"no key", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`, nil, "key is missing", ""},
		{"apiVersion not a string", `{"apiVersion":1,"kind":"Pod","metadata":{"name":"a"}}`, key, "apiVersion is missing", ""},
		{"labels null", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":null}}`, key, "metadata.labels must be an object", ""},
		{"label value null", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"x":null}}}`, key, `metadata.labels["x"] must be a string`, ""},
		{"label keys and values Kubernetes allows", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"app.kubernetes.io/name":"Web_1.2-x","A":"","k8s.io/x":"y"}}}`, key, "",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"A":"","app.kubernetes.io/name":"Web_1.2-x","k8s.io/x":"y"},"name":"a","namespace":"default"}}`},
		{"label key with a space and a bang", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"bad key!":"x"}}}`, key, `key "bad key!" is not valid`, ""},
		{"label value with a space", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"x":"has space"}}}`, key, `value "has space" is not valid`, ""},
		{"label key empty", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"":"x"}}}`, key, `key "" is not valid`, ""},
		{"label key prefix not a subdomain", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"Example.com/x":"y"}}}`, key, `prefix "Example.com"`, ""},
		{"label key empty name after prefix", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"example.com/":"y"}}}`, key, `key "example.com/" is not valid`, ""},
		{"label key two slashes", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"a/b/c":"y"}}}`, key, `key "a/b/c" is not valid`, ""},
		{"label name of 64 characters", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk":"y"}}}`, key, "is not valid", ""},
		{"label value of 64 characters", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"x":"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"}}}`, key, "is not valid", ""},
		{"label value ending in a dash", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"x":"web-"}}}`, key, `value "web-" is not valid`, ""},
		{"object name invalid", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"A"}}`, &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "A"}, `name "A" is not valid`, ""},
		// The metadata fields the store reads are strings; a number there is read as absent,
		// so a resourceVersion precondition written as a number would silently not apply.
		{"resourceVersion a number", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","resourceVersion":3}}`, key, "resourceVersion", ""},
		{"namespace a number", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":3}}`, &messages.ResourceKey{Version: "v1", Kind: "Pod", Name: "a"}, "namespace", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Decode([]byte(tt.give))
			if err != nil {
				t.Fatal(err)
			}
			err = Validate(o, tt.key)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if got := string(o.Encode()); got != tt.want {
					t.Errorf("after Validate\n got  %s\n want %s", got, tt.want)
				}
				return
			}
			if !messages.IsInvalid(err) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Validate: %v, want Invalid saying %q", err, tt.wantMsg)
			}
		})
	}
}
