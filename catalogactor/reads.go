package catalogactor

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"strconv"

	"github.com/dgraph-io/badger/v4"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/catalogactor/selector"
	"github.com/kstore/kstore/messages"
)

// The reads, run on a reader goroutine at a timestamp the actor chose (see Actor). They touch
// nothing but a Badger read transaction, which is safe beside the actor's writes.

func readGet(db *badger.DB, req *messages.GetRequest, ts uint64) *messages.GetResult {
	txn := db.NewTransactionAt(ts, false)
	defer txn.Discard()
	b, err := get(txn, objectKey(req.GetKey()))
	if err != nil {
		return &messages.GetResult{Status: messages.StatusOf(err)}
	}
	if b == nil {
		msg := object.FormatKey(req.GetKey()) + " not found"
		if req.GetResourceVersion() != 0 {
			msg += " at resourceVersion " + strconv.FormatUint(ts, 10)
		}
		return &messages.GetResult{Status: &messages.Status{Reason: messages.StatusReason_NOT_FOUND, Message: msg}}
	}
	// The stored bytes are canonical (apply wrote them): splitting out the metadata gives the
	// resourceVersion without decoding the object, which cost 39% of the node's CPU under
	// serializable gets.
	o, err := parseStored(b)
	if err != nil {
		return &messages.GetResult{Status: messages.StatusOf(err)}
	}
	rv, _ := object.ParseResourceVersion(o.Meta("resourceVersion"))
	return &messages.GetResult{Object: b, ResourceVersion: rv}
}

// listPlan is a validated list request: where to read, from which key, what to keep.
type listPlan struct {
	prefix []byte
	start  []byte // the key to seek to; prefix when starting from the top
	sel    selector.Selector
	fields selector.FieldSelector
	limit  int64
	ts     uint64 // the list's resourceVersion; 0 until the actor picks it
	digest uint32 // the request's identity, carried in the continue token
}

