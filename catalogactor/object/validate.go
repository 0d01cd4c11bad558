package object

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/kstore/kstore/messages"
)

func invalid(format string, args ...any) error {
	return messages.Errorf(messages.StatusReason_INVALID, format, args...)
}

// FormatKey names a key for people, the way error messages show it: Kind.version[.group] "ns/name".
func FormatKey(k *messages.ResourceKey) string {
	t := k.GetKind() + "." + k.GetVersion()
	if k.GetGroup() != "" {
		t += "." + k.GetGroup()
	}
	if k.GetNamespace() == "" {
		return fmt.Sprintf("%s %q", t, k.GetName())
	}
	return fmt.Sprintf("%s %q", t, k.GetNamespace()+"/"+k.GetName())
}

// ValidateType checks the group, version and kind of a key or a list request.
func ValidateType(group, version, kind string) error {
	if group != "" && !isDNS1123Subdomain(group) {
		return invalid("group %q is not valid: a group is a lowercase DNS subdomain such as apps or example.com, or empty for the core group", group)
	}
	if version == "" {
		return invalid("version is missing: give the API version, such as v1")
	}
	if !isDNS1123Label(version) {
		return invalid("version %q is not valid: a version is lowercase letters and digits, such as v1 or v1beta1", version)
	}
	if kind == "" {
		return invalid("kind is missing: give the object's kind, such as Pod")
	}
	if !isKind(kind) {
		return invalid("kind %q is not valid: a kind starts with a letter and holds only letters and digits, such as Pod or ConfigMap", kind)
	}
	return nil
}

// ValidateNamespace checks a namespace, which may be empty (cluster-scoped).
func ValidateNamespace(ns string) error {
	if ns != "" && !isDNS1123Label(ns) {
		return invalid("namespace %q is not valid: %s", ns, dns1123LabelRule)
	}
	return nil
}

// ValidateKey checks every part of a key.
func ValidateKey(k *messages.ResourceKey) error {
	if k == nil {
		return invalid("key is missing: give group, version, kind, namespace and name")
	}
	if err := ValidateType(k.GetGroup(), k.GetVersion(), k.GetKind()); err != nil {
		return err
	}
	if err := ValidateNamespace(k.GetNamespace()); err != nil {
		return err
	}
	if k.GetName() == "" {
		return invalid("name is missing: give metadata.name")
	}
	if !isDNS1123Subdomain(k.GetName()) {
		return invalid("name %q is not valid: %s", k.GetName(), dns1123SubdomainRule)
	}
	return nil
}

// Validate checks that o is a storable object for key k: apiVersion, kind and metadata.name
// present and valid, the metadata fields the store reads strings, metadata.labels a map of
// strings, and every part of the key equal to the object's. An object without
// metadata.namespace takes the key's namespace, as the Kubernetes API server fills it from the
// request path.
func Validate(o Object, k *messages.ResourceKey) error {
	r, err := ParseRaw(o.Encode())
	if err != nil {
		return invalid("object is not a JSON object: %v", err)
	}
	if err := ValidateRaw(r, k); err != nil {
		return err
	}
	o.SetNamespace(r.Meta("namespace"))
	return nil
}

// metaStrings are the metadata fields the store reads, which must therefore be strings: a
// resourceVersion precondition written as a number would otherwise be read as absent.
var metaStrings = []string{"name", "namespace", "uid", "resourceVersion", "creationTimestamp", "generateName"}

