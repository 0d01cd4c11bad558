package faults

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// network is one run's hosts: a namespace per member and one for the client agent, each with
// an eth0 whose other end is a port in the hub namespace. The hub is a kernel bridge, or, for
// slow and lossy links, nethub (this machine's kernel has no netem). Addresses exist only
// inside the namespaces the test made.
type network struct {
	t      *testing.T
	prefix string
	hub    string   // the hub namespace
	hosts  []string // member namespaces, then the client's
	ports  []string // the hub's port of each host
	addrs  []string // each host's address
	nethub *exec.Cmd
	hubIn  io.WriteCloser // nethub's command input
}

var netSeq atomic.Int32

// hasNetns reports why the fault tests cannot run here, "" when they can.
func cannotRun() string {
	if os.Geteuid() != 0 {
		return "the fault tests need root (network namespaces, veth pairs, iptables)"
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " is not installed (apt-get install iproute2 iptables; .ci/run does)"
		}
	}
	return ""
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNetwork makes members+1 hosts joined by a bridge, or by nethub when slow.
func newNetwork(t *testing.T, members int, slow bool) *network {
	t.Helper()
	n := &network{t: t, prefix: fmt.Sprintf("kf%d-%d", os.Getpid()%100000, netSeq.Add(1))}
	n.hub = n.prefix + "-hub"
	must := func(args ...string) {
		t.Helper()
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	must("ip", "netns", "add", n.hub)
	t.Cleanup(n.close)
	must("ip", "-n", n.hub, "link", "set", "lo", "up")
	for i := range members + 1 {
		name, port, addr := fmt.Sprintf("%s-m%d", n.prefix, i+1), fmt.Sprintf("p%d", i+1), fmt.Sprintf("10.77.0.%d", i+1)
		if i == members {
			name, port, addr = n.prefix+"-client", "pc", "10.77.0.100"
		}
		must("ip", "netns", "add", name)
		n.hosts, n.ports, n.addrs = append(n.hosts, name), append(n.ports, port), append(n.addrs, addr)
		must("ip", "-n", name, "link", "set", "lo", "up")
		must("ip", "-n", n.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name)
		must("ip", "-n", name, "addr", "add", addr+"/24", "dev", "eth0")
		must("ip", "-n", name, "link", "set", "eth0", "up")
		must("ip", "-n", n.hub, "link", "set", port, "up")
	}
	if !slow {
		must("ip", "-n", n.hub, "link", "add", "br0", "type", "bridge")
		for _, p := range n.ports {
			must("ip", "-n", n.hub, "link", "set", p, "master", "br0")
		}
		must("ip", "-n", n.hub, "link", "set", "br0", "up")
		return n
	}
	for _, p := range n.ports {
		must("ip", "-n", n.hub, "link", "set", p, "promisc", "on")
	}
	n.nethub = exec.Command("ip", "netns", "exec", n.hub, os.Args[0])
	n.nethub.Env = append(os.Environ(), roleEnv+"=nethub", "KSTORE_NETHUB_PORTS="+strings.Join(n.ports, ","))
	in, err := n.nethub.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.hubIn = in
	stderr, err := n.nethub.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.nethub.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			if strings.Contains(s.Text(), "nethub ready") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("nethub printed no ready line within 10s")
	}
	return n
}

// slow sets the delay and the loss nethub gives every frame.
func (n *network) slow(delay time.Duration, loss float64) {
	n.t.Helper()
	if _, err := fmt.Fprintf(n.hubIn, "delay %s\nloss %g\n", delay, loss); err != nil {
		n.t.Fatal(err)
	}
}

// link takes host i's link down or up: the host reaches nobody, nobody reaches it.
func (n *network) link(i int, up bool) {
	n.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	if err := run("ip", "-n", n.hub, "link", "set", n.ports[i], state); err != nil {
		n.t.Fatal(err)
	}
}

// cut drops every packet between members i and j, both ways, while both still reach the
// client: Jepsen's partition, in which a client can talk to the minority.
func (n *network) cut(i, j int) {
	n.t.Helper()
	for _, p := range [][2]int{{i, j}, {j, i}} {
		for _, rule := range [][]string{{"INPUT", "-s"}, {"OUTPUT", "-d"}} {
			if err := run("ip", "netns", "exec", n.hosts[p[0]], "iptables", "-I", rule[0], rule[1], n.addrs[p[1]], "-j", "DROP"); err != nil {
				n.t.Fatal(err)
			}
		}
	}
}

// heal removes every cut and brings every link up.
func (n *network) heal() {
	n.t.Helper()
	for i, h := range n.hosts {
		if err := run("ip", "netns", "exec", h, "iptables", "-F"); err != nil {
			n.t.Fatal(err)
		}
		n.link(i, true)
	}
	if n.nethub != nil {
		n.slow(0, 0)
	}
}

func (n *network) close() {
	if n.nethub != nil {
		_ = n.hubIn.Close()
		_ = n.nethub.Process.Kill()
		_ = n.nethub.Wait()
	}
	for _, h := range append(n.hosts, n.hub) {
		_ = run("ip", "netns", "del", h)
	}
}
