package powercut

import (
	"bytes"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// These tests drive the disk model directly, without FUSE: they run everywhere.

func mustCreate(t *testing.T, d *disk, dir *node, name string) *node {
	t.Helper()
	var a fuse.Attr
	n, errno := d.create(dir, name, 0o644, 0, 0, &a)
	if errno != 0 {
		t.Fatalf("create %s: %v", name, errno)
	}
	return n
}

func mustWrite(t *testing.T, d *disk, n *node, p []byte, off int64) {
	t.Helper()
	if _, errno := d.write(n, p, off); errno != 0 {
		t.Fatalf("write at %d: %v", off, errno)
	}
}

func read(t *testing.T, s *State, name string) []byte {
	t.Helper()
	b, err := s.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDiskDurability(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*chunkSize/16+5) // spans 4 chunks
	tests := []struct {
		name string
		do   func(t *testing.T, d *disk, f *node)
		want []byte
	}{
		{"never synced", func(t *testing.T, d *disk, f *node) {
			mustWrite(t, d, f, []byte("lost"), 0)
		}, []byte{}},
		{"synced then overwritten and extended", func(t *testing.T, d *disk, f *node) {
			mustWrite(t, d, f, []byte("kept"), 0)
			d.fsync(f)
			mustWrite(t, d, f, []byte("XX"), 0)
			mustWrite(t, d, f, []byte("lost"), 4)
		}, []byte("kept")},
		{"large file, one chunk rewritten after sync", func(t *testing.T, d *disk, f *node) {
			mustWrite(t, d, f, big, 0)
			d.fsync(f)
			mustWrite(t, d, f, []byte("lost"), 2*chunkSize+3)
		}, big},
		{"truncate down is durable at once", func(t *testing.T, d *disk, f *node) {
			mustWrite(t, d, f, []byte("0123456789"), 0)
			d.fsync(f)
			d.setattr(f, setattrIn{size: ptr(uint64(4))}, &fuse.Attr{})
		}, []byte("0123")},
		{"truncate up shows zeros past the synced data", func(t *testing.T, d *disk, f *node) {
			mustWrite(t, d, f, []byte("ab"), 0)
			d.fsync(f)
			mustWrite(t, d, f, []byte("lost"), 2)
			d.setattr(f, setattrIn{size: ptr(uint64(8))}, &fuse.Attr{})
		}, []byte("ab\x00\x00\x00\x00\x00\x00")},
		{"truncate then regrow does not resurrect bytes", func(t *testing.T, d *disk, f *node) {
			mustWrite(t, d, f, []byte("abcdef"), 0)
			d.fsync(f)
			d.setattr(f, setattrIn{size: ptr(uint64(2))}, &fuse.Attr{})
			d.setattr(f, setattrIn{size: ptr(uint64(6))}, &fuse.Attr{})
		}, []byte("ab\x00\x00\x00\x00")},
		{"fallocate size is durable at once", func(t *testing.T, d *disk, f *node) {
			mustWrite(t, d, f, []byte("lost"), 0)
			if errno := d.allocate(f, 0, 6, 0); errno != 0 {
				t.Fatal(errno)
			}
		}, make([]byte, 6)},
		{"fallocate keep size changes nothing", func(t *testing.T, d *disk, f *node) {
			if errno := d.allocate(f, 0, 6, fallocKeepSize); errno != 0 {
				t.Fatal(errno)
			}
		}, []byte{}},
		{"sync, write, sync", func(t *testing.T, d *disk, f *node) {
			mustWrite(t, d, f, []byte("one"), 0)
			d.fsync(f)
			mustWrite(t, d, f, []byte("two"), 0)
			d.fsync(f)
			mustWrite(t, d, f, []byte("333"), 0)
		}, []byte("two")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDisk(nil)
			f := mustCreate(t, d, d.root, "f")
			tt.do(t, d, f)
			if got := read(t, d.powerCut(), "f"); !bytes.Equal(got, tt.want) {
				t.Errorf("after the cut: %q (%d bytes), want %q (%d bytes)", trim(got), len(got), trim(tt.want), len(tt.want))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func trim(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// A State is an immutable disk image: writes on a mount of it copy chunks, so mounting it again
// gives the same image.
func TestStateIsReusable(t *testing.T) {
	d := newDisk(nil)
	f := mustCreate(t, d, d.root, "f")
	mustWrite(t, d, f, bytes.Repeat([]byte("a"), 2*chunkSize), 0)
	d.fsync(f)
	s := d.powerCut()

	d2 := newDisk(s)
	f2 := d2.root.children["f"]
	mustWrite(t, d2, f2, []byte("bbbb"), 10)
	d2.setattr(f2, setattrIn{size: ptr(uint64(chunkSize + 7))}, &fuse.Attr{})
	d2.fsync(f2)
	if got := read(t, d2.powerCut(), "f"); len(got) != chunkSize+7 || !bytes.Equal(got[10:14], []byte("bbbb")) {
		t.Errorf("second disk: %d bytes, %q at 10", len(got), got[10:14])
	}
	if got := read(t, s, "f"); !bytes.Equal(got, bytes.Repeat([]byte("a"), 2*chunkSize)) {
		t.Errorf("the first State changed under a mount of it: %d bytes, %q...", len(got), trim(got))
	}
}

func TestDiskNamespace(t *testing.T) {
	d := newDisk(nil)
	a := mustCreate(t, d, d.root, "a.tmp")
	mustWrite(t, d, a, []byte("new"), 0)
	d.fsync(a)
	b := mustCreate(t, d, d.root, "b")
	mustWrite(t, d, b, []byte("old"), 0)
	d.fsync(b)
	if errno := d.rename(d.root, "a.tmp", d.root, "b", 0); errno != 0 {
		t.Fatal(errno)
	}
	var attr fuse.Attr
	sub, errno := d.mkdir(d.root, "sub", 0o755, 0, 0, &attr)
	if errno != 0 {
		t.Fatal(errno)
	}
	mustCreate(t, d, sub, "gone")
	if errno := d.unlink(sub, "gone"); errno != 0 {
		t.Fatal(errno)
	}
	mustCreate(t, d, sub, "empty")

	for _, e := range []struct {
		name  string
		errno syscall.Errno
		got   syscall.Errno
	}{
		{"rmdir of a non-empty directory", syscall.ENOTEMPTY, d.rmdir(d.root, "sub")},
		{"unlink of a directory", syscall.EISDIR, d.unlink(d.root, "sub")},
		{"rename of a file over a directory", syscall.EISDIR, d.rename(d.root, "b", d.root, "sub", 0)},
		{"rename with RENAME_NOREPLACE", syscall.EEXIST, d.rename(sub, "empty", d.root, "b", renameNoReplace)},
		{"rename of a missing name", syscall.ENOENT, d.rename(d.root, "a.tmp", d.root, "c", 0)},
	} {
		if e.got != e.errno {
			t.Errorf("%s: %v, want %v", e.name, e.got, e.errno)
		}
	}

	s := d.powerCut()
	want := map[string]int64{"b": 3, "sub/empty": 0}
	if got := s.Files(); len(got) != len(want) || got["b"] != 3 || got["sub/empty"] != 0 {
		t.Errorf("files after the cut: %v, want %v", got, want)
	}
	if got := read(t, s, "b"); string(got) != "new" {
		t.Errorf("b after the cut: %q, want the renamed file's %q", got, "new")
	}
	if _, errno := d.write(b, []byte("x"), 0); errno != syscall.EIO {
		t.Errorf("write after the cut: %v, want EIO", errno)
	}
}

func TestDiskCapacity(t *testing.T) {
	d := newDisk(nil)
	d.setCapacity(2 * chunkSize)
	f := mustCreate(t, d, d.root, "f")
	mustWrite(t, d, f, make([]byte, chunkSize+1), 0) // two chunks
	if _, errno := d.write(f, []byte("x"), 2*chunkSize); errno != syscall.ENOSPC {
		t.Errorf("write of a third chunk: %v, want ENOSPC", errno)
	}
	mustWrite(t, d, f, []byte("x"), chunkSize+5) // within allocated chunks
	var st fuse.StatfsOut
	d.statfs(&st)
	if st.Bfree != 0 || st.Blocks != 2*chunkSize/blockSize {
		t.Errorf("statfs: %d of %d blocks free, want 0 of %d", st.Bfree, st.Blocks, 2*chunkSize/blockSize)
	}
	if errno := d.unlink(d.root, "f"); errno != 0 {
		t.Fatal(errno)
	}
	g := mustCreate(t, d, d.root, "g")
	if errno := d.allocate(g, 0, 2*chunkSize, 0); errno != 0 {
		t.Errorf("fallocate after the unlink freed the space: %v", errno)
	}
	if errno := d.allocate(g, 0, 3*chunkSize, 0); errno != syscall.ENOSPC {
		t.Errorf("fallocate past the capacity: %v, want ENOSPC", errno)
	}
}

// With a sync bandwidth, fsync takes as long as writing the chunks changed since the last one.
func TestDiskSyncBandwidth(t *testing.T) {
	d := newDisk(nil)
	d.setSyncBandwidth(40 * chunkSize) // 4 chunks: 100 ms
	f := mustCreate(t, d, d.root, "f")
	mustWrite(t, d, f, make([]byte, 4*chunkSize), 0)
	start := time.Now()
	if errno := d.fsync(f); errno != 0 {
		t.Fatal(errno)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("fsync of 4 chunks at 40 chunks/s took %v, want at least 100ms", took)
	}
	mustWrite(t, d, f, []byte("x"), 0) // one chunk now: 25 ms
	start = time.Now()
	d.fsync(f)
	if took := time.Since(start); took < 25*time.Millisecond {
		t.Errorf("fsync of 1 chunk at 40 chunks/s took %v, want at least 25ms", took)
	}
	if got := read(t, d.powerCut(), "f"); len(got) != 4*chunkSize || got[0] != 'x' {
		t.Errorf("after the cut: %d bytes starting %q, want the second fsync's content", len(got), got[:1])
	}
}
