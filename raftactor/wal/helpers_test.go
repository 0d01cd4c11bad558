package wal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Type: raftpb.EntryType_EntryNormal.Enum(), Data: []byte(data)}
}

// ents returns entries lo..hi with term and data "d<index>".
func ents(lo, hi, term uint64) []*raftpb.Entry {
	var es []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		es = append(es, ent(i, term, fmt.Sprintf("d%d", i)))
	}
	return es
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

func snapMeta(index, term uint64) *raftpb.SnapshotMetadata {
	return &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(index),
		Term:      proto.Uint64(term),
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
	}
}

func mustOpen(t testing.TB, dir string, opts Options) (*WAL, *State) {
	t.Helper()
	w, st, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return w, st
}

func mustClose(t testing.TB, w *WAL) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// describe renders a State compactly for comparisons and failure messages.
func describe(st *State) string {
	var b strings.Builder
	if st.HardState == nil {
		b.WriteString("hs=none")
	} else {
		fmt.Fprintf(&b, "hs=%d/%d/%d", st.HardState.GetTerm(), st.HardState.GetVote(), st.HardState.GetCommit())
	}
	if st.Snapshot == nil {
		b.WriteString(" snap=none")
	} else {
		fmt.Fprintf(&b, " snap=%d@%d voters=%v", st.Snapshot.GetIndex(), st.Snapshot.GetTerm(), st.Snapshot.GetConfState().GetVoters())
	}
	b.WriteString(" ents=[")
	for k, e := range st.Entries {
		if k > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d@%d:%s", e.GetIndex(), e.GetTerm(), e.GetData())
	}
	b.WriteString("]")
	return b.String()
}

func checkState(t testing.TB, got *State, want string) {
	t.Helper()
	if d := describe(got); d != want {
		t.Fatalf("state:\n got  %s\n want %s", d, want)
	}
}

// rec is one record of a segment file, as a test sees it.
type rec struct {
	off, end int64 // end includes padding
	typ      byte
	index    uint64 // of an entry
	payload  []byte
}

// readRecords lists the valid records of a segment file up to the first
// end or bad record.
func readRecords(t testing.TB, path string) []rec {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	rr := newRecordReader(io.NewSectionReader(f, 0, fi.Size()), fi.Size())
	var rs []rec
	for {
		off := rr.off
		typ, payload, st, _, err := rr.next()
		if err != nil {
			t.Fatal(err)
		}
		if st != readOK {
			return rs
		}
		r := rec{off: off, end: rr.off, typ: typ, payload: slices.Clone(payload)}
		if typ == recEntry {
			e := &raftpb.Entry{}
			if err := proto.Unmarshal(payload, e); err != nil {
				t.Fatal(err)
			}
			r.index = e.GetIndex()
		}
		rs = append(rs, r)
	}
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	ps, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return ps // Glob sorts, and names sort in write order
}

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func flipByte(t testing.TB, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
