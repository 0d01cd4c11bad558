package wal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"
)

// op is one call on a WAL in a table test; reopen closes and opens again.
type op struct {
	hs     *raftpb.HardState
	ents   []*raftpb.Entry
	snap   *raftpb.SnapshotMetadata
	reopen bool
}

func apply(t *testing.T, dir string, opts Options, w *WAL, ops []op) *WAL {
	t.Helper()
	for k, o := range ops {
		var err error
		switch {
		case o.reopen:
			mustClose(t, w)
			w, _ = mustOpen(t, dir, opts)
		case o.snap != nil:
			err = w.SaveSnapshot(o.snap)
		default:
			err = w.Save(o.hs, o.ents, true)
		}
		if err != nil {
			t.Fatalf("op %d: %v", k, err)
		}
	}
	return w
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		give []op
		want string
	}{
		{
			name: "empty",
			want: "hs=none snap=none ents=[]",
		},
		{
			name: "entries and hardstates",
			give: []op{
				{hs: hardState(1, 1, 0), ents: ents(1, 3, 1)},
				{hs: hardState(1, 1, 3)},
				{ents: ents(4, 5, 1)},
			},
			want: "hs=1/1/3 snap=none ents=[1@1:d1 2@1:d2 3@1:d3 4@1:d4 5@1:d5]",
		},
		{
			name: "empty hardstate is not written",
			give: []op{
				{hs: hardState(2, 1, 1), ents: ents(1, 1, 2)},
				{hs: &raftpb.HardState{}},
				{hs: nil},
			},
			want: "hs=2/1/1 snap=none ents=[1@2:d1]",
		},
		{
			name: "overwrite rule drops the conflicting suffix",
			give: []op{
				{hs: hardState(1, 1, 2), ents: ents(1, 6, 1)},
				{hs: hardState(2, 2, 2), ents: ents(4, 5, 2)},
			},
			want: "hs=2/2/2 snap=none ents=[1@1:d1 2@1:d2 3@1:d3 4@2:d4 5@2:d5]",
		},
		{
			name: "overwrite across a reopen",
			give: []op{
				{hs: hardState(1, 1, 2), ents: ents(1, 6, 1)},
				{reopen: true},
				{hs: hardState(3, 3, 2), ents: ents(3, 3, 3)},
				{reopen: true},
				{ents: ents(4, 4, 3)},
			},
			want: "hs=3/3/2 snap=none ents=[1@1:d1 2@1:d2 3@3:d3 4@3:d4]",
		},
		{
			name: "compaction snapshot keeps the entries after it",
			give: []op{
				{hs: hardState(1, 1, 8), ents: ents(1, 10, 1)},
				{snap: snapMeta(8, 1)},
			},
			want: "hs=1/1/8 snap=8@1 voters=[1 2 3] ents=[9@1:d9 10@1:d10]",
		},
		{
			name: "entries at or below the snapshot are dropped",
			give: []op{
				{snap: snapMeta(5, 2)},
				{hs: hardState(2, 1, 5), ents: ents(3, 7, 2)},
			},
			want: "hs=2/1/5 snap=5@2 voters=[1 2 3] ents=[6@2:d6 7@2:d7]",
		},
		{
			name: "leader snapshot with a different term replaces the log",
			give: []op{
				{hs: hardState(1, 1, 2), ents: ents(1, 10, 1)},
				{snap: snapMeta(6, 2)},
				{hs: hardState(2, 0, 6), ents: ents(7, 7, 2)},
			},
			want: "hs=2/0/6 snap=6@2 voters=[1 2 3] ents=[7@2:d7]",
		},
		{
			name: "leader snapshot beyond the last index",
			give: []op{
				{hs: hardState(1, 1, 2), ents: ents(1, 3, 1)},
				{snap: snapMeta(20, 4)},
				{hs: hardState(4, 0, 20)},
			},
			want: "hs=4/0/20 snap=20@4 voters=[1 2 3] ents=[]",
		},
		{
			name: "bootstrap snapshot at index 1",
			give: []op{
				{snap: snapMeta(1, 1)},
				{hs: hardState(1, 0, 1), ents: ents(2, 3, 1)},
				{reopen: true},
				{snap: snapMeta(3, 1)},
			},
			want: "hs=1/0/1 snap=3@1 voters=[1 2 3] ents=[]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal") // Open creates it
			opts := Options{SegmentSize: 64 << 10}
			w, st := mustOpen(t, dir, opts)
			checkState(t, st, "hs=none snap=none ents=[]")
			w = apply(t, dir, opts, w, tt.give)
			mustClose(t, w)
			w, st = mustOpen(t, dir, opts)
			defer mustClose(t, w)
			checkState(t, st, tt.want)
		})
	}
}

