package catalogactor

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/kstore/kstore/messages"
)

// writeBackupFile writes chunks as a backup file with a BackupWriter, through a real file (the
// writer seeks back for the header), and returns the file's bytes.
func writeBackupFile(t *testing.T, chunks [][]byte) ([]byte, BackupHeader) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.snap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewBackupWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range chunks {
		if err := w.Write(c); err != nil {
			t.Fatalf("write chunk %d: %v", i, err)
		}
	}
	h, err := w.Finish()
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if _, err := f.Write([]byte("after")); err != nil { // Finish left the offset at the end
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != h.Size()+5 || string(b[h.Size():]) != "after" {
		t.Fatalf("the file is %d bytes, want the header's %d and 5 written after Finish", len(b), h.Size())
	}
	return b[:h.Size()], h
}

// liveObjects counts the objects a read at ts sees.
func liveObjects(t *testing.T, s snapSource, ts uint64) uint64 {
	t.Helper()
	r := readSnapshot(s.c.db, planSnapshot(&Snapshot{AllTypes: true, Limit: 1 << 20}), ts)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	return uint64(len(r.Objects))
}

// TestBackupRoundTrip writes a catalog with history and large objects to a backup file and
// restores it: the header says the snapshot's index, floor and object count, the file checks,
// and the restored catalog has the source's digest and reads like it at every revision from the
// floor to the index.
func TestBackupRoundTrip(t *testing.T) {
	s := newSnapSource(t)
	tests := []struct {
		name     string
		ts       uint64
		maxChunk int
	}{
		{"one chunk", snapSourceApplied, 64 << 20},
		{"many chunks", snapSourceApplied, 4 << 10},
		{"inside a batch", snapSourceApplied - 3, 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := exportChunks(t, s.c.db, tt.ts, tt.maxChunk)
			file, h := writeBackupFile(t, chunks)
			want := BackupHeader{Format: backupFormat, ResourceVersion: tt.ts, Compacted: snapSourceFloor,
				Objects: liveObjects(t, s, tt.ts), BodyBytes: uint64(len(file) - BackupHeaderSize)}
			want.SHA256 = sha256.Sum256(file[BackupHeaderSize:])
			if h != want {
				t.Fatalf("header %+v, want %+v", h, want)
			}
			if h.Objects == 0 {
				t.Fatal("the source has no live object: the count checks nothing")
			}
			got, err := VerifyBackup(bytes.NewReader(file), int64(len(file)))
			if err != nil || got != h {
				t.Fatalf("VerifyBackup: %+v, %v; want %+v", got, err, h)
			}
			if rh, err := ReadBackupHeader(bytes.NewReader(file)); err != nil || rh != h {
				t.Fatalf("ReadBackupHeader: %+v, %v", rh, err)
			}
			dir := filepath.Join(t.TempDir(), "catalog")
			if rh, err := RestoreCatalog(bytes.NewReader(file), int64(len(file)), dir, zap.NewNop()); err != nil || rh != h {
				t.Fatalf("RestoreCatalog: %+v, %v", rh, err)
			}
			if idx, ok, err := readDurableFile(durableFileOf(dir)); err != nil || !ok || idx != tt.ts {
				t.Fatalf("durable point of the restored catalog: %d %v %v, want %d", idx, ok, err, tt.ts)
			}
			db := openTestStore(t, dir)
			if a, b := mustDigest(t, s.c.db, tt.ts), mustDigest(t, db, tt.ts); a != b {
				t.Fatalf("digest at %d: source %s, restored %s", tt.ts, a, b)
			}
			compareReads(t, s.c.db, db, snapSourceFloor, tt.ts)
		})
	}
}

