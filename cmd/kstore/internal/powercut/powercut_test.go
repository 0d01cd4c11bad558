package powercut

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/raftactor/wal"
)

// Programs that mmap files on the mount run in a child process (see the package doc): the test
// binary runs itself with helperEnv set to the helper's name and helperArgEnv to its JSON
// argument.
const (
	helperEnv    = "POWERCUT_TEST_HELPER"
	helperArgEnv = "POWERCUT_TEST_HELPER_ARG"
)

var helpers = map[string]func(arg []byte) error{
	"mmap":         mmapHelper,
	"badger-write": badgerWriteHelper,
	"badger-check": badgerCheckHelper,
}

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		if err := helpers[name]([]byte(os.Getenv(helperArgEnv))); err != nil {
			fmt.Fprintf(os.Stderr, "helper %s: %v\n", name, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// requireFUSE skips the test where a FUSE mount cannot be made.
func requireFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("powercut mounts a FUSE file system and /dev/fuse is missing (%v); CI machines have it", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("powercut mounts a FUSE file system with mount(2), which needs root; CI machines run the tests as root")
	}
}

// mount mounts state at a new directory, unmounted at the end of the test.
func mount(t *testing.T, state *State) *FS {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := Mount(dir, state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return f
}

// cutAndRemount cuts the power, unmounts and mounts the durable state at a new directory.
func cutAndRemount(t *testing.T, f *FS) (*State, *FS) {
	t.Helper()
	s := f.Cut()
	if err := f.Unmount(); err != nil {
		t.Fatal(err)
	}
	return s, mount(t, s)
}

func writeFile(t *testing.T, name string, b []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFsyncedBytesSurvive(t *testing.T) {
	requireFUSE(t)
	fsys := mount(t, nil)
	name := filepath.Join(fsys.Dir(), "f")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("durable")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("LOST"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(" and lost")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(fsys.Dir(), "never-synced"), []byte("lost"), false)
	f.Close() // an open file would keep the file system busy

	_, after := cutAndRemount(t, fsys)
	for _, tt := range []struct{ name, want string }{{"f", "durable"}, {"never-synced", ""}} {
		got, err := os.ReadFile(filepath.Join(after.Dir(), tt.name))
		if err != nil || string(got) != tt.want {
			t.Errorf("%s after the cut: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestWritesAfterCutFail(t *testing.T) {
	requireFUSE(t)
	fsys := mount(t, nil)
	f, err := os.Create(filepath.Join(fsys.Dir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys.Cut()
	if _, err := f.Write([]byte("x")); !errors.Is(err, syscall.EIO) {
		t.Errorf("write after the cut: %v, want EIO", err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync after the cut: %v, want EIO", err)
	}
	if _, err := os.Create(filepath.Join(fsys.Dir(), "g")); !errors.Is(err, syscall.EIO) {
		t.Errorf("create after the cut: %v, want EIO", err)
	}
}

// TestNamespaceIsDurableAtOnce: rename (over an existing file), mkdir, unlink and truncate need
// no directory fsync; file content still needs its fsync.
func TestNamespaceIsDurableAtOnce(t *testing.T) {
	requireFUSE(t)
	fsys := mount(t, nil)
	dir := fsys.Dir()
	writeFile(t, filepath.Join(dir, "current"), []byte("old"), true)
	writeFile(t, filepath.Join(dir, "current.tmp"), []byte("new"), true)
	if err := os.Rename(filepath.Join(dir, "current.tmp"), filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub", "moved"), []byte("content"), true)
	if err := os.Rename(filepath.Join(dir, "sub", "moved"), filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "removed"), []byte("x"), true)
	if err := os.Remove(filepath.Join(dir, "removed")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "truncated"), []byte("0123456789"), true)
	if err := os.Truncate(filepath.Join(dir, "truncated"), 3); err != nil {
		t.Fatal(err)
	}

	s, _ := cutAndRemount(t, fsys)
	want := map[string]string{"current": "new", "moved": "content", "truncated": "012"}
	files := s.Files()
	if len(files) != len(want) {
		t.Errorf("files after the cut: %v, want %v", files, want)
	}
	for name, w := range want {
		if got, err := s.ReadFile(name); err != nil || string(got) != w {
			t.Errorf("%s after the cut: %q, %v; want %q", name, got, err, w)
		}
	}
}

// TestMmap: pages written through a MAP_SHARED mapping are durable after msync, and lost
// without it.
func TestMmap(t *testing.T) {
	requireFUSE(t)
	fsys := mount(t, nil)
	name := filepath.Join(fsys.Dir(), "mapped")
	h := startHelper(t, "mmap", name)
	h.waitLine(t, "ready", 30*time.Second)
	s := fsys.Cut()
	h.kill(t)
	got, err := s.ReadFile("mapped")
	if err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Repeat([]byte("S"), pageSize), make([]byte, pageSize)...)
	if !bytes.Equal(got, want) {
		t.Errorf("after the cut: %d bytes, page 0 starts %q, page 1 starts %q; want the msynced page 0 (S...) and a zero page 1",
			len(got), trim(got), trim(got[min(pageSize, len(got)):]))
	}
}

const pageSize = 4096

// mmapHelper maps arg (a file name) MAP_SHARED, writes page 0 and msyncs, then writes page 1,
// says "ready" and waits to be killed.
func mmapHelper(arg []byte) error {
	f, err := os.OpenFile(string(arg), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(2 * pageSize); err != nil {
		return err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, 2*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	copy(m[:pageSize], bytes.Repeat([]byte("S"), pageSize))
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		return err
	}
	copy(m[pageSize:], bytes.Repeat([]byte("L"), pageSize))
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // until killed
	return nil
}

func TestFlock(t *testing.T) {
	requireFUSE(t)
	fsys := mount(t, nil)
	lock := func() (*os.File, error) {
		d, err := os.Open(fsys.Dir())
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			d.Close()
			return nil, err
		}
		return d, nil
	}
	first, err := lock()
	if err != nil {
		t.Fatalf("first flock: %v", err)
	}
	if second, err := lock(); !errors.Is(err, unix.EWOULDBLOCK) {
		second.Close()
		t.Errorf("second flock while the first is held: %v, want EWOULDBLOCK", err)
	}
	first.Close()
	second, err := lock()
	if err != nil {
		t.Errorf("flock after the first was released: %v", err)
	} else {
		second.Close()
	}
}

func TestStatfsAndCapacity(t *testing.T) {
	requireFUSE(t)
	fsys := mount(t, nil)
	var st unix.Statfs_t
	if err := unix.Statfs(fsys.Dir(), &st); err != nil {
		t.Fatal(err)
	}
	if free := st.Bavail * uint64(st.Bsize); free < 1<<39 {
		t.Errorf("statfs: %d bytes free on an empty unlimited disk, want about 1 TiB", free)
	}
	fsys.SetCapacity(1 << 20)
	f, err := os.Create(filepath.Join(fsys.Dir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 2<<20)); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("writing 2 MiB on a 1 MiB disk: %v, want ENOSPC", err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 512<<10); err != nil {
		t.Errorf("fallocate of 512 KiB on a 1 MiB disk: %v", err)
	}
	if err := unix.Statfs(fsys.Dir(), &st); err != nil {
		t.Fatal(err)
	}
	if total, free := st.Blocks*uint64(st.Bsize), st.Bavail*uint64(st.Bsize); total != 1<<20 || free > 512<<10 {
		t.Errorf("statfs after fallocate: %d of %d bytes free, want at most 512 KiB of 1 MiB", free, total)
	}
}

// TestWAL runs kstore's Raft log on the file system: fallocate'd segments, fdatasync, rename,
// directory fsync and flock. A synced Save survives the cut; an unsynced one does not.
func TestWAL(t *testing.T) {
	requireFUSE(t)
	fsys := mount(t, nil)
	dir := filepath.Join(fsys.Dir(), "wal")
	entry := func(i uint64) *raftpb.Entry {
		return &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(1), Type: raftpb.EntryType_EntryNormal.Enum(), Data: fmt.Appendf(nil, "d%d", i)}
	}
	w, _, err := wal.Open(dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := wal.Open(dir, wal.Options{}); err == nil {
		t.Error("a second WAL opened the directory while the first holds its flock")
	}
	hs := &raftpb.HardState{Term: proto.Uint64(1), Vote: proto.Uint64(1), Commit: proto.Uint64(3)}
	if err := w.Save(hs, []*raftpb.Entry{entry(1), entry(2), entry(3)}, true); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(nil, []*raftpb.Entry{entry(4), entry(5)}, false); err != nil {
		t.Fatal(err)
	}

	s := fsys.Cut()
	w.Close() // fails after the cut; it releases the descriptors, which keep the mount busy
	if err := fsys.Unmount(); err != nil {
		t.Fatal(err)
	}
	after := mount(t, s)
	t.Logf("files after the cut: %v", s.Files())
	w, st, err := wal.Open(filepath.Join(after.Dir(), "wal"), wal.Options{})
	if err != nil {
		t.Fatalf("reopening the WAL after the cut: %v", err)
	}
	defer w.Close()
	if len(st.Entries) != 3 || st.Entries[2].GetIndex() != 3 || st.HardState.GetCommit() != 3 {
		t.Errorf("after the cut: %d entries (last %d), commit %d; want the 3 synced entries and commit 3",
			len(st.Entries), st.Entries[len(st.Entries)-1].GetIndex(), st.HardState.GetCommit())
	}
}

// helper is a child process running one of helpers.
type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lockedBuffer
	exited chan struct{}
	err    error // set before exited is closed
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startHelper runs helpers[name] with arg (marshaled to JSON unless a string) in a child
// process, killed at the end of the test if it still runs.
func startHelper(t *testing.T, name string, arg any) *helper {
	t.Helper()
	var a []byte
	if s, ok := arg.(string); ok {
		a = []byte(s)
	} else {
		var err error
		if a, err = json.Marshal(arg); err != nil {
			t.Fatal(err)
		}
	}
	h := &helper{lines: make(chan string, 16), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	h.cmd = exec.Command(os.Args[0], "-test.run=^$")
	h.cmd.Env = append(os.Environ(), helperEnv+"="+name, helperArgEnv+"="+string(a), "GORACE=atexit_sleep_ms=0")
	h.cmd.Stderr = h.stderr
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.err = h.cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() { h.kill(t) })
	return h
}

// waitLine returns the first line the helper prints that starts with prefix.
func (h *helper) waitLine(t *testing.T, prefix string, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-h.lines:
			if !ok {
				<-h.exited
				t.Fatalf("helper exited (%v) before printing %q:\n%s", h.err, prefix, h.stderr)
			}
			if strings.HasPrefix(l, prefix) {
				return strings.TrimSpace(strings.TrimPrefix(l, prefix))
			}
		case <-deadline:
			t.Fatalf("helper printed no %q line within %v:\n%s", prefix, within, h.stderr)
		}
	}
}

// kill SIGKILLs the helper and waits for it, so that the mount is no longer in use.
func (h *helper) kill(t *testing.T) {
	t.Helper()
	select {
	case <-h.exited:
		return
	default:
	}
	_ = h.cmd.Process.Kill()
	h.stdin.Close()
	for range h.lines {
	}
	<-h.exited
}

// wait waits for the helper to exit by itself, fails the test unless it succeeded, and
// returns the lines it printed that no waitLine took.
func (h *helper) wait(t *testing.T, within time.Duration) []string {
	t.Helper()
	h.stdin.Close()
	var lines []string
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-h.lines:
			if ok {
				lines = append(lines, l)
				continue
			}
			<-h.exited
			if h.err != nil {
				t.Fatalf("helper: %v\n%s", h.err, h.stderr)
			}
			return lines
		case <-deadline:
			t.Fatalf("helper did not exit within %v:\n%s", within, h.stderr)
		}
	}
}
