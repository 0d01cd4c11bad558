package watcheractor

import (
	"sync"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/catalogactor/selector"
	"github.com/kstore/kstore/messages"
)

// filter is what a watch selects: a type (or every type), a namespace, labels and fields.
type filter struct {
	allTypes             bool
	group, version, kind string
	namespace            string
	labels               selector.Selector
	fields               selector.FieldSelector
	// byObject: the selection tests the object's body (labels, spec.nodeName), which changes
	// over its life; otherwise only the key.
	byObject bool
}

func invalid(format string, args ...any) error {
	return messages.Errorf(messages.StatusReason_INVALID, format, args...)
}

// newFilter validates the selection of a watch request.
func newFilter(req *messages.WatchRequest) (*filter, error) {
	f := &filter{group: req.GetGroup(), version: req.GetVersion(), kind: req.GetKind(), namespace: req.GetNamespace()}
	if f.kind == "" {
		if f.group != "" || f.version != "" {
			return nil, invalid("a watch of every type takes no group or version: give a kind too, or leave all three empty")
		}
		f.allTypes = true
	} else if err := object.ValidateType(f.group, f.version, f.kind); err != nil {
		return nil, err
	}
	if err := object.ValidateNamespace(f.namespace); err != nil {
		return nil, err
	}
	var err error
	if f.labels, err = selector.Parse(req.GetLabelSelector()); err != nil {
		return nil, invalid("label selector is not valid: %v", err)
	}
	if f.fields, err = selector.ParseFields(req.GetFieldSelector()); err != nil {
		return nil, invalid("field selector is not valid: %v", err)
	}
	f.byObject = !f.labels.Empty() || f.fields.ObjectTerms()
	return f, nil
}

// keyMatches reports whether a key is of the watched type and namespace and passes the field
// selector: everything that cannot change over an object's life.
func (f *filter) keyMatches(k *messages.ResourceKey) bool {
	if !f.allTypes && (k.GetKind() != f.kind || k.GetVersion() != f.version || k.GetGroup() != f.group) {
		return false
	}
	if f.namespace != "" && k.GetNamespace() != f.namespace {
		return false
	}
	return f.fields.Empty() || f.fields.MatchesKey(k.GetName(), k.GetNamespace())
}

// route is a key the hub indexes live watchers by, so that a change is pushed to the watchers
// it may concern instead of to all of them (as the Kubernetes watch cache's triggers): a watch
// of one type that requires one name, one node (spec.nodeName) or one namespace. A watch with
// none of these (every type, every namespace, or only != terms) has the zero route and gets
// every push.
type route struct {
	by                   routeBy
	group, version, kind string
	value                string
}

type routeBy uint8

const (
	broad routeBy = iota
	byName
	byNodeName
	byNamespace
)

// route is the filter's route: the most selective one it has.
func (f *filter) route() route {
	if f.allTypes {
		return route{}
	}
	r := route{group: f.group, version: f.version, kind: f.kind}
	if name, ok := f.fields.Required("metadata.name"); ok {
		r.by, r.value = byName, name
	} else if node, ok := f.fields.Required("spec.nodeName"); ok {
		r.by, r.value = byNodeName, node
	} else if f.namespace != "" {
		r.by, r.value = byNamespace, f.namespace
	} else if ns, ok := f.fields.Required("metadata.namespace"); ok {
		r.by, r.value = byNamespace, ns
	} else {
		return route{}
	}
	return r
}

// routes returns the routes of the watchers a change may concern, beside the broad ones: of
// its type and its name, its namespace, and, when byNode (some watcher is routed by node), its
// node before and after (a Pod bound to a node, or moved off it, concerns the watchers of both).
// n of them are set.
func (c *change) routes(byNode bool) (rs [4]route, n int) {
	k := c.Key
	base := route{group: k.GetGroup(), version: k.GetVersion(), kind: k.GetKind()}
	add := func(by routeBy, v string) {
		r := base
		r.by, r.value = by, v
		rs[n] = r
		n++
	}
	add(byName, k.GetName())
	add(byNamespace, k.GetNamespace())
	if byNode {
		s := c.selected()
		add(byNodeName, s.nodeName)
		if s.prevNodeName != s.nodeName {
			add(byNodeName, s.prevNodeName)
		}
	}
	return rs, n
}

