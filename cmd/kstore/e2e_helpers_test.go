package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kstore/kstore/cluster"
)

// The end-to-end test runs the kstore binary: a node as a child process and one process per
// client command, over loopback, as an operator would.

// binary is one build of kstore for the tests.
type binary struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

var (
	build      binary // with the race detector when the tests run with it
	plainBuild binary // never with it
)

// TestMain removes the built binary and checks that the tests leave no goroutine behind.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, b := range []*binary{&build, &plainBuild} {
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// kstoreBinary builds the binary once per test process, with the race detector when the test
// runs with it, and with the failpoints the disk-fault tests arm (inert unless
// KSTORE_FAILPOINTS is set).
func kstoreBinary(t *testing.T) string {
	t.Helper()
	return build.get(t, raceBuildFlags...)
}

// plainKstoreBinary is kstoreBinary without the race detector, for the tests of volume (a
// hundred thousand writes, a disk filled up): under it their nodes run five to ten times slower
// (TestLongHistoryRestarts took 345 s of make test's 12 minutes) and check nothing about races
// that the other end-to-end tests' race-built nodes, on the same code paths, do not.
func plainKstoreBinary(t *testing.T) string {
	t.Helper()
	return plainBuild.get(t)
}

func (b *binary) get(t *testing.T, flags ...string) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "kstore-e2e"); b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "kstore")
		args := append([]string{"build", "-tags", "failpoints"}, flags...)
		out, err := exec.Command("go", append(args, "-o", b.bin, ".")...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// freeAddr returns a loopback address with a port nothing listens on right now, nor on the
// port cluster.HealthPortOffset above it, where a node's automanaged health endpoint listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := cluster.FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// serverLog collects a node's stderr and tells when the ready line has been written.
type serverLog struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string // the ready line's text; " serving on " when empty
	ready  chan struct{}
	seen   bool
}

func (l *serverLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if !l.seen && bytes.Contains(l.buf.Bytes(), []byte(cmp.Or(l.marker, " serving on "))) {
		l.seen = true
		close(l.ready)
	}
	return len(p), nil
}

func (l *serverLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// server is a `kstore serve` child process.
type server struct {
	cmd     *exec.Cmd
	log     *serverLog
	exited  chan struct{} // closed when the process has been waited for
	waitErr error         // set before exited is closed
}

// startServer starts `kstore serve` and waits for its ready line. The process is killed at the
// end of the test if it still runs.
func startServer(t *testing.T, bin, dir, addr string, extra ...string) *server {
	t.Helper()
	return startProcess(t, bin, append([]string{"serve", "--data-dir", dir, "--listen", addr, "--log-level", "warn"}, extra...), " serving on ")
}

// startProcess starts `kstore args...` (serve, controllers) and waits for the stderr line that
// says it is ready. The process is killed at the end of the test if it still runs, and its log
// is checked for data races in kstore's code.
func startProcess(t *testing.T, bin string, args []string, ready string) *server {
	t.Helper()
	s := &server{log: &serverLog{marker: ready, ready: make(chan struct{})}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = append(os.Environ(), serverGORACE)
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	name := "kstore " + args[0]
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		checkRaces(t, name, s.log.String())
	})
	select {
	case <-s.log.ready:
	case <-s.exited:
		t.Fatalf("%s exited before it was ready (%v):\n%s", name, s.waitErr, s.log)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s printed no ready line (%q) within 30s:\n%s", name, ready, s.log)
	}
	return s
}

// serverGORACE is the race detector's setting for the processes of serve and controllers (built
// with -race when the test is): no 1 s sleep at exit, and exit status 0 after a race, since
// protoactor-go's cluster package, which both run, has data races of its own (BlockList read
// without its lock while gossip writes it, among others) that kstore cannot fix. checkRaces
// reads every report instead, and fails the test on any that involves kstore's code.
const serverGORACE = "GORACE=atexit_sleep_ms=0 exitcode=0"

// kstoreRaces returns the race reports in log that involve kstore's own code; the others, all
// inside protoactor-go (upstream's), are left out.
func kstoreRaces(log string) (ours []string, upstream int) {
	const sep = "=================="
	for _, block := range strings.Split(log, sep) {
		if !strings.Contains(block, "WARNING: DATA RACE") {
			continue
		}
		if accessInKstore(block) {
			ours = append(ours, block)
		} else {
			upstream++
		}
	}
	return ours, upstream
}

