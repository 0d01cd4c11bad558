package patch

import (
	"github.com/kstore/kstore/messages"
)

const mergeNotObject = `merge patch must be a JSON object, such as {"metadata":{"labels":{"a":"b"}}}`

// CheckMerge admits a merge patch before it is proposed: it must be at most object.MaxSize
// bytes (TooLarge), valid JSON and UTF-8, a single object, and nested at most MaxDepth deep
// (Invalid). A patch it admits can still fail to apply only on the work budget, which no
// admitted patch can spend (see Merge).
func CheckMerge(patch []byte) error {
	_, err := decodeMerge(newTree(sized(patch)), len(patch))
	return err
}

// decodeMerge decodes t.src[:end], a merge patch.
func decodeMerge(t *tree, end int) (*jsonObject, error) {
	if err := checkSize("merge patch", end); err != nil {
		return nil, err
	}
	p, _, err := decode(t, "merge patch", 0, end)
	if err != nil {
		return nil, err
	}
	if p.k != kObject {
		return nil, messages.Errorf(messages.StatusReason_INVALID, "%s, not %s", mergeNotObject, p.k)
	}
	return t.obj(p), nil
}

// Merge applies an RFC 7386 JSON merge patch to doc and returns the result as canonical JSON
// (what object.Canonical would give). doc and patch must be JSON objects: null in the patch
// removes a member, an object merges into an object member recursively, and any other value
// (an array included) replaces the member. Numbers are kept exactly as written.
//
// A value that lands where the document has no object to merge into (the member is absent, null,
// or not an object) has its nulls removed, recursively and inside arrays too, as json-patch v5
// does: RFC 7386 would merge it into {} (dropping nulls in nested objects) and leave arrays alone.
// A non-object value replacing an object member is kept as it is, nulls and all, also as
// json-patch does.
//
// Errors are *messages.Error: TooLarge for an input over object.MaxSize, Invalid for input that
// is not a JSON object, not UTF-8, or nested deeper than MaxDepth. Merge counts its work against
// MaxWork like JSON, but its work is linear in its inputs (about two units per value), so
// inputs within object.MaxSize never spend it.
func Merge(doc, patch []byte) ([]byte, error) {
	t := newTree(sized(patch), sized(doc))
	p, err := decodeMerge(t, len(patch)) // the patch first, as in JSON
	if err != nil {
		return nil, err
	}
	d, err := decodeDocument(t, doc, len(patch))
	if err != nil {
		return nil, err
	}
	w := newWork()
	mergeObject(t, w, t.obj(d), p)
	if w.out() {
		return nil, tooMuchWork("merge patch")
	}
	out := encode(t, w, make([]byte, 0, len(doc)+len(patch)), d)
	if out == nil {
		return nil, tooMuchWork("merge patch")
	}
	return out, nil
}

// decodeDocument decodes doc, at t.src[start:], the document a patch applies to, which must be
// an object.
func decodeDocument(t *tree, doc []byte, start int) (value, error) {
	if err := checkSize("document", len(doc)); err != nil {
		return value{}, err
	}
	d, _, err := decode(t, "document", start, len(t.src))
	if err != nil {
		return value{}, err
	}
	if d.k != kObject {
		return value{}, messages.Errorf(messages.StatusReason_INVALID, "document must be a JSON object, not %s", d.k)
	}
	return d, nil
}

// mergeObject merges p into o. Both are as decode leaves them (sorted, unique, nothing
// removed), so one pass over both, like a merge of two sorted lists, builds the result in order.
func mergeObject(t *tree, w *work, o, p *jsonObject) {
	if !w.spend(len(o.m)+len(p.m)) || len(p.m) == 0 {
		return
	}
	if len(o.m) == 0 {
		// All new: the patch's members, nulls dropped, in the patch's own slice.
		out := p.m[:0]
		w.spend(len(p.m))
		for _, pm := range p.m {
			if pm.val.k != kNull {
				if pm.val.isContainer() {
					prune(t, w, pm.val)
				}
				out = append(out, pm)
			}
		}
		*o = jsonObject{m: out, base: len(out), live: len(out)}
		return
	}
	out := make([]member, 0, len(o.m)+len(p.m))
	i := 0
	for _, pm := range p.m {
		key := t.text(pm.key)
		for i < len(o.m) && t.text(o.m[i].key) < key {
			out = append(out, o.m[i])
			i++
		}
		cur := removed
		if i < len(o.m) && t.text(o.m[i].key) == key {
			cur = o.m[i].val
			i++
		}
		switch {
		case pm.val.k == kNull:
			// Removed (or never there).
		case cur.k == kObject && pm.val.k == kObject:
			mergeObject(t, w, t.obj(cur), t.obj(pm.val))
			out = append(out, member{pm.key, cur})
		case cur.k == kObject:
			out = append(out, pm)
		default:
			if pm.val.isContainer() {
				prune(t, w, pm.val)
			}
			out = append(out, pm)
		}
	}
	out = append(out, o.m[i:]...)
	*o = jsonObject{m: out, base: len(out), live: len(out)}
}

// prune removes null members from the objects in v, recursively, through arrays too; null
// array elements stay. It spends a unit per value it looks at.
func prune(t *tree, w *work, v value) {
	if !w.spend(1) {
		return
	}
	switch v.k {
	case kArray:
		elems := t.elems(v)
		w.spend(len(elems))
		for _, e := range elems {
			if e.isContainer() {
				prune(t, w, e)
			}
		}
	case kObject:
		o := t.obj(v)
		out := o.m[:0]
		w.spend(len(o.m))
		for _, m := range o.m {
			if m.val.k == kNull {
				continue
			}
			if m.val.isContainer() {
				prune(t, w, m.val)
			}
			out = append(out, m)
		}
		*o = jsonObject{m: out, base: len(out), live: len(out)}
	}
}
