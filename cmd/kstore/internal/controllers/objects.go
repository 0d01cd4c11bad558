package controllers

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/messages"
)

// The types the controllers read and write.
var (
	replicaSetType = actors.ResourceType{Group: "apps", Version: "v1", Kind: "ReplicaSet"}
	podType        = actors.ResourceType{Version: "v1", Kind: "Pod"}
	nodeType       = actors.ResourceType{Version: "v1", Kind: "Node"}
)

// replicaSetAPIVersion is the apiVersion of replicaSetType, as an ownerReference spells it.
const replicaSetAPIVersion = "apps/v1"

// objectKey names an object of a type known from context: the workqueue's key. The namespace
// is empty for a cluster-scoped object.
type objectKey struct{ namespace, name string }

func (k objectKey) String() string {
	if k.namespace == "" {
		return k.name
	}
	return k.namespace + "/" + k.name
}

// keyOf is the key of an object an informer delivered.
func keyOf(o *actors.Object) objectKey {
	return objectKey{namespace: o.Key.GetNamespace(), name: o.Key.GetName()}
}

// resourceKey is the store's key of the object of type t named k.
func resourceKey(t actors.ResourceType, k objectKey) *messages.ResourceKey {
	return &messages.ResourceKey{Group: t.Group, Version: t.Version, Kind: t.Kind, Namespace: k.namespace, Name: k.name}
}

// objectMeta is the part of metadata the controllers read and write.
type objectMeta struct {
	Name            string            `json:"name"`
	Namespace       string            `json:"namespace,omitempty"`
	UID             string            `json:"uid,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	OwnerReferences []ownerReference  `json:"ownerReferences,omitempty"`
}

// ownerReference is an entry of metadata.ownerReferences, as in Kubernetes.
type ownerReference struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
	Controller *bool  `json:"controller,omitempty"`
}

// isReplicaSet reports whether r names a ReplicaSet of replicaSetType.
func (r ownerReference) isReplicaSet() bool {
	return r.Kind == replicaSetType.Kind && r.APIVersion == replicaSetAPIVersion
}

// replicaSet is the part of a ReplicaSet the controller reads.
type replicaSet struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		// Replicas is the number of Pods wanted; absent means 1, as in Kubernetes.
		Replicas *int64 `json:"replicas"`
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec json.RawMessage `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// pod is the part of a Pod the controllers read and write.
type pod struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		NodeName string `json:"nodeName,omitempty"`
	} `json:"spec"`
}

// controllerOf returns the ReplicaSet reference of p that is its controller (controller: true),
// if any.
func (p *pod) controllerOf() (ownerReference, bool) {
	for _, r := range p.Metadata.OwnerReferences {
		if r.isReplicaSet() && r.Controller != nil && *r.Controller {
			return r, true
		}
	}
	return ownerReference{}, false
}

// decode reads an object's JSON into v, an *messages.Error (Invalid) naming what when it does
// not fit: such an object is not retried until it changes.
func decode(what string, o *actors.Object, v any) error {
	if err := json.Unmarshal(o.JSON, v); err != nil {
		return messages.Errorf(messages.StatusReason_INVALID, "%s %s does not decode: %v; fix the object", what, keyOf(o), err)
	}
	return nil
}

func decodePod(o *actors.Object) (*pod, error) {
	var p pod
	if err := decode("Pod", o, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func decodeReplicaSet(o *actors.Object) (*replicaSet, error) {
	var rs replicaSet
	if err := decode("ReplicaSet", o, &rs); err != nil {
		return nil, err
	}
	return &rs, nil
}

// podName is the name of the Pod with index i of the ReplicaSet named rs: "<rs>-<i>". The name
// is a function of the index alone, so a create retried after an unknown outcome meets
// AlreadyExists instead of making a second Pod.
func podName(rs string, i int) string { return rs + "-" + strconv.Itoa(i) }

// podIndex is the inverse of podName: the index in a Pod name of the ReplicaSet named rs, false
// when the name is not of that form (a decimal without leading zeros). No name is of this form
// for two ReplicaSets: the index of "web-1-0" for "web" would be "1-0", no number.
func podIndex(rs, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, rs+"-")
	if !ok || rest == "" || (rest[0] == '0' && rest != "0") {
		return 0, false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(rest)
	if err != nil {
		return 0, false
	}
	return i, true
}

// newPod is the JSON of Pod i of rs: labelled from the selector (over the template's labels),
// the template's spec, and rs as its controlling owner. It has no resourceVersion (the store
// refuses none on a create, but a create needs none) and no uid (the store stamps one).
func newPod(rs *replicaSet, i int) ([]byte, error) {
	labels := map[string]string{}
	for k, v := range rs.Spec.Template.Metadata.Labels {
		labels[k] = v
	}
	for k, v := range rs.Spec.Selector.MatchLabels {
		labels[k] = v
	}
	spec := rs.Spec.Template.Spec
	if len(spec) == 0 || string(spec) == "null" {
		spec = json.RawMessage(`{}`)
	}
	controller := true
	obj := struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Metadata   objectMeta      `json:"metadata"`
		Spec       json.RawMessage `json:"spec"`
	}{
		APIVersion: podType.Version,
		Kind:       podType.Kind,
		Metadata: objectMeta{
			Name:      podName(rs.Metadata.Name, i),
			Namespace: rs.Metadata.Namespace,
			Labels:    labels,
			OwnerReferences: []ownerReference{{
				APIVersion: replicaSetAPIVersion,
				Kind:       replicaSetType.Kind,
				Name:       rs.Metadata.Name,
				UID:        rs.Metadata.UID,
				Controller: &controller,
			}},
		},
		Spec: spec,
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("controllers: encode Pod %s: %w", obj.Metadata.Name, err)
	}
	return b, nil
}