// TestBackupDamaged changes a backup file in every part (header fields, frame lengths, chunk
// bytes), truncates it at several offsets and extends it: each is refused as damaged (Invalid,
// ErrBackupDamaged) with what is wrong, and a restore of it leaves no catalog behind.
func TestBackupDamaged(t *testing.T) {
	s := newSnapSource(t)
	file, _ := writeBackupFile(t, exportChunks(t, s.c.db, snapSourceApplied, 64<<10))
	n := len(file)
	flip := func(off int) func([]byte) []byte {
		return func(b []byte) []byte { b[off] ^= 0x20; return b }
	}
	cut := func(size int) func([]byte) []byte { return func(b []byte) []byte { return b[:size] } }
	tests := []struct {
		name   string
		change func([]byte) []byte
		want   string // in the error's message
	}{
		{"magic", flip(0), "is not a kstore snapshot file"},
		{"format", flip(11), "header's checksum"},
		{"resourceVersion", flip(19), "header's checksum"},
		{"compacted", flip(27), "header's checksum"},
		{"objects", flip(35), "header's checksum"},
		{"body length", flip(43), "header's checksum"},
		{"sha256", flip(50), "header's checksum"},
		{"header crc", flip(BackupHeaderSize - 1), "header's checksum"},
		{"first frame length", flip(BackupHeaderSize + 1), "body's sha256"},
		{"first chunk", flip(BackupHeaderSize + 6), "body's sha256"},
		{"middle", flip(n / 2), "body's sha256"},
		{"last byte", flip(n - 1), "body's sha256"},
		{"zero header", func(b []byte) []byte { clear(b[:BackupHeaderSize]); return b }, "all zeros"},
		{"empty", cut(0), "shorter than the 80-byte header"},
		{"inside the magic", cut(5), "shorter than the 80-byte header"},
		{"inside the header", cut(BackupHeaderSize - 1), "shorter than the 80-byte header"},
		{"header only", cut(BackupHeaderSize), "truncated or extended"},
		{"inside a frame length", cut(BackupHeaderSize + 2), "truncated or extended"},
		{"middle cut", cut(n / 2), "truncated or extended"},
		{"last byte cut", cut(n - 1), "truncated or extended"},
		{"extended", func(b []byte) []byte { return append(b, 0) }, "truncated or extended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.change(bytes.Clone(file))
			_, err := VerifyBackup(bytes.NewReader(b), int64(len(b)))
			checkDamaged(t, err, tt.want)
			dir := filepath.Join(t.TempDir(), "catalog")
			_, err = RestoreCatalog(bytes.NewReader(b), int64(len(b)), dir, zap.NewNop())
			checkDamaged(t, err, tt.want)
			for _, p := range []string{dir, durableFileOf(dir)} {
				if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a refused restore left %s (%v)", p, err)
				}
			}
		})
	}
}

func checkDamaged(t *testing.T, err error, want string) {
	t.Helper()
	var e *messages.Error
	switch {
	case err == nil:
		t.Fatal("a damaged file was taken")
	case !errors.Is(err, ErrBackupDamaged) || !errors.As(err, &e) || e.Reason != messages.StatusReason_INVALID:
		t.Fatalf("error %v: want an Invalid that matches ErrBackupDamaged", err)
	case !strings.Contains(e.Message, want):
		t.Fatalf("error %q does not say %q", e.Message, want)
	}
}

// TestBackupChunksChecked: a file whose checksums were made to match changed or reordered chunks
// (as a faulty writer would make it) is still refused, by the chunks' own digest and order.
func TestBackupChunksChecked(t *testing.T) {
	s := newSnapSource(t)
	chunks := exportChunks(t, s.c.db, snapSourceApplied, 16<<10)
	if len(chunks) < 3 {
		t.Fatalf("%d chunks: the test needs three", len(chunks))
	}
	valueAt := func(c []byte) int { return bytes.LastIndex(c, []byte(`"apiVersion"`)) } // a byte of an object's value
	tests := []struct {
		name   string
		change func([][]byte) [][]byte
		want   string
	}{
		{"a value changed", func(cs [][]byte) [][]byte { cs[1][valueAt(cs[1])] ^= 1; return cs }, "ends saying"},
		{"two chunks swapped", func(cs [][]byte) [][]byte { cs[1], cs[2] = cs[2], cs[1]; return cs }, "came where chunk 1 was due"},
		{"a chunk lost", func(cs [][]byte) [][]byte { return append(cs[:1], cs[2:]...) }, "came where chunk 1 was due"},
		{"the end lost", func(cs [][]byte) [][]byte { return cs[:len(cs)-1] }, "end record is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := make([][]byte, len(chunks))
			for i, c := range chunks {
				cs[i] = bytes.Clone(c)
			}
			cs = tt.change(cs)
			b := forgeBackup(t, cs)
			_, err := VerifyBackup(bytes.NewReader(b), int64(len(b)))
			checkDamaged(t, err, tt.want)
			// The writer refuses the same chunks as they come.
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w, err := NewBackupWriter(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if err = w.Write(c); err != nil {
					break
				}
			}
			if err == nil {
				_, err = w.Finish()
			}
			if err == nil {
				t.Fatal("the writer took damaged chunks")
			}
		})
	}
}

// forgeBackup frames chunks with a header whose checksums match them, checking nothing.
func forgeBackup(t *testing.T, chunks [][]byte) []byte {
	t.Helper()
	var body []byte
	for _, c := range chunks {
		body = append(body, byte(len(c)>>24), byte(len(c)>>16), byte(len(c)>>8), byte(len(c)))
		body = append(body, c...)
	}
	first, err := parseChunk(chunks[0])
	if err != nil {
		t.Fatal(err)
	}
	h := BackupHeader{Format: backupFormat, ResourceVersion: first.ts, Compacted: first.floor, BodyBytes: uint64(len(body)),
		SHA256: sha256.Sum256(body)}
	return append(h.marshal(), body...)
}
