//go:build linux

package nethub

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The hosts' addresses in the test topology.
const (
	addrA = "10.199.0.1"
	addrB = "10.199.0.2"
)

// TestHub cables hosts a and b, each in its own network namespace, to a hub run by Main in a
// third, and checks what TCP and UDP between the hosts see.
func TestHub(t *testing.T) {
	top := newTopology(t)
	hub := startHub(t, top.hub, "a", "b")
	listenEcho(t, top.b, addrB+":7000")
	conn := dialIn(t, top.a, "tcp", addrB+":7000")

	t.Run("delay 0: 8 MB echoed intact", func(t *testing.T) {
		const size = 8 << 20
		took := echoBytes(t, conn, size)
		// The bytes cross the hub twice, there and back.
		t.Logf("8 MiB echoed in %v: %.0f MiB/s each way", took, float64(size)/(1<<20)/took.Seconds())
		t.Logf("round trip of 1 byte: %v", echoRTT(t, conn))
		st := hub.stats(t)
		t.Logf("hub: %s", st)
		if st.Oversize != 0 || st.Unreadable != 0 || st.SendFailed != 0 {
			t.Errorf("hub dropped frames it could not read or send: %s; want oversize, unreadable and sendfailed 0", st)
		}
		// veths carry TCP as GSO frames of up to 64 KiB: they must get through whole.
		if st.Largest <= 1514 {
			t.Errorf("largest frame %d bytes; want GSO frames longer than the 1514 of the MTU after a bulk transfer", st.Largest)
		}
	})

	t.Run("delay 100ms: round trip 200ms", func(t *testing.T) {
		hub.command(t, "delay 100ms", "nethub delay 100ms")
		defer hub.command(t, "delay 0", "nethub delay 0s")
		for range 3 {
			rtt := echoRTT(t, conn)
			t.Logf("round trip of 1 byte: %v", rtt)
			if rtt < 200*time.Millisecond || rtt >= 400*time.Millisecond {
				t.Errorf("round trip %v; want from 200ms (two passes through a hub delaying 100ms) to 400ms", rtt)
			}
		}
	})

	t.Run("a port down cuts its host off, up again restores it", func(t *testing.T) {
		ip(t, "-n", top.hub, "link", "set", "dev", "b", "down")
		conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
		defer conn.SetDeadline(time.Time{})
		buf := []byte{'y'}
		if _, err := conn.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read through a port that is down: %v; want no answer within 300ms", err)
		}
		ip(t, "-n", top.hub, "link", "set", "dev", "b", "up")
		conn.SetDeadline(time.Now().Add(5 * time.Second)) // TCP retransmits within its backed-off timeout
		start := time.Now()
		if _, err := io.ReadFull(conn, buf); err != nil || buf[0] != 'y' {
			t.Fatalf("read after the port came up: %q, %v; want the echo of \"y\" within 5s", buf, err)
		}
		t.Logf("echo arrived %v after the port came up; hub: %s", time.Since(start), hub.stats(t))
	})

	t.Run("loss 0.5: about half the datagrams, in order", func(t *testing.T) {
		udpB := listenUDP(t, top.b, addrB+":7001")
		udpA := dialIn(t, top.a, "udp", addrB+":7001")
		before := hub.stats(t)
		hub.command(t, "loss 0.5", "nethub loss 0.5")
		const n = 400
		for i := range n {
			if _, err := udpA.Write(binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
				t.Fatalf("send datagram %d: %v", i, err)
			}
		}
		// Loss is decided when the hub reads a frame: keep loss 0.5 until it has read them all.
		hub.awaitReceived(t, before.Received+n)
		hub.command(t, "loss 0", "nethub loss 0")
		// The hub keeps frames in order, so once a marker sent after the n datagrams arrives,
		// every datagram that was not lost has arrived before it.
		got := receiveUntilMarker(t, udpB, udpA)
		lost := hub.stats(t).Lost - before.Lost
		t.Logf("%d of %d datagrams arrived; the hub lost %d frames", len(got), n, lost)
		// Binomial(400, 0.5): 200 ± 10; 140..260 is 6 standard deviations.
		if len(got) < 140 || len(got) > 260 {
			t.Errorf("%d of %d datagrams arrived at loss 0.5; want 140 to 260", len(got), n)
		}
		if lost < n-uint64(len(got)) {
			t.Errorf("hub counted %d lost frames, fewer than the %d lost datagrams", lost, n-len(got))
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("datagram %d arrived after %d; want them in the order sent", got[i], got[i-1])
			}
		}
	})

	t.Run("loss 0.1: TCP carries 1 MB intact", func(t *testing.T) {
		hub.command(t, "loss 0.1", "nethub loss 0.1")
		defer hub.command(t, "loss 0", "nethub loss 0")
		before := hub.stats(t)
		took := echoBytes(t, conn, 1<<20)
		t.Logf("1 MiB echoed in %v at 10%% loss; the hub lost %d frames", took, hub.stats(t).Lost-before.Lost)
	})
}

