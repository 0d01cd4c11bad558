package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kstore/kstore/cluster"
)

// The controller demo against three `kstore serve` processes: it joins their actor cluster
// through one seed and reaches the store by kind and identity only (it has no --endpoints).

// startControllers runs `kstore controllers` with the given seeds, killed at the test's end.
func startControllers(t *testing.T, bin string, seeds ...string) *server {
	t.Helper()
	return startProcess(t, bin, []string{"controllers", "--cluster-seeds", strings.Join(seeds, ","), "--log-level", "warn"},
		"controllers joined the actor cluster")
}

func demoNodes() string {
	var b strings.Builder
	for _, n := range []string{"node-a", "node-b", "node-c"} {
		fmt.Fprintf(&b, `{"apiVersion":"v1","kind":"Node","metadata":{"name":%q}}`+"\n", n)
	}
	return b.String()
}

func demoReplicaSet(replicas int) string {
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web","namespace":"demo"},
		"spec":{"replicas":%d,"selector":{"matchLabels":{"app":"web"}},
		"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}`, replicas)
}

// demoPod is what the test reads of a Pod.
type demoPod struct {
	Metadata struct {
		Name            string            `json:"name"`
		Labels          map[string]string `json:"labels"`
		OwnerReferences []struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
			UID  string `json:"uid"`
		} `json:"ownerReferences"`
	} `json:"metadata"`
	Spec struct {
		NodeName string `json:"nodeName"`
	} `json:"spec"`
}

// waitPods waits until the Pods in namespace demo are exactly web-0 .. web-(n-1), each owned by
// the ReplicaSet web, labelled app=web and bound to a node, and returns them.
func waitPods(t *testing.T, k *cli, n int, within time.Duration) []demoPod {
	t.Helper()
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("web-%d", i))
	}
	deadline := time.Now().Add(within)
	var last string
	for {
		r, err := k.exec("", "list", "Pod.v1", "-n", "demo", "--timeout", "2s")
		if err == nil && r.code == 0 {
			var l struct {
				Items []demoPod `json:"items"`
			}
			if json.Unmarshal([]byte(r.stdout), &l) == nil {
				var names []string
				ok := true
				for _, p := range l.Items {
					names = append(names, p.Metadata.Name)
					owned := len(p.Metadata.OwnerReferences) == 1 && p.Metadata.OwnerReferences[0].Kind == "ReplicaSet" &&
						p.Metadata.OwnerReferences[0].Name == "web" && p.Metadata.OwnerReferences[0].UID != ""
					ok = ok && owned && p.Metadata.Labels["app"] == "web" && p.Spec.NodeName != ""
				}
				slices.Sort(names)
				if ok && slices.Equal(names, want) {
					return l.Items
				}
				last = strings.Join(names, ",")
			}
		} else {
			last = r.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Pods did not become %v (owned, labelled, scheduled) within %v; last seen: %s", want, within, last)
		}
		time.Sleep(100 * time.Millisecond) // polling the store for a condition, with a deadline
	}
}

// auditLine is a line of serve --audit-log-path.
type auditLine struct {
	Logger  string `json:"logger"`
	RV      uint64 `json:"rv"`
	Op      string `json:"op"`
	Reason  string `json:"reason"`
	Key     string `json:"key"`
	Outcome string `json:"outcome"`
	Error   string `json:"error"`
}

// podWrites are the audit lines of Pod writes in a member's log that changed something.
func podWrites(t *testing.T, s *server) []auditLine {
	t.Helper()
	var out []auditLine
	for _, l := range strings.Split(s.log.String(), "\n") {
		var a auditLine
		if json.Unmarshal([]byte(l), &a) != nil || a.Logger != "audit" || !strings.HasPrefix(a.Key, "/v1/Pod/") {
			continue
		}
		if a.Error == "" && a.Outcome != "NO_OP" {
			out = append(out, a)
		}
	}
	return out
}

// checkReasons checks that every Pod write carries the Reason of the controller that makes
// such writes: creates the ReplicaSet controller, bindings the scheduler, deletes the
// ReplicaSet controller (scale-down) or the garbage collector (owner gone).
func checkReasons(t *testing.T, writes []auditLine) {
	t.Helper()
	if len(writes) == 0 {
		t.Fatal("no Pod writes in the audit log")
	}
	seen := map[string]bool{}
	for _, w := range writes {
		ok := false
		switch w.Op {
		case "CREATE":
			ok = w.Reason == "controller"
		case "PATCH":
			ok = w.Reason == "scheduler"
		case "DELETE":
			ok = w.Reason == "controller" || w.Reason == "garbage_collector"
		}
		if !ok {
			t.Errorf("Pod write %s %s at rv %d carries Reason %q", w.Op, w.Key, w.RV, w.Reason)
		}
		seen[w.Op+"/"+w.Reason] = true
	}
	for _, want := range []string{"CREATE/controller", "PATCH/scheduler", "DELETE/controller", "DELETE/garbage_collector"} {
		if !seen[want] {
			t.Errorf("no Pod write %s in the audit log; seen %v", want, seen)
		}
	}
}

