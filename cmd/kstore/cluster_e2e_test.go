package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testCluster is a cluster of `kstore serve` processes on loopback, started with
// --initial-cluster, and what the tests need to kill, restart and query its members.
type testCluster struct {
	t       *testing.T
	bin     string
	dirs    []string
	addrs   []string
	servers []*server
	extra   []string
}

func startCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, bin: kstoreBinary(t), extra: extra}
	var initial []string
	for i := range n {
		c.dirs = append(c.dirs, t.TempDir())
		c.addrs = append(c.addrs, freeAddr(t))
		initial = append(initial, fmt.Sprintf("%d=%s", i+1, c.addrs[i]))
	}
	c.extra = append([]string{"--initial-cluster", strings.Join(initial, ",")}, c.extra...)
	c.servers = make([]*server, n)
	for i := range n {
		c.start(i)
	}
	c.waitLeader(nil)
	return c
}

// start starts member i (0-based; node id i+1).
func (c *testCluster) start(i int) {
	c.t.Helper()
	c.servers[i] = startServer(c.t, c.bin, c.dirs[i], c.addrs[i],
		append([]string{"--node-id", fmt.Sprint(i + 1), "--disk-reserve-bytes", "0"}, c.extra...)...)
}

// kill ends member i with SIGKILL, as a crash would, and waits for the process to be gone.
func (c *testCluster) kill(i int) {
	c.t.Helper()
	_ = c.servers[i].cmd.Process.Signal(syscall.SIGKILL)
	c.servers[i].wait(c.t, 10*time.Second)
}

// cli talks to the given members, all of them when none is given, in that order.
func (c *testCluster) cli(members ...int) *cli {
	if len(members) == 0 {
		for i := range c.addrs {
			members = append(members, i)
		}
	}
	var eps []string
	for _, i := range members {
		eps = append(eps, c.addrs[i])
	}
	return &cli{t: c.t, bin: c.bin, endpoints: strings.Join(eps, ",")}
}