// topology is three network namespaces: hosts a and b, each with eth0 (addrA/24, addrB/24),
// cabled by veth pairs to ports a and b of the hub namespace, all links up. The names hold
// the test's PID so that runs in parallel do not meet.
type topology struct {
	a, b, hub string
}

// newTopology builds the topology, or skips the test where namespaces cannot be made. The
// namespaces, and with them the veths, are deleted when the test ends.
func newTopology(t *testing.T) topology {
	t.Helper()
	pid := os.Getpid()
	top := topology{a: fmt.Sprintf("kh-a-%d", pid), b: fmt.Sprintf("kh-b-%d", pid), hub: fmt.Sprintf("kh-hub-%d", pid)}
	addNetns(t, top.hub)
	addNetns(t, top.a)
	addNetns(t, top.b)
	for _, h := range []struct{ ns, port, addr string }{{top.a, "a", addrA}, {top.b, "b", addrB}} {
		// "name" and "dev" before the names: ip reads a bare "a" as the keyword "address".
		ip(t, "-n", top.hub, "link", "add", "name", h.port, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
		ip(t, "-n", top.hub, "link", "set", "dev", h.port, "up")
		ip(t, "-n", h.ns, "addr", "add", h.addr+"/24", "dev", "eth0")
		ip(t, "-n", h.ns, "link", "set", "dev", "eth0", "up")
		ip(t, "-n", h.ns, "link", "set", "dev", "lo", "up")
	}
	return top
}

// addNetns makes the network namespace name, deleted when the test ends, or skips the test
// where namespaces cannot be made.
func addNetns(t *testing.T, name string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the hub tests make network namespaces and AF_PACKET sockets, which needs root; CI machines run the tests as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("the hub tests build their network with the ip command (iproute2), which is missing: %v", err)
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace (ip netns add %s: %v: %s); the hub tests need them", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
}

// promiscuity returns the promiscuity count of interface dev in namespace ns.
func promiscuity(t *testing.T, ns, dev string) int {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-d", "link", "show", "dev", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s -d link show dev %s: %v: %s", ns, dev, err, out)
	}
	f := strings.Fields(string(out))
	for i := range len(f) - 1 {
		if f[i] == "promiscuity" {
			n, err := strconv.Atoi(f[i+1])
			if err != nil {
				break
			}
			return n
		}
	}
	t.Fatalf("no promiscuity in %q", out)
	return 0
}

// TestHubLifecycle checks that Main puts its ports in promiscuous mode while it runs, and on
// SIGTERM exits with status 0 and leaves them as they were.
func TestHubLifecycle(t *testing.T) {
	ns := fmt.Sprintf("kh-life-%d", os.Getpid())
	addNetns(t, ns)
	ip(t, "-n", ns, "link", "add", "name", "p", "type", "veth", "peer", "name", "q")
	hub := startHub(t, ns, "p", "q")
	for _, dev := range []string{"p", "q"} {
		if n := promiscuity(t, ns, dev); n != 1 {
			t.Errorf("%s has promiscuity %d while the hub runs; want 1", dev, n)
		}
	}
	hub.command(t, "delay 1s", "nethub delay 1s")
	if err := hub.cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range hub.lines { // until the hub closes its stderr
	}
	if err := hub.wait(5 * time.Second); err != nil {
		t.Fatalf("hub after SIGTERM: %v", err)
	}
	for _, dev := range []string{"p", "q"} {
		if n := promiscuity(t, ns, dev); n != 0 {
			t.Errorf("%s has promiscuity %d after the hub exited; want 0", dev, n)
		}
	}
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// inNetns calls f on an OS thread switched to the network namespace ns: sockets f creates
// belong to ns for good. The thread is not given back to the Go runtime: the goroutine ends
// locked to it, and the runtime discards it, namespace and all.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// hubProc is a hub run by Main in a child process.
type hubProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string   // the child's stderr, closed at its end
	done    chan struct{} // closed once the child has exited
	waitErr error         // how it exited, set before done is closed
}

// startHub runs the test binary as a hub in namespace ns on the given ports and waits until
// it is ready. The hub is stopped, by closing its stdin, when the test ends.
func startHub(t *testing.T, ns string, ports ...string) *hubProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe) // ip execs exe: cmd.Process is the hub
	cmd.Env = append(os.Environ(), roleEnv+"=hub", EnvPorts+"="+strings.Join(ports, ","), EnvSeed+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hub: %v", err)
	}
	h := &hubProc{cmd: cmd, stdin: stdin, lines: make(chan string, 64), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.waitErr = cmd.Wait() // after the last read from stderr, as StderrPipe asks
		close(h.done)
	}()
	t.Cleanup(func() {
		stdin.Close() // Main stops at the end of stdin
		go func() {
			for range h.lines { // drain, so that the reader reaches Wait
			}
		}()
		if err := h.wait(5 * time.Second); err != nil {
			t.Errorf("hub: %v", err)
		}
	})
	h.await(t, ReadyLine)
	return h
}

