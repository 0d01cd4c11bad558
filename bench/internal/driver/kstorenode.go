package driver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/cluster"
)

// Node is a `kstore serve` process started on a free loopback port and a fresh data dir.
type Node struct {
	Addr string
	PID  int
	cmd  *exec.Cmd
	dir  string
}

// StartNode starts one `bin serve` in a fresh folder under parent ("" for the system's temporary
// folder), with more arguments for serve; env is added to its environment.
func StartNode(bin, parent string, args []string, env ...string) (*Node, error) {
	nodes, err := StartNodes(bin, parent, 1, args, env...)
	if err != nil {
		return nil, err
	}
	return nodes[0], nil
}

// StartNodes starts n `bin serve` processes as one cluster (--initial-cluster when n > 1) on
// free loopback ports, each in a fresh folder under parent.
func StartNodes(bin, parent string, n int, args []string, env ...string) ([]*Node, error) {
	addrs := make([]string, n)
	var initial []string
	for i := range n {
		addr, err := cluster.FreeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = addr
		initial = append(initial, fmt.Sprintf("%d=%s", i+1, addr))
	}
	var nodes []*Node
	for i := range n {
		dir, err := os.MkdirTemp(parent, "kstore-bench")
		if err != nil {
			StopNodes(nodes)
			return nil, err
		}
		a := []string{"serve", "--listen", addrs[i], "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn"}
		if n > 1 {
			a = append(a, "--node-id", fmt.Sprint(i+1), "--initial-cluster", strings.Join(initial, ","))
		}
		cmd := exec.Command(bin, append(a, memberArgs(args, i)...)...)
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = memberAttr()
		if len(env) > 0 {
			cmd.Env = append(os.Environ(), env...)
		}
		if err := cmd.Start(); err != nil {
			os.RemoveAll(dir)
			StopNodes(nodes)
			return nil, fmt.Errorf("start %s: %w (run make build first)", bin, err)
		}
		nodes = append(nodes, &Node{Addr: addrs[i], PID: cmd.Process.Pid, cmd: cmd, dir: dir})
	}
	return nodes, nil
}

// memberArgs is args for member i (from 0): a --pprof-listen or --listen-metrics port is moved
// up by i, so that each member of a cluster on one machine serves its profiles and metrics
// (member N at the port given plus N-1).
func memberArgs(args []string, i int) []string {
	out := slices.Clone(args)
	moved := func(addr string) string {
		host, port, err := net.SplitHostPort(addr)
		if p, perr := strconv.Atoi(port); err == nil && perr == nil && p != 0 {
			return net.JoinHostPort(host, strconv.Itoa(p+i))
		}
		return addr
	}
	for j := range out {
		for _, flag := range []string{"--pprof-listen", "--listen-metrics"} {
			switch {
			case out[j] == flag && j+1 < len(out):
				out[j+1] = moved(out[j+1])
			case strings.HasPrefix(out[j], flag+"="):
				out[j] = flag + "=" + moved(strings.TrimPrefix(out[j], flag+"="))
			}
		}
	}
	return out
}

// memberAttr makes a member process end (SIGTERM, a clean stop) when the harness dies without
// stopping it (killed, or a test that timed out), instead of running on with its data dir. The
// signal comes when the thread that started the member exits, which for a Go program that
// locks no thread is when the process does.
func memberAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} }

// DataDir is the node's data dir.
func (n *Node) DataDir() string { return filepath.Join(n.dir, "data") }

// Stop ends the node with SIGINT (a clean stop) and removes its data dir.
func (n *Node) Stop() {
	_ = n.cmd.Process.Signal(os.Interrupt)
	_ = n.cmd.Wait()
	os.RemoveAll(n.dir)
}

// StopNodes stops every node.
func StopNodes(nodes []*Node) {
	for _, n := range nodes {
		n.Stop()
	}
}

// WaitLeader waits until the node c talks to knows a leader, for at most timeout.
func WaitLeader(c *actors.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := c.Status(context.Background())
		if err == nil && st.GetLeader() != 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no leader after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}