func TestSaveRejects(t *testing.T) {
	tests := []struct {
		name string
		call func(w *WAL) error
		want string
	}{
		{"gap", func(w *WAL) error { return w.Save(nil, ents(7, 7, 1), true) }, "gap after the last index 5"},
		{"not contiguous", func(w *WAL) error {
			return w.Save(nil, []*raftpb.Entry{ent(6, 1, ""), ent(8, 1, "")}, true)
		}, "must be contiguous"},
		{"snapshot backwards", func(w *WAL) error { return w.SaveSnapshot(snapMeta(2, 1)) }, "below the saved snapshot at 3"},
		{"nil snapshot", func(w *WAL) error { return w.SaveSnapshot(nil) }, "nil metadata"},
		{"release beyond snapshot", func(w *WAL) error { return w.ReleaseTo(4) }, "no saved snapshot covers it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, _ := mustOpen(t, dir, Options{SegmentSize: 4096})
			defer mustClose(t, w)
			if err := w.Save(hardState(1, 1, 3), ents(1, 5, 1), true); err != nil {
				t.Fatal(err)
			}
			if err := w.SaveSnapshot(snapMeta(3, 1)); err != nil {
				t.Fatal(err)
			}
			err := tt.call(w)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "wal: ") {
				t.Fatalf("got error %v, want one starting with \"wal: \" containing %q", err, tt.want)
			}
			// A rejected call changes nothing: the WAL is still usable.
			if err := w.Save(nil, ents(6, 6, 1), true); err != nil {
				t.Fatalf("Save after a rejected call: %v", err)
			}
		})
	}
}