// waitLeader waits until every live member not in skip reports the same leader, one of the
// live members, and returns its index.
func (c *testCluster) waitLeader(skip []int) int {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var leaders []uint64
		for i := range c.servers {
			if slices.Contains(skip, i) {
				continue
			}
			r, err := c.cli(i).exec("", "status", "--timeout", "1s")
			var st nodeStatus
			if err == nil && r.code == 0 && json.Unmarshal([]byte(r.stdout), &st) == nil {
				leaders = append(leaders, st.Leader)
			} else {
				leaders = append(leaders, 0)
			}
		}
		l := leaders[0]
		if l != 0 && !slices.Contains(skip, int(l-1)) && !slices.ContainsFunc(leaders, func(x uint64) bool { return x != l }) {
			return int(l - 1)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the members agree on no leader within 20s: %v", leaders)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// waitClusterMembers waits until every member's status shows want as the actor cluster's members.
func (c *testCluster) waitClusterMembers(want []string) {
	c.t.Helper()
	want = slices.Sorted(slices.Values(want))
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; i < len(c.servers); {
		r, err := c.cli(i).exec("", "status", "--timeout", "1s")
		var st nodeStatus
		if err == nil && r.code == 0 && json.Unmarshal([]byte(r.stdout), &st) == nil && st.Cluster != nil && slices.Equal(st.Cluster.Members, want) {
			i++
			continue
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("member %d does not see the actor cluster's members %v within 15s: %v", i+1, want, r)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
}

// waitApplied waits until member i has applied up to rv.
func (c *testCluster) waitApplied(i int, rv uint64) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := c.cli(i).exec("", "status", "--timeout", "1s")
		var st nodeStatus
		if err == nil && r.code == 0 && json.Unmarshal([]byte(r.stdout), &st) == nil && st.Applied >= rv {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("member %d has not applied up to %d within 30s: %v", i+1, rv, r)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// acked is a write a client saw acknowledged: the pod's name and its resourceVersion.
type acked struct {
	name string
	rv   uint64
}

// checkAcked checks that member i serves every acknowledged write at its resourceVersion, from
// its own state (serializable), once it has applied up to the newest of them.
func (c *testCluster) checkAcked(i int, writes []acked) {
	c.t.Helper()
	var newest uint64
	for _, w := range writes {
		newest = max(newest, w.rv)
	}
	c.waitApplied(i, newest)
	l := parseList(c.t, c.cli(i).ok("", "list", "Pod.v1", "-n", "ha", "--consistency", "serializable"))
	have := map[string]uint64{}
	for _, it := range l.Items {
		o := parseObj(c.t, string(it))
		var rv uint64
		fmt.Sscan(o.meta("resourceVersion"), &rv)
		have[o.meta("name")] = rv
	}
	for _, w := range writes {
		if have[w.name] != w.rv {
			c.t.Errorf("member %d: acknowledged write %s@%d is %s@%d there", i+1, w.name, w.rv, w.name, have[w.name])
		}
	}
}

// history is every change member i has applied, as its watch from revision 1 prints them, up
// to rv: the same on every member when their applied logs are the same sequence of commands.
func (c *testCluster) history(i int, rv uint64) []string {
	c.t.Helper()
	w := startWatch(c.t, c.cli(i), "--resource-version", "1", "--consistency", "serializable")
	defer func() { _ = w.cmd.Process.Kill(); <-w.done }()
	var out []string
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				c.t.Fatalf("member %d's watch ended: %s", i+1, w.stderr.String())
			}
			out = append(out, fmt.Sprintf("%d %s %s %s", l.ResourceVersion, l.Type, l.Key.Name, l.Object))
			if l.ResourceVersion >= rv {
				return out
			}
		case <-time.After(20 * time.Second):
			c.t.Fatalf("member %d's watch printed nothing past %d within 20s (want up to %d)", i+1, len(out), rv)
		}
	}
}

// checkSameHistory compares every live member's applied changes up to the newest revision.
func (c *testCluster) checkSameHistory(live []int, rv uint64) {
	c.t.Helper()
	first := c.history(live[0], rv)
	for _, i := range live[1:] {
		if h := c.history(i, rv); !slices.Equal(h, first) {
			c.t.Errorf("member %d applied another history than member %d:\n%s\nvs\n%s", i+1, live[0]+1,
				strings.Join(h, "\n"), strings.Join(first, "\n"))
		}
	}
}

func haPod(name string) string { return pod("ha", name, "nginx", nil) }

// put writes a pod through k and reports what the client saw: the resourceVersion when it was
// acknowledged, or the reason it was not.
func put(k *cli, name string) (uint64, string) {
	r, err := k.exec(haPod(name), "apply", "-f", "-", "--timeout", "5s")
	if err != nil {
		return 0, err.Error()
	}
	if r.code != 0 {
		return 0, r.stderr
	}
	var w writeResult
	if json.Unmarshal([]byte(r.stdout), &w) != nil || w.ResourceVersion == 0 {
		return 0, "unparsable: " + r.stdout
	}
	return w.ResourceVersion, ""
}

// TestClusterReplicates: three processes take writes on every member; a read on one member
// right after a write acknowledged by another sees it (reads are linearizable by default); and
// every member lists the same objects and applied the same history.
func TestClusterReplicates(t *testing.T) {
	t.Parallel() // real processes, mostly waiting: two at a time (-parallel defaults to the cores)
	c := startCluster(t, 3)
	var writes []acked
	for round := range 4 {
		for i := range 3 {
			name := fmt.Sprintf("w%d-%d", i+1, round)
			rv, failed := put(c.cli(i), name)
			if failed != "" {
				t.Fatalf("put %s through member %d: %s", name, i+1, failed)
			}
			writes = append(writes, acked{name, rv})
			// At once, on the next member: it must see the write.
			other := (i + 1) % 3
			o := parseObj(t, c.cli(other).ok("", "get", "Pod.v1/"+name, "-n", "ha"))
			if got := o.meta("resourceVersion"); got != fmt.Sprint(rv) {
				t.Fatalf("member %d read %s at resourceVersion %s right after member %d acknowledged it at %d", other+1, name, got, i+1, rv)
			}
		}
	}
	lists := map[int]string{}
	for i := range 3 {
		lists[i] = c.cli(i).ok("", "list", "Pod.v1", "-n", "ha")
		if lists[i] != lists[0] {
			t.Errorf("member %d lists\n%s\nmember 1 lists\n%s", i+1, lists[i], lists[0])
		}
	}
	st := c.cli(0).status()
	if len(st.Members) != 3 || st.Role == "" {
		t.Errorf("status shows role %q and members %+v, want a role and 3 members", st.Role, st.Members)
	}
	c.checkSameHistory([]int{0, 1, 2}, writes[len(writes)-1].rv)
	c.checkSameCatalogs([]int{0, 1, 2}, writes[len(writes)-1].rv)
}

// TestClusterLeaderKilled: SIGKILL of the leader under a writer that uses every member's
// endpoint. A new leader is elected within a few seconds, writes resume through the same
// endpoint list, and every acknowledged write is on every member afterwards, the restarted one
// included. A write whose outcome the client was told is unknown may or may not be there.
func TestClusterLeaderKilled(t *testing.T) {
	t.Parallel() // real processes, mostly waiting: two at a time (-parallel defaults to the cores)
	c := startCluster(t, 3)
	k := c.cli()
	leader := c.waitLeader(nil)

	var (
		mu       sync.Mutex
		writes   []acked
		failures []string
		killedAt time.Time
		afterAck int // acknowledged writes that began after the kill
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			began := time.Now()
			name := fmt.Sprintf("p%03d", n)
			rv, failed := put(k, name)
			mu.Lock()
			if failed == "" {
				writes = append(writes, acked{name, rv})
				if !killedAt.IsZero() && began.After(killedAt) {
					afterAck++
				}
			} else {
				failures = append(failures, name+": "+failed)
			}
			mu.Unlock()
		}
	}()
	waitFor := func(what string, cond func() bool) {
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("%s: not within 60s; %d acknowledged, failures: %v", what, len(writes), failures)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
	}
	waitFor("10 writes before the kill", func() bool { mu.Lock(); defer mu.Unlock(); return len(writes) >= 10 })
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	c.kill(leader)
	next := c.waitLeader([]int{leader})
	elected := time.Since(killedAt)
	t.Logf("member %d killed; member %d leads %v later", leader+1, next+1, elected)
	if elected > 10*time.Second {
		t.Errorf("a new leader took %v, want a few seconds", elected)
	}
	waitFor("10 writes after the kill", func() bool { mu.Lock(); defer mu.Unlock(); return afterAck >= 10 })
	close(stop)
	<-done
	for _, f := range failures {
		// Refused (Unavailable: certainly not done) or unknown (Timeout) are the only
		// outcomes a client may see besides success.
		if !strings.Contains(f, "Error (Unavailable)") && !strings.Contains(f, "Error (Timeout)") {
			t.Errorf("a write failed with neither Unavailable nor Timeout: %s", f)
		}
	}
	t.Logf("%d writes acknowledged, %d not: %v", len(writes), len(failures), failures)
	for i := range 3 {
		if i != leader {
			c.checkAcked(i, writes)
		}
	}
	c.start(leader)
	c.checkAcked(leader, writes)
	var newest uint64
	for _, w := range writes {
		newest = max(newest, w.rv)
	}
	c.checkSameHistory([]int{0, 1, 2}, newest)
	c.checkSameCatalogs([]int{0, 1, 2}, newest)
}

// TestClusterAllKilled: SIGKILL of every member at once right after a burst of acknowledged
// writes; after a restart of all, every acknowledged write is on every member at its
// resourceVersion.
func TestClusterAllKilled(t *testing.T) {
	t.Parallel() // real processes, mostly waiting: two at a time (-parallel defaults to the cores)
	c := startCluster(t, 3)
	var lines strings.Builder
	for n := range 40 {
		fmt.Fprintln(&lines, putCommand("ha", fmt.Sprintf("b%02d", n), haPod(fmt.Sprintf("b%02d", n))))
	}
	// Through a follower, so every write is forwarded.
	leader := c.waitLeader(nil)
	follower := (leader + 1) % 3
	out := c.cli(follower).ok(lines.String(), "do", "-f", "-")
	var writes []acked
	for n, r := range results(t, out) {
		writes = append(writes, acked{fmt.Sprintf("b%02d", n), r.ResourceVersion})
	}
	for i := range 3 {
		_ = c.servers[i].cmd.Process.Signal(syscall.SIGKILL)
	}
	for i := range 3 {
		c.servers[i].wait(t, 10*time.Second)
	}
	for i := range 3 {
		c.start(i)
	}
	c.waitLeader(nil)
	for i := range 3 {
		c.checkAcked(i, writes)
	}
	c.checkSameHistory([]int{0, 1, 2}, writes[len(writes)-1].rv)
	c.checkSameCatalogs([]int{0, 1, 2}, writes[len(writes)-1].rv)
}

// TestClusterQuorumLost: with two of three members down, linearizable reads and writes on the
// third fail with Unavailable or Timeout within the request's timeout, while serializable reads
// serve its local state.
func TestClusterQuorumLost(t *testing.T) {
	t.Parallel() // real processes, mostly waiting: two at a time (-parallel defaults to the cores)
	c := startCluster(t, 3)
	rv, failed := put(c.cli(), "before")
	if failed != "" {
		t.Fatal(failed)
	}
	survivor := (c.waitLeader(nil) + 1) % 3
	c.waitApplied(survivor, rv)
	for i := range 3 {
		if i != survivor {
			c.kill(i)
		}
	}
	k := c.cli(survivor)
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
	}{
		{"linearizable get", "", []string{"get", "Pod.v1/before", "-n", "ha", "--timeout", "4s"}},
		{"linearizable list", "", []string{"list", "Pod.v1", "-n", "ha", "--timeout", "4s"}},
		{"write", haPod("after"), []string{"apply", "-f", "-", "--timeout", "4s"}},
	} {
		began := time.Now()
		r := k.run(tt.stdin, tt.args...)
		took := time.Since(began)
		if r.code == 0 || !(strings.HasPrefix(r.stderr, "Error (Unavailable)") || strings.HasPrefix(r.stderr, "Error (Timeout)")) {
			t.Errorf("%s without a quorum: want Unavailable or Timeout:\n%v", tt.name, r)
		}
		if took > 8*time.Second {
			t.Errorf("%s without a quorum took %v, past its 4s timeout", tt.name, took)
		}
	}
	o := parseObj(t, k.ok("", "get", "Pod.v1/before", "-n", "ha", "--consistency", "serializable"))
	if got := o.meta("resourceVersion"); got != fmt.Sprint(rv) {
		t.Fatalf("serializable get on the survivor: resourceVersion %s, want %d", got, rv)
	}
}

