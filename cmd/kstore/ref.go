package main

import (
	"strings"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

const (
	typeForm = "KIND.VERSION[.GROUP], such as Pod.v1, Deployment.v1.apps or Ingress.v1.networking.k8s.io"
	refForm  = "KIND.VERSION[.GROUP]/NAME, such as Pod.v1/web, Deployment.v1.apps/web or Ingress.v1.networking.k8s.io/web"
)

// typeRef is a parsed TYPE.
type typeRef struct{ group, version, kind string }

// parseType reads KIND.VERSION[.GROUP]. The kind and the version hold no dot, so the first dot
// ends the kind, the second the version, and the rest (dots and all) is the group.
func parseType(s string) (typeRef, error) {
	t, ok := splitType(s)
	if !ok || strings.Contains(s, "/") {
		return typeRef{}, invalid("TYPE %q is not %s", s, typeForm)
	}
	if err := object.ValidateType(t.group, t.version, t.kind); err != nil {
		return typeRef{}, invalid("TYPE %q: %s", s, message(err))
	}
	return t, nil
}

func splitType(s string) (typeRef, bool) {
	kind, rest, ok := strings.Cut(s, ".")
	if !ok || kind == "" || rest == "" {
		return typeRef{}, false
	}
	version, group, dotted := strings.Cut(rest, ".")
	if version == "" || dotted && group == "" {
		return typeRef{}, false
	}
	return typeRef{group: group, version: version, kind: kind}, true
}

// parseRef reads KIND.VERSION[.GROUP]/NAME in namespace ns ("" for a cluster-scoped object).
func parseRef(s, ns string) (*messages.ResourceKey, error) {
	typ, name, ok := strings.Cut(s, "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return nil, invalid("REF %q is not %s", s, refForm)
	}
	t, ok := splitType(typ)
	if !ok {
		return nil, invalid("REF %q is not %s", s, refForm)
	}
	key := &messages.ResourceKey{Group: t.group, Version: t.version, Kind: t.kind, Namespace: ns, Name: name}
	if err := object.ValidateType(t.group, t.version, t.kind); err != nil {
		return nil, invalid("REF %q: %s", s, message(err))
	}
	if err := object.ValidateNamespace(ns); err != nil {
		return nil, invalid("-n: %s", message(err))
	}
	if err := object.ValidateKey(key); err != nil {
		return nil, invalid("REF %q: %s", s, message(err))
	}
	return key, nil
}

// message is an error's sentence without its reason.
func message(err error) string {
	if e, ok := err.(*messages.Error); ok {
		return e.Message
	}
	return err.Error()
}
