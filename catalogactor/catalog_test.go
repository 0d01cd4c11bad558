package catalogactor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

// TestCatalogApplyBatch applies one batch that touches the same key several times: each entry
// must see the ones before it (the overlay), and every version lands at its own index.
func TestCatalogApplyBatch(t *testing.T) {
	c := newTestCatalog(t, 1000)
	a, b := podKey("default", "a"), podKey("default", "b")
	create := putCmd(b, podValue("default", "b", "", ""))
	create.Kind = messages.CommandKind_CREATE
	create.RequestId = "req-9"
	entries := []*raftpb.Entry{
		entry(t, 2, putCmd(a, podValue("default", "a", "", `{"n":1}`))),
		entry(t, 3, mergePatchCmd(a, `{"spec":{"n":2}}`)),
		entry(t, 4, putCmd(a, podValue("default", "a", "", `{"n":2}`))), // NoOp: equal to 3
		emptyEntry(5),
		entry(t, 6, &messages.Command{Kind: messages.CommandKind_DELETE, Key: a, ResourceVersion: 3, Reason: messages.Reason_OPERATOR}),
		entry(t, 7, mergePatchCmd(a, `{"spec":{"n":3}}`)), // NotFound: deleted at 6
		entry(t, 8, putCmd(a, podValue("default", "a", "", `{"n":4}`))),
		entry(t, 9, create),
		entry(t, 10, create), // AlreadyExists
	}
	outcomes, changes := mustApply(t, c, entries...)

	v2 := `{"apiVersion":"v1","kind":"Pod","metadata":{"creationTimestamp":"2024-05-01T10:00:00Z","name":"a","namespace":"default","resourceVersion":"2","uid":"` + testUID("a") + `"},"spec":{"n":1}}`
	v3 := strings.NewReplacer(`"resourceVersion":"2"`, `"resourceVersion":"3"`, `"n":1`, `"n":2`).Replace(v2)
	v8 := strings.NewReplacer(`"resourceVersion":"2"`, `"resourceVersion":"8"`, `"n":1`, `"n":4`).Replace(v2)
	b9 := `{"apiVersion":"v1","kind":"Pod","metadata":{"creationTimestamp":"2024-05-01T10:00:00Z","name":"b","namespace":"default","resourceVersion":"9","uid":"` + testUID("b") + `"}}`
	wantOutcomes := []string{
		`2 Created rv=2 ` + v2,
		`3 Patched rv=3 ` + v3,
		`4 NoOp rv=3 ` + v3,
		`6 Deleted rv=6 ` + v3,
		`7 NotFound`,
		`8 Created rv=8 ` + v8,
		`9 Created rv=9 ` + b9 + ` id=req-9`,
		`10 AlreadyExists id=req-9`,
	}
	if got := formatOutcomes(outcomes); !slices.Equal(got, wantOutcomes) {
		t.Errorf("outcomes:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(wantOutcomes, "\n      "))
	}
	wantChanges := []string{
		`ADDED 2 a ` + v2 + ` prev=`,
		`MODIFIED 3 a ` + v3 + ` prev=` + v2,
		`DELETED 6 a ` + v3 + ` prev=` + v3,
		`ADDED 8 a ` + v8 + ` prev=`,
		`ADDED 9 b ` + b9 + ` prev=`,
	}
	if got := formatChanges(changes); !slices.Equal(got, wantChanges) {
		t.Errorf("changes:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(wantChanges, "\n      "))
	}
	// Every revision reads as it was.
	for _, tt := range []struct {
		ts   uint64
		want string
	}{{1, ""}, {2, v2}, {3, v3}, {4, v3}, {5, v3}, {6, ""}, {7, ""}, {8, v8}, {10, v8}} {
		if got := readAt(t, c.db, a, tt.ts); string(got) != tt.want {
			t.Errorf("a at %d = %s, want %s", tt.ts, got, tt.want)
		}
	}
	if c.applied != 10 {
		t.Errorf("applied = %d, want 10", c.applied)
	}
	// The change log holds one record per change and none for NoOps, errors or empty entries.
	var logged []uint64
	for _, v := range allVersions(t, c.db, []byte{prefixChange}) {
		logged = append(logged, v.ts)
	}
	if want := []uint64{2, 3, 6, 8, 9}; !slices.Equal(logged, want) {
		t.Errorf("change log records at %v, want %v", logged, want)
	}
}

// TestCatalogNoOpWritesNothing: a write equal to the stored object stores no version and no
// change-log record, and its outcome carries the unchanged resourceVersion.
func TestCatalogNoOpWritesNothing(t *testing.T) {
	c := newTestCatalog(t, 1000)
	a := podKey("default", "a")
	mustApply(t, c, entry(t, 2, putCmd(a, podValue("default", "a", `{"x":"y"}`, ""))))
	before := allVersions(t, c.db, []byte{prefixObject})
	outcomes, changes := mustApply(t, c,
		entry(t, 3, putCmd(a, podValue("default", "a", `{"x":"y"}`, ""))),
		entry(t, 4, mergePatchCmd(a, `{"metadata":{"labels":{"x":"y"}}}`)),
		entry(t, 5, deleteCmd(podKey("default", "missing"))))
	if len(changes) != 0 {
		t.Errorf("NoOps made changes: %v", formatChanges(changes))
	}
	stored := `{"apiVersion":"v1","kind":"Pod","metadata":{"creationTimestamp":"2024-05-01T10:00:00Z","labels":{"x":"y"},"name":"a","namespace":"default","resourceVersion":"2","uid":"` + testUID("a") + `"}}`
	want := []string{`3 NoOp rv=2 ` + stored, `4 NoOp rv=2 ` + stored, `5 NoOp rv=5`}
	if got := formatOutcomes(outcomes); !slices.Equal(got, want) {
		t.Errorf("outcomes %q, want %q", got, want)
	}
	if after := allVersions(t, c.db, []byte{prefixObject}); !slices.Equal(before, after) {
		t.Errorf("NoOps wrote object versions:\n%s", diffVersions(before, after))
	}
	if n := len(allVersions(t, c.db, []byte{prefixChange})); n != 1 {
		t.Errorf("change log has %d records, want 1 (the create)", n)
	}
	if c.applied != 5 {
		t.Errorf("applied = %d, want 5", c.applied)
	}
}

// TestCatalogReplayIsSkipped: entries at or below the applied index (a restart replays the log
// from the last snapshot) change nothing and answer nothing.
func TestCatalogReplayIsSkipped(t *testing.T) {
	c := newTestCatalog(t, 1000)
	a := podKey("default", "a")
	e2 := entry(t, 2, putCmd(a, podValue("default", "a", "", `{"n":1}`)))
	e3 := entry(t, 3, mergePatchCmd(a, `{"spec":{"n":2}}`))
	e4 := entry(t, 4, mergePatchCmd(a, `{"spec":{"n":3}}`))
	mustApply(t, c, e2, e3)
	before := allVersions(t, c.db, nil)
	outcomes, changes, _, err := c.apply([]*raftpb.Entry{e2, e3})
	if err != nil || outcomes != nil || changes != nil {
		t.Fatalf("replay of an applied batch: %v %v %v, want nothing", outcomes, changes, err)
	}
	if after := allVersions(t, c.db, nil); !slices.Equal(before, after) {
		t.Errorf("replay wrote:\n%s", diffVersions(before, after))
	}
	// A batch overlapping the applied index applies only what is new.
	outcomes, _ = mustApply(t, c, e2, e3, e4)
	if got := formatOutcomes(outcomes); len(got) != 1 || !strings.HasPrefix(got[0], "4 Patched rv=4 ") {
		t.Errorf("overlapping batch: outcomes %q, want only entry 4's", got)
	}
	// A reopened catalog knows how far it got.
	c2, err := openCatalog(c.db, zap.NewNop(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if c2.applied != 4 {
		t.Errorf("reopened catalog: applied %d, want 4", c2.applied)
	}
	if out, _, _, err := c2.apply([]*raftpb.Entry{e4}); err != nil || out != nil {
		t.Errorf("reopened catalog re-applied entry 4: %v %v", out, err)
	}
}

// TestCatalogRefusesGapsAndBadEntries: a gap in the log or an entry that is not a command is a
// storage-level error, and nothing of the batch is written.
func TestCatalogRefusesGapsAndBadEntries(t *testing.T) {
	a := podKey("default", "a")
	tests := []struct {
		name    string
		give    []*raftpb.Entry
		wantErr string
	}{
		{"gap after applied", []*raftpb.Entry{entry(t, 4, putCmd(a, podValue("default", "a", "", "")))}, "gap"},
		{"gap inside the batch", []*raftpb.Entry{entry(t, 3, putCmd(a, podValue("default", "a", "", ""))), entry(t, 5, deleteCmd(a))}, "gap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCatalog(t, 1000)
			mustApply(t, c, entry(t, 2, putCmd(podKey("default", "z"), podValue("default", "z", "", ""))))
			before := allVersions(t, c.db, nil)
			_, _, _, err := c.apply(tt.give)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("apply: err %v, want one saying %q", err, tt.wantErr)
			}
			if c.applied != 2 {
				t.Errorf("applied moved to %d", c.applied)
			}
			if after := allVersions(t, c.db, nil); !slices.Equal(before, after) {
				t.Errorf("a refused batch wrote:\n%s", diffVersions(before, after))
			}
		})
	}
}

// TestCatalogConsumesEntriesThatAreNotCommands: a committed entry that does not decode (garbage
// appended by a forged raft message, say) is the same on every replica, so it consumes its index
// with an Invalid result and changes nothing; the entries after it apply. Stopping on it would
// stop every node at every restart.
func TestCatalogConsumesEntriesThatAreNotCommands(t *testing.T) {
	a := podKey("default", "a")
	tests := []struct {
		name string
		data []byte
	}{
		{"not an entry", []byte("not a command")},
		{"entry header, garbage command", append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 7}, 0xff, 0xff, 0xff)},
		{"one byte", []byte{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCatalog(t, 1000)
			bad := entry(t, 3, putCmd(a, podValue("default", "a", "", "")))
			bad.Data = tt.data
			outcomes, changes := mustApply(t, c, entry(t, 2, putCmd(podKey("default", "z"), podValue("default", "z", "", ""))),
				bad, entry(t, 4, putCmd(a, podValue("default", "a", "", ""))))
			if len(outcomes) != 3 || outcomes[1].index != 3 || !messages.IsInvalid(outcomes[1].result.GetStatus().Err()) {
				t.Fatalf("outcomes %v, want the second (index 3) Invalid", outcomes)
			}
			if len(changes) != 2 || changes[0].ResourceVersion != 2 || changes[1].ResourceVersion != 4 {
				t.Fatalf("changes %v, want the puts at 2 and 4", changes)
			}
			if c.applied != 4 {
				t.Fatalf("applied %d, want 4", c.applied)
			}
		})
	}
}

