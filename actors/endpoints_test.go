package actors

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/kstore/kstore/messages"
)

// The client process of the endpoint tests is the test binary run again with these set.
const (
	helperNodeEnv   = "KSTORE_ENDPOINTS_TEST_NODE"   // the node's address
	helperListenEnv = "KSTORE_ENDPOINTS_TEST_LISTEN" // the client's own, 127.0.0.1:0 by default
)

// TestEndpointsHelperClient is not a test but the client process of
// TestDeadClientsLeaveNoEndpoints. It runs the commands it reads on stdin and answers each
// with a line, "ok" or "err: why":
//
//	status      a Status request to the node
//	watch       starts a watch of Pods and waits for its first event
//	wait NAME   waits for the watch's event about the Pod NAME
//
// It exits at the end of stdin.
func TestEndpointsHelperClient(t *testing.T) {
	node := os.Getenv(helperNodeEnv)
	if node == "" {
		t.Skip("the client process of TestDeadClientsLeaveNoEndpoints")
	}
	sys, err := NewSystem(cmp.Or(os.Getenv(helperListenEnv), "127.0.0.1:0"), zap.NewNop())
	if err != nil {
		fmt.Println("err:", err)
		os.Exit(1)
	}
	c := NewClient(sys.ActorSystem, []string{node}, 5*time.Second)
	var w *Watch
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fmt.Println(helperDo(c, &w, in.Text()))
	}
	if w != nil {
		w.Stop()
	}
	c.Close()
	sys.Close()
	os.Exit(0)
}

func helperDo(c *Client, w **Watch, cmd string) string {
	verb, arg, _ := strings.Cut(cmd, " ")
	switch verb {
	case "status":
		if _, err := c.Status(context.Background()); err != nil {
			return "err: " + err.Error()
		}
		return "ok"
	case "watch":
		*w = c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "Pod"}, WatchOptions{})
		fallthrough
	case "wait":
		if *w == nil {
			return "err: no watch"
		}
		timeout := time.After(10 * time.Second)
		for {
			select {
			case ev, ok := <-(*w).Events():
				if !ok {
					return fmt.Sprintf("err: watch ended: %v", (*w).Err())
				}
				if arg == "" || ev.GetKey().GetName() == arg {
					return "ok"
				}
			case <-timeout:
				return "err: no event about " + cmp.Or(arg, "anything") + " within 10s"
			}
		}
	}
	return "err: unknown command " + cmd
}

// clientProcess is a kstore client in a child process (TestEndpointsHelperClient).
type clientProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startClientProcess(t *testing.T, node, listen string) *clientProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEndpointsHelperClient$")
	cmd.Env = append(os.Environ(), helperNodeEnv+"="+node, helperListenEnv+"="+listen)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &clientProcess{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
	return p
}

// do has the client process run cmd and fails the test unless it answers ok.
func (p *clientProcess) do(t *testing.T, cmd string) {
	t.Helper()
	if _, err := io.WriteString(p.in, cmd+"\n"); err != nil {
		t.Fatalf("client process, %s: %v", cmd, err)
	}
	if !p.out.Scan() {
		t.Fatalf("client process, %s: no answer (%v)", cmd, p.out.Err())
	}
	if got := p.out.Text(); got != "ok" {
		t.Fatalf("client process, %s: %s", cmd, got)
	}
}

// kill ends the client process as a dying one ends: no goodbye, its sockets closed by the kernel.
func (p *clientProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// endpointEvents counts the node's endpoint events by address.
type endpointEvents struct {
	mu                    sync.Mutex
	connected, terminated map[string]int
}

func watchEndpoints(t *testing.T, sys *actor.ActorSystem) *endpointEvents {
	e := &endpointEvents{connected: map[string]int{}, terminated: map[string]int{}}
	sub := sys.EventStream.Subscribe(func(ev any) {
		e.mu.Lock()
		defer e.mu.Unlock()
		switch ev := ev.(type) {
		case *remote.EndpointConnectedEvent:
			e.connected[ev.Address]++
		case *remote.EndpointTerminatedEvent:
			e.terminated[ev.Address]++
		}
	})
	t.Cleanup(func() { sys.EventStream.Unsubscribe(sub) })
	return e
}

func (e *endpointEvents) terminations(addr string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.terminated[addr]
}

func (e *endpointEvents) connections(addr string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.connected[addr]
}

// waitFor polls cond until it holds, failing the test with what() once within has passed.
func waitFor(t *testing.T, within time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what())
		}
		<-tick.C
	}
}

// connecting counts protoactor endpoint writers trying to connect (or waiting to try again).
func connecting() int {
	buf := make([]byte, 8<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "remote.(*endpointWriter).initialize(")
}