// TestClusterWatchResumes: a watch on a member that is killed resumes on another member with
// exactly the events it missed: no gap, no duplicate.
func TestClusterWatchResumes(t *testing.T) {
	t.Parallel() // real processes, mostly waiting: two at a time (-parallel defaults to the cores)
	c := startCluster(t, 3)
	leader := c.waitLeader(nil)
	watched := (leader + 1) % 3 // a follower: killing it leaves the quorum
	rest := []int{}
	for i := range 3 {
		if i != watched {
			rest = append(rest, i)
		}
	}
	start, failed := put(c.cli(), "w-start")
	if failed != "" {
		t.Fatal(failed)
	}
	w := startWatch(t, c.cli(append([]int{watched}, rest...)...), "Pod.v1", "-n", "ha",
		"--resource-version", fmt.Sprint(start), "--retry-for", "30s")
	var want []uint64
	for n := range 5 {
		rv, failed := put(c.cli(rest...), fmt.Sprintf("w%d", n))
		if failed != "" {
			t.Fatal(failed)
		}
		want = append(want, rv)
	}
	for n := range 5 {
		if l := w.expect(t, "ADDED", fmt.Sprintf("w%d", n)); l.ResourceVersion != want[n] {
			t.Fatalf("event %d at %d, want %d", n, l.ResourceVersion, want[n])
		}
	}
	c.kill(watched)
	for n := 5; n < 10; n++ {
		rv, failed := put(c.cli(rest...), fmt.Sprintf("w%d", n))
		if failed != "" {
			t.Fatal(failed)
		}
		want = append(want, rv)
	}
	for n := 5; n < 10; n++ {
		if l := w.expect(t, "ADDED", fmt.Sprintf("w%d", n)); l.ResourceVersion != want[n] {
			t.Fatalf("event %d at %d after the member died, want %d", n, l.ResourceVersion, want[n])
		}
	}
	select {
	case l := <-w.lines:
		t.Fatalf("an extra event after the resume: %+v", l)
	case <-time.After(300 * time.Millisecond): // a duplicate would come with the resume
	}
}

