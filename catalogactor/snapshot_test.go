package catalogactor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/kstore/kstore/messages"
)

// snapSource is a catalog with history: random writes over a few keys, a large object (stored
// in parts) whose only version is below the compacted revision, and another whose versions
// (puts of several sizes, a delete, a patch) are above it. Entries are applied in batches of 7
// (index 2..8, 9..15, ...), compacting after each, keeping 40 revisions.
type snapSource struct {
	c   *catalog
	big *messages.ResourceKey
}

const (
	snapSourceApplied = 243
	snapSourceFloor   = snapSourceApplied - 40 // the compacted revision after the last batch
)

func newSnapSource(t *testing.T) snapSource {
	t.Helper()
	sized := func(name string, n int) []byte {
		return podValue("default", name, "", `{"s":"`+strings.Repeat("x", n)+`"}`)
	}
	g := newLogGen(5)
	s := snapSource{c: newTestCatalog(t, 40), big: podKey("default", "big")}
	old := podKey("default", "big-old")
	entries := g.entries(t, 2, 150) // 2..151
	entries = append(entries, entry(t, 152, putCmd(old, sized("big-old", 1200<<10))))
	entries = append(entries, g.entries(t, 153, 60)...) // 153..212
	for i, cmd := range []*messages.Command{
		putCmd(s.big, sized("big", 1400<<10)), // 213
		putCmd(s.big, sized("big", 700<<10)),  // 214
		putCmd(s.big, sized("big", 100)),      // 215
		deleteCmd(s.big),                      // 216
		putCmd(s.big, sized("big", 1200<<10)), // 217
		mergePatchCmd(s.big, `{"spec":{"t":"1"}}`),
	} {
		entries = append(entries, entry(t, 213+uint64(i), cmd))
	}
	entries = append(entries, g.entries(t, 219, 25)...) // 219..243
	for i := 0; i < len(entries); i += 7 {
		mustApply(t, s.c, entries[i:min(i+7, len(entries))]...)
		if err := s.c.compact(s.c.applied); err != nil {
			t.Fatal(err)
		}
	}
	if s.c.applied != snapSourceApplied || s.c.compacted != snapSourceFloor {
		t.Fatalf("source catalog: applied %d compacted %d, want %d %d", s.c.applied, s.c.compacted, snapSourceApplied, snapSourceFloor)
	}
	return s
}

func exportChunks(t *testing.T, db *badger.DB, ts uint64, maxChunk int) [][]byte {
	t.Helper()
	var chunks [][]byte
	if err := exportSnapshot(db, ts, maxChunk, func(c []byte) error { chunks = append(chunks, c); return nil }); err != nil {
		t.Fatalf("exportSnapshot(%d, %d): %v", ts, maxChunk, err)
	}
	return chunks
}

// installChunks stages chunks in dir and finishes.
func installChunks(t *testing.T, dir string, chunks [][]byte) (applied, compacted uint64) {
	t.Helper()
	inst, err := newSnapshotInstaller(StoreOptions{Dir: dir, Logger: zap.NewNop(), MemTableSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range chunks {
		if err := inst.write(c); err != nil {
			inst.abort()
			t.Fatalf("write chunk %d of %d: %v", i, len(chunks), err)
		}
	}
	applied, compacted, err = inst.finish()
	if err != nil {
		inst.abort()
		t.Fatalf("finish: %v", err)
	}
	return applied, compacted
}

func openTestStore(t *testing.T, dir string) *badger.DB {
	t.Helper()
	db, err := OpenStore(StoreOptions{Dir: dir, Logger: zap.NewNop(), MemTableSize: 8 << 20})
	if err != nil {
		t.Fatalf("OpenStore(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close %s: %v", dir, err)
		}
	})
	return db
}

func mustDigest(t *testing.T, db *badger.DB, ts uint64) string {
	t.Helper()
	d, err := Digest(db, ts)
	if err != nil {
		t.Fatalf("Digest(%d): %v", ts, err)
	}
	return d
}

