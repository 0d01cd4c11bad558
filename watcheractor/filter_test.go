package watcheractor

import (
	"fmt"
	"testing"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/messages"
)

// TestFilterByNodeName: a watch by spec.nodeName, as a kubelet's, sees a Pod bound to its node
// as ADDED, one moved away or deleted as DELETED (with the object as it last matched), and
// nothing of Pods on other nodes; with a label selector too, both must hold.
func TestFilterByNodeName(t *testing.T) {
	pod := func(node, app string) []byte {
		return fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"ns","labels":{"app":%q}},"spec":{"nodeName":%q}}`, app, node)
	}
	key := &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "ns", Name: "p"}
	const (
		none     = messages.EventType(-1)
		added    = messages.EventType_EVENT_ADDED
		modified = messages.EventType_EVENT_MODIFIED
		deleted  = messages.EventType_EVENT_DELETED
	)
	tests := []struct {
		name          string
		fields, label string
		change        catalogactor.Change
		want          messages.EventType
		wantObject    []byte
	}{
		{"created unscheduled", "spec.nodeName=n1", "", catalogactor.Change{Type: catalogactor.Added, Object: pod("", "a")}, none, nil},
		{"created on the node", "spec.nodeName=n1", "", catalogactor.Change{Type: catalogactor.Added, Object: pod("n1", "a")}, added, pod("n1", "a")},
		{"bound to the node", "spec.nodeName=n1", "", catalogactor.Change{Type: catalogactor.Modified, Prev: pod("", "a"), Object: pod("n1", "a")}, added, pod("n1", "a")},
		{"bound elsewhere", "spec.nodeName=n1", "", catalogactor.Change{Type: catalogactor.Modified, Prev: pod("", "a"), Object: pod("n2", "a")}, none, nil},
		{"changed on the node", "spec.nodeName=n1", "", catalogactor.Change{Type: catalogactor.Modified, Prev: pod("n1", "a"), Object: pod("n1", "b")}, modified, pod("n1", "b")},
		{"moved away", "spec.nodeName=n1", "", catalogactor.Change{Type: catalogactor.Modified, Prev: pod("n1", "a"), Object: pod("n2", "a")}, deleted, pod("n1", "a")},
		{"deleted on the node", "spec.nodeName=n1", "", catalogactor.Change{Type: catalogactor.Deleted, Prev: pod("n1", "a"), Object: pod("n1", "a")}, deleted, pod("n1", "a")},
		{"deleted elsewhere", "spec.nodeName=n1", "", catalogactor.Change{Type: catalogactor.Deleted, Prev: pod("n2", "a"), Object: pod("n2", "a")}, none, nil},
		{"unscheduled ones", "spec.nodeName=", "", catalogactor.Change{Type: catalogactor.Modified, Prev: pod("", "a"), Object: pod("n1", "a")}, deleted, pod("", "a")},
		{"relabelled on the node", "spec.nodeName=n1", "app=a", catalogactor.Change{Type: catalogactor.Modified, Prev: pod("n1", "b"), Object: pod("n1", "a")}, added, pod("n1", "a")},
		{"bound, label not matching", "spec.nodeName=n1", "app=a", catalogactor.Change{Type: catalogactor.Modified, Prev: pod("", "b"), Object: pod("n1", "b")}, none, nil},
		{"name term and node", "spec.nodeName=n1,metadata.name=q", "", catalogactor.Change{Type: catalogactor.Added, Object: pod("n1", "a")}, none, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := newFilter(&messages.WatchRequest{Version: "v1", Kind: "Pod", FieldSelector: tt.fields, LabelSelector: tt.label})
			if err != nil {
				t.Fatal(err)
			}
			ch := tt.change
			ch.Key, ch.ResourceVersion = key, 7
			ev := f.event(prepare(ch))
			switch {
			case tt.want == none && ev != nil:
				t.Fatalf("got %v, want no event", ev.GetType())
			case tt.want == none:
			case ev == nil:
				t.Fatalf("no event, want %v", tt.want)
			case ev.GetType() != tt.want || string(ev.GetObject()) != string(tt.wantObject) || ev.GetResourceVersion() != 7:
				t.Fatalf("got %v %s at %d, want %v %s at 7", ev.GetType(), ev.GetObject(), ev.GetResourceVersion(), tt.want, tt.wantObject)
			}
		})
	}
}