// hashKV is what kstore hashkv prints.
type hashKV struct {
	NodeID   uint64 `json:"node_id"`
	Revision uint64 `json:"revision"`
	From     uint64 `json:"from"`
	Hash     string `json:"hash"`
}

// checkSameCatalogs compares the members' catalogs at revision rv: a digest of every key,
// value and version a read from the largest compacted revision among them up to rv can see.
func (c *testCluster) checkSameCatalogs(live []int, rv uint64) {
	c.t.Helper()
	var from uint64
	for _, i := range live {
		c.waitApplied(i, rv)
		var h hashKV
		if err := strictUnmarshal(c.cli(i).ok("", "hashkv", "--revision", fmt.Sprint(rv)), &h); err != nil {
			c.t.Fatal(err)
		}
		from = max(from, h.From)
	}
	hashes := map[string][]int{}
	for _, i := range live {
		var h hashKV
		if err := strictUnmarshal(c.cli(i).ok("", "hashkv", "--revision", fmt.Sprint(rv), "--from", fmt.Sprint(from)), &h); err != nil {
			c.t.Fatal(err)
		}
		hashes[h.Hash] = append(hashes[h.Hash], i+1)
	}
	if len(hashes) != 1 {
		c.t.Errorf("the members' catalogs differ at revision %d (from %d): %v", rv, from, hashes)
	}
}