// ValidateRaw is Validate on an object held as bytes; it fills a missing namespace in r.
func ValidateRaw(r *Raw, k *messages.ResourceKey) error {
	if !isString(find(r.top, "apiVersion")) || r.APIVersion() == "" {
		return invalid("apiVersion is missing: every object needs apiVersion (such as v1 or apps/v1), kind and metadata.name")
	}
	if !isString(find(r.top, "kind")) || r.Kind() == "" {
		return invalid("kind is missing: every object needs apiVersion, kind (such as Pod) and metadata.name")
	}
	md := find(r.top, "metadata")
	if md == nil {
		return invalid("metadata is missing: every object needs metadata.name")
	}
	if md[0] != '{' {
		return invalid("metadata must be an object holding at least name")
	}
	for _, f := range metaStrings {
		if v := find(r.meta, f); v != nil && !isString(v) && string(v) != "null" {
			return invalid("metadata.%s must be a string", f)
		}
	}
	if r.Meta("name") == "" {
		return invalid("metadata.name is missing: every object needs a name")
	}
	if raw := r.LabelsRaw(); raw != nil {
		labels, err := members(raw)
		if err != nil {
			return invalid("metadata.labels must be an object of string values")
		}
		for _, l := range labels {
			if !isString(l.value) {
				return invalid("metadata.labels[%q] must be a string", l.key)
			}
			value, _ := unquote(l.value)
			if err := ValidateLabel(l.key, value); err != nil {
				return err
			}
		}
	}
	if err := ValidateKey(k); err != nil {
		return err
	}
	if r.Meta("namespace") == "" && k.GetNamespace() != "" {
		r.SetMeta("namespace", k.GetNamespace())
	}
	g, v := SplitAPIVersion(r.APIVersion())
	if err := ValidateKey(&messages.ResourceKey{Group: g, Version: v, Kind: r.Kind(), Namespace: r.Meta("namespace"), Name: r.Meta("name")}); err != nil {
		return err
	}
	if apiVersion := APIVersion(k.GetGroup(), k.GetVersion()); r.APIVersion() != apiVersion {
		return invalid("key says apiVersion %q but the object says %q: make them agree", apiVersion, r.APIVersion())
	}
	if r.Kind() != k.GetKind() {
		return invalid("key says kind %q but the object says %q: make them agree", k.GetKind(), r.Kind())
	}
	if ns := r.Meta("namespace"); ns != k.GetNamespace() {
		return invalid("key says namespace %q but the object's metadata.namespace is %q: make them agree", k.GetNamespace(), ns)
	}
	if name := r.Meta("name"); name != k.GetName() {
		return invalid("key says name %q but the object's metadata.name is %q: make them agree", k.GetName(), name)
	}
	return nil
}

func isString(raw []byte) bool { return len(raw) > 0 && raw[0] == '"' }

// Prepare admits an object for key k: it refuses input over MaxSize, decodes JSON or YAML,
// validates it (Validate) and returns it as canonical JSON, the form the Raft log holds. JSON and
// YAML alike are held to Canonical's rules (UTF-8, numbers, depth).
func Prepare(raw []byte, k *messages.ResourceKey) (*Raw, error) {
	if len(raw) > MaxSize {
		return nil, tooLarge(len(raw))
	}
	var value []byte
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		c, err := Canonical(raw)
		if err != nil {
			if messages.IsInvalid(err) {
				return nil, err // refused with its own words: where, and what to do
			}
			// Decode says what is wrong in encoding/json's words.
			_, derr := Decode(raw)
			if derr == nil {
				derr = invalid("object is not valid JSON: %v", err)
			}
			return nil, derr
		}
		value = c
	} else {
		o, err := Decode(raw)
		if err != nil {
			return nil, err
		}
		// Encode's output is canonical already; the pass applies the rules JSON input meets
		// (YAML itself refuses invalid UTF-8). Offsets in the converted JSON would mislead.
		if value, err = canonical(o.Encode(), false); err != nil {
			return nil, err
		}
	}
	r, err := ParseRaw(value)
	if err != nil {
		return nil, invalid("object is not a JSON object: %v", err)
	}
	if err := ValidateRaw(r, k); err != nil {
		return nil, err
	}
	return r, nil
}

func tooLarge(n int) error {
	return messages.Errorf(messages.StatusReason_TOO_LARGE,
		"object is %d bytes, over the limit of %d bytes (1.5 MiB); store large data elsewhere and reference it", n, MaxSize)
}

// ValidateCommitted checks the value of a put, create or update found in a committed Raft entry.
// Apply cannot take such a value on trust: admission (Prepare) wrote it, but anything that
// reaches a node's port can append entries. So it refuses every value Prepare could not have
// produced: over MaxSize (TooLarge); not exactly canonical, Canonical(value) equal to value
// byte for byte, which proves it valid JSON and UTF-8 with keys sorted and unique, nesting
// within MaxDepth and numbers the API server can decode; failing ValidateRaw for key k; or
// with a metadata.resourceVersion other than none or one the store writes (all Invalid). A
// missing metadata.namespace is filled from k, as Prepare fills it.
//
// The outcome depends on the arguments alone, so every replica decides the same. It costs one
// Canonical pass, which never reorders canonical input, and one comparison.
func ValidateCommitted(value []byte, k *messages.ResourceKey) (*Raw, error) {
	if len(value) > MaxSize {
		return nil, tooLarge(len(value))
	}
	c, err := Canonical(value)
	if err != nil {
		if messages.IsInvalid(err) {
			return nil, err
		}
		return nil, invalid("object in the log is not a JSON object (%v): admit objects through a node", err)
	}
	if !bytes.Equal(c, value) {
		return nil, invalid("object in the log is not canonical JSON: admit objects through a node, which writes them canonical")
	}
	r, err := ParseRaw(value)
	if err != nil {
		return nil, invalid("object in the log is not a JSON object (%v): admit objects through a node", err)
	}
	if err := ValidateRaw(r, k); err != nil {
		return nil, err
	}
	if _, err := ParseResourceVersion(r.Meta("resourceVersion")); err != nil {
		return nil, err
	}
	return r, nil
}