// compareReads checks that every object at every revision in [from, to], and the change log
// after from, read the same on both catalogs.
func compareReads(t *testing.T, src, dst *badger.DB, from, to uint64) {
	t.Helper()
	all := planSnapshot(&Snapshot{AllTypes: true, Limit: 1 << 20})
	for r := from; r <= to; r++ {
		a, b := readSnapshot(src, all, r), readSnapshot(dst, all, r)
		if a.Err != nil || b.Err != nil {
			t.Fatalf("read every object at %d: source %v, installed %v", r, a.Err, b.Err)
		}
		if len(a.Objects) != len(b.Objects) {
			t.Fatalf("at %d: the source has %d objects, the installed catalog %d", r, len(a.Objects), len(b.Objects))
		}
		for i := range a.Objects {
			if !bytes.Equal(a.Objects[i], b.Objects[i]) || a.Keys[i].String() != b.Keys[i].String() {
				t.Fatalf("at %d, object #%d: source %v (%d bytes), installed %v (%d bytes)", r, i, a.Keys[i], len(a.Objects[i]), b.Keys[i], len(b.Objects[i]))
			}
		}
	}
	a, _, errA := readChanges(src, from, to, 1<<20, 0)
	b, _, errB := readChanges(dst, from, to, 1<<20, 0)
	if errA != nil || errB != nil {
		t.Fatalf("readChanges(%d, %d): source %v, installed %v", from, to, errA, errB)
	}
	fa, fb := formatChanges(a), formatChanges(b)
	if len(fa) != len(fb) {
		t.Fatalf("readChanges(%d, %d): %d changes on the source, %d installed", from, to, len(fa), len(fb))
	}
	for i := range fa {
		if fa[i] != fb[i] {
			t.Fatalf("readChanges(%d, %d): change #%d (rv %d) differs", from, to, i, a[i].ResourceVersion)
		}
	}
}