// TestClusterFollowerInstallsSnapshot: a follower down while the log moves well past the
// leader's compaction point gets, on restart, a snapshot of the leader's catalog; its catalog is
// then identical to the leader's, it goes on applying the log, and it restarts from there.
func TestClusterFollowerInstallsSnapshot(t *testing.T) {
	t.Parallel() // real processes, mostly waiting: two at a time (-parallel defaults to the cores)
	c := startCluster(t, 3, "--snapshot-count", "200", "--snapshot-catchup-entries", "50", "--catalog-sync-every", "100",
		"--log-level", "info")
	leader := c.waitLeader(nil)
	follower := (leader + 1) % 3
	c.kill(follower)
	var lines strings.Builder
	for n := range 1000 {
		name := fmt.Sprintf("s%03d", n%300) // overwrites: history the snapshot must carry
		fmt.Fprintln(&lines, putCommand("ha", name, pod("ha", name, fmt.Sprintf("nginx:%d", n), nil)))
	}
	rs := results(t, c.cli(leader).ok(lines.String(), "do", "-f", "-"))
	rv := rs[len(rs)-1].ResourceVersion
	c.start(follower)
	c.checkSameCatalogs([]int{0, 1, 2}, rv)
	if !strings.Contains(c.servers[follower].log.String(), "snapshot installed") {
		t.Fatalf("member %d caught up without installing a snapshot; its log:\n%s", follower+1, c.servers[follower].log)
	}
	// It applies the log from there, and restarts from the installed catalog.
	tail := strings.Join(strings.SplitAfter(lines.String(), "\n")[:100], "")
	more := results(t, c.cli(follower).ok(tail, "do", "-f", "-"))
	rv = more[len(more)-1].ResourceVersion
	c.checkSameCatalogs([]int{0, 1, 2}, rv)
	c.kill(follower)
	c.start(follower)
	c.checkSameCatalogs([]int{0, 1, 2}, rv)
	c.checkSameHistory([]int{0, 1, 2}, rv)
}

// members is what kstore member list and the member changes print.
type members struct {
	Members []struct {
		ID      uint64 `json:"id"`
		Address string `json:"address"`
		Role    string `json:"role"`
		Leader  bool   `json:"leader"`
	} `json:"members"`
}

func (m members) roles() map[uint64]string {
	out := map[uint64]string{}
	for _, x := range m.Members {
		out[x.ID] = x.Role
	}
	return out
}

func parseMembers(t *testing.T, s string) members {
	t.Helper()
	var m members
	if err := strictUnmarshal(s, &m); err != nil {
		t.Fatalf("not a member list: %q: %v", s, err)
	}
	return m
}