// selects reports whether the object of key k with these labels and spec.nodeName is in the
// selection.
func (f *filter) selects(k *messages.ResourceKey, labels map[string]string, nodeName string) bool {
	if !f.labels.Matches(labels) {
		return false
	}
	return !f.fields.ObjectTerms() || f.fields.Matches(selector.Fields{Name: k.GetName(), Namespace: k.GetNamespace(), NodeName: nodeName})
}

// change is a catalog change prepared once for every watcher: the event a watcher that selects
// by key only sends, shared by all of them, and what a selection on the object's body tests,
// decoded on first use (most changes concern no such selection, and the decode is a JSON parse
// of the object and its previous version). Shared between the hub and watcher actors, so nothing
// in it changes after prepare but the once-decoded selection.
type change struct {
	catalogactor.Change
	event *messages.WatchEvent
	once  sync.Once
	sel   selection
}

// selection is what a watch's label and field selectors test in a change's object before and
// after it.
type selection struct {
	labels, prevLabels     map[string]string
	nodeName, prevNodeName string
}

func prepare(ch catalogactor.Change) *change {
	return &change{Change: ch, event: &messages.WatchEvent{Type: eventTypes[ch.Type], Object: ch.Object, Key: ch.Key, ResourceVersion: ch.ResourceVersion}}
}

// selected decodes the labels and spec.nodeName of the object and its previous version, once;
// safe for concurrent use.
func (c *change) selected() *selection {
	c.once.Do(func() {
		s := &c.sel
		if c.Object != nil {
			s.labels, s.nodeName = selectedOf(c.Object)
		}
		if c.Type == catalogactor.Deleted {
			s.prevLabels, s.prevNodeName = s.labels, s.nodeName
		} else if c.Prev != nil {
			s.prevLabels, s.prevNodeName = selectedOf(c.Prev)
		}
	})
	return &c.sel
}

// selectedOf decodes what a selection may test in an object's body.
func selectedOf(b []byte) (map[string]string, string) {
	r, err := object.ParseRaw(b)
	if err != nil {
		return nil, ""
	}
	return r.Labels(), r.Spec("nodeName")
}

var eventTypes = map[catalogactor.EventType]messages.EventType{
	catalogactor.Added:    messages.EventType_EVENT_ADDED,
	catalogactor.Modified: messages.EventType_EVENT_MODIFIED,
	catalogactor.Deleted:  messages.EventType_EVENT_DELETED,
}

// event returns what the watch sees of a change, or nil. Transitions of a selection on the
// object's body (labels, spec.nodeName) follow the Kubernetes watch cache: an object that
// moves into the selection is ADDED, out of it DELETED (with the object as it last matched, at
// the change's resourceVersion).
func (f *filter) event(c *change) *messages.WatchEvent {
	if !f.keyMatches(c.Key) {
		return nil
	}
	if !f.byObject {
		return c.event
	}
	s := c.selected()
	switch c.Type {
	case catalogactor.Added:
		if f.selects(c.Key, s.labels, s.nodeName) {
			return c.event
		}
	case catalogactor.Deleted:
		if f.selects(c.Key, s.prevLabels, s.prevNodeName) {
			return c.event
		}
	case catalogactor.Modified:
		was, is := f.selects(c.Key, s.prevLabels, s.prevNodeName), f.selects(c.Key, s.labels, s.nodeName)
		switch {
		case was && is:
			return c.event
		case is:
			return &messages.WatchEvent{Type: messages.EventType_EVENT_ADDED, Object: c.Object, Key: c.Key, ResourceVersion: c.ResourceVersion}
		case was:
			return &messages.WatchEvent{Type: messages.EventType_EVENT_DELETED, Object: c.Prev, Key: c.Key, ResourceVersion: c.ResourceVersion}
		}
	}
	return nil
}
