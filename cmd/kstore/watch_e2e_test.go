package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

type watchLine struct {
	Type            string                `json:"type"`
	Object          json.RawMessage       `json:"object"`
	Key             struct{ Name string } `json:"key"`
	ResourceVersion uint64                `json:"resource_version"`
}

// watcherProc is a `kstore watch` child process and the lines it printed.
type watcherProc struct {
	cmd    *exec.Cmd
	lines  chan watchLine
	stderr strings.Builder
	done   chan struct{}
}

func startWatch(t *testing.T, k *cli, args ...string) *watcherProc {
	t.Helper()
	w := &watcherProc{lines: make(chan watchLine, 100), done: make(chan struct{})}
	w.cmd = exec.Command(k.bin, append([]string{"watch"}, args...)...)
	w.cmd.Env = k.env()
	w.cmd.Stderr = &w.stderr
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var l watchLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l.Type = "UNPARSABLE " + sc.Text()
			}
			w.lines <- l
		}
	}()
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() { _ = w.cmd.Process.Kill(); <-w.done })
	return w
}

func (w *watcherProc) expect(t *testing.T, typ, name string) watchLine {
	t.Helper()
	select {
	case l, ok := <-w.lines:
		if !ok {
			t.Fatalf("kstore watch ended; want %s %s; stderr: %s", typ, name, w.stderr.String())
		}
		if l.Type != typ || (name != "" && l.Key.Name != name) {
			t.Fatalf("kstore watch printed %s %s@%d, want %s %s", l.Type, l.Key.Name, l.ResourceVersion, typ, name)
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatalf("kstore watch printed nothing within 20s; want %s %s; stderr: %s", typ, name, w.stderr.String())
	}
	return watchLine{}
}

func (w *watcherProc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(20 * time.Second):
		t.Fatal("kstore watch did not exit within 20s")
	}
	return w.cmd.ProcessState.ExitCode()
}

// TestWatchEndToEnd drives `kstore watch` against a running node: the initial state, changes,
// a node killed and restarted under it (the watch resumes with nothing lost or repeated),
// Ctrl-C, and the errors it cannot resume from.
func TestWatchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kstore binary")
	}
	bin := kstoreBinary(t)
	dir, addr := t.TempDir(), freeAddr(t)
	srv := startServer(t, bin, dir, addr, "--history-revisions", "20")
	k := &cli{t: t, bin: bin, endpoints: addr}
	k.waitLeader()

	a := result1(t, k.ok(pod("w", "a", "nginx:1", map[string]string{"app": "web"}), "apply", "-f", "-"), "Created")
	w := startWatch(t, k, "Pod.v1", "-n", "w")
	if l := w.expect(t, "ADDED", "a"); l.ResourceVersion < a.ResourceVersion {
		t.Errorf("initial ADDED at %d, before the object's %d", l.ResourceVersion, a.ResourceVersion)
	}
	w.expect(t, "BOOKMARK", "")
	k.ok(pod("w", "b", "nginx:1", nil), "apply", "-f", "-")
	w.expect(t, "ADDED", "b")
	k.ok("", "patch", "Pod.v1/a", "-n", "w", "--type", "merge", "-p", `{"metadata":{"labels":{"app":"api"}}}`)
	w.expect(t, "MODIFIED", "a")
	del := result1(t, k.ok("", "delete", "Pod.v1/b", "-n", "w"), "Deleted")
	if l := w.expect(t, "DELETED", "b"); l.ResourceVersion != del.ResourceVersion || !strings.Contains(string(l.Object), `"name":"b"`) {
		t.Errorf("DELETED b at %d with %s, want at %d with the last object", l.ResourceVersion, l.Object, del.ResourceVersion)
	}

	// The node dies and comes back: the watch resumes from what it printed.
	_ = srv.cmd.Process.Signal(syscall.SIGKILL)
	srv.wait(t, 10*time.Second)
	startServer(t, bin, dir, addr, "--history-revisions", "20")
	k.waitLeader()
	c := result1(t, k.ok(pod("w", "c", "nginx:1", nil), "apply", "-f", "-"), "Created")
	if l := w.expect(t, "ADDED", "c"); l.ResourceVersion != c.ResourceVersion {
		t.Errorf("after the restart: ADDED c at %d, want %d", l.ResourceVersion, c.ResourceVersion)
	}
	// Ctrl-C ends it cleanly.
	_ = w.cmd.Process.Signal(os.Interrupt)
	if code := w.exitCode(t); code != 0 {
		t.Errorf("kstore watch exited %d on SIGINT, want 0; stderr: %s", code, w.stderr.String())
	}
	for l := range w.lines {
		t.Errorf("after the restart, an extra event: %s %s@%d", l.Type, l.Key.Name, l.ResourceVersion)
	}

	// Gone: a revision compacted away (history of 20 revisions, 30 more writes).
	for i := range 30 {
		k.ok(pod("w", fmt.Sprintf("x%d", i), "nginx:1", nil), "apply", "-f", "-")
	}
	msg := k.fail("Gone", "", "watch", "Pod.v1", "-n", "w", "--resource-version", fmt.Sprint(a.ResourceVersion))
	if !strings.Contains(msg, "compacted") {
		t.Errorf("Gone says %q, want it to name the compacted revision", msg)
	}
	// Timeout: a revision the node does not reach.
	msg = k.fail("Timeout", "", "watch", "--resource-version", "999999")
	if !strings.Contains(msg, "999999") {
		t.Errorf("Timeout says %q, want it to name the revision asked for", msg)
	}
}