// wait waits up to timeout for the hub to exit, and kills it after that. It returns an error
// unless the hub exited with status 0 in time.
func (h *hubProc) wait(timeout time.Duration) error {
	select {
	case <-h.done:
		if h.waitErr != nil {
			return fmt.Errorf("exited: %w; want status 0", h.waitErr)
		}
		return nil
	case <-time.After(timeout):
		h.cmd.Process.Kill()
		<-h.done
		return fmt.Errorf("still running after %v; killed it", timeout)
	}
}

// await returns the next line from the hub that starts with "nethub ", failing the test unless
// it starts with want or arrives within 10 s.
func (h *hubProc) await(t *testing.T, want string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-h.lines:
			if !ok {
				t.Fatalf("hub exited; want the line %q", want)
			}
			if !strings.HasPrefix(line, "nethub ") {
				t.Logf("hub: %s", line)
				continue
			}
			if !strings.HasPrefix(line, want) {
				t.Fatalf("hub said %q; want %q", line, want)
			}
			return line
		case <-deadline:
			t.Fatalf("no %q from the hub within 10s", want)
		}
	}
}

// command sends the hub a command line and waits for its answer, which must start with want.
func (h *hubProc) command(t *testing.T, line, want string) string {
	t.Helper()
	if _, err := io.WriteString(h.stdin, line+"\n"); err != nil {
		t.Fatalf("command %q: %v", line, err)
	}
	return h.await(t, want)
}

func (h *hubProc) stats(t *testing.T) Stats {
	t.Helper()
	line := h.command(t, "stats", "nethub stats ")
	var s Stats
	fields := map[string]*uint64{
		"received": &s.Received, "forwarded": &s.Forwarded, "lost": &s.Lost, "overflowed": &s.Overflowed,
		"sendfailed": &s.SendFailed, "oversize": &s.Oversize, "unreadable": &s.Unreadable,
		"kerneldropped": &s.KernelDropped, "largest": &s.Largest,
	}
	for _, kv := range strings.Fields(strings.TrimPrefix(line, "nethub stats ")) {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 64)
		if fields[k] == nil || err != nil {
			t.Fatalf("stats line %q: field %q; want name=count fields of Stats", line, kv)
		}
		*fields[k] = n
	}
	return s
}

// awaitReceived waits up to 5s for the hub to have received at least n frames.
func (h *hubProc) awaitReceived(t *testing.T, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := h.stats(t)
		if st.Received >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub received %d frames within 5s; want at least %d", st.Received, n)
		}
	}
}

// listenEcho serves TCP echo at addr in namespace ns until the test ends.
func listenEcho(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { io.Copy(c, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

func listenUDP(t *testing.T, ns, addr string) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	if err := inNetns(ns, func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// dialIn connects from namespace ns, closing the connection when the test ends.
func dialIn(t *testing.T, ns, network, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	err := inNetns(ns, func() (err error) {
		c, err = net.DialTimeout(network, addr, 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("dial %s %s from %s: %v", network, addr, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoBytes sends size random bytes over conn to the echo server, checks that they come back
// intact, and returns how long that took.
func echoBytes(t *testing.T, conn net.Conn, size int) time.Duration {
	t.Helper()
	want := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range want {
		want[i] = byte(rng.Uint32())
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetDeadline(time.Time{})
	start := time.Now()
	werr := make(chan error, 1)
	go func() { _, err := conn.Write(want); werr <- err }()
	got := make([]byte, size)
	_, rerr := io.ReadFull(conn, got)
	took := time.Since(start)
	if err := <-werr; err != nil {
		t.Fatalf("send %d bytes: %v", size, err)
	}
	if rerr != nil {
		t.Fatalf("read back %d bytes: %v", size, rerr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the %d bytes echoed differ from those sent", size)
	}
	return took
}

// echoRTT returns the time one byte takes to the echo server and back.
func echoRTT(t *testing.T, conn net.Conn) time.Duration {
	t.Helper()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetDeadline(time.Time{})
	buf := []byte{'x'}
	start := time.Now()
	if _, err := conn.Write(buf); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatalf("echo: %v", err)
	}
	return time.Since(start)
}

// receiveUntilMarker sends the marker 0xffffffff from conn, then returns the 4-byte sequence
// numbers that arrive on pc before it.
func receiveUntilMarker(t *testing.T, pc net.PacketConn, from net.Conn) []uint32 {
	t.Helper()
	const marker = 0xffffffff
	if _, err := from.Write(binary.BigEndian.AppendUint32(nil, marker)); err != nil {
		t.Fatalf("send marker: %v", err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []uint32
	buf := make([]byte, 64)
	for {
		n, _, err := pc.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("marker datagram not received within 5s at loss 0; got %d datagrams before", len(got))
		}
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if n != 4 {
			t.Fatalf("received %d bytes; want 4-byte datagrams", n)
		}
		seq := binary.BigEndian.Uint32(buf)
		if seq == marker {
			return got
		}
		got = append(got, seq)
	}
}
