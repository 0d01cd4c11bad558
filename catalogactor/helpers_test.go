package catalogactor

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

// Helpers shared by the tests of this package.

// openTestDB opens an in-memory catalog database. close says whether the test closes it when it
// ends; an actor closes its own when it stops.
func openTestDB(t testing.TB, close bool) *badger.DB {
	t.Helper()
	db, err := OpenStore(StoreOptions{InMemory: true, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("OpenStore(InMemory): %v", err)
	}
	if close {
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Errorf("close badger: %v", err)
			}
		})
	}
	return db
}

// newTestCatalog opens a catalog on a fresh in-memory database, keeping retain revisions.
func newTestCatalog(t testing.TB, retain uint64) *catalog {
	t.Helper()
	c, err := openCatalog(openTestDB(t, true), zap.NewNop(), retain)
	if err != nil {
		t.Fatalf("openCatalog: %v", err)
	}
	return c
}

func podKey(ns, name string) *messages.ResourceKey {
	return &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: ns, Name: name}
}

// podValue is the canonical JSON of a pod, as admission would have put it in the log; labels
// and spec are raw JSON objects, left out when empty.
func podValue(ns, name, labels, spec string) []byte {
	md := `{`
	if labels != "" {
		md += `"labels":` + labels + `,`
	}
	md += `"name":"` + name + `"`
	if ns != "" {
		md += `,"namespace":"` + ns + `"`
	}
	md += `}`
	v := `{"apiVersion":"v1","kind":"Pod","metadata":` + md
	if spec != "" {
		v += `,"spec":` + spec
	}
	return []byte(v + `}`)
}

// putCmd is a PUT of value under key with the stamps admission would set.
func putCmd(key *messages.ResourceKey, value []byte) *messages.Command {
	return &messages.Command{Kind: messages.CommandKind_PUT, Key: key, Value: value, Reason: messages.Reason_OPERATOR,
		StampUid: testUID(key.GetName()), StampTime: "2024-05-01T10:00:00Z"}
}

func mergePatchCmd(key *messages.ResourceKey, patch string) *messages.Command {
	return &messages.Command{Kind: messages.CommandKind_PATCH, Key: key, Patch: []byte(patch),
		PatchType: messages.PatchType_MERGE_PATCH, Reason: messages.Reason_OPERATOR}
}

func deleteCmd(key *messages.ResourceKey) *messages.Command {
	return &messages.Command{Kind: messages.CommandKind_DELETE, Key: key, Reason: messages.Reason_OPERATOR}
}

// entry is the committed Raft entry of cmd at index (term 1); the proposal id is the index.
func entry(t testing.TB, index uint64, cmd *messages.Command) *raftpb.Entry {
	t.Helper()
	data, err := messages.EncodeEntry(messages.ProposalID{Node: 1, Epoch: 1, Seq: index}, cmd)
	if err != nil {
		t.Fatalf("EncodeEntry(%d): %v", index, err)
	}
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(1), Type: raftpb.EntryType_EntryNormal.Enum(), Data: data}
}

// emptyEntry is the entry a new leader appends: no data.
func emptyEntry(index uint64) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(2), Type: raftpb.EntryType_EntryNormal.Enum()}
}

// mustApply applies entries to c and fails the test on a storage error.
func mustApply(t testing.TB, c *catalog, entries ...*raftpb.Entry) ([]outcome, []Change) {
	t.Helper()
	out, ch, _, err := c.apply(entries)
	if err != nil {
		t.Fatalf("apply entries %d..%d: %v", entries[0].GetIndex(), entries[len(entries)-1].GetIndex(), err)
	}
	return out, ch
}

// version is one stored version of a Badger key.
type version struct {
	key     string
	ts      uint64
	deleted bool
	value   string
}

func (v version) String() string {
	if v.deleted {
		return fmt.Sprintf("%q@%d deleted", v.key, v.ts)
	}
	return fmt.Sprintf("%q@%d = %q", v.key, v.ts, v.value)
}

// allVersions lists every version of every key under prefix, newest first within a key, deletion
// markers included.
func allVersions(t testing.TB, db *badger.DB, prefix []byte) []version {
	t.Helper()
	txn := db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{AllVersions: true, Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	var out []version
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		v := version{key: string(item.KeyCopy(nil)), ts: item.Version(), deleted: item.IsDeletedOrExpired()}
		if !v.deleted {
			b, err := item.ValueCopy(nil)
			if err != nil {
				t.Fatalf("read %q@%d: %v", item.Key(), item.Version(), err)
			}
			v.value = string(b)
		}
		out = append(out, v)
	}
	return out
}

// readAt reads key's object at ts straight from Badger; nil when absent.
func readAt(t testing.TB, db *badger.DB, key *messages.ResourceKey, ts uint64) []byte {
	t.Helper()
	txn := db.NewTransactionAt(ts, false)
	defer txn.Discard()
	b, err := get(txn, objectKey(key))
	if err != nil {
		t.Fatalf("read %v at %d: %v", key, ts, err)
	}
	return b
}

func diffVersions(a, b []version) string {
	var buf bytes.Buffer
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y string
		if i < len(a) {
			x = a[i].String()
		}
		if i < len(b) {
			y = b[i].String()
		}
		if x != y {
			fmt.Fprintf(&buf, "  #%d\n    %s\n    %s\n", i, x, y)
			if buf.Len() > 4000 {
				break
			}
		}
	}
	return buf.String()
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// testUID is a stamp uid of the form admission makes (a version 4 UUID), the same for the same
// name, so expected objects can spell it.
func testUID(name string) string {
	var n uint64
	for _, c := range []byte(name) {
		n = n*131 + uint64(c)
	}
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", n&(1<<48-1))
}

// compact is what the applier does after a batch, for tests that drive a catalog directly: it
// drops the history the retained window leaves behind, when it is due, never discarding a
// version that oldestRead, the oldest timestamp a read in progress uses, still sees.
func (c *catalog) compact(oldestRead uint64) error {
	to, ok := compactTarget(c.applied, c.compacted, c.retain)
	if !ok {
		return nil
	}
	return c.compactTo(to, min(to, oldestRead))
}
