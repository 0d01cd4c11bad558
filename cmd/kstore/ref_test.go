package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		give    string
		ns      string
		want    *messages.ResourceKey
		wantErr string // a part of the Invalid error's message; "" when none
	}{
		{give: "Pod.v1/web", ns: "default", want: &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "web"}},
		{give: "Namespace.v1/kube-system", want: &messages.ResourceKey{Version: "v1", Kind: "Namespace", Name: "kube-system"}},
		{give: "Deployment.v1.apps/web", ns: "prod", want: &messages.ResourceKey{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "prod", Name: "web"}},
		{give: "Ingress.v1.networking.k8s.io/x", want: &messages.ResourceKey{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress", Name: "x"}},
		{give: "Widget.v1beta1.example.com/a.b-c", want: &messages.ResourceKey{Group: "example.com", Version: "v1beta1", Kind: "Widget", Name: "a.b-c"}},

		{give: "", wantErr: `REF "" is not KIND.VERSION[.GROUP]/NAME, such as Pod.v1/web`},
		{give: "web", wantErr: "is not KIND.VERSION[.GROUP]/NAME"},
		{give: "Pod/web", wantErr: `REF "Pod/web" is not KIND.VERSION[.GROUP]/NAME`},
		{give: "Pod.v1", wantErr: "is not KIND.VERSION[.GROUP]/NAME"},
		{give: "Pod.v1/", wantErr: "is not KIND.VERSION[.GROUP]/NAME"},
		{give: "/web", wantErr: "is not KIND.VERSION[.GROUP]/NAME"},
		{give: ".v1/web", wantErr: "is not KIND.VERSION[.GROUP]/NAME"},
		{give: "Pod./web", wantErr: "is not KIND.VERSION[.GROUP]/NAME"},
		{give: "Pod..apps/web", wantErr: "is not KIND.VERSION[.GROUP]/NAME"},
		{give: "Pod.v1./web", wantErr: "is not KIND.VERSION[.GROUP]/NAME"},
		{give: "Deployment.apps/v1/web", wantErr: "is not KIND.VERSION[.GROUP]/NAME"},
		{give: "Pod.v1/a/b", wantErr: "is not KIND.VERSION[.GROUP]/NAME"},
		{give: "Pod.V1/web", wantErr: `REF "Pod.V1/web": version "V1" is not valid`},
		{give: "Pod.v1.Apps/web", wantErr: `group "Apps" is not valid`},
		{give: "Po-d.v1/web", wantErr: `kind "Po-d" is not valid`},
		{give: "Pod.v1/Bad_Name", wantErr: `REF "Pod.v1/Bad_Name": name "Bad_Name" is not valid`},
		{give: "Pod.v1/web", ns: "Bad_NS", wantErr: `-n: namespace "Bad_NS" is not valid`},
	}
	for _, tt := range tests {
		t.Run(tt.give+"@"+tt.ns, func(t *testing.T) {
			got, err := parseRef(tt.give, tt.ns)
			if tt.wantErr != "" {
				if !messages.IsInvalid(err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseRef(%q, %q) = %v, %v; want an Invalid error containing %q", tt.give, tt.ns, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !proto.Equal(got, tt.want) {
				t.Fatalf("parseRef(%q, %q) = %v, %v; want %v", tt.give, tt.ns, got, err, tt.want)
			}
		})
	}
}

func TestParseType(t *testing.T) {
	tests := []struct {
		give    string
		want    typeRef
		wantErr string
	}{
		{give: "Pod.v1", want: typeRef{version: "v1", kind: "Pod"}},
		{give: "Deployment.v1.apps", want: typeRef{group: "apps", version: "v1", kind: "Deployment"}},
		{give: "Ingress.v1.networking.k8s.io", want: typeRef{group: "networking.k8s.io", version: "v1", kind: "Ingress"}},

		{give: "Pod", wantErr: `TYPE "Pod" is not KIND.VERSION[.GROUP], such as Pod.v1`},
		{give: "pods", wantErr: "is not KIND.VERSION[.GROUP]"},
		{give: "Pod.", wantErr: "is not KIND.VERSION[.GROUP]"},
		{give: ".v1", wantErr: "is not KIND.VERSION[.GROUP]"},
		{give: "Pod.v1.", wantErr: "is not KIND.VERSION[.GROUP]"},
		{give: "Pod.v1/web", wantErr: `TYPE "Pod.v1/web" is not KIND.VERSION[.GROUP]`},
		{give: "apps/v1", wantErr: `TYPE "apps/v1" is not KIND.VERSION[.GROUP]`},
		{give: "Pod.v_1", wantErr: `version "v_1" is not valid`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := parseType(tt.give)
			if tt.wantErr != "" {
				if !messages.IsInvalid(err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseType(%q) = %+v, %v; want an Invalid error containing %q", tt.give, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseType(%q) = %+v, %v; want %+v", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestFormatRef(t *testing.T) {
	tests := []struct {
		give *messages.ResourceKey
		want string
	}{
		{give: &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "web"}, want: "Pod.v1/web"},
		{give: &messages.ResourceKey{Group: "apps", Version: "v1", Kind: "Deployment", Name: "web"}, want: "Deployment.v1.apps/web"},
		{give: &messages.ResourceKey{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress", Name: "a.b-c"}, want: "Ingress.v1.networking.k8s.io/a.b-c"},
	}
	for _, tt := range tests {
		got := formatRef(tt.give)
		if got != tt.want {
			t.Errorf("formatRef(%v) = %q, want %q", tt.give, got, tt.want)
		}
		// What -o name prints, get and delete read back (with -n for the namespace).
		if back, err := parseRef(got, tt.give.GetNamespace()); err != nil || !proto.Equal(back, tt.give) {
			t.Errorf("parseRef(%q, %q) = %v, %v; want %v", got, tt.give.GetNamespace(), back, err, tt.give)
		}
	}
}

func TestTypeSuggestion(t *testing.T) {
	tests := []struct {
		give    string // a REF
		want    string // the suggested TYPE; "" for none
		wantWhy string
	}{
		{give: "pod.v1/web", want: "Pod.v1", wantWhy: "kinds are case-sensitive, and Kubernetes spells this one Pod"},
		{give: "configmap.v1/x", want: "ConfigMap.v1", wantWhy: "Kubernetes spells this one ConfigMap"},
		{give: "POD.v1/web", want: "Pod.v1"},
		{give: "replicaset.v1.apps/x", want: "ReplicaSet.v1.apps"},
		{give: "deployment.v1beta1.apps/x", want: "Deployment.v1beta1.apps"}, // the group is right: the version is kept
		{give: "Deployment.v1/x", want: "Deployment.v1.apps", wantWhy: "Kubernetes' Deployment is in the group apps"},
		{give: "Ingress.v1.extensions/x", want: "Ingress.v1.networking.k8s.io"},
		{give: "Pod.v1.apps/x", want: "Pod.v1", wantWhy: "Kubernetes' Pod is in the core group, which a TYPE leaves out"},
		{give: "event.v1.events.k8s.io/x", want: "Event.v1.events.k8s.io"}, // Event is in two groups: the one given
		{give: "event.v1/x", want: "Event.v1"},

		{give: "Pod.v1/web"},
		{give: "Deployment.v1.apps/web"},
		{give: "Deployment.v1beta2.apps/web"}, // another version of a built-in is not a misspelling
		{give: "Event.v1.events.k8s.io/x"},
		{give: "Widget.v1.example.com/w"},
		{give: "widget.v1.example.com/w"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			key, err := parseRef(tt.give, "")
			if err != nil {
				t.Fatal(err)
			}
			s, why, ok := typeSuggestion(key)
			got := ""
			if ok {
				got = formatType(s.group, s.version, s.kind)
			}
			if got != tt.want || !strings.Contains(why, tt.wantWhy) || ok != (why != "") {
				t.Errorf("typeSuggestion(%s) = %q, %q, %v; want %q with %q", tt.give, got, why, ok, tt.want, tt.wantWhy)
			}
		})
	}
}
