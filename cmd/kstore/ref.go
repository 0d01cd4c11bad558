package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

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

// formatType is the TYPE of group, version and kind: KIND.VERSION[.GROUP].
func formatType(group, version, kind string) string {
	if group == "" {
		return kind + "." + version
	}
	return kind + "." + version + "." + group
}

// formatRef is the REF of key, KIND.VERSION[.GROUP]/NAME, what -o name prints. The namespace
// is not part of a REF (it is -n), as kubectl's -o name leaves it out.
func formatRef(key *messages.ResourceKey) string {
	return formatType(key.GetGroup(), key.GetVersion(), key.GetKind()) + "/" + key.GetName()
}

// builtinKind is a kind Kubernetes defines, spelled as its objects spell it, with its group,
// preferred version and scope.
type builtinKind struct {
	group, version, kind string
	namespaced           bool
}

// builtinKinds words get's hints: kstore treats every kind alike and knows no scope, but a
// NotFound is often a type misspelled the kubectl way (pod.v1, Deployment.v1 without apps) or
// a namespaced object asked for without -n. A table, rather than asking the node, because the
// node cannot say which kinds it stores (no request enumerates types) and a kind's spelling is
// not its lowercase form capitalised (ConfigMap, ReplicaSet, StatefulSet): capitalising is only
// tried, against the node, for kinds not in the table.
var builtinKinds = []builtinKind{
	{"", "v1", "Binding", true},
	{"", "v1", "ConfigMap", true},
	{"", "v1", "Endpoints", true},
	{"", "v1", "Event", true},
	{"", "v1", "LimitRange", true},
	{"", "v1", "Namespace", false},
	{"", "v1", "Node", false},
	{"", "v1", "PersistentVolume", false},
	{"", "v1", "PersistentVolumeClaim", true},
	{"", "v1", "Pod", true},
	{"", "v1", "PodTemplate", true},
	{"", "v1", "ReplicationController", true},
	{"", "v1", "ResourceQuota", true},
	{"", "v1", "Secret", true},
	{"", "v1", "Service", true},
	{"", "v1", "ServiceAccount", true},
	{"admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", false},
	{"admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", false},
	{"apiextensions.k8s.io", "v1", "CustomResourceDefinition", false},
	{"apps", "v1", "ControllerRevision", true},
	{"apps", "v1", "DaemonSet", true},
	{"apps", "v1", "Deployment", true},
	{"apps", "v1", "ReplicaSet", true},
	{"apps", "v1", "StatefulSet", true},
	{"autoscaling", "v2", "HorizontalPodAutoscaler", true},
	{"batch", "v1", "CronJob", true},
	{"batch", "v1", "Job", true},
	{"certificates.k8s.io", "v1", "CertificateSigningRequest", false},
	{"coordination.k8s.io", "v1", "Lease", true},
	{"discovery.k8s.io", "v1", "EndpointSlice", true},
	{"events.k8s.io", "v1", "Event", true},
	{"networking.k8s.io", "v1", "Ingress", true},
	{"networking.k8s.io", "v1", "IngressClass", false},
	{"networking.k8s.io", "v1", "NetworkPolicy", true},
	{"node.k8s.io", "v1", "RuntimeClass", false},
	{"policy", "v1", "PodDisruptionBudget", true},
	{"rbac.authorization.k8s.io", "v1", "ClusterRole", false},
	{"rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", false},
	{"rbac.authorization.k8s.io", "v1", "Role", true},
	{"rbac.authorization.k8s.io", "v1", "RoleBinding", true},
	{"scheduling.k8s.io", "v1", "PriorityClass", false},
	{"storage.k8s.io", "v1", "CSIDriver", false},
	{"storage.k8s.io", "v1", "CSINode", false},
	{"storage.k8s.io", "v1", "StorageClass", false},
	{"storage.k8s.io", "v1", "VolumeAttachment", false},
}

// builtinScope reports whether Kubernetes defines the kind in group (any version), and whether
// it is namespaced there.
func builtinScope(group, kind string) (namespaced, known bool) {
	for _, b := range builtinKinds {
		if b.group == group && b.kind == kind {
			return b.namespaced, true
		}
	}
	return false, false
}

// typeSuggestion returns the built-in type a key's type is likely a misspelling of, and why:
// a kind whose case differs from Kubernetes' spelling (pod, configmap), or a built-in kind
// outside its group (Deployment.v1 for Deployment.v1.apps). The version given is kept when the
// group is right; otherwise the suggestion carries the built-in's group and version. ok is
// false when the type is a built-in as spelled, or no built-in is spelled like it.
func typeSuggestion(key *messages.ResourceKey) (s builtinKind, why string, ok bool) {
	var found []builtinKind
	for _, b := range builtinKinds {
		if strings.EqualFold(b.kind, key.GetKind()) {
			found = append(found, b)
		}
	}
	if len(found) == 0 {
		return builtinKind{}, "", false
	}
	s = found[0]
	for _, b := range found {
		if b.group == key.GetGroup() {
			s = b
			s.version = key.GetVersion()
			break
		}
	}
	switch {
	case s.kind != key.GetKind():
		why = fmt.Sprintf("kinds are case-sensitive, and Kubernetes spells this one %s", s.kind)
	case s.group != key.GetGroup() && s.group == "":
		why = fmt.Sprintf("Kubernetes' %s is in the core group, which a TYPE leaves out", s.kind)
	case s.group != key.GetGroup():
		why = fmt.Sprintf("Kubernetes' %s is in the group %s", s.kind, s.group)
	default:
		return builtinKind{}, "", false
	}
	return s, why, true
}

// refOrFiles is the argument check of a command that takes one REF or, with -f, the objects the
// files name (does says what it does with them: prints, deletes).
func refOrFiles(files *[]string, does string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(*files) == 0 {
			return cobra.ExactArgs(1)(cmd, args)
		}
		if len(args) > 0 {
			return fmt.Errorf("give a REF or -f, not both: -f %s the objects its files name (got %q)", does, args[0])
		}
		return nil
	}
}

// targetKeys is the keys a refOrFiles command works on: those the files name, or the REF's.
func targetKeys(args, files []string, in io.Reader, parse func(ref string) (*messages.ResourceKey, error)) ([]*messages.ResourceKey, error) {
	if len(files) > 0 {
		return readKeys(files, in)
	}
	key, err := parse(args[0])
	if err != nil {
		return nil, err
	}
	return []*messages.ResourceKey{key}, nil
}