func TestControllersConvergeThroughTheCluster(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, "--audit-log-path", "-")
	startControllers(t, c.bin, c.addrs[0])
	k := c.cli()
	k.ok(demoNodes(), "apply", "-f", "-")
	k.ok(demoReplicaSet(3), "apply", "-f", "-")
	pods := waitPods(t, k, 3, 15*time.Second)
	// Round robin over three nodes: one Pod each.
	var nodes []string
	for _, p := range pods {
		nodes = append(nodes, p.Spec.NodeName)
	}
	slices.Sort(nodes)
	if !slices.Equal(nodes, []string{"node-a", "node-b", "node-c"}) {
		t.Errorf("three Pods scheduled to %v, want one on each node", nodes)
	}
	k.ok(demoReplicaSet(5), "apply", "-f", "-")
	waitPods(t, k, 5, 10*time.Second)
	k.ok(demoReplicaSet(1), "apply", "-f", "-")
	waitPods(t, k, 1, 10*time.Second)
	k.ok("", "delete", "ReplicaSet.v1.apps/web", "-n", "demo")
	waitPods(t, k, 0, 10*time.Second)
	// Every member applied every write, with its Reason. The audit log is flushed every second:
	// wait for the last write, the collector's delete, to be in it.
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(podWrites(t, c.servers[1]), func(a auditLine) bool { return a.Reason == "garbage_collector" }) &&
		time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // polling the member's log for a line, with a deadline
	}
	checkReasons(t, podWrites(t, c.servers[1]))
}

func TestControllersSurviveTheirMembersDeath(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	startControllers(t, c.bin, c.addrs...)
	// The member hosting the store identity is the one the demo talks to.
	owner := slices.Index(c.addrs, cluster.OwnerOf(c.addrs))
	var others []int
	for i := range c.addrs {
		if i != owner {
			others = append(others, i)
		}
	}
	k := c.cli(others...)
	k.ok(demoNodes(), "apply", "-f", "-")
	k.ok(demoReplicaSet(2), "apply", "-f", "-")
	waitPods(t, k, 2, 15*time.Second)
	k.ok(demoReplicaSet(6), "apply", "-f", "-")
	_ = c.servers[owner].cmd.Process.Signal(syscall.SIGKILL)
	c.servers[owner].wait(t, 10*time.Second)
	// Names derived from the ReplicaSet's make a create retried after an unknown outcome meet
	// AlreadyExists: exactly web-0..web-5, no duplicates.
	waitPods(t, k, 6, 30*time.Second)
}

// etcdBinary is where ../shared/etcdbench/build.sh puts the etcd it runs beside kstore
// (BIN=/tmp/etcdbench by default, `make bench` builds it); $KSTORE_TEST_ETCD names another. The
// test of the etcd provider is skipped without one, rather than build etcd inside make test.
func etcdBinary() string {
	if p := os.Getenv("KSTORE_TEST_ETCD"); p != "" {
		return p
	}
	return "/tmp/etcdbench/etcd"
}

// startEtcd runs a one-member etcd on loopback ports and returns its client URL.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin := etcdBinary()
	if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 {
		t.Skipf("no etcd binary at %s (build one with ../shared/etcdbench/build.sh, or set KSTORE_TEST_ETCD): %v", bin, err)
	}
	client, peer := "http://"+freeAddr(t), "http://"+freeAddr(t)
	cmd := exec.Command(bin, "--name", "default", "--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "default="+peer,
		"--log-level", "error")
	log := &serverLog{ready: make(chan struct{})}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(client, "http://"), time.Second)
		if err == nil {
			c.Close()
			return client
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd did not listen at %s within 20s:\n%s", client, log)
		}
		time.Sleep(50 * time.Millisecond) // polling a port for a listener, with a deadline
	}
}

// The etcd provider, with a real etcd on this machine: the members register in it, and the demo
// learns from a seed that it must look there.
func TestControllersOverTheEtcdProvider(t *testing.T) {
	t.Parallel()
	etcd := startEtcd(t)
	c := startCluster(t, 3, "--cluster-provider", "etcd", "--cluster-provider-endpoints", etcd)
	startControllers(t, c.bin, c.addrs[1])
	k := c.cli()
	k.ok(demoNodes(), "apply", "-f", "-")
	k.ok(demoReplicaSet(2), "apply", "-f", "-")
	waitPods(t, k, 2, 20*time.Second)
}