// TestCatalogSkipsEntriesWithoutCommands: a new leader's empty entry and conf changes consume
// their index and move applied, persistently.
func TestCatalogSkipsEntriesWithoutCommands(t *testing.T) {
	c := newTestCatalog(t, 1000)
	conf := &raftpb.Entry{Index: proto.Uint64(3), Term: proto.Uint64(1), Type: raftpb.EntryType_EntryConfChangeV2.Enum(), Data: []byte{0x0a, 0x00}}
	outcomes, changes := mustApply(t, c, emptyEntry(2), conf)
	if outcomes != nil || changes != nil {
		t.Errorf("outcomes %v changes %v, want none", outcomes, changes)
	}
	c2, err := openCatalog(c.db, zap.NewNop(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if c.applied != 3 || c2.applied != 3 {
		t.Errorf("applied %d, reopened %d: want 3", c.applied, c2.applied)
	}
}

// TestCatalogDeterministic applies one random log into stores with different batchings (one
// batch, one entry per batch, random batches that also replay applied entries) and requires
// every object version and change-log record to be identical byte for byte, every outcome to
// equal what Apply over a map says, and every revision to read as that model had it.
func TestCatalogDeterministic(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g := newLogGen(seed)
			entries := g.entries(t, 2, 400)
			r := rand.New(rand.NewPCG(seed, 99))
			// The latest-object cache serves the reads of the object an entry replaces across
			// batches: none, one that holds every key, and one so small that it evicts at
			// almost every put must all give the model's outcomes and changes.
			batchings := []struct {
				name  string
				size  func() int
				cache int // bytes; -1: no cache
			}{
				{"one batch", func() int { return len(entries) }, defaultLatestBytes},
				{"one entry per batch", func() int { return 1 }, defaultLatestBytes},
				{"one entry per batch, no cache", func() int { return 1 }, -1},
				{"one entry per batch, tiny cache", func() int { return 1 }, 400},
				{"random batches", func() int { return 1 + r.IntN(12) }, defaultLatestBytes},
				{"random batches, tiny cache", func() int { return 1 + r.IntN(12) }, 400},
			}
			var ref *catalog
			for _, b := range batchings {
				c := newTestCatalog(t, 1_000_000)
				c.latest = nil
				if b.cache >= 0 {
					c.latest = newLatestCache(b.cache)
				}
				outcomes, changes := applyInBatches(t, c, entries, b.size, r)
				if got, want := formatOutcomes(outcomes), formatOutcomes(g.outcomes); !slices.Equal(got, want) {
					t.Errorf("%s: outcomes differ from the model's:\n%s", b.name, firstDiff(got, want))
				}
				if got, want := formatChanges(changes), formatChanges(g.changes); !slices.Equal(got, want) {
					t.Errorf("%s: changes differ from the model's:\n%s", b.name, firstDiff(got, want))
				}
				g.checkHistory(t, b.name, c)
				if c.applied != g.last {
					t.Errorf("%s: applied %d, want %d", b.name, c.applied, g.last)
				}
				if ref == nil {
					ref = c
					continue
				}
				for _, prefix := range []byte{prefixObject, prefixChange} {
					want, got := allVersions(t, ref.db, []byte{prefix}), allVersions(t, c.db, []byte{prefix})
					if !slices.Equal(got, want) {
						t.Errorf("%s vs %s: %q versions differ (%d vs %d):\n%s", b.name, batchings[0].name, prefix, len(got), len(want), diffVersions(got, want))
					}
				}
			}
		})
	}
}