func TestSegmentsRollAndRelease(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 1024}
	w, _ := mustOpen(t, dir, opts)
	data := strings.Repeat("x", 100)
	const n = 200
	for i := uint64(1); i <= n; i++ {
		if err := w.Save(hardState(1, 1, i-1), []*raftpb.Entry{ent(i, 1, data)}, i%3 != 0); err != nil {
			t.Fatalf("Save %d: %v", i, err)
		}
	}
	// A batch larger than a segment still goes somewhere.
	big := []*raftpb.Entry{ent(n+1, 1, strings.Repeat("y", 3000))}
	if err := w.Save(hardState(1, 1, n), big, true); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)

	segs := segmentFiles(t, dir)
	if len(segs) < 20 {
		t.Fatalf("%d segments, want many with SegmentSize 1024", len(segs))
	}
	w, st := mustOpen(t, dir, opts)
	if len(st.Entries) != n+1 || st.HardState.GetCommit() != n {
		t.Fatalf("after reopen: %d entries, commit %d; want %d and %d", len(st.Entries), st.HardState.GetCommit(), n+1, n)
	}

	const snapAt = 150
	if err := w.SaveSnapshot(snapMeta(snapAt, 1)); err != nil {
		t.Fatal(err)
	}
	segs = segmentFiles(t, dir)
	// Expected: the prefix of segments whose entries are all <= snapAt,
	// never the last (current) one.
	var wantGone []string
	for _, p := range segs[:len(segs)-1] {
		maxIdx := uint64(0)
		for _, r := range readRecords(t, p) {
			maxIdx = max(maxIdx, r.index)
		}
		if maxIdx > snapAt {
			break
		}
		wantGone = append(wantGone, p)
	}
	if len(wantGone) == 0 || len(wantGone) == len(segs)-1 {
		t.Fatalf("test setup: %d of %d segments releasable", len(wantGone), len(segs))
	}
	if err := w.ReleaseTo(snapAt); err != nil {
		t.Fatal(err)
	}
	left := segmentFiles(t, dir)
	if want := segs[len(wantGone):]; strings.Join(left, ",") != strings.Join(want, ",") {
		t.Fatalf("after ReleaseTo(%d):\n left %v\n want %v", snapAt, left, want)
	}
	if err := w.Save(nil, ents(n+2, n+3, 1), true); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)

	w, st = mustOpen(t, dir, opts)
	defer mustClose(t, w)
	if st.Snapshot.GetIndex() != snapAt || st.HardState.GetCommit() != n {
		t.Fatalf("after release: snapshot %d, commit %d; want %d, %d", st.Snapshot.GetIndex(), st.HardState.GetCommit(), snapAt, n)
	}
	for k, e := range st.Entries {
		if e.GetIndex() != snapAt+1+uint64(k) {
			t.Fatalf("entry %d has index %d, want %d", k, e.GetIndex(), snapAt+1+uint64(k))
		}
	}
	if got := st.Entries[len(st.Entries)-1].GetIndex(); got != n+3 {
		t.Fatalf("last index %d, want %d", got, n+3)
	}
}

// A segment can begin by overwriting entries older than its first index.
// Once the segments holding the old versions are released, replay starts
// at that segment and must restart the log at the overwritten index.
func TestReleaseKeepsOverwrites(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 600}
	w, _ := mustOpen(t, dir, opts)
	data := strings.Repeat("z", 80)
	for i := uint64(1); i <= 20; i++ {
		if err := w.Save(nil, []*raftpb.Entry{ent(i, 1, data)}, true); err != nil {
			t.Fatal(err)
		}
	}
	// Too large for a segment: goes to a new one that begins at index 21.
	if err := w.Save(hardState(2, 2, 14), ents(15, 25, 2), true); err != nil {
		t.Fatal(err)
	}
	before := segmentFiles(t, dir)
	overwriting := filepath.Join(dir, segmentName(uint64(len(before)-1), 21))
	if before[len(before)-1] != overwriting {
		t.Fatalf("test setup: last segment %s, want %s", before[len(before)-1], overwriting)
	}
	if err := w.SaveSnapshot(snapMeta(22, 2)); err != nil {
		t.Fatal(err)
	}
	if err := w.ReleaseTo(22); err != nil {
		t.Fatal(err)
	}
	if left := segmentFiles(t, dir); left[0] != overwriting {
		t.Fatalf("after ReleaseTo: first segment %s, want %s", left[0], overwriting)
	}
	mustClose(t, w)
	w, st := mustOpen(t, dir, opts)
	defer mustClose(t, w)
	checkState(t, st, "hs=2/2/14 snap=22@2 voters=[1 2 3] ents=[23@2:d23 24@2:d24 25@2:d25]")
}