// continueToken is what a continue string decodes to. It is opaque to clients; the checksum
// makes a damaged token an error instead of a silently wrong page, and the digest refuses a
// token made for another list.
type continueToken struct {
	V      int    `json:"v"`
	RV     uint64 `json:"rv"`
	Start  []byte `json:"start"`
	Digest uint32 `json:"digest"`
	Sum    uint32 `json:"sum"`
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func (t continueToken) sum() uint32 {
	b, _ := json.Marshal(continueToken{V: t.V, RV: t.RV, Start: t.Start, Digest: t.Digest})
	return crc32.Checksum(b, crcTable)
}

func encodeContinue(rv uint64, start []byte, digest uint32) string {
	t := continueToken{V: 1, RV: rv, Start: start, Digest: digest}
	t.Sum = t.sum()
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func invalidf(format string, args ...any) error {
	return messages.Errorf(messages.StatusReason_INVALID, format, args...)
}

// planList validates a list request and decodes its continue token. The plan's ts is the
// token's resourceVersion when continuing, else the request's (0: latest).
func planList(req *messages.ListRequest) (listPlan, error) {
	if err := object.ValidateType(req.GetGroup(), req.GetVersion(), req.GetKind()); err != nil {
		return listPlan{}, err
	}
	if err := object.ValidateNamespace(req.GetNamespace()); err != nil {
		return listPlan{}, err
	}
	if req.GetLimit() < 0 {
		return listPlan{}, invalidf("limit %d is negative: give a positive page size, or 0 for everything", req.GetLimit())
	}
	sel, err := selector.Parse(req.GetLabelSelector())
	if err != nil {
		return listPlan{}, invalidf("label selector is not valid: %v", err)
	}
	fields, err := selector.ParseFields(req.GetFieldSelector())
	if err != nil {
		return listPlan{}, invalidf("field selector is not valid: %v", err)
	}
	var ns *string
	if req.GetNamespace() != "" {
		n := req.GetNamespace()
		ns = &n
	}
	p := listPlan{prefix: typePrefix(req.GetGroup(), req.GetVersion(), req.GetKind(), ns), sel: sel, fields: fields, limit: req.GetLimit(), ts: req.GetResourceVersion()}
	p.start = p.prefix
	identity := string(p.prefix) + "\x00" + sel.String()
	if !fields.Empty() {
		// Appended only when set, so that tokens issued before field selectors stay valid.
		identity += "\x00" + fields.String()
	}
	p.digest = crc32.Checksum([]byte(identity), crcTable)
	if req.GetContinue() == "" {
		return p, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(req.GetContinue())
	var t continueToken
	if err == nil {
		err = json.Unmarshal(raw, &t)
	}
	if err != nil || t.V != 1 || t.Sum != t.sum() || t.RV == 0 {
		return listPlan{}, invalidf("continue token is damaged: pass the token from the previous page unchanged, or start the list again without one")
	}
	if t.Digest != p.digest {
		return listPlan{}, invalidf("continue token belongs to another list: keep the type, namespace, label and field selectors of the first page, or start again without a token")
	}
	p.ts = t.RV
	p.start = append(append([]byte{}, p.prefix...), t.Start...)
	return p, nil
}

// MaxListBytes bounds the objects of one list page, limit or not: a page past it ends with a
// continue token. A reply travels as one message between actor systems, batched with others;
// the bound keeps it far below the transport's message limit.
const MaxListBytes = 16 << 20

func readList(db *badger.DB, p listPlan) *messages.ListResult {
	txn := db.NewTransactionAt(p.ts, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p.prefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	res := &messages.ListResult{ResourceVersion: p.ts}
	size := 0
	for it.Seek(p.start); it.Valid(); it.Next() {
		item := it.Item()
		if p.limit > 0 && int64(len(res.Items)) == p.limit || size >= MaxListBytes {
			res.Continue = encodeContinue(p.ts, bytes.TrimPrefix(item.KeyCopy(nil), p.prefix), p.digest)
			break
		}
		b, err := item.ValueCopy(nil)
		if err == nil {
			b, err = resolve(txn, item.Key(), b)
		}
		if err != nil {
			return &messages.ListResult{Status: messages.StatusOf(err)}
		}
		if !p.sel.Empty() || !p.fields.Empty() {
			o, err := object.ParseRaw(b)
			if err != nil {
				return &messages.ListResult{Status: messages.StatusOf(err)}
			}
			if !p.sel.Matches(o.Labels()) || !p.fields.Matches(selector.Fields{Name: o.Meta("name"), Namespace: o.Meta("namespace"), NodeName: o.Spec("nodeName")}) {
				continue
			}
		}
		res.Items = append(res.Items, b)
		size += len(b)
	}
	return res
}

// snapshotPlan is a validated Snapshot request.
type snapshotPlan struct {
	prefix, start   []byte
	limit, maxBytes int
}

func planSnapshot(m *Snapshot) snapshotPlan {
	var p snapshotPlan
	if m.AllTypes {
		p.prefix = []byte{prefixObject, 0}
	} else {
		var ns *string
		if m.Namespace != "" {
			ns = &m.Namespace
		}
		p.prefix = typePrefix(m.Group, m.Version, m.Kind, ns)
	}
	p.start = p.prefix
	if m.After != nil {
		// The key after After: its own key with a zero byte appended sorts right behind it.
		p.start = append(objectKey(m.After), 0)
	}
	p.limit, p.maxBytes = max(m.Limit, 1), m.MaxBytes
	return p
}

func readSnapshot(db *badger.DB, p snapshotPlan, ts uint64) *SnapshotResult {
	txn := db.NewTransactionAt(ts, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p.prefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	res := &SnapshotResult{RV: ts}
	bytes := 0
	for it.Seek(p.start); it.Valid(); it.Next() {
		if len(res.Objects) == p.limit || (p.maxBytes > 0 && bytes >= p.maxBytes) {
			res.More = true
			break
		}
		item := it.Item()
		key, err := parseObjectKey(item.Key())
		if err == nil {
			var b []byte
			if b, err = item.ValueCopy(nil); err == nil {
				b, err = resolve(txn, item.Key(), b)
			}
			if err == nil {
				res.Keys = append(res.Keys, key)
				res.Objects = append(res.Objects, b)
				bytes += len(b)
				continue
			}
		}
		return &SnapshotResult{Err: err}
	}
	return res
}
