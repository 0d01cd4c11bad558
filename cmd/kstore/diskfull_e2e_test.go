package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDiskFull fills a small file system under a node until the node refuses writes for its
// free-space reserve: the node must go on serving reads, stop cleanly, refuse to start while the
// disk is inside its reserve, and, once space is freed, start with every acknowledged write.
// Without the reserve the process died with SIGBUS in Badger, again at every start.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kstore binary on a tmpfs")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounts a tmpfs, which needs root (CI runs as root)")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	// A ballast file takes what the test will free later.
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 200<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := plainKstoreBinary(t) // a volume test: see plainKstoreBinary
	dir, addr := filepath.Join(mnt, "data"), freeAddr(t)
	const reserve = "134217728" // 128 MiB
	flags := []string{"--disk-reserve-bytes", reserve, "--badger-memtable-size", "8388608"}
	metricsAddr := freeAddr(t)
	srv := startServer(t, bin, dir, addr, append(flags, "--listen-metrics", metricsAddr)...)
	k := &cli{t: t, bin: bin, endpoints: addr}
	k.waitLeader()

	pad := strings.Repeat("x", 256<<10)
	acked := map[string]string{} // name -> resourceVersion
	refused := ""
	for i := 0; i < 5000 && refused == ""; i++ {
		name := fmt.Sprintf("cm-%d", i%300)
		obj := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"full"},"data":{"i":"%d","pad":%q}}`, name, i, pad)
		r := k.run(obj, "apply", "-f", "-")
		switch {
		case r.code == 0:
			acked[name] = fmt.Sprint(results(t, r.stdout)[0].ResourceVersion)
		case strings.HasPrefix(r.stderr, "Error (Unavailable): ") && strings.Contains(r.stderr, "reserve"):
			refused = r.stderr
		default:
			t.Fatalf("write %d failed otherwise:\n%v\nnode:\n%s", i, r, srv.log)
		}
	}
	if refused == "" {
		t.Fatalf("5000 writes of 256 KiB on a 512 MiB tmpfs were never refused")
	}
	t.Logf("after %d objects: %s", len(acked), strings.TrimSpace(refused))
	// /health says so, as etcd's does under its NOSPACE alarm.
	resp, err := http.Get("http://" + metricsAddr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "reserve") {
		t.Fatalf("/health with writes refused for the disk reserve: %d %s, want 503 naming the reserve", resp.StatusCode, body)
	}

	// Reads go on, and the node is whole.
	for name, rv := range acked {
		if o := parseObj(t, k.ok("", "get", "ConfigMap.v1/"+name, "-n", "full")); o.meta("resourceVersion") != rv {
			t.Fatalf("%s: resourceVersion %s, want %s", name, o.meta("resourceVersion"), rv)
		}
		break
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("kstore serve exited %d on SIGTERM with a full disk:\n%s", code, srv.log)
	}

	// Inside the reserve the node does not start, and says why.
	out, err := exec.Command(bin, append([]string{"serve", "--data-dir", dir, "--listen", addr}, flags...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "less than the node's reserve") {
		t.Fatalf("serve on a disk inside its reserve: %v\n%s", err, out)
	}

	// Once space is freed it starts with every acknowledged write, and takes new ones.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, bin, dir, addr, flags...)
	k.waitLeader()
	for name, rv := range acked {
		if o := parseObj(t, k.ok("", "get", "ConfigMap.v1/"+name, "-n", "full")); o.meta("resourceVersion") != rv {
			t.Errorf("%s after the restart: resourceVersion %s, want %s", name, o.meta("resourceVersion"), rv)
		}
	}
	k.ok(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"after","namespace":"full"}}`, "apply", "-f", "-")
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.wait(t, 30*time.Second)
}