// TestSnapshotExportInstall exports a catalog at an index, installs the chunks in a new
// directory and opens it as a catalog: it starts at the snapshot's index with the source's
// compacted revision, has the source's digest, and reads like the source at every revision in
// between, large objects included. ts inside a batch and after the catalog compacted past the
// compacted revision it had at ts takes the newer one as the history's start.
func TestSnapshotExportInstall(t *testing.T) {
	s := newSnapSource(t)
	tests := []struct {
		name     string
		ts       uint64
		maxChunk int
	}{
		{"at applied, 4 KiB chunks", snapSourceApplied, 4 << 10},
		{"at applied, one chunk", snapSourceApplied, 64 << 20},
		{"at applied, a record a chunk", snapSourceApplied, 1},
		{"inside a batch, between versions of a large object", 215, 4 << 10},
		{"inside a batch, the large object deleted", 216, 64 << 10},
	}
	digests := map[uint64]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := exportChunks(t, s.c.db, tt.ts, tt.maxChunk)
			if tt.maxChunk < 1<<20 && len(chunks) < 10 {
				t.Errorf("%d chunks of at most %d bytes: want many", len(chunks), tt.maxChunk)
			}
			records := 0
			for i, b := range chunks {
				c, err := parseChunk(b)
				if err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
				n := len(c.records)
				if c.end != nil {
					n++
				}
				records += len(c.records)
				if c.ts != tt.ts || c.floor != snapSourceFloor || c.seq != uint64(i) || n == 0 {
					t.Errorf("chunk %d: ts %d floor %d seq %d, %d records; want ts %d floor %d seq %d", i, c.ts, c.floor, c.seq, n, tt.ts, snapSourceFloor, i)
				}
				if len(b) > tt.maxChunk && n > 1 {
					t.Errorf("chunk %d: %d bytes, %d records, over the %d asked", i, len(b), n, tt.maxChunk)
				}
				if (c.end != nil) != (i == len(chunks)-1) {
					t.Errorf("chunk %d of %d: end record %v", i, len(chunks), c.end != nil)
				}
			}

			dir := filepath.Join(t.TempDir(), "catalog.staging")
			applied, compacted := installChunks(t, dir, chunks)
			if applied != tt.ts || compacted != snapSourceFloor {
				t.Errorf("installed: applied %d compacted %d, want %d %d", applied, compacted, tt.ts, snapSourceFloor)
			}
			if d, ok, err := readDurableFile(durableFileOf(dir)); err != nil || !ok || d != tt.ts {
				t.Errorf("installed durable point: %d %v %v, want %d", d, ok, err, tt.ts)
			}
			db := openTestStore(t, dir)
			c, err := openCatalog(db, zap.NewNop(), 40)
			if err != nil {
				t.Fatal(err)
			}
			if c.applied != tt.ts || c.compacted != snapSourceFloor {
				t.Errorf("opened: applied %d compacted %d, want %d %d", c.applied, c.compacted, tt.ts, snapSourceFloor)
			}
			want := mustDigest(t, s.c.db, tt.ts)
			if got := mustDigest(t, db, tt.ts); got != want {
				t.Errorf("installed digest at %d: %s, the source's %s", tt.ts, got, want)
			}
			if d, ok := digests[tt.ts]; ok && d != want {
				t.Errorf("digest at %d: %s, another time %s", tt.ts, want, d)
			}
			digests[tt.ts] = want
			compareReads(t, s.c.db, db, snapSourceFloor, tt.ts)
			for _, rv := range []uint64{214, 215, tt.ts} {
				if rv > tt.ts {
					continue
				}
				a := readGet(s.c.db, &messages.GetRequest{Key: s.big, ResourceVersion: rv}, rv)
				b := readGet(db, &messages.GetRequest{Key: s.big, ResourceVersion: rv}, rv)
				if !bytes.Equal(a.GetObject(), b.GetObject()) || a.GetStatus().GetReason() != b.GetStatus().GetReason() {
					t.Errorf("get the large object at %d: source %d bytes %v, installed %d bytes %v", rv, len(a.GetObject()), a.GetStatus(), len(b.GetObject()), b.GetStatus())
				}
			}
			if records < 25 {
				t.Errorf("the snapshot carries %d records", records)
			}
		})
	}
	if digests[215] == digests[snapSourceApplied] {
		t.Error("the digests at 215 and at the applied index are the same")
	}
}

