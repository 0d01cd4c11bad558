package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
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
)

// listenPort is every member's port: each member has a namespace, so they can share one.
const listenPort = 7451

// member is one `kstore serve` process in its namespace.
type member struct {
	id     int
	ns     string
	addr   string
	dir    string
	cmd    *exec.Cmd
	log    *logBuffer
	exited chan struct{}
	paused bool
	killed bool // by the test: its exit is no failure
}

// logBuffer keeps a process's stderr and tells when a line with marker was written.
type logBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	ready  chan struct{}
	seen   bool
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if !l.seen && strings.Contains(l.buf.String(), l.marker) {
		l.seen = true
		close(l.ready)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testCluster is a run's members, its network and its agent.
type testCluster struct {
	t          *testing.T
	net        *network
	members    []*member
	initial    string
	failpoints string
	agent      *agentProc
	faults     int // faults injected
}

func startTestCluster(t *testing.T, n int, slow bool, failpoints string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, net: newNetwork(t, n, slow), failpoints: failpoints}
	var initial []string
	for i := range n {
		m := &member{id: i + 1, ns: c.net.hosts[i], addr: fmt.Sprintf("%s:%d", c.net.addrs[i], listenPort), dir: filepath.Join(t.TempDir(), "data")}
		c.members = append(c.members, m)
		initial = append(initial, fmt.Sprintf("%d=%s", m.id, m.addr))
	}
	c.initial = strings.Join(initial, ",")
	t.Cleanup(func() {
		for _, m := range c.members {
			if m.cmd != nil {
				if m.paused {
					_ = m.cmd.Process.Signal(syscall.SIGCONT)
				}
				_ = m.cmd.Process.Kill()
				<-m.exited
			}
		}
		if t.Failed() {
			for _, m := range c.members {
				if m.log != nil {
					t.Logf("member %d's log (tail):\n%s", m.id, tail(m.log.String(), 3000))
				}
			}
		}
	})
	for i := range c.members {
		c.start(i)
	}
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// start starts member i (again) on its data dir and waits until it serves.
func (c *testCluster) start(i int) {
	c.t.Helper()
	m := c.members[i]
	m.log = &logBuffer{marker: " serving on ", ready: make(chan struct{})}
	m.exited = make(chan struct{})
	m.paused, m.killed = false, false
	m.cmd = exec.Command("ip", "netns", "exec", m.ns, kstoreBinary(c.t), "serve",
		"--node-id", fmt.Sprint(m.id), "--listen", m.addr, "--initial-cluster", c.initial,
		"--data-dir", m.dir, "--disk-reserve-bytes", "0", "--log-level", "warn")
	m.cmd.Env = os.Environ()
	if c.failpoints != "" {
		m.cmd.Env = append(m.cmd.Env, "KSTORE_FAILPOINTS="+c.failpoints)
	}
	m.cmd.Stderr = m.log
	if err := m.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	exited := m.exited
	go func() {
		_ = m.cmd.Wait()
		close(exited)
	}()
	select {
	case <-m.log.ready:
	case <-exited:
		c.t.Fatalf("member %d exited before it served:\n%s", m.id, m.log)
	case <-time.After(30 * time.Second):
		c.t.Fatalf("member %d did not serve within 30s:\n%s", m.id, m.log)
	}
}

func (c *testCluster) running(i int) bool {
	m := c.members[i]
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// kill ends member i with SIGKILL, as a crash does.
func (c *testCluster) kill(i int) {
	c.t.Helper()
	m := c.members[i]
	if m.paused {
		_ = m.cmd.Process.Signal(syscall.SIGCONT)
	}
	m.killed = true
	_ = m.cmd.Process.Kill()
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("member %d still runs 10s after SIGKILL", m.id)
	}
	c.faults++
}

// pause stops member i with SIGSTOP; resume continues it.
func (c *testCluster) pause(i int) {
	c.t.Helper()
	if err := c.members[i].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatal(err)
	}
	c.members[i].paused = true
	c.faults++
}

func (c *testCluster) resume(i int) {
	c.t.Helper()
	if err := c.members[i].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		c.t.Fatal(err)
	}
	c.members[i].paused = false
}

// healAll ends every fault: links and cuts healed, paused members continued, dead ones
// restarted. It fails the test on a member that died by itself.
func (c *testCluster) healAll() {
	c.t.Helper()
	c.net.heal()
	for i, m := range c.members {
		if m.paused {
			c.resume(i)
		}
		if !c.running(i) {
			if !m.killed {
				c.t.Errorf("member %d exited by itself:\n%s", m.id, tail(m.log.String(), 3000))
			}
			c.start(i)
		}
	}
}

// leader asks the agent who leads; 0 when nobody it reaches knows.
func (c *testCluster) leader() int {
	c.t.Helper()
	var id int
	fmt.Sscanf(c.agent.ask("leader", 10*time.Second), "leader %d", &id)
	return id
}

// agentProc is the agent process and its command line.
type agentProc struct {
	t      *testing.T
	cfg    agentConfig
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan string
	stderr *logBuffer
}

// startAgent starts the workload in the client namespace.
func (c *testCluster) startAgent(cfg agentConfig) {
	c.t.Helper()
	for _, m := range c.members {
		cfg.Endpoints = append(cfg.Endpoints, m.addr)
	}
	cfg.Listen = c.net.addrs[len(c.members)] + ":7400"
	b, _ := json.Marshal(cfg)
	a := &agentProc{t: c.t, cfg: cfg, lines: make(chan string, 16), stderr: &logBuffer{marker: "\x00", ready: make(chan struct{})}}
	a.cmd = exec.Command("ip", "netns", "exec", c.net.hosts[len(c.members)], os.Args[0])
	a.cmd.Env = append(os.Environ(), roleEnv+"=agent", agentEnv+"="+string(b))
	a.cmd.Stderr = a.stderr
	var err error
	if a.in, err = a.cmd.StdinPipe(); err != nil {
		c.t.Fatal(err)
	}
	out, err := a.cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			a.lines <- s.Text()
		}
		close(a.lines)
	}()
	c.t.Cleanup(func() {
		_ = a.in.Close()
		_ = a.cmd.Process.Kill()
		_ = a.cmd.Wait()
	})
	c.agent = a
	if l := a.read(90 * time.Second); l != "started" {
		c.t.Fatalf("the agent did not start (%q):\n%s", l, a.stderr)
	}
}

func (a *agentProc) read(within time.Duration) string {
	a.t.Helper()
	select {
	case l, ok := <-a.lines:
		if !ok {
			a.t.Fatalf("the agent exited:\n%s", a.stderr)
		}
		return l
	case <-time.After(within):
		a.t.Fatalf("the agent said nothing within %v:\n%s", within, a.stderr)
	}
	return ""
}

func (a *agentProc) ask(cmd string, within time.Duration) string {
	a.t.Helper()
	if _, err := fmt.Fprintln(a.in, cmd); err != nil {
		a.t.Fatalf("the agent: %v:\n%s", err, a.stderr)
	}
	return a.read(within)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// kstoreBinary builds kstore once per test binary, with the failpoints the broken-build test
// arms (inert unless KSTORE_FAILPOINTS is set) and without the race detector: the servers are
// not what these tests look for races in, and a race-built member is slow enough to turn every
// fault into a timeout.
func kstoreBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "kstore-faults-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "kstore")
		out, err := exec.Command("go", "build", "-tags", "failpoints", "-o", binPath, "github.com/kstore/kstore/cmd/kstore").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}