// accessInKstore reports whether one of a race report's two accesses ("Read at", "Previous
// write at", ...) is made by kstore's code: the innermost frame of its stack outside the
// standard library (whose packages have no domain in their path) is kstore's. A race inside
// protoactor-go reached from a kstore function further out (the guard interceptor calls
// protoactor's stream handler) is protoactor's; the "Goroutine N created at" stacks do not count.
func accessInKstore(report string) bool {
	for _, section := range strings.Split(report, "\n\n") {
		if strings.HasPrefix(strings.TrimSpace(section), "Goroutine ") {
			continue
		}
		for _, line := range strings.Split(section, "\n") {
			fn := strings.TrimSpace(line)
			if fn == "" || strings.HasPrefix(fn, "/") || strings.Contains(fn, " at 0x") || !strings.HasSuffix(fn, ")") {
				continue // a file:line, the access's header, or something else than a function
			}
			first, _, nested := strings.Cut(fn, "/")
			if !nested || !strings.Contains(first, ".") {
				continue // the standard library (runtime.mapassign, internal/race.Read, ...)
			}
			if strings.HasPrefix(fn, "github.com/kstore/kstore/") {
				return true
			}
			break // the innermost frame outside the standard library is another module's
		}
	}
	return false
}

func hasKstoreRace(log string) bool {
	ours, _ := kstoreRaces(log)
	return len(ours) > 0
}

// checkRaces fails the test on every race report in a process's log that involves kstore's
// code, and notes the upstream ones.
func checkRaces(t *testing.T, who, log string) {
	t.Helper()
	ours, upstream := kstoreRaces(log)
	for _, r := range ours {
		t.Errorf("%s reported a data race in kstore's code:%s", who, r)
	}
	if upstream > 0 {
		t.Logf("%s reported %d data race(s) inside protoactor-go (upstream, not kstore's code)", who, upstream)
	}
}

// wait waits for the process to end and returns its exit status.
func (s *server) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-s.exited:
	case <-time.After(within):
		t.Fatalf("kstore serve did not exit within %v:\n%s", within, s.log)
	}
	var ee *exec.ExitError
	switch {
	case s.waitErr == nil:
		return 0
	case errors.As(s.waitErr, &ee):
		return ee.ExitCode() // -1 when killed by a signal
	}
	t.Fatalf("kstore serve: %v", s.waitErr)
	return 0
}

// cli runs kstore client commands against one node, found through $KSTORE_ENDPOINTS.
type cli struct {
	t         *testing.T
	bin       string
	endpoints string
}

// env is the environment of a kstore process: the endpoints, and no 1 s sleep at the exit of
// a binary built with -race (GORACE's atexit_sleep_ms, which gives other goroutines time to
// report a race; a race found still fails the test through stderr and exit status 66).
func (c *cli) env() []string {
	return append(os.Environ(), endpointsEnv+"="+c.endpoints, "GORACE=atexit_sleep_ms=0")
}

