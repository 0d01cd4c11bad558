package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/cluster"
)

// Node is a `kstore serve` process a benchmark started on a free port and a fresh data dir.
type Node struct {
	Addr string
	PID  int
	cmd  *exec.Cmd
	dir  string
}

// StartNode starts `bin serve`; env is added to the process's environment (CPUPROFILE=... for
// the scratch stand-in that writes a profile).
func StartNode(bin string, env ...string) (*Node, error) { return StartNodeArgs(bin, nil, env...) }

// StartNodeArgs is StartNode with more arguments for `serve`.
func StartNodeArgs(bin string, args []string, env ...string) (*Node, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kstore-bench")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"serve", "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn"}, args...)...)
	cmd.Stderr = os.Stderr
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w (run make build first)", bin, err)
	}
	return &Node{Addr: addr, PID: cmd.Process.Pid, cmd: cmd, dir: dir}, nil
}

// FreeAddr is a loopback address with a free port, whose port cluster.HealthPortOffset higher
// (the node's automanaged health endpoint) is free too.
func FreeAddr() (string, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		health, err := cluster.HealthAddress(addr)
		if err != nil {
			l.Close()
			continue
		}
		h, err := net.Listen("tcp", health)
		l.Close()
		if err == nil {
			h.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("no free pair of loopback ports")
}

// DataDir is the node's data dir.
func (n *Node) DataDir() string { return filepath.Join(n.dir, "data") }

// Stop ends the node with SIGINT (a clean stop, which also makes the stand-in write its
// profile) and removes its data dir.
func (n *Node) Stop() {
	_ = n.cmd.Process.Signal(os.Interrupt)
	_ = n.cmd.Wait()
	os.RemoveAll(n.dir)
}

// WaitLeader waits until the node c talks to has a leader, for at most 30 s.
func WaitLeader(c *actors.Client) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := c.Status(context.Background())
		if err == nil && st.GetLeader() != 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no leader after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// StartCluster starts n `bin serve` processes as one cluster (--initial-cluster) on free ports
// and fresh data dirs.
func StartCluster(bin string, n int, args ...string) ([]*Node, error) {
	addrs := make([]string, n)
	var initial []string
	for i := range n {
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = addr
		initial = append(initial, fmt.Sprintf("%d=%s", i+1, addrs[i]))
	}
	var nodes []*Node
	for i := range n {
		dir, err := os.MkdirTemp("", "kstore-bench")
		if err != nil {
			StopAll(nodes)
			return nil, err
		}
		cmd := exec.Command(bin, append([]string{"serve", "--listen", addrs[i], "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn",
			"--node-id", fmt.Sprint(i + 1), "--initial-cluster", strings.Join(initial, ",")}, args...)...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			os.RemoveAll(dir)
			StopAll(nodes)
			return nil, fmt.Errorf("start %s: %w (run make build first)", bin, err)
		}
		nodes = append(nodes, &Node{Addr: addrs[i], PID: cmd.Process.Pid, cmd: cmd, dir: dir})
	}
	return nodes, nil
}

// StopAll stops every node.
func StopAll(nodes []*Node) {
	for _, n := range nodes {
		n.Stop()
	}
}