func TestTornTail(t *testing.T) {
	for _, tc := range []struct {
		damage string
		files  string
		alloc  allocMode
	}{
		{"truncate", "preallocated", allocFallocate},
		{"flip", "preallocated", allocFallocate},
		{"truncate", "growing", allocNone}, // a crash really leaves a growing file short
		{"flip", "growing", allocNone},
	} {
		mode := tc.damage
		t.Run(mode+"/"+tc.files, func(t *testing.T) {
			src := t.TempDir()
			opts := Options{SegmentSize: 4096}
			w, _, err := open(src, opts, tc.alloc)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Save(hardState(1, 1, 1), ents(1, 2, 1), true); err != nil {
				t.Fatal(err)
			}
			if err := w.Save(hardState(1, 1, 2), nil, false); err != nil {
				t.Fatal(err)
			}
			// The final record: an entry, saved alone.
			if err := w.Save(nil, []*raftpb.Entry{ent(3, 1, strings.Repeat("t", 40))}, true); err != nil {
				t.Fatal(err)
			}
			mustClose(t, w)
			segs := segmentFiles(t, src)
			last := segs[len(segs)-1]
			rs := readRecords(t, last)
			final := rs[len(rs)-1]
			if final.typ != recEntry || final.index != 3 {
				t.Fatalf("test setup: final record %+v", final)
			}

			for off := final.off; off < final.end; off++ {
				dir := copyDir(t, src)
				path := filepath.Join(dir, filepath.Base(last))
				if mode == "truncate" {
					if err := os.Truncate(path, off); err != nil {
						t.Fatal(err)
					}
				} else {
					flipByte(t, path, off)
				}
				core, logs := observer.New(zapcore.WarnLevel)
				o := Options{SegmentSize: opts.SegmentSize, Logger: zap.New(core)}
				w, st, err := open(dir, o, tc.alloc)
				if err != nil {
					t.Fatalf("%s at %d: Open: %v", mode, off, err)
				}
				checkState(t, st, "hs=1/1/2 snap=none ents=[1@1:d1 2@1:d2]")
				warns := logs.FilterField(zap.String("file", path)).FilterField(zap.Int64("offset", final.off)).Len()
				wantWarns := 1
				if mode == "truncate" && off == final.off {
					wantWarns = 0 // the record is wholly gone: a clean end, nothing torn
				}
				if warns != wantWarns {
					t.Fatalf("%s at %d: %d warnings naming file and offset %d, want %d: %v", mode, off, warns, final.off, wantWarns, logs.All())
				}
				if err := w.Save(hardState(2, 1, 3), ents(3, 4, 2), true); err != nil {
					t.Fatal(err)
				}
				mustClose(t, w)
				if w, st, err = open(dir, o, tc.alloc); err != nil {
					t.Fatal(err)
				}
				checkState(t, st, "hs=2/1/3 snap=none ents=[1@1:d1 2@1:d2 3@2:d3 4@2:d4]")
				mustClose(t, w)
				if n := logs.Len(); n != wantWarns {
					t.Fatalf("%s at %d: the second Open warned too: %v", mode, off, logs.All())
				}
			}
		})
	}
}

// Batches written after the last completed sync may reach the disk in any
// order. Damage in them, even followed by valid records of those batches,
// is a torn write.
func TestTornUnsyncedBatches(t *testing.T) {
	src := t.TempDir()
	opts := Options{SegmentSize: 8192}
	w, _ := mustOpen(t, src, opts)
	if err := w.Save(hardState(1, 1, 2), ents(1, 2, 1), true); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(nil, ents(3, 5, 1), false); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(hardState(1, 1, 5), ents(6, 7, 1), false); err != nil {
		t.Fatal(err)
	}
	// Not closed: Close would sync. Simulate the crash by copying the files.
	segs := segmentFiles(t, src)
	last := segs[len(segs)-1]
	var entry4 rec
	for _, r := range readRecords(t, last) {
		if r.index == 4 {
			entry4 = r
		}
	}
	dir := copyDir(t, src)
	mustClose(t, w)
	flipByte(t, filepath.Join(dir, filepath.Base(last)), entry4.off+headerSize)

	w, st := mustOpen(t, dir, opts)
	defer mustClose(t, w)
	checkState(t, st, "hs=1/1/2 snap=none ents=[1@1:d1 2@1:d2 3@1:d3]")
}

