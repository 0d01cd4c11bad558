package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestMain lets the test binary serve as etcd's server main, as the benchmark's own executable
// does, so the tests start members exactly as the harness does.
func TestMain(m *testing.M) {
	RunEtcdServerIfAsked()
	os.Exit(m.Run())
}

func TestEtcdReason(t *testing.T) {
	var c etcdConn
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: k changed", ErrConflict), "Conflict"},
		{context.DeadlineExceeded, "Timeout"},
		{fmt.Errorf("put: %w", context.Canceled), "Timeout"},
		{rpctypes.ErrNoLeader, "NoLeader"},
		{rpctypes.ErrGRPCNoLeader, "NoLeader"},
		{fmt.Errorf("put: %w", rpctypes.ErrLeaderChanged), "LeaderChanged"},
		{rpctypes.ErrTimeout, "ServerTimeout"},
		{rpctypes.ErrGRPCTimeoutWaitAppliedIndex, "TimeoutWaitAppliedIndex"},
		{rpctypes.ErrCompacted, "Compacted"},
		{status.Error(codes.Unavailable, "connection refused"), "Unavailable"},
		{status.Error(codes.DeadlineExceeded, "too slow"), "Timeout"},
		{fmt.Errorf("get: %w", status.Error(codes.ResourceExhausted, "full")), "ResourceExhausted"},
		{errors.New("boom"), "Unknown"},
	} {
		if got := c.Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestEtcd(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, members := range []int{1, 3} {
		t.Run(fmt.Sprintf("members=%d", members), func(t *testing.T) {
			if members == 3 && testing.Short() {
				t.Skip("three members take a while: run without -short")
			}
			testEtcd(t, self, members)
		})
	}
}

// TestEtcdStartFails: a member that exits at once fails the start with its exit, not after the
// start's whole timeout, and leaves no folder behind.
func TestEtcdStartFails(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	_, err := Start(Target{System: "etcd", Members: 1}, Options{Self: "/bin/false", Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "exited during start") {
		t.Fatalf("Start with a Self that exits: %v, want an exit error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("failing took %v", d)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("a failed start left %v", left)
	}
	if _, err := Start(Target{System: "etcd", Members: 1}, Options{Dir: dir}); err == nil {
		t.Fatal("Start without Self succeeded")
	}
}

func testEtcd(t *testing.T, self string, members int) {
	dir := t.TempDir()
	start := time.Now()
	st, err := Start(Target{System: "etcd", Members: members}, Options{Self: self, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			st.Close()
		}
	})
	t.Logf("Start took %v", time.Since(start))
	s := st.(*etcdStore)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	pids := st.PIDs()
	if len(pids) != members {
		t.Fatalf("PIDs = %v, want %d", pids, members)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Fatalf("member %d not running: %v", pid, err)
		}
	}
	if fi, err := os.Stat(st.DataDir()); err != nil || !fi.IsDir() {
		t.Fatalf("DataDir %s: %v", st.DataDir(), err)
	}
	if len(s.conns) != defaultEtcdConns || st.Conn(defaultEtcdConns+1) != st.Conn(1) {
		t.Fatalf("%d conns, want %d, Conn(i) wrapping", len(s.conns), defaultEtcdConns)
	}
	c := st.Conn(0)
	raw := s.clients[1]
	value := func(key string) string {
		t.Helper()
		resp, err := raw.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get %s: %v, %d kvs", key, err, len(resp.Kvs))
		}
		return string(resp.Kvs[0].Value)
	}

	// Put, Get both ways.
	d := Doc{Namespace: "ns", Name: "a", Seq: 1, Size: 256, Group: 1}
	key := EtcdKey(d.Namespace, d.Name)
	if err := c.Put(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := value(key); got != string(d.JSON("")) {
		t.Fatalf("value %q, want %q", got, d.JSON(""))
	}
	for _, serializable := range []bool{false, true} {
		if err := c.Get(ctx, d.Namespace, d.Name, serializable); err != nil {
			t.Fatalf("Get(serializable=%v): %v", serializable, err)
		}
	}

	// Update of an unchanged key, and of a missing one (which creates it).
	d.Seq = 2
	if err := c.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := value(key); got != string(d.JSON("")) {
		t.Fatalf("after Update: %q, want %q", got, d.JSON(""))
	}
	fresh := Doc{Namespace: "ns", Name: "fresh", Seq: 1, Size: 100}
	if err := c.Update(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if got := value(EtcdKey("ns", "fresh")); got != string(fresh.JSON("")) {
		t.Fatalf("Update of a missing key: %q", got)
	}

	// Update losing to a write between its read and its write: read the revision, write by
	// hand, then write at the revision read.
	resp, err := raw.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Put(ctx, key, "by hand"); err != nil {
		t.Fatal(err)
	}
	d.Seq = 3
	err = c.(*etcdConn).updateAt(ctx, key, d.JSON(""), resp.Kvs[0].ModRevision)
	if !errors.Is(err, ErrConflict) || c.Reason(err) != "Conflict" {
		t.Fatalf("update at a stale revision: %v (%s), want ErrConflict", err, c.Reason(err))
	}
	if got := value(key); got != "by hand" {
		t.Fatalf("a conflicting update wrote %q", got)
	}

	if err := c.Patch(ctx, d.Namespace, d.Name, 4); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Patch: %v, want ErrUnsupported", err)
	}

	// List: 1,234 Docs in pages of 500, next to namespaces whose keys sort around them.
	start = time.Now()
	putMany(t, ctx, st, "list", 1234)
	t.Logf("1,234 puts took %v", time.Since(start))
	for _, ns := range []string{"lis", "list2"} {
		if err := c.Put(ctx, Doc{Namespace: ns, Name: "x", Size: 100}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		ns         string
		page, want int
	}{{"list", 500, 1234}, {"list", 0, 1234}, {"list", 1234, 1234}, {"", 500, 1234 + 2 + 2}, {"none", 500, 0}} {
		n, err := st.Conn(2).List(ctx, tc.ns, tc.page, "")
		if err != nil || n != tc.want {
			t.Fatalf("List(%q, %d) = %d, %v; want %d", tc.ns, tc.page, n, err, tc.want)
		}
	}
	if _, err := c.List(ctx, "list", 500, "group=g1"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("List with a selector: %v, want ErrUnsupported", err)
	}

	// Watch from a revision: sees the writes after it (also one made before the watch
	// started), in order, and none of another namespace.
	if err := c.Put(ctx, Doc{Namespace: "watch", Name: "before", Size: 100}); err != nil {
		t.Fatal(err)
	}
	rev, err := c.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, Doc{Namespace: "watch", Name: "early", Size: 100}); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	events := make(chan Event, 100)
	wait := st.Conn(3).Watch(wctx, "watch", rev, func(ev Event) { events <- ev })
	if err := c.Put(ctx, Doc{Namespace: "watch2", Name: "other", Size: 100}); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, Doc{Namespace: "watch", Name: "late", Size: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Delete(ctx, EtcdKey("watch", "early")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []Event{{"watch", "early", false}, {"watch", "late", false}, {"watch", "early", true}} {
		select {
		case ev := <-events:
			if ev != want {
				t.Fatalf("watch event %+v, want %+v", ev, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no watch event within 30s, want %+v", want)
		}
	}
	wcancel()
	if err := wait(); err != nil {
		t.Fatalf("watch ended by its context: %v, want nil", err)
	}

	// A watch still running when the store closes ends with an error.
	waitOpen := st.Conn(4).Watch(ctx, "watch", 0, func(Event) {})

	folders, err := os.ReadDir(dir)
	if err != nil || len(folders) != members {
		t.Fatalf("%s holds %d folders (%v), want one per member", dir, len(folders), err)
	}
	closed = true
	start = time.Now()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v", time.Since(start))
	if err := waitOpen(); err == nil {
		t.Fatal("a watch cut by Close returned nil, want an error")
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("member %d still there after Close: %v", pid, err)
		}
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Errorf("after Close %s holds %v (%v), want nothing", dir, left, err)
	}
	waitGoroutinesGone(t, "driver.(*etcd", "go.etcd.io/etcd/client/v3.")
}

// putMany puts n Docs in namespace from 16 clients over the store's connections, so that a
// thousand fsynced writes take a second rather than several.
func putMany(t *testing.T, ctx context.Context, st Store, namespace string, n int) {
	t.Helper()
	idx := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			// Drain idx even after a failure, so the feeding below never blocks.
			for i := range idx {
				d := Doc{Namespace: namespace, Name: fmt.Sprintf("p%05d", i), Seq: i, Size: 512, Group: i % 10}
				if err := st.Conn(w).Put(ctx, d); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := 0; i < n && len(errs) == 0; i++ {
		idx <- i
	}
	close(idx)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("put %s: %v", namespace, err)
	default:
	}
}

// waitGoroutinesGone waits until no goroutine's stack holds any of frames, which Close should
// have ended, and fails listing them after a deadline.
func waitGoroutinesGone(t *testing.T, frames ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []string
		buf := make([]byte, 1<<20)
		for {
			n := runtime.Stack(buf, true)
			if n < len(buf) {
				buf = buf[:n]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		for _, g := range strings.Split(string(buf), "\n\n") {
			for _, f := range frames {
				if strings.Contains(g, f) {
					left = append(left, g)
					break
				}
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}