// ValidateStamps checks the stamps a put or create carries into the log (Command.stamp_uid and
// stamp_time), which become a new object's metadata.uid and creationTimestamp. Admission always
// sets both, as the node makes them: a random version 4 UUID in lowercase, 36 characters
// ("6ba7b810-9dad-41d1-80b4-00c04fd430c8"), and the time in RFC 3339, UTC, to the second
// ("2024-05-01T10:00:00Z"). Apply refuses (Invalid) stamps of any other form, so an entry
// appended without admission cannot give an object a malformed uid or timestamp. Only the form
// is checked: a crafted stamp of the right form passes, and no clock is read.
func ValidateStamps(uid, creationTimestamp string) error {
	if !isUUIDv4(uid) {
		return invalid("stamped uid %q is not a lowercase version 4 UUID such as \"6ba7b810-9dad-41d1-80b4-00c04fd430c8\": admit the command through a node, which stamps it", uid)
	}
	if t, err := time.Parse(time.RFC3339, creationTimestamp); err != nil || t.UTC().Format(time.RFC3339) != creationTimestamp {
		return invalid("stamped creationTimestamp %q is not an RFC 3339 time in UTC to the second such as \"2024-05-01T10:00:00Z\": admit the command through a node, which stamps it", creationTimestamp)
	}
	return nil
}

// isUUIDv4 reports whether s is what a node's newUID makes: 8-4-4-4-12 lowercase hex digits,
// version 4 and the RFC 4122 variant (10xx).
func isUUIDv4(s string) bool {
	if len(s) != 36 || s[14] != '4' || !strings.ContainsRune("89ab", rune(s[19])) {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

const (
	dns1123LabelRule     = "a lowercase RFC 1123 label of at most 63 characters: lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. 'my-name')"
	dns1123SubdomainRule = "a lowercase RFC 1123 subdomain of at most 253 characters: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. 'example.com')"
)

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// isDNS1123Label reports whether s matches [a-z0-9]([-a-z0-9]*[a-z0-9])? and is at most 63 long.
func isDNS1123Label(s string) bool {
	return len(s) <= 63 && isLabelShape(s)
}

// isLabelShape reports whether s matches [a-z0-9]([-a-z0-9]*[a-z0-9])?, whatever its length.
func isLabelShape(s string) bool {
	if len(s) == 0 || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// isDNS1123Subdomain reports whether s is dot-separated label shapes, at most 253 long in all
// (Kubernetes' IsDNS1123Subdomain: the parts have no length limit of their own).
func isDNS1123Subdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if !isLabelShape(s[start:i]) {
				return false
			}
			start = i + 1
		}
	}
	return true
}

// Label rules, as Kubernetes' IsQualifiedName (keys) and IsValidLabelValue (values): a label a
// selector could never name is refused on write, as the API server refuses it.
const (
	labelNameRule  = "at most 63 characters of letters, digits, '-', '_' and '.', beginning and ending with a letter or digit"
	labelKeyRule   = "a name (" + labelNameRule + "), optionally prefixed by a DNS subdomain and '/', such as app or example.com/tier"
	labelValueRule = "empty, or " + labelNameRule + ", such as web or v1.2"
)

// ValidateLabel checks one label of metadata.labels.
func ValidateLabel(key, value string) error {
	name := key
	if prefix, rest, ok := strings.Cut(key, "/"); ok {
		if !isDNS1123Subdomain(prefix) {
			return invalid("metadata.labels: key %q is not valid: its prefix %q must be %s", key, prefix, dns1123SubdomainRule)
		}
		name = rest
	}
	if !isLabelName(name) {
		return invalid("metadata.labels: key %q is not valid: it must be %s", key, labelKeyRule)
	}
	if value != "" && !isLabelName(value) {
		return invalid("metadata.labels[%q]: value %q is not valid: it must be %s", key, value, labelValueRule)
	}
	return nil
}

// isLabelName reports whether s matches ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] and is at most
// 63 long.
func isLabelName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	if !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isKind(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}
