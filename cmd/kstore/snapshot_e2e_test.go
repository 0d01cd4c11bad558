package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// snapshotLine is what snapshot save and status -o json print.
type snapshotLine struct {
	ResourceVersion uint64 `json:"resource_version"`
	Compacted       uint64 `json:"compacted"`
	Objects         uint64 `json:"objects"`
	Size            int64  `json:"size"`
	SHA256          string `json:"sha256"`
	NodeID          uint64 `json:"node_id"`
}

// podsAt lists every pod of namespace ns on the node c talks to, at rv (0: the newest), as
// name → the object as served, its resourceVersion in it.
func podsAt(t *testing.T, c *cli, ns string, rv uint64, extra ...string) map[string]string {
	t.Helper()
	args := append([]string{"list", "Pod.v1", "-n", ns}, extra...)
	if rv != 0 {
		args = append(args, "--resource-version", fmt.Sprint(rv))
	}
	l := parseList(t, c.ok("", args...))
	out := map[string]string{}
	for _, it := range l.Items {
		out[parseObj(t, string(it)).meta("name")] = string(it)
	}
	return out
}

// TestSnapshotSaveRestore saves a node's catalog while a writer keeps writing, restores the file
// into the data dirs of a new three-member cluster and starts it: every member serves every pod
// with the resourceVersion it had at the snapshot's resourceVersion, their catalogs hash like
// the source's over the snapshot's revisions (compacted to resourceVersion), and the next write
// gets a higher resourceVersion. A copy of
// the file with one byte flipped is refused by status and restore, and no data dir is made.
func TestSnapshotSaveRestore(t *testing.T) {
	t.Parallel()
	bin := kstoreBinary(t)
	src := &cli{t: t, bin: bin, endpoints: freeAddr(t)}
	startServer(t, bin, t.TempDir(), src.endpoints, "--disk-reserve-bytes", "0")
	src.waitLeader()
	const ns = "snap"
	var lines strings.Builder
	for n := range 1000 {
		name := fmt.Sprintf("p%04d", n)
		fmt.Fprintln(&lines, putCommand(ns, name, pod(ns, name, "nginx:0", nil)))
	}
	src.ok(lines.String(), "do", "-f", "-")

	// The writer overwrites pods and adds new ones until the save is done.
	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		batches int
		werr    error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := 0; ; b++ {
			select {
			case <-stop:
				return
			default:
			}
			var lines strings.Builder
			for i := range 20 {
				name := fmt.Sprintf("p%04d", (b*37+i*53)%1000)
				if i%4 == 0 {
					name = fmt.Sprintf("w%04d", b*5+i/4)
				}
				fmt.Fprintln(&lines, putCommand(ns, name, pod(ns, name, fmt.Sprintf("nginx:%d", b+1), nil)))
			}
			r, err := src.exec(lines.String(), "do", "-f", "-")
			if err == nil && r.code != 0 {
				err = errors.New(r.String())
			}
			if err != nil {
				werr = err
				return
			}
			batches++
		}
	}()
	file := filepath.Join(t.TempDir(), "backup.snap")
	// Let the writer get going, so that the save runs under it.
	waitCommitted(t, src, src.status().Commit+3*20)
	r := src.run("", "snapshot", "save", file)
	close(stop)
	wg.Wait()
	if r.code != 0 || werr != nil {
		t.Fatalf("save: %v\nwriter: %v", r, werr)
	}
	var saved snapshotLine
	if err := strictUnmarshal(r.stdout, &saved); err != nil || saved.ResourceVersion == 0 || saved.NodeID != 1 {
		t.Fatalf("save printed %q: %v", r.stdout, err)
	}
	if _, err := os.Stat(file + ".part"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the save left %s.part: %v", file, err)
	}
	after := src.status().Commit
	if batches < 2 || after <= saved.ResourceVersion {
		t.Fatalf("the writer wrote %d batches, up to %d; the snapshot is at %d: the save did not run under writes", batches, after, saved.ResourceVersion)
	}
	t.Logf("saved %+v while the writer wrote %d batches of 20 (commit %d after the save)", saved, batches, after)
	want := podsAt(t, src, ns, saved.ResourceVersion)
	if uint64(len(want)) != saved.Objects || len(want) < 1000 {
		t.Fatalf("%d pods at the snapshot's resourceVersion %d; the snapshot says %d objects", len(want), saved.ResourceVersion, saved.Objects)
	}
	var status snapshotLine
	if err := strictUnmarshal(src.ok("", "snapshot", "status", file, "-o", "json"), &status); err != nil || status != (snapshotLine{
		ResourceVersion: saved.ResourceVersion, Compacted: saved.Compacted, Objects: saved.Objects, Size: saved.Size, SHA256: saved.SHA256}) {
		t.Fatalf("status %+v (%v), saved %+v", status, err, saved)
	}
	var srcHash hashKV
	if err := strictUnmarshal(src.ok("", "hashkv", "--revision", fmt.Sprint(saved.ResourceVersion), "--from", fmt.Sprint(saved.Compacted)), &srcHash); err != nil {
		t.Fatal(err)
	}

	// A flipped byte: refused, with what is wrong, and no data dir is made.
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	bad := filepath.Join(t.TempDir(), "bad.snap")
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := src.fail("Invalid", "", "snapshot", "status", bad); !strings.Contains(msg, "damaged") {
		t.Errorf("status of a damaged file: %q", msg)
	}
	badDir := filepath.Join(t.TempDir(), "bad")
	if msg := src.fail("Invalid", "", "snapshot", "restore", bad, "--data-dir", badDir); !strings.Contains(msg, "sha256") {
		t.Errorf("restore of a damaged file: %q", msg)
	}
	for _, p := range []string{badDir, badDir + ".restore-tmp"} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a refused restore made %s (%v)", p, err)
		}
	}

	// Three members of a new cluster from the one file.
	c := &testCluster{t: t, bin: bin}
	var initial []string
	for i := range 3 {
		c.dirs = append(c.dirs, filepath.Join(t.TempDir(), "data"))
		c.addrs = append(c.addrs, freeAddr(t))
		initial = append(initial, fmt.Sprintf("%d=%s", i+1, c.addrs[i]))
	}
	c.extra = []string{"--initial-cluster", strings.Join(initial, ",")}
	for i := range 3 {
		var res struct {
			DataDir         string   `json:"data_dir"`
			ResourceVersion uint64   `json:"resource_version"`
			Compacted       uint64   `json:"compacted"`
			Objects         uint64   `json:"objects"`
			SHA256          string   `json:"sha256"`
			ClusterID       string   `json:"cluster_id"`
			Members         []uint64 `json:"members"`
		}
		out := src.ok("", append([]string{"snapshot", "restore", file, "--data-dir", c.dirs[i], "--node-id", fmt.Sprint(i + 1)}, c.extra...)...)
		if err := strictUnmarshal(out, &res); err != nil || res.ResourceVersion != saved.ResourceVersion || len(res.Members) != 3 {
			t.Fatalf("restore of member %d printed %q: %v", i+1, out, err)
		}
	}
	if msg := src.fail("AlreadyExists", "", append([]string{"snapshot", "restore", file, "--data-dir", c.dirs[0], "--node-id", "1"}, c.extra...)...); !strings.Contains(msg, "not empty") {
		t.Errorf("restore into a restored data dir: %q", msg)
	}
	c.servers = make([]*server, 3)
	for i := range 3 {
		c.start(i)
	}
	c.waitLeader(nil)
	for i := range 3 {
		for _, rv := range []uint64{saved.ResourceVersion, 0} {
			got := podsAt(t, c.cli(i), ns, rv, "--consistency", "serializable")
			if len(got) != len(want) {
				t.Fatalf("member %d serves %d pods at %d; the source had %d at %d", i+1, len(got), rv, len(want), saved.ResourceVersion)
			}
			for name, o := range want {
				if got[name] != o {
					t.Fatalf("member %d, pod %s at %d:\n%s\nthe source at %d:\n%s", i+1, name, rv, got[name], saved.ResourceVersion, o)
				}
			}
		}
		var h hashKV
		if err := strictUnmarshal(c.cli(i).ok("", "hashkv", "--revision", fmt.Sprint(saved.ResourceVersion), "--from", fmt.Sprint(saved.Compacted)), &h); err != nil {
			t.Fatal(err)
		}
		if h.Hash != srcHash.Hash {
			t.Errorf("member %d hashes %s at %d, the source %s", i+1, h.Hash, saved.ResourceVersion, srcHash.Hash)
		}
	}
	w := result1(t, c.cli().ok(pod(ns, "after", "nginx:after", nil), "apply", "-f", "-"), "Created")
	if w.ResourceVersion <= saved.ResourceVersion {
		t.Fatalf("a write to the restored cluster got resourceVersion %d, not above the snapshot's %d", w.ResourceVersion, saved.ResourceVersion)
	}
}

// waitCommitted waits until the node c talks to has committed up to rv.
func waitCommitted(t *testing.T, c *cli, rv uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := c.exec("", "status", "--timeout", "1s")
		var st nodeStatus
		if err == nil && r.code == 0 && json.Unmarshal([]byte(r.stdout), &st) == nil && st.Commit >= rv {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node has not committed up to %d within 20s: %v", rv, r)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}