var frameRE = regexp.MustCompile(`^([\w./()*%-]+)\(`)

// goroutineGroups counts this process's goroutines by their innermost frame outside the
// runtime and the function that created them.
func goroutineGroups() map[string]int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	groups := map[string]int{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		var top, created string
		for _, line := range strings.Split(g, "\n") {
			if rest, ok := strings.CutPrefix(line, "created by "); ok {
				created = strings.Fields(rest)[0]
			} else if m := frameRE.FindStringSubmatch(line); m != nil && top == "" &&
				!strings.HasPrefix(m[1], "runtime.") && !strings.HasPrefix(m[1], "sync.") && !strings.HasPrefix(m[1], "internal/") {
				top = m[1]
			}
		}
		groups[top+" <- "+created]++
	}
	return groups
}

// grown lists the goroutine groups that grew from before to after.
func grown(before, after map[string]int) string {
	var lines []string
	for k, n := range after {
		if d := n - before[k]; d > 0 {
			lines = append(lines, fmt.Sprintf("%+5d %s", d, k))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestDeadClientsLeaveNoEndpoints runs a node and kills ten client processes that watched it,
// as a CLI killed during `kstore watch` dies: the node's goroutines come back to where they
// were (the node dropped every dead client's endpoint and dials none of them any more), a
// live client that was idle meanwhile still gets its replies and watch events, and a client
// that comes back on an address whose endpoint was dropped is dialled anew.
func TestDeadClientsLeaveNoEndpoints(t *testing.T) {
	if inOwnProcess(t) {
		return
	}
	defer goleak.VerifyNone(t, leakOptions...)
	const (
		deadClients = 10
		// slack absorbs goroutines that come and go by themselves (timers firing, gRPC
		// closing a transport). What a dead client leaves behind without endpointDialOptions
		// is 16 (four ClientConns redialling it); a writer still trying to connect is 1, and
		// counted by connecting.
		slack = 3
		// A dead address's last endpoint goes within MaxRetryCount (5) tries 2 s apart.
		within = 30 * time.Second
	)
	sys, err := NewSystem("127.0.0.1:0", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	n, err := Spawn(sys.ActorSystem, Config{DataDir: t.TempDir()})
	if err != nil {
		sys.Close()
		t.Fatal(err)
	}
	defer func() {
		if err := n.Stop(); err != nil {
			t.Error(err)
		}
		sys.Close()
	}()
	events := watchEndpoints(t, sys.ActorSystem)
	ctx := context.Background()
	c := NewClientPIDs(sys.ActorSystem, []*actor.PID{n.PID()}, 0)
	if _, err := c.Put(ctx, pod("a"), messages.Reason_OPERATOR); err != nil {
		t.Fatal(err)
	}

	// A live client with a watch it then leaves idle.
	live := startClientProcess(t, sys.Address(), "")
	live.do(t, "watch")
	live.do(t, "status")

	baseline, before := runtime.NumGoroutine(), goroutineGroups()
	current := func() string {
		return fmt.Sprintf("the node has %d goroutines, want at most %d (baseline %d + %d), %d of them endpoint writers connecting; grown:\n%s",
			runtime.NumGoroutine(), baseline+slack, baseline, slack, connecting(), grown(before, goroutineGroups()))
	}
	settled := func() bool { return connecting() == 0 && runtime.NumGoroutine() <= baseline+slack }
	// The last dead client listens on an address a client comes back on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	again := l.Addr().String()
	l.Close()
	for i := range deadClients {
		listen := "127.0.0.1:0"
		if i == deadClients-1 {
			listen = again
		}
		p := startClientProcess(t, sys.Address(), listen)
		p.do(t, "watch")
		p.do(t, "status")
		p.kill(t)
		t.Logf("dead client %d: node goroutines %d (baseline %d)", i+1, runtime.NumGoroutine(), baseline)
	}
	start := time.Now()
	waitFor(t, within, func() bool { return events.terminations(again) > 0 && settled() }, current)
	t.Logf("after %d dead clients: node goroutines %d within %v (baseline %d)",
		deadClients, runtime.NumGoroutine(), time.Since(start).Round(100*time.Millisecond), baseline)

	// The live client was not cut off: it gets replies, and its watch its events.
	live.do(t, "status")
	if _, err := c.Put(ctx, pod("b"), messages.Reason_OPERATOR); err != nil {
		t.Fatal(err)
	}
	live.do(t, "wait b")

	// A client back on an address whose endpoint was dropped gets replies: the node dials it
	// again.
	p := startClientProcess(t, sys.Address(), again)
	p.do(t, "status")
	if got := events.connections(again); got != 2 {
		t.Errorf("the node connected to %s %d times, want 2 (once per client process)", again, got)
	}
	p.kill(t)
}