// TestCatalogReplayAfterPartialWrite simulates a crash in the middle of a batch: Badger split
// the write batch and wrote some of it, but not the applied index. Replaying the batch must
// give exactly the store a clean run gives.
func TestCatalogReplayAfterPartialWrite(t *testing.T) {
	g := newLogGen(7)
	entries := g.entries(t, 2, 120)
	first, second := entries[:40], entries[40:]
	ref := newTestCatalog(t, 1_000_000)
	mustApply(t, ref, first...)
	wantOutcomes, wantChanges := mustApply(t, ref, second...)
	lo, hi := first[len(first)-1].GetIndex(), second[len(second)-1].GetIndex()
	var written []version
	for _, prefix := range []byte{prefixObject, prefixChange} {
		for _, v := range allVersions(t, ref.db, []byte{prefix}) {
			if v.ts > lo && v.ts <= hi {
				written = append(written, v)
			}
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	for trial := range 6 {
		c := newTestCatalog(t, 1_000_000)
		mustApply(t, c, first...)
		// Part of the second batch reached Badger: a random half of its versions (trial 0:
		// none, trial 1: all), never the applied index.
		wb := c.db.NewManagedWriteBatch()
		for _, v := range written {
			if trial == 0 || trial > 1 && r.IntN(2) == 0 {
				continue
			}
			var err error
			if v.deleted {
				err = wb.DeleteAt([]byte(v.key), v.ts)
			} else {
				err = wb.SetEntryAt(badger.NewEntry([]byte(v.key), []byte(v.value)), v.ts)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := wb.Flush(); err != nil {
			t.Fatal(err)
		}
		// The restarted node reads its applied index and replays the batch.
		c, err := openCatalog(c.db, zap.NewNop(), 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		if c.applied != lo {
			t.Fatalf("trial %d: applied %d after the partial write, want %d", trial, c.applied, lo)
		}
		outcomes, changes := mustApply(t, c, second...)
		if got, want := formatOutcomes(outcomes), formatOutcomes(wantOutcomes); !slices.Equal(got, want) {
			t.Errorf("trial %d: outcomes differ:\n%s", trial, firstDiff(got, want))
		}
		if got, want := formatChanges(changes), formatChanges(wantChanges); !slices.Equal(got, want) {
			t.Errorf("trial %d: changes differ:\n%s", trial, firstDiff(got, want))
		}
		for _, prefix := range []byte{prefixObject, prefixChange} {
			want, got := allVersions(t, ref.db, []byte{prefix}), allVersions(t, c.db, []byte{prefix})
			if !slices.Equal(got, want) {
				t.Errorf("trial %d: %q versions differ from a clean run:\n%s", trial, prefix, diffVersions(got, want))
			}
		}
	}
}

// TestCatalogCompact: compaction keeps HistoryRevisions behind applied (lagging by at most a
// hundredth of the window), drops the change log below the compacted revision, persists the
// compacted revision, and leaves every retained revision readable as it was.
func TestCatalogCompact(t *testing.T) {
	for _, retain := range []uint64{10, 300} {
		t.Run(fmt.Sprintf("retain=%d", retain), func(t *testing.T) {
			step := max(retain/100, 1)
			g := newLogGen(3)
			entries := g.entries(t, 2, int(3*retain))
			c := newTestCatalog(t, retain)
			for i := 0; i < len(entries); i += 7 {
				mustApply(t, c, entries[i:min(i+7, len(entries))]...)
				if err := c.compact(c.applied); err != nil {
					t.Fatalf("compact at %d: %v", c.applied, err)
				}
				if c.applied <= retain+step {
					continue
				}
				if c.compacted > c.applied-retain || c.compacted+step <= c.applied-retain {
					t.Fatalf("applied %d retain %d: compacted %d, want in (%d, %d]", c.applied, retain, c.compacted, c.applied-retain-step, c.applied-retain)
				}
			}
			if c.compacted == 0 {
				t.Fatal("nothing was compacted")
			}
			// The change log starts after the compacted revision (a record at compacted itself is
			// never needed: watchers resume from a revision >= compacted and read what follows).
			var want []Change
			var wantLogged []uint64
			for _, ch := range g.changes {
				if ch.ResourceVersion >= c.compacted {
					wantLogged = append(wantLogged, ch.ResourceVersion)
				}
				if ch.ResourceVersion > c.compacted {
					want = append(want, ch)
				}
			}
			if got := changeLog(t, c.db); !slices.Equal(got, wantLogged) {
				t.Errorf("change log after compaction to %d holds %v,\n want the changes from %d on: %v", c.compacted, got, c.compacted, wantLogged)
			}
			got, _, err := readChanges(c.db, c.compacted, c.applied, 1<<20, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(formatChanges(got), formatChanges(want)) {
				t.Errorf("readChanges(compacted %d) differs from the applied changes:\n%s", c.compacted, firstDiff(formatChanges(got), formatChanges(want)))
			}
			// Every retained revision still reads as it was.
			g.checkHistoryFrom(t, "after compaction", c, c.compacted)
			c2, err := openCatalog(c.db, zap.NewNop(), retain)
			if err != nil {
				t.Fatal(err)
			}
			if c2.applied != c.applied || c2.compacted != c.compacted {
				t.Errorf("reopened: applied %d compacted %d, want %d %d", c2.applied, c2.compacted, c.applied, c.compacted)
			}
		})
	}
}

// TestReadChanges reads the change log back with bounds and a limit; it must give the changes
// apply returned, with each change's object and previous object.
func TestReadChanges(t *testing.T) {
	g := newLogGen(11)
	entries := g.entries(t, 2, 150)
	c := newTestCatalog(t, 1_000_000)
	_, changes := applyInBatches(t, c, entries, func() int { return 5 }, nil)
	if len(changes) < 20 {
		t.Fatalf("the log made only %d changes", len(changes))
	}
	mid := changes[len(changes)/2].ResourceVersion
	tests := []struct {
		name        string
		from, upTo  uint64
		limit       int
		wantFrom    int // index into changes
		wantThrough int // exclusive
	}{
		{"everything", 0, c.applied, 1 << 20, 0, len(changes)},
		{"after a change", mid, c.applied, 1 << 20, len(changes)/2 + 1, len(changes)},
		{"up to a change", 0, mid, 1 << 20, 0, len(changes)/2 + 1},
		{"limited", mid - 1, c.applied, 3, len(changes) / 2, len(changes)/2 + 3},
		{"from the end", c.applied, c.applied, 10, len(changes), len(changes)},
		{"empty window", mid, mid, 10, len(changes)/2 + 1, len(changes)/2 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more, err := readChanges(c.db, tt.from, tt.upTo, tt.limit, 0)
			if err != nil {
				t.Fatal(err)
			}
			if wantMore := tt.name == "limited"; more != wantMore {
				t.Errorf("readChanges(%d, %d, %d) more = %v, want %v", tt.from, tt.upTo, tt.limit, more, wantMore)
			}
			want := changes[tt.wantFrom:tt.wantThrough]
			if !slices.Equal(formatChanges(got), formatChanges(want)) {
				t.Errorf("readChanges(%d, %d, %d):\n%s", tt.from, tt.upTo, tt.limit, firstDiff(formatChanges(got), formatChanges(want)))
			}
		})
	}
}

// --- helpers

func formatOutcomes(out []outcome) []string {
	var s []string
	for _, o := range out {
		r := o.result
		var line string
		if r.GetStatus() != nil {
			line = fmt.Sprintf("%d %s", o.index, messages.ReasonName(r.GetStatus().GetReason()))
		} else {
			line = fmt.Sprintf("%d %s rv=%d", o.index, messages.OpJSON(r.GetOp()), r.GetResourceVersion())
			if r.GetObject() != nil {
				line += " " + string(r.GetObject())
			}
		}
		if r.GetRequestId() != "" {
			line += " id=" + r.GetRequestId()
		}
		s = append(s, line)
	}
	return s
}

func formatChanges(changes []Change) []string {
	var s []string
	for _, ch := range changes {
		name := ch.Key.GetName()
		if ch.Key.GetNamespace() != "default" || ch.Key.GetKind() != "Pod" {
			name = object.FormatKey(ch.Key)
		}
		s = append(s, fmt.Sprintf("%s %d %s %s prev=%s", ch.Type, ch.ResourceVersion, name, ch.Object, ch.Prev))
	}
	return s
}

func firstDiff(got, want []string) string {
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("  #%d of %d/%d\n  got  %s\n  want %s", i, len(got), len(want), g, w)
		}
	}
	return ""
}

// applyInBatches applies entries in batches of size() entries. With r set, a batch sometimes
// starts a few entries before the applied index, as a replay after a restart does.
func applyInBatches(t *testing.T, c *catalog, entries []*raftpb.Entry, size func() int, r *rand.Rand) ([]outcome, []Change) {
	t.Helper()
	var outcomes []outcome
	var changes []Change
	for i := 0; i < len(entries); {
		n := size()
		from := i
		if r != nil && r.IntN(4) == 0 {
			from = max(0, i-r.IntN(4))
		}
		out, ch := mustApply(t, c, entries[from:min(i+n, len(entries))]...)
		outcomes = append(outcomes, out...)
		changes = append(changes, ch...)
		i += n
	}
	return outcomes, changes
}

// logGen writes a random but plausible log: writes over a few keys, chosen knowing the state
// (a model: Apply over a map) so that preconditions hold about as often as they fail, with the
// NoOps, errors, empty entries and conf changes a real log has. It records the outcomes and
// changes the model makes and the state after every index.
type logGen struct {
	r        *rand.Rand
	keys     []*messages.ResourceKey
	state    map[string][]byte
	history  map[uint64]map[string][]byte // state after each index
	outcomes []outcome
	changes  []Change
	last     uint64
}

func newLogGen(seed uint64) *logGen {
	return &logGen{
		r: rand.New(rand.NewPCG(seed, 1)),
		keys: []*messages.ResourceKey{
			podKey("default", "a"), podKey("default", "b"), podKey("kube-system", "a"),
			{Version: "v1", Kind: "Namespace", Name: "prod"},
			{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "default", Name: "web"},
		},
		state:   map[string][]byte{},
		history: map[uint64]map[string][]byte{},
	}
}

func (g *logGen) value(k *messages.ResourceKey) []byte {
	o := object.Object{"apiVersion": object.APIVersion(k.GetGroup(), k.GetVersion()), "kind": k.GetKind(),
		"metadata": map[string]any{"name": k.GetName()}}
	if k.GetNamespace() != "" && g.r.IntN(3) > 0 { // sometimes left for the key to fill
		o.SetNamespace(k.GetNamespace())
	}
	if l := []string{"", "web", "db"}[g.r.IntN(3)]; l != "" {
		o["metadata"].(map[string]any)["labels"] = map[string]any{"app": l}
	}
	o["spec"] = map[string]any{"n": strconv.Itoa(g.r.IntN(3))}
	return o.Encode()
}

// rv picks a precondition: the stored resourceVersion, a stale one, or none.
func (g *logGen) rv(k *messages.ResourceKey, index uint64) uint64 {
	switch g.r.IntN(3) {
	case 0:
		if o, err := object.Decode(g.state[string(objectKey(k))]); err == nil {
			rv, _ := strconv.ParseUint(o.ResourceVersion(), 10, 64)
			return rv
		}
		return 0
	case 1:
		return 1 + g.r.Uint64N(index)
	}
	return 0
}

func (g *logGen) command(index uint64) *messages.Command {
	k := g.keys[g.r.IntN(len(g.keys))]
	cmd := &messages.Command{Key: k, Reason: messages.Reason_CONTROLLER, RequestId: fmt.Sprintf("r%d", index)}
	switch p := g.r.IntN(100); {
	case p < 20:
		cmd.Kind, cmd.Value = messages.CommandKind_PUT, g.value(k)
	case p < 30:
		cmd.Kind, cmd.Value = messages.CommandKind_CREATE, g.value(k)
	case p < 45:
		cmd.Kind, cmd.Value = messages.CommandKind_UPDATE, g.value(k)
		if rv := g.rv(k, index); rv != 0 {
			o, _ := object.Decode(cmd.Value)
			o.SetResourceVersion(rv)
			cmd.Value = o.Encode()
		}
	case p < 65:
		cmd.Kind, cmd.PatchType, cmd.ResourceVersion = messages.CommandKind_PATCH, messages.PatchType_MERGE_PATCH, g.rv(k, index)
		cmd.Patch = []byte([]string{
			fmt.Sprintf(`{"spec":{"n":"%d"}}`, g.r.IntN(3)),
			`{"metadata":{"labels":{"app":"web"}}}`,
			`{"metadata":{"labels":null}}`,
			`{"metadata":{"name":"renamed"}}`,
			`{"spec":{"extra":[1,{"deep":true}]}}`,
		}[g.r.IntN(5)])
	case p < 75:
		cmd.Kind, cmd.PatchType, cmd.ResourceVersion = messages.CommandKind_PATCH, messages.PatchType_JSON_PATCH, g.rv(k, index)
		cmd.Patch = []byte([]string{
			fmt.Sprintf(`[{"op":"replace","path":"/spec/n","value":"%d"}]`, g.r.IntN(3)),
			fmt.Sprintf(`[{"op":"test","path":"/spec/n","value":"%d"},{"op":"add","path":"/metadata/labels","value":{"t":"x"}}]`, g.r.IntN(3)),
			`[{"op":"remove","path":"/spec/missing"}]`,
		}[g.r.IntN(3)])
	default:
		cmd.Kind, cmd.ResourceVersion = messages.CommandKind_DELETE, g.rv(k, index)
	}
	if cmd.Kind == messages.CommandKind_PUT || cmd.Kind == messages.CommandKind_CREATE {
		cmd.StampUid = testUID(fmt.Sprint(index))
		cmd.StampTime = "2024-05-01T10:00:00Z"
	}
	return cmd
}

// entries generates n entries from index first on, applying each to the model.
func (g *logGen) entries(t *testing.T, first uint64, n int) []*raftpb.Entry {
	var out []*raftpb.Entry
	for index := first; index < first+uint64(n); index++ {
		g.last = index
		switch p := g.r.IntN(100); {
		case p < 4:
			out = append(out, emptyEntry(index))
		case p < 6:
			out = append(out, &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(1), Type: raftpb.EntryType_EntryConfChange.Enum(), Data: []byte{0x08, 0x01}})
		default:
			cmd := g.command(index)
			out = append(out, entry(t, index, cmd))
			key := string(objectKey(cmd.GetKey()))
			prev := g.state[key]
			res, err := Apply(prev, cmd, index)
			result := &messages.CommandResult{RequestId: cmd.GetRequestId(), Status: messages.StatusOf(err)}
			if err == nil {
				result.Op, result.ResourceVersion, result.Object = res.Op, res.ResourceVersion, res.Object
			}
			g.outcomes = append(g.outcomes, outcome{index, result})
			if typ := eventType(res.Op); err == nil && typ != 0 {
				g.changes = append(g.changes, Change{Type: typ, Key: cmd.GetKey(), ResourceVersion: index, Object: res.Object, Prev: prev})
				if typ == Deleted {
					delete(g.state, key)
				} else {
					g.state[key] = res.Object
				}
			}
		}
		g.history[index] = maps.Clone(g.state)
	}
	return out
}

// changeLog lists the indices the change log holds now.
func changeLog(t *testing.T, db *badger.DB) []uint64 {
	t.Helper()
	txn := db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixChange}})
	defer it.Close()
	var out []uint64
	for it.Rewind(); it.Valid(); it.Next() {
		out = append(out, binary.BigEndian.Uint64(it.Item().Key()[1:]))
	}
	return out
}