type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("kstore %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// commandTimeout bounds one kstore process: far above a request's timeout plus startup and
// shutdown, so a process that hangs fails the test instead of stalling it.
const commandTimeout = 30 * time.Second

// exec runs kstore once. It does not touch t, so goroutines may call it.
func (c *cli) exec(stdin string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{args: args, stdout: out.String(), stderr: errb.String()}
	if ctx.Err() != nil {
		return r, fmt.Errorf("kstore %s did not exit within %v", strings.Join(args, " "), commandTimeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		return r, err
	}
	return r, nil
}

func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	r, err := c.exec(stdin, args...)
	if err != nil {
		c.t.Fatalf("%v\n%v", err, r)
	}
	return r
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 || r.stderr != "" {
		c.t.Fatalf("want success and a silent stderr:\n%v", r)
	}
	return r.stdout
}

// fail runs a command that must be refused with reason: exit 1, nothing on stdout, and stderr
// "Error (reason): ...". It returns the sentence after the reason.
func (c *cli) fail(reason, stdin string, args ...string) string {
	c.t.Helper()
	r := c.run(stdin, args...)
	prefix := "Error (" + reason + "): "
	if r.code != exitFailed || r.stdout != "" || !strings.HasPrefix(r.stderr, prefix) || strings.Count(r.stderr, "\n") != 1 {
		c.t.Fatalf("want exit 1, no stdout and one stderr line starting with %q:\n%v", prefix, r)
	}
	return strings.TrimSuffix(strings.TrimPrefix(r.stderr, prefix), "\n")
}

// writeResult is a write's output line.
type writeResult struct {
	Op              string          `json:"op"`
	ResourceVersion uint64          `json:"resource_version"`
	Object          json.RawMessage `json:"object"`
}

// results parses one write result per line.
func results(t *testing.T, stdout string) []writeResult {
	t.Helper()
	var out []writeResult
	for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		var r writeResult
		if err := strictUnmarshal(l, &r); err != nil || r.Op == "" || r.ResourceVersion == 0 {
			t.Fatalf("not a write result line: %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

// result1 parses a single write result line and checks its op.
func result1(t *testing.T, stdout, wantOp string) writeResult {
	t.Helper()
	rs := results(t, stdout)
	if len(rs) != 1 || rs[0].Op != wantOp {
		t.Fatalf("got %q, want one %s result", stdout, wantOp)
	}
	return rs[0]
}

func strictUnmarshal(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// obj is an object as get and list print it.
type obj map[string]any

func parseObj(t *testing.T, s string) obj {
	t.Helper()
	var o obj
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		t.Fatalf("not an object: %q: %v", s, err)
	}
	return o
}

func (o obj) meta(k string) string {
	m, _ := o["metadata"].(map[string]any)
	s, _ := m[k].(string)
	return s
}

func (o obj) image() string {
	spec, _ := o["spec"].(map[string]any)
	cs, _ := spec["containers"].([]any)
	if len(cs) == 0 {
		return ""
	}
	c, _ := cs[0].(map[string]any)
	s, _ := c["image"].(string)
	return s
}

func (o obj) label(k string) string {
	m, _ := o["metadata"].(map[string]any)
	l, _ := m["labels"].(map[string]any)
	s, _ := l[k].(string)
	return s
}

type listResult struct {
	ResourceVersion uint64            `json:"resource_version"`
	Items           []json.RawMessage `json:"items"`
	Continue        string            `json:"continue"`
}

func parseList(t *testing.T, stdout string) listResult {
	t.Helper()
	var l listResult
	if err := strictUnmarshal(stdout, &l); err != nil || l.ResourceVersion == 0 || l.Items == nil {
		t.Fatalf("not a list result: %q: %v", stdout, err)
	}
	return l
}

// names are the list's items as namespace/name, in order.
func (l listResult) names(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, it := range l.Items {
		o := parseObj(t, string(it))
		out = append(out, o.meta("namespace")+"/"+o.meta("name"))
	}
	return out
}

type nodeStatus struct {
	NodeID    uint64 `json:"node_id"`
	Leader    uint64 `json:"leader"`
	Term      uint64 `json:"term"`
	Commit    uint64 `json:"commit"`
	Applied   uint64 `json:"applied"`
	Compacted uint64 `json:"compacted"`
	Role      string `json:"role"`
	// The node's release and wire protocol.
	Version         string `json:"version"`
	ProtocolVersion uint32 `json:"protocol_version"`
	Members         []struct {
		ID      uint64 `json:"id"`
		Address string `json:"address"`
		Role    string `json:"role"`
		Leader  bool   `json:"leader"`
	} `json:"members"`
	Cluster *struct {
		Name     string   `json:"name"`
		Provider string   `json:"provider"`
		Members  []string `json:"members"`
	} `json:"cluster"`
}

func (c *cli) status() nodeStatus {
	c.t.Helper()
	out := c.ok("", "status")
	var st nodeStatus
	if err := strictUnmarshal(out, &st); err != nil {
		c.t.Fatalf("status printed %q: %v", out, err)
	}
	return st
}

// waitLeader polls status until the node reports a leader.
func (c *cli) waitLeader() nodeStatus {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last result
	for {
		r, err := c.exec("", "status", "--timeout", "1s")
		if err != nil {
			c.t.Fatal(err)
		}
		var st nodeStatus
		if r.code == 0 && json.Unmarshal([]byte(r.stdout), &st) == nil && st.Leader != 0 {
			return st
		}
		last = r
		if time.Now().After(deadline) {
			c.t.Fatalf("no leader within 20s; the last status:\n%v", last)
		}
		<-tick.C
	}
}

// snapshot is what bad input must leave unchanged: the commit index and the listed objects.
func (c *cli) snapshot() string {
	c.t.Helper()
	return fmt.Sprintf("commit %d\npods %s\nconfigmaps %s", c.status().Commit, c.ok("", "list", "Pod.v1"), c.ok("", "list", "ConfigMap.v1"))
}

// pod returns a Pod as JSON.
func pod(ns, name, image string, labels map[string]string) string {
	o := map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   map[string]any{"name": name, "namespace": ns, "labels": labels},
		"spec":       map[string]any{"containers": []any{map[string]any{"name": "c", "image": image}}},
	}
	if labels == nil {
		delete(o["metadata"].(map[string]any), "labels")
	}
	b, _ := json.Marshal(o)
	return string(b)
}

// putCommand is a put in the wire form of kstore do.
func putCommand(ns, name, value string) string {
	return fmt.Sprintf(`{"kind":"put","key":{"group":"","version":"v1","kind":"Pod","namespace":%q,"name":%q},"value":%s,"reason":"operator"}`, ns, name, value)
}