// TestSnapshotInstalledCatalogContinues: a catalog installed from a snapshot at the applied
// index, then given the same entries as its source, stays identical to it.
func TestSnapshotInstalledCatalogContinues(t *testing.T) {
	s := newSnapSource(t)
	dir := filepath.Join(t.TempDir(), "catalog.staging")
	installChunks(t, dir, exportChunks(t, s.c.db, snapSourceApplied, 16<<10))
	c, err := openCatalog(openTestStore(t, dir), zap.NewNop(), 40)
	if err != nil {
		t.Fatal(err)
	}
	more := newLogGen(9).entries(t, snapSourceApplied+1, 60)
	for i := 0; i < len(more); i += 5 {
		for _, cat := range []*catalog{s.c, c} {
			mustApply(t, cat, more[i:min(i+5, len(more))]...)
			if err := cat.compact(cat.applied); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c.applied != s.c.applied || c.compacted != s.c.compacted {
		t.Fatalf("installed: applied %d compacted %d; source %d %d", c.applied, c.compacted, s.c.applied, s.c.compacted)
	}
	if got, want := mustDigest(t, c.db, c.applied), mustDigest(t, s.c.db, c.applied); got != want {
		t.Errorf("digest at %d: installed %s, source %s", c.applied, got, want)
	}
	compareReads(t, s.c.db, c.db, c.compacted, c.applied)
}

// TestSnapshotDigestAcrossReplicas: two catalogs that applied the same log in other batches
// compact at other revisions; from a revision neither compacted past, their digests agree.
func TestSnapshotDigestAcrossReplicas(t *testing.T) {
	entries := newLogGen(21).entries(t, 2, 300)
	var cats []*catalog
	for _, size := range []int{3, 11} {
		c := newTestCatalog(t, 50)
		for i := 0; i < len(entries); i += size {
			mustApply(t, c, entries[i:min(i+size, len(entries))]...)
			if i/size%5 != 1 { // compactions that fall after other batches
				continue
			}
			if err := c.compact(c.applied); err != nil {
				t.Fatal(err)
			}
		}
		cats = append(cats, c)
	}
	from := max(cats[0].compacted, cats[1].compacted)
	if cats[0].compacted == cats[1].compacted {
		t.Fatalf("both compacted to %d: the test needs replicas that compacted differently", from)
	}
	var got []string
	for _, c := range cats {
		d, err := DigestFrom(c.db, from, c.applied)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d)
	}
	if got[0] != got[1] {
		t.Errorf("DigestFrom(%d, %d): %s and %s", from, cats[0].applied, got[0], got[1])
	}
	if _, err := DigestFrom(cats[0].db, cats[0].applied+1, cats[0].applied); err == nil {
		t.Error("DigestFrom after ts: no error")
	}
}

func writeVersions(t *testing.T, db *badger.DB, vs []version) {
	t.Helper()
	wb := db.NewManagedWriteBatch()
	defer wb.Cancel()
	for _, v := range vs {
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
}

// snapBase is a catalog's raw versions at ts 20 with compacted revision 10.
var snapBase = []version{
	{key: string(keyApplied), ts: 15, value: string(u64(15))},
	{key: string(keyApplied), ts: 20, value: string(u64(20))},
	{key: string(keyCompacted), ts: 18, value: string(u64(10))},
	{key: "o\x00a", ts: 5, value: "a5"},
	{key: "o\x00a", ts: 12, value: "a12"},
	{key: "o\x00a", ts: 14, deleted: true},
	{key: "o\x00a", ts: 17, value: "a17"},
	{key: "o\x00b", ts: 3, value: "b3"},
	{key: "o\x00b", ts: 9, value: "b9"},
	{key: string(changeKey(8)), ts: 8, value: "\x01o\x00a"},
	{key: string(changeKey(8)), ts: 18, deleted: true},
	{key: string(changeKey(11)), ts: 11, value: "\x02o\x00a"},
}

func snapRecords(t *testing.T, chunks [][]byte) []string {
	t.Helper()
	var out []string
	for _, b := range chunks {
		c, err := parseChunk(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range c.records {
			s := fmt.Sprintf("%q@%d", r.key, r.version)
			if r.kind == recDelete {
				s += " deleted"
			} else {
				s += fmt.Sprintf(" = %q", r.value)
			}
			out = append(out, s)
		}
	}
	return out
}

// TestSnapshotCarriesTheHistoryAboveTheFloor states what a snapshot carries: every version
// above the compacted revision, deletes included, the newest version at or below it, the change
// log from it on, and the meta keys as one version at ts.
func TestSnapshotCarriesTheHistoryAboveTheFloor(t *testing.T) {
	db := openTestDB(t, true)
	writeVersions(t, db, snapBase)
	got := snapRecords(t, exportChunks(t, db, 20, 1<<20))
	want := []string{
		`"c\x00\x00\x00\x00\x00\x00\x00\v"@11 = "\x02o\x00a"`,
		`"m\x00applied"@20 = "\x00\x00\x00\x00\x00\x00\x00\x14"`,
		`"m\x00compacted"@20 = "\x00\x00\x00\x00\x00\x00\x00\n"`,
		`"o\x00a"@17 = "a17"`,
		`"o\x00a"@14 deleted`,
		`"o\x00a"@12 = "a12"`,
		`"o\x00a"@5 = "a5"`,
		`"o\x00b"@9 = "b9"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("snapshot at 20 carries\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestSnapshotDigest: the digest changes with what a read at a revision in [compacted, ts]
// sees, and with nothing else.
func TestSnapshotDigest(t *testing.T) {
	base := openTestDB(t, true)
	writeVersions(t, base, snapBase)
	want := mustDigest(t, base, 20)
	tests := []struct {
		name  string
		extra []version
		same  bool
	}{
		{"a version older than the newest at the floor", []version{{key: "o\x00b", ts: 2, value: "b2"}}, true},
		{"a version after ts", []version{{key: "o\x00a", ts: 25, value: "a25"}}, true},
		{"a key deleted at the floor", []version{{key: "o\x00d", ts: 4, value: "d"}, {key: "o\x00d", ts: 10, deleted: true}}, true},
		{"the change log below the floor", []version{{key: string(changeKey(5)), ts: 5, value: "\x01o\x00b"}, {key: string(changeKey(5)), ts: 19, deleted: true}}, true},
		{"the applied index written at another batch's end", []version{{key: string(keyApplied), ts: 19, value: string(u64(19))}}, true},
		{"the compacted revision written at another index", []version{{key: string(keyCompacted), ts: 16, value: string(u64(10))}}, true},
		{"a version above the floor", []version{{key: "o\x00a", ts: 13, value: "a13"}}, false},
		{"a delete above the floor", []version{{key: "o\x00b", ts: 11, deleted: true}}, false},
		{"another version at the floor", []version{{key: "o\x00b", ts: 10, value: "b10"}}, false},
		{"a change-log record at the floor", []version{{key: string(changeKey(10)), ts: 10, value: "\x02o\x00b"}}, false},
		{"a newer compacted revision", []version{{key: string(keyCompacted), ts: 19, value: string(u64(12))}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestDB(t, true)
			writeVersions(t, db, append(slices.Clone(snapBase), tt.extra...))
			if got := mustDigest(t, db, 20); (got == want) != tt.same {
				t.Errorf("digest %s, the base's %s: want same %v", got, want, tt.same)
			}
		})
	}
}

// TestSnapshotExportRefuses an index the catalog has not applied, or has compacted past.
func TestSnapshotExportRefuses(t *testing.T) {
	c := newTestCatalog(t, 5)
	entries := newLogGen(3).entries(t, 2, 30)
	for i := range entries {
		mustApply(t, c, entries[i])
		if err := c.compact(c.applied); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		ts       uint64
		maxChunk int
		want     error // matched with errors.Is when set
	}{
		{"past the applied index", c.applied + 1, 1024, nil},
		{"compacted", c.compacted - 1, 1024, errSnapshotCompacted},
		{"index 0", 0, 1024, nil},
		{"no chunk size", c.applied, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := exportSnapshot(c.db, tt.ts, tt.maxChunk, func([]byte) error { t.Fatal("a chunk"); return nil })
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("exportSnapshot(%d, %d): %v, want %v", tt.ts, tt.maxChunk, err, tt.want)
			}
		})
	}
	stop := errors.New("stop")
	if err := exportSnapshot(c.db, c.applied, 64, func([]byte) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("exportSnapshot with a failing emit: %v, want emit's error", err)
	}
}

// TestSnapshotInstallerRefuses chunks of another snapshot, out of order, damaged or missing; the
// installer then refuses everything, and abort removes the staged catalog.
func TestSnapshotInstallerRefuses(t *testing.T) {
	c := newTestCatalog(t, 1000)
	mustApply(t, c, newLogGen(4).entries(t, 2, 40)...)
	chunks := exportChunks(t, c.db, c.applied, 256)
	other := exportChunks(t, c.db, c.applied-1, 256)
	if len(chunks) < 4 || len(other) < 4 {
		t.Fatalf("%d and %d chunks, want at least 4", len(chunks), len(other))
	}
	n := len(chunks)
	changed := func(b []byte, f func([]byte)) []byte { b = bytes.Clone(b); f(b); return b }
	tests := []struct {
		name string
		give [][]byte
		want error // nil: finish succeeds
	}{
		{"the whole snapshot", chunks, nil},
		{"a chunk of another snapshot", append([][]byte{chunks[0], other[1]}, chunks[2:]...), errSnapshotMismatch},
		{"a chunk missing", append([][]byte{chunks[0]}, chunks[2:]...), errSnapshotDamaged},
		{"a chunk twice", append([][]byte{chunks[0], chunks[1]}, chunks[1:]...), errSnapshotDamaged},
		{"the first chunk missing", chunks[1:], errSnapshotDamaged},
		{"an unknown format", append([][]byte{changed(chunks[0], func(b []byte) { b[0] = 9 })}, chunks[1:]...), errSnapshotDamaged},
		{"a truncated chunk", append([][]byte{chunks[0], chunks[1][:len(chunks[1])-1]}, chunks[2:]...), errSnapshotDamaged},
		{"a changed byte", append([][]byte{chunks[0], changed(chunks[1], func(b []byte) { b[len(b)-1] ^= 1 })}, chunks[2:]...), errSnapshotDamaged},
		{"no end", chunks[:n-1], errSnapshotIncomplete},
		{"a chunk after the end", append(slices.Clone(chunks), chunks[n-1]), errSnapshotDamaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "catalog.staging")
			inst, err := newSnapshotInstaller(StoreOptions{Dir: dir, Logger: zap.NewNop(), MemTableSize: 8 << 20})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range tt.give {
				if err = inst.write(b); err != nil {
					break
				}
			}
			if err == nil {
				_, _, err = inst.finish()
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("install: %v", err)
				}
			} else {
				if !errors.Is(err, tt.want) {
					t.Fatalf("install: %v, want %v", err, tt.want)
				}
				if err := inst.write(chunks[0]); err == nil {
					t.Error("write after an error: no error")
				}
				if _, _, err := inst.finish(); err == nil {
					t.Error("finish after an error: no error")
				}
			}
			if err := inst.abort(); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{dir, durableFileOf(dir)} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("after abort, %s: %v", p, err)
				}
			}
		})
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newSnapshotInstaller(StoreOptions{Dir: dir, Logger: zap.NewNop()}); err == nil {
		t.Error("newSnapshotInstaller in a directory that is not empty: no error")
	}
}

// TestSnapshotSwap interrupts the swap of a staged catalog at every step, as a crash would, and
// checks that recoverInstall leaves the complete old catalog or the complete new one.
func TestSnapshotSwap(t *testing.T) {
	tmpl := t.TempDir()
	cat := filepath.Join(tmpl, "catalog")
	// The old catalog: a few entries, durable.
	db, err := OpenStore(StoreOptions{Dir: cat, Logger: zap.NewNop(), MemTableSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	old, err := openCatalog(db, zap.NewNop(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, old, newLogGen(1).entries(t, 2, 5)...)
	if err := syncStore(db, old.applied); err != nil {
		t.Fatal(err)
	}
	oldApplied, oldDigest := old.applied, mustDigest(t, db, old.applied)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// The new one, staged beside it from a snapshot of another catalog.
	src := newTestCatalog(t, 1000)
	mustApply(t, src, newLogGen(2).entries(t, 2, 30)...)
	newApplied, newDigest := src.applied, mustDigest(t, src.db, src.applied)
	installChunks(t, stagingDirOf(cat), exportChunks(t, src.db, newApplied, 1024))

	oldFiles := []string{"catalog", "catalog.durable"}
	stagedFiles := []string{"catalog", "catalog.durable", "catalog.staging", "catalog.staging.durable"}
	type crash func(t *testing.T, p swapPaths)
	marker := func(steps int) crash {
		return func(t *testing.T, p swapPaths) {
			if err := writeFileDurably(p.marker, []byte(filepath.Base(p.staged))); err != nil {
				t.Fatal(err)
			}
			for _, step := range p.forward()[:steps] {
				if err := step(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	noStagedDurable := func(t *testing.T, p swapPaths) {
		if err := os.Remove(durableFileOf(p.staged)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		crash      crash
		wantNew    bool
		wantFiles  []string
		wantStaged uint64 // recoverInstall's report
	}{
		{"before the marker", func(*testing.T, swapPaths) {}, false, stagedFiles, newApplied},
		{"while writing the marker", func(t *testing.T, p swapPaths) {
			if err := os.WriteFile(p.marker+".tmp", []byte("catalog.sta"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false, stagedFiles, newApplied},
		{"an incomplete staged catalog", noStagedDurable, false, oldFiles, 0},
		{"an incomplete staged catalog with a marker", func(t *testing.T, p swapPaths) {
			noStagedDurable(t, p)
			if err := writeFileDurably(p.marker, []byte(filepath.Base(p.staged))); err != nil {
				t.Fatal(err)
			}
		}, false, oldFiles, 0},
		{"after the old catalog's removal", func(t *testing.T, p swapPaths) {
			marker(len(p.forward()))(t, p)
		}, true, oldFiles, 0},
		{"no crash", func(t *testing.T, p swapPaths) {
			if err := installStaged(p.cat, p.staged); err != nil {
				t.Fatal(err)
			}
		}, true, oldFiles, 0},
	}
	for steps := range len(swapPaths{}.forward()) {
		tests = append(tests, struct {
			name       string
			crash      crash
			wantNew    bool
			wantFiles  []string
			wantStaged uint64
		}{fmt.Sprintf("the marker and %d steps", steps), marker(steps), true, oldFiles, 0})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(tmpl)); err != nil {
				t.Fatal(err)
			}
			c := filepath.Join(dir, "catalog")
			p, err := newSwapPaths(c, stagingDirOf(c))
			if err != nil {
				t.Fatal(err)
			}
			tt.crash(t, p)
			for i := range 2 { // a crash during recovery: it runs again
				staged, err := recoverInstall(c)
				if err != nil {
					t.Fatalf("recoverInstall #%d: %v", i, err)
				}
				if staged != tt.wantStaged {
					t.Errorf("recoverInstall #%d: staged catalog at %d, want %d", i, staged, tt.wantStaged)
				}
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, e := range ents {
				files = append(files, e.Name())
			}
			if !slices.Equal(files, tt.wantFiles) {
				t.Errorf("after recovery the data dir holds %v, want %v", files, tt.wantFiles)
			}
			wantApplied, wantDigest := oldApplied, oldDigest
			if tt.wantNew {
				wantApplied, wantDigest = newApplied, newDigest
			}
			if d, ok, err := readDurableFile(durableFileOf(c)); err != nil || !ok || d != wantApplied {
				t.Errorf("durable point %d %v %v, want %d", d, ok, err, wantApplied)
			}
			db, err := OpenStore(StoreOptions{Dir: c, Logger: zap.NewNop(), MemTableSize: 8 << 20})
			if err != nil {
				t.Fatal(err)
			}
			applied, _, err := loadMeta(db)
			if err == nil && applied == wantApplied {
				if d := mustDigest(t, db, applied); d != wantDigest {
					t.Errorf("the catalog at %d has digest %s, want %s", applied, d, wantDigest)
				}
			} else {
				t.Errorf("the catalog: applied %d (%v), want %d", applied, err, wantApplied)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(tmpl)); err != nil {
			t.Fatal(err)
		}
		c := filepath.Join(dir, "catalog")
		if err := installStaged(c, filepath.Join(t.TempDir(), "catalog.staging")); err == nil {
			t.Error("installStaged from another directory: no error")
		}
		if err := os.Remove(durableFileOf(stagingDirOf(c))); err != nil {
			t.Fatal(err)
		}
		if err := installStaged(c, stagingDirOf(c)); err == nil {
			t.Error("installStaged of an incomplete staged catalog: no error")
		}
	})
}