// TestClusterMembership: a learner is added through the CLI, refused promotion while it is not
// running, started with --join, catches up (by a snapshot) to the same catalog, is promoted,
// and is removed: it then stops serving and exits saying it was removed.
func TestClusterMembership(t *testing.T) {
	t.Parallel() // real processes, mostly waiting: two at a time (-parallel defaults to the cores)
	c := startCluster(t, 3)
	k := c.cli()
	for n := range 20 {
		if _, failed := put(k, fmt.Sprintf("m%02d", n)); failed != "" {
			t.Fatal(failed)
		}
	}
	dir, addr := t.TempDir(), freeAddr(t)
	m := parseMembers(t, k.ok("", "member", "add", "4", addr))
	if m.roles()[4] != "learner" || len(m.Members) != 4 {
		t.Fatalf("after member add: %+v, want 4 members with 4 a learner", m)
	}
	k.fail("AlreadyExists", "", "member", "add", "4", addr)
	msg := k.fail("Unavailable", "", "member", "promote", "4")
	if !strings.Contains(msg, "learner 4") {
		t.Fatalf("promoting a learner that never ran: %q, want it to say the learner is behind", msg)
	}
	joiner := startServer(t, c.bin, dir, addr, "--node-id", "4", "--disk-reserve-bytes", "0", "--join", strings.Join(c.addrs, ","))
	c.dirs, c.addrs, c.servers = append(c.dirs, dir), append(c.addrs, addr), append(c.servers, joiner)
	rv, failed := put(k, "after-join")
	if failed != "" {
		t.Fatal(failed)
	}
	c.checkSameCatalogs([]int{0, 1, 2, 3}, rv)
	var promoted members
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := k.run("", "member", "promote", "4")
		if r.code == 0 {
			promoted = parseMembers(t, r.stdout)
			break
		}
		if !strings.HasPrefix(r.stderr, "Error (Unavailable)") || time.Now().After(deadline) {
			t.Fatalf("member promote 4: %v", r)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline: the learner catching up
	}
	if promoted.roles()[4] != "voter" {
		t.Fatalf("after promote: %+v", promoted)
	}
	if st := c.cli(3).status(); st.Role == "learner" || len(st.Members) != 4 {
		t.Errorf("the promoted member's status: role %q, %d members", st.Role, len(st.Members))
	}
	// It takes writes (forwarded to the leader) and holds what the others hold.
	rv, failed = put(c.cli(3), "on-the-new-voter")
	if failed != "" {
		t.Fatal(failed)
	}
	c.checkSameCatalogs([]int{0, 1, 2, 3}, rv)

	removed := parseMembers(t, k.ok("", "member", "remove", "4"))
	if _, still := removed.roles()[4]; still || len(removed.Members) != 3 {
		t.Fatalf("after member remove 4: %+v", removed)
	}
	if code := joiner.wait(t, 20*time.Second); code == 0 {
		t.Errorf("the removed node exited 0, want non-zero")
	}
	if log := joiner.log.String(); !strings.Contains(log, "removed from") {
		t.Errorf("the removed node did not say it was removed:\n%s", log)
	}
	k.fail("NotFound", "", "member", "remove", "4")
	if _, failed := put(c.cli(0, 1, 2), "after-remove"); failed != "" {
		t.Fatal(failed)
	}
}