func TestCorruption(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, segs []string) (file string)
	}{
		{"middle of an earlier segment", func(t *testing.T, segs []string) string {
			rs := readRecords(t, segs[1])
			r := rs[len(rs)/2]
			flipByte(t, segs[1], r.off+headerSize)
			return segs[1]
		}},
		{"last segment, followed by synced batches", func(t *testing.T, segs []string) string {
			p := segs[len(segs)-1]
			rs := readRecords(t, p)
			flipByte(t, p, rs[len(rs)-6].off+headerSize)
			return p
		}},
		{"zeroed record in the last segment, followed by synced batches", func(t *testing.T, segs []string) string {
			p := segs[len(segs)-1]
			rs := readRecords(t, p)
			r := rs[len(rs)-6]
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, r.end-r.off), r.off); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"segment header", func(t *testing.T, segs []string) string {
			p := segs[len(segs)-1]
			flipByte(t, p, 3)
			return p
		}},
		{"missing segment", func(t *testing.T, segs []string) string {
			if err := os.Remove(segs[2]); err != nil {
				t.Fatal(err)
			}
			return ""
		}},
		{"earlier segment lost its last HardState", func(t *testing.T, segs []string) string {
			rs := readRecords(t, segs[1])
			if rs[len(rs)-1].typ != recHardState {
				t.Fatalf("test setup: last record of %s is type %d", segs[1], rs[len(rs)-1].typ)
			}
			if err := os.Truncate(segs[1], rs[len(rs)-1].off); err != nil {
				t.Fatal(err)
			}
			return segs[2]
		}},
		{"earlier segment lost its last entry", func(t *testing.T, segs []string) string {
			rs := readRecords(t, segs[1])
			if err := os.Truncate(segs[1], rs[len(rs)-2].off); err != nil {
				t.Fatal(err)
			}
			return segs[2]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentSize: 2048}
			w, _ := mustOpen(t, dir, opts)
			for i := uint64(1); i <= 80; i++ {
				if err := w.Save(hardState(1, 1, i-1), []*raftpb.Entry{ent(i, 1, strings.Repeat("c", 30))}, true); err != nil {
					t.Fatal(err)
				}
			}
			mustClose(t, w)
			segs := segmentFiles(t, dir)
			if len(segs) < 4 {
				t.Fatalf("test setup: %d segments", len(segs))
			}
			file := tt.damage(t, segs)
			w, _, err := Open(dir, opts)
			if err == nil {
				w.Close()
				t.Fatal("Open succeeded on a damaged log")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, "wal: ") || !strings.Contains(msg, file) || !strings.Contains(msg, "damaged") {
				t.Fatalf("error %q should start with \"wal: \", name %q and say the data dir is damaged", msg, file)
			}
		})
	}
}

func TestUnknownRecordTypeIsCorruption(t *testing.T) {
	dir := t.TempDir()
	w, _ := mustOpen(t, dir, Options{SegmentSize: 4096})
	if err := w.Save(hardState(1, 1, 0), ents(1, 1, 1), true); err != nil {
		t.Fatal(err)
	}
	// A valid record of a type from the future, at the tail.
	e := newEncoder()
	start := e.begin()
	e.buf = append(e.buf, "future"...)
	if err := e.finish(start, 9); err != nil {
		t.Fatal(err)
	}
	if _, err := w.f.WriteAt(e.buf, w.off); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	if _, _, err := Open(dir, Options{SegmentSize: 4096}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "unknown record type 9") {
		t.Fatalf("Open: %v, want ErrCorrupt about record type 9", err)
	}
}

func TestOpenLocksDir(t *testing.T) {
	dir := t.TempDir()
	w, _ := mustOpen(t, dir, Options{})
	if _, _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want an in-use error", err)
	}
	mustClose(t, w)
	if err := w.Close(); err == nil {
		t.Fatal("second Close succeeded")
	}
	if err := w.Save(hardState(1, 0, 0), nil, true); err == nil {
		t.Fatal("Save after Close succeeded")
	}
	w, _ = mustOpen(t, dir, Options{})
	mustClose(t, w)
}