func (g *logGen) checkHistory(t *testing.T, name string, c *catalog) {
	g.checkHistoryFrom(t, name, c, 2)
}

// checkHistoryFrom reads every key at every revision from `from` on and compares with the model.
func (g *logGen) checkHistoryFrom(t *testing.T, name string, c *catalog, from uint64) {
	t.Helper()
	bad := 0
	for index := from; index <= g.last; index++ {
		for _, k := range g.keys {
			got, want := readAt(t, c.db, k, index), g.history[index][string(objectKey(k))]
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %s at %d:\n got  %s\n want %s", name, object.FormatKey(k), index, got, want)
				if bad++; bad > 5 {
					t.FailNow()
				}
			}
		}
	}
}

// TestCatalogAppliesAgainAfterItsDurablePoint: at start the catalog takes its applied index
// from the durable point, not from Badger (whose recovered state after a power loss need not
// be a prefix of what was written), and applying the Raft log again from there gives the same
// bytes. A durable point ahead of what Badger holds is damage, reported.
func TestCatalogAppliesAgainAfterItsDurablePoint(t *testing.T) {
	dir := t.TempDir()
	db, err := OpenStore(StoreOptions{Dir: filepath.Join(dir, "catalog"), Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := openCatalog(db, zap.NewNop(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	a, b := podKey("default", "a"), podKey("default", "b")
	log := []*raftpb.Entry{
		entry(t, 2, putCmd(a, podValue("default", "a", "", `{"n":1}`))),
		entry(t, 3, putCmd(b, podValue("default", "b", "", ""))),
		entry(t, 4, mergePatchCmd(a, `{"spec":{"n":2}}`)),
		entry(t, 5, putCmd(a, podValue("default", "a", "", `{"n":3}`))),
		entry(t, 6, deleteCmd(b)),
		entry(t, 7, mergePatchCmd(a, `{"spec":{"n":4}}`)),
	}
	want, _ := mustApply(t, c, log...)
	before := allVersions(t, db, nil)
	if err := syncStore(db, 4); err != nil { // as if the sync began after entry 4
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = OpenStore(StoreOptions{Dir: filepath.Join(dir, "catalog"), Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err = openCatalog(db, zap.NewNop(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if c.applied != 4 {
		t.Fatalf("reopened at applied %d, want the durable point 4", c.applied)
	}
	got, _ := mustApply(t, c, log...) // raft hands back the log after its snapshot
	if len(got) != 3 {
		t.Fatalf("applied again: %d outcomes, want those of 5-7", len(got))
	}
	for i, o := range got {
		if w := want[3+i]; o.index != w.index || !proto.Equal(o.result, w.result) {
			t.Errorf("applied again: entry %d gave %v, first %v", o.index, o.result, w.result)
		}
	}
	if after := allVersions(t, db, nil); !slices.Equal(before, after) {
		t.Errorf("applying again changed the store:\n%s", diffVersions(before, after))
	}

	if err := writeDurable(durablePath(db), 99); err != nil {
		t.Fatal(err)
	}
	if _, err := openCatalog(db, zap.NewNop(), 1000); err == nil || !strings.Contains(err.Error(), "lost writes") {
		t.Errorf("a durable point ahead of the catalog: %v, want an error saying Badger lost writes", err)
	}
}

// TestCatalogStoresLargeObjectsInParts: an object over partSize is stored as a header and parts
// at its revision, so that every byte stays in Badger's LSM tree (a value at its 1 MiB value
// threshold would go to the value log, which GC did not reclaim). Every read path gives the
// whole object at every revision, and a smaller version or a delete removes the parts it no
// longer uses.
func TestCatalogStoresLargeObjectsInParts(t *testing.T) {
	c := newTestCatalog(t, 1000)
	a := podKey("default", "a")
	sized := func(n int) []byte { // a pod of about n bytes of spec
		return podValue("default", "a", "", `{"s":"`+strings.Repeat("x", n)+`"}`)
	}
	versions := []struct {
		name string
		cmd  *messages.Command
		size int // bytes of spec; 0 for the delete
	}{
		{"1.4 MiB", putCmd(a, sized(1400<<10)), 1400 << 10},
		{"700 KiB", putCmd(a, sized(700<<10)), 700 << 10},
		{"100 bytes", putCmd(a, sized(100)), 100},
		{"1.2 MiB", putCmd(a, sized(1200<<10)), 1200 << 10},
		{"deleted", deleteCmd(a), 0},
	}
	want := map[uint64][]byte{} // revision -> the object stored then (nil: absent)
	for i, v := range versions {
		idx := uint64(2 + i)
		_, changes := mustApply(t, c, entry(t, idx, v.cmd))
		if len(changes) != 1 {
			t.Fatalf("%s: %d changes", v.name, len(changes))
		}
		if v.size > 0 {
			want[idx] = changes[0].Object
			if len(changes[0].Object) < v.size {
				t.Fatalf("%s: stored %d bytes", v.name, len(changes[0].Object))
			}
		} else {
			want[idx] = nil
		}
	}
	for rv, obj := range want {
		res := readGet(c.db, &messages.GetRequest{Key: a, ResourceVersion: rv}, rv)
		if obj == nil {
			if !messages.IsNotFound(res.GetStatus().Err()) {
				t.Errorf("get at %d: %v, want NotFound", rv, res.GetStatus())
			}
			continue
		}
		if !bytes.Equal(res.GetObject(), obj) {
			t.Errorf("get at %d: %d bytes, want the %d stored", rv, len(res.GetObject()), len(obj))
		}
		p, err := planList(&messages.ListRequest{Version: "v1", Kind: "Pod", Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		p.ts = rv
		if l := readList(c.db, p); len(l.GetItems()) != 1 || !bytes.Equal(l.GetItems()[0], obj) {
			t.Errorf("list at %d: %d items, want the object", rv, len(l.GetItems()))
		}
		s := readSnapshot(c.db, planSnapshot(&Snapshot{Version: "v1", Kind: "Pod", Namespace: "default"}), rv)
		if len(s.Objects) != 1 || !bytes.Equal(s.Objects[0], obj) {
			t.Errorf("snapshot at %d: %d objects, want the object", rv, len(s.Objects))
		}
	}
	chs, _, err := readChanges(c.db, 1, 6, 100, 0)
	if err != nil || len(chs) != 5 {
		t.Fatalf("history: %d changes, %v", len(chs), err)
	}
	for i, ch := range chs {
		rv := uint64(2 + i)
		if wantObj := want[rv]; wantObj != nil && !bytes.Equal(ch.Object, wantObj) {
			t.Errorf("history at %d: object of %d bytes, want %d", rv, len(ch.Object), len(wantObj))
		}
		if prev := want[rv-1]; rv > 2 && !bytes.Equal(ch.Prev, prev) {
			t.Errorf("history at %d: previous object of %d bytes, want %d", rv, len(ch.Prev), len(prev))
		}
	}
	// Nothing of the parts is live once the object is gone, and no value is over a part.
	txn := c.db.NewTransactionAt(6, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if it.Item().Key()[0] == prefixPart {
			t.Errorf("part %q is still there after the delete", it.Item().Key())
		}
		if n := it.Item().ValueSize(); n > partSize {
			t.Errorf("%q holds %d bytes, over a part", it.Item().Key(), n)
		}
	}
}
