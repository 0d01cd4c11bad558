package watcheractor

import (
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

// selects reports whether the object of key k with these labels and spec.nodeName is in the
// selection.
func (f *filter) selects(k *messages.ResourceKey, labels map[string]string, nodeName string) bool {
	if !f.labels.Matches(labels) {
		return false
	}
	return !f.fields.ObjectTerms() || f.fields.Matches(selector.Fields{Name: k.GetName(), Namespace: k.GetNamespace(), NodeName: nodeName})
}

// change is a catalog change prepared once for every watcher: labels and spec.nodeName
// decoded, and the event a watcher that selects by key only sends, shared by all of them (never
// modified after).
type change struct {
	catalogactor.Change
	labels, prevLabels     map[string]string
	nodeName, prevNodeName string
	event                  *messages.WatchEvent
}

func prepare(ch catalogactor.Change) *change { return prepareFor(ch, true) }

// prepareFor prepares a change, decoding the object's labels and spec.nodeName only when a
// selection needs them (byObject).
func prepareFor(ch catalogactor.Change, byObject bool) *change {
	c := &change{Change: ch}
	c.event = &messages.WatchEvent{Type: eventTypes[ch.Type], Object: ch.Object, Key: ch.Key, ResourceVersion: ch.ResourceVersion}
	if !byObject {
		return c
	}
	if ch.Object != nil {
		c.labels, c.nodeName = selectedOf(ch.Object)
	}
	if ch.Type == catalogactor.Deleted {
		c.prevLabels, c.prevNodeName = c.labels, c.nodeName
	} else if ch.Prev != nil {
		c.prevLabels, c.prevNodeName = selectedOf(ch.Prev)
	}
	return c
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
	switch c.Type {
	case catalogactor.Added:
		if f.selects(c.Key, c.labels, c.nodeName) {
			return c.event
		}
	case catalogactor.Deleted:
		if f.selects(c.Key, c.prevLabels, c.prevNodeName) {
			return c.event
		}
	case catalogactor.Modified:
		was, is := f.selects(c.Key, c.prevLabels, c.prevNodeName), f.selects(c.Key, c.labels, c.nodeName)
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