// TestClusterWipedMember: a member whose data dir was wiped, started again under its old id,
// is refused by its peers, which say why, and exits non-zero saying to remove and add it; the
// cluster's data is unchanged. Removed and added again, with the wiped data dir, it works.
func TestClusterWipedMember(t *testing.T) {
	t.Parallel() // real processes, mostly waiting: two at a time (-parallel defaults to the cores)
	c := startCluster(t, 3)
	k := c.cli()
	for n := range 10 {
		if _, failed := put(k, fmt.Sprintf("x%02d", n)); failed != "" {
			t.Fatal(failed)
		}
	}
	rv, _ := put(k, "x-last")
	leader := c.waitLeader(nil)
	wiped := (leader + 1) % 3
	c.checkSameCatalogs([]int{0, 1, 2}, rv)
	before := c.cli(leader).ok("", "hashkv", "--revision", fmt.Sprint(rv))
	c.kill(wiped)
	if err := os.RemoveAll(c.dirs[wiped]); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, c.bin, c.dirs[wiped], c.addrs[wiped],
		append([]string{"--node-id", fmt.Sprint(wiped + 1), "--disk-reserve-bytes", "0"}, c.extra...)...)
	if code := s.wait(t, 20*time.Second); code == 0 {
		t.Fatalf("the wiped member exited 0:\n%s", s.log)
	}
	if log := s.log.String(); !strings.Contains(log, "member remove") || !strings.Contains(log, "wiped") {
		t.Errorf("the wiped member did not say what to do:\n%s", log)
	}
	if got := c.cli(leader).ok("", "hashkv", "--revision", fmt.Sprint(rv)); got != before {
		t.Errorf("the cluster's catalog changed: %s, before %s", got, before)
	}
	// Remove it, add it again: the wiped data dir joins as a new member.
	k = c.cli(leader)
	k.ok("", "member", "remove", fmt.Sprint(wiped+1))
	if err := os.RemoveAll(c.dirs[wiped]); err != nil {
		t.Fatal(err)
	}
	k.ok("", "member", "add", fmt.Sprint(wiped+1), c.addrs[wiped])
	var others []string
	for i, a := range c.addrs {
		if i != wiped {
			others = append(others, a)
		}
	}
	c.servers[wiped] = startServer(t, c.bin, c.dirs[wiped], c.addrs[wiped], "--node-id", fmt.Sprint(wiped+1),
		"--disk-reserve-bytes", "0", "--join", strings.Join(others, ","))
	c.checkSameCatalogs([]int{0, 1, 2}, rv)
}

// TestClusterInitialClusterMismatch: a member restarted with an --initial-cluster other than the
// one its data dir was made with does not start, and says why.
func TestClusterInitialClusterMismatch(t *testing.T) {
	t.Parallel() // real processes, mostly waiting: two at a time (-parallel defaults to the cores)
	c := startCluster(t, 3)
	c.kill(2)
	s := exec.Command(c.bin, "serve", "--data-dir", c.dirs[2], "--listen", c.addrs[2], "--node-id", "3",
		"--initial-cluster", fmt.Sprintf("3=%s,4=%s", c.addrs[2], freeAddr(t)))
	out, err := s.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "disagrees with the cluster the data dir") {
		t.Fatalf("serve with another --initial-cluster: %v\n%s", err, out)
	}
}

// TestClusterPausedMemberStaysAMember: a member stopped (SIGSTOP) long enough to miss several
// health polls, and then resumed, is still a member in every sense: protoactor blocks the
// connections of a member its cluster provider reported gone, for good, Raft's included, so
// the provider must not report a member gone that only did not answer.
func TestClusterPausedMemberStaysAMember(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	leader := c.waitLeader(nil)
	paused := (leader + 1) % 3
	k := c.cli(leader)
	_ = c.servers[paused].cmd.Process.Signal(syscall.SIGSTOP)
	// Its health endpoint accepts connections (the kernel does) and answers nothing: several
	// polls time out, and its gRPC streams see no keepalive answers.
	var last uint64
	for i := range 30 {
		rv, why := put(k, fmt.Sprintf("while-paused-%d", i))
		if rv == 0 {
			t.Fatalf("a write while member %d was paused: %s", paused+1, why)
		}
		last = rv
		time.Sleep(200 * time.Millisecond) // spreading the writes over six seconds of pause
	}
	_ = c.servers[paused].cmd.Process.Signal(syscall.SIGCONT)
	c.waitApplied(paused, last)
	// Every member sees all three in the actor cluster again (protoactor never lets a member
	// its provider once reported gone back into the topology).
	c.waitClusterMembers(c.addrs)
	// Its connections made before the pause carry on either way; a member that blocked it would
	// refuse the next one. So restart the third member (it connects anew, and learns whom the
	// others blocked through their gossip), then kill the leader: the resumed member and the
	// restarted one are a quorum only if they take each other's connections.
	third := 3 - leader - paused
	c.kill(third)
	c.start(third)
	c.waitApplied(third, last)
	c.kill(leader)
	c.waitLeader([]int{leader})
	p := c.cli(paused, third)
	if rv, why := put(p, "after-resume"); rv == 0 {
		t.Fatalf("a write to the resumed member %d and the restarted %d: %s", paused+1, third+1, why)
	}
	c.cli(paused).ok("", "get", "Pod.v1/after-resume", "-n", "ha")
}