func TestOpenRemovesUnfinishedSegment(t *testing.T) {
	dir := t.TempDir()
	w, _ := mustOpen(t, dir, Options{SegmentSize: 4096})
	if err := w.Save(hardState(1, 1, 0), ents(1, 2, 1), true); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	tmp := filepath.Join(dir, segmentName(1, 3)+tmpExt)
	if err := os.WriteFile(tmp, []byte("half a header"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, st := mustOpen(t, dir, Options{SegmentSize: 4096})
	defer mustClose(t, w)
	checkState(t, st, "hs=1/1/0 snap=none ents=[1@1:d1 2@1:d2]")
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("%s still there (stat: %v)", tmp, err)
	}
}

func TestOptionsValidated(t *testing.T) {
	if _, _, err := Open(t.TempDir(), Options{SegmentSize: 10}); err == nil || !strings.Contains(err.Error(), "SegmentSize") {
		t.Fatalf("Open with SegmentSize 10: %v", err)
	}
}

// TestReopenedStateIsTheCallers: what Open returns is the caller's to change. raft fills in the
// ConfState it is handed (EnsureConfState sets AutoLeave where it was absent); that must neither
// reach the header of the next segment nor make a header that says AutoLeave false differ from
// a snapshot record that left it out. Before the fix, a node restarted with 1 MB objects and no
// compaction since bootstrap refused to start again: "the segment header holds ... but the
// segments before it end with ..." naming the same values.
func TestReopenedStateIsTheCallers(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 1024}
	w, _ := mustOpen(t, dir, opts)
	if err := w.SaveSnapshot(&raftpb.SnapshotMetadata{Index: proto.Uint64(1), Term: proto.Uint64(1),
		ConfState: &raftpb.ConfState{Voters: []uint64{1}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(hardState(1, 1, 1), nil, true); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)

	w, st := mustOpen(t, dir, opts)
	raftpb.EnsureConfState(st.Snapshot.GetConfState()) // as raft.NewRawNode does
	data := strings.Repeat("x", 300)
	for i := uint64(2); i <= 20; i++ { // several segment rolls
		if err := w.Save(hardState(2, 1, i-1), []*raftpb.Entry{ent(i, 2, data)}, true); err != nil {
			t.Fatalf("Save %d: %v", i, err)
		}
	}
	mustClose(t, w)
	if n := len(segmentFiles(t, dir)); n < 3 {
		t.Fatalf("%d segments, want several", n)
	}
	w, st = mustOpen(t, dir, opts)
	defer mustClose(t, w)
	if len(st.Entries) != 19 || st.HardState.GetCommit() != 19 {
		t.Fatalf("after reopen: %s", describe(st))
	}
	for _, p := range segmentFiles(t, dir)[1:] {
		for _, r := range readRecords(t, p) {
			m := &raftpb.SnapshotMetadata{}
			if r.typ == recSnapshot && proto.Unmarshal(r.payload, m) == nil && m.GetConfState().AutoLeave != nil {
				t.Errorf("%s: the header's snapshot record spells out AutoLeave: the caller's change reached the log", p)
			}
		}
	}
}

// TestHeaderAutoLeaveFalseMatchesAbsent: a segment header whose snapshot record spells out
// AutoLeave false (written by kstore before the fix above) matches the snapshot record that
// left it out.
func TestHeaderAutoLeaveFalseMatchesAbsent(t *testing.T) {
	a := &raftpb.SnapshotMetadata{Index: proto.Uint64(1), Term: proto.Uint64(1), ConfState: &raftpb.ConfState{Voters: []uint64{1}}}
	b := proto.CloneOf(a)
	b.ConfState.AutoLeave = proto.Bool(false)
	if !sameSnapshot(a, b) {
		t.Error("a snapshot record with AutoLeave false differs from one without")
	}
	b.ConfState.Voters = []uint64{1, 2}
	if sameSnapshot(a, b) {
		t.Error("snapshot records with other voters are the same")
	}
}
