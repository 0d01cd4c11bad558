package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The disk-fault tests run nodes built with -tags failpoints (kstoreBinary builds that) and arm
// a failpoint through $KSTORE_FAILPOINTS (cmd/kstore/failpoints_on.go says what each does).
// A node whose Raft log fails a write or a sync, or whose catalog fails a commit, must stop at
// once: one error-level log line naming the file or operation, the errno and what to do, exit
// status 1, and no write acknowledged that it could not persist. Restarted on the same data dir
// without the fault, it must hold every write it acknowledged and take new ones.

const (
	faultNamespace = "faults"
	faultStreams   = 4 // concurrent kstore do processes, one command at a time each
	// faultMaxWrites bounds each stream, so that a failpoint that never fires fails the test
	// rather than hanging it.
	faultMaxWrites = 5000
	// faultStopLine is the error-level line the node logs when it stops after a failure.
	faultStopLine = "stopping node after a failure"
	faultEnv      = "KSTORE_FAILPOINTS"
	// faultTimeout is a writer's request timeout against a single node: far above a write's
	// latency, short because a write sent while the node stops may get no answer (its outcome
	// unknown) until then.
	faultTimeout = 2 * time.Second
)

// TestDiskFaults arms each disk failpoint on a single node after a few hundred calls, writes
// from several streams until the node stops, and checks what it logged and that a restart
// without the fault holds every acknowledged write. The counts are chosen so that the fault
// fires a few hundred writes in (at least minAcks were acknowledged before it).
func TestDiskFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kstore binary")
	}
	t.Parallel() // real processes, mostly waiting: beside TestDiskFaultFollower
	bin := kstoreBinary(t)
	const minAcks = 50
	tests := []struct {
		name      string
		failpoint string
		want      []string // in the error line, besides the data dir
	}{
		{"fsync error", "wal-fsync-error:300", []string{"wal: fdatasync ", "/raft/", ".wal: input/output error", "fix the disk"}},
		{"short write", "wal-short-write:400", []string{"wal: write ", "/raft/", "short write", "fix the disk"}},
		{"disk full", "wal-enospc:400", []string{"wal: write ", "/raft/", "no space left on device", "fix the disk"}},
		{"catalog commit error", "catalog-commit-error:200", []string{"catalogactor: write entries ", "/catalog: input/output error", "fix the disk", "applies these entries again from the Raft log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, addr := t.TempDir(), freeAddr(t)
			srv := startFaultyServer(t, bin, dir, addr, tt.failpoint, "--disk-reserve-bytes", "0")
			k := &cli{t: t, bin: bin, endpoints: addr}
			k.waitLeader()
			w := startFaultWriters(t, k, faultTimeout)
			w.wait(t, 30*time.Second) // every stream ends once the node has stopped
			if code := srv.wait(t, 20*time.Second); code != exitFailed {
				t.Fatalf("kstore serve exited %d after the fault, want %d:\n%s", code, exitFailed, srv.log)
			}
			acked := w.acked()
			if len(acked) < minAcks {
				t.Fatalf("%s fired after %d acknowledged writes, want at least %d (raise N)\nnode log:\n%s", tt.failpoint, len(acked), minAcks, srv.log)
			}
			line := checkFaultLog(t, srv.log.String(), tt.failpoint, append([]string{dir}, tt.want...))
			t.Logf("%s: %d writes acknowledged, then: %s", tt.failpoint, len(acked), line)

			srv = startServer(t, bin, dir, addr, "--disk-reserve-bytes", "0")
			k.waitLeader()
			if log := srv.log.String(); strings.Contains(log, "failpoints armed") {
				t.Fatalf("the restarted node armed failpoints:\n%s", log)
			}
			checkFaultAcks(t, k, acked, "after the restart")
			k.ok(faultPut("after"), "do", "-f", "-")
			if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := srv.wait(t, 30*time.Second); code != 0 {
				t.Fatalf("kstore serve exited %d on SIGTERM after the restart:\n%s", code, srv.log)
			}
		})
	}

	t.Run("malformed failpoints", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		cmd := exec.Command(bin, "serve", "--data-dir", dir, "--listen", freeAddr(t))
		cmd.Env = append(os.Environ(), faultEnv+"=wal-fsync-error:0,stale-reads")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitFailed ||
			!strings.HasPrefix(string(out), "Error: "+faultEnv+"=") || !strings.Contains(string(out), `"wal-fsync-error:0" needs a count N >= 1`) {
			t.Fatalf("serve with a malformed %s: %v, want exit 1 and an error naming the entry:\n%s", faultEnv, err, out)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("serve with a malformed %s touched the data dir (stat: %v)", faultEnv, err)
		}
	})
}

// TestDiskFaultFollower: a follower whose Raft log fails an fsync stops; the other two members
// go on taking writes; restarted without the fault, the follower catches up and its catalog is
// the same as theirs.
func TestDiskFaultFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kstore binary")
	}
	t.Parallel() // real processes, mostly waiting: beside TestDiskFaults
	c := startCluster(t, 3)
	leader := c.waitLeader(nil)
	f := (leader + 1) % 3
	others := []int{leader, 3 - leader - f}
	// The follower restarts with the failpoint armed: its count starts with that process.
	if err := c.servers[f].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.servers[f].wait(t, 30*time.Second); code != 0 {
		t.Fatalf("member %d exited %d on SIGTERM", f+1, code)
	}
	const failpoint = "wal-fsync-error:100"
	c.servers[f] = startFaultyServer(t, c.bin, c.dirs[f], c.addrs[f], failpoint,
		append([]string{"--node-id", fmt.Sprint(f + 1), "--disk-reserve-bytes", "0"}, c.extra...)...)

	// The writers talk to the two members that stay, whose writes never wait for the follower.
	w := startFaultWriters(t, c.cli(others...), 5*time.Second)
	code := c.servers[f].wait(t, 30*time.Second)
	atExit := w.count()
	if code != exitFailed {
		t.Fatalf("member %d exited %d after the fault, want %d:\n%s", f+1, code, exitFailed, c.servers[f].log)
	}
	line := checkFaultLog(t, c.servers[f].log.String(), failpoint, []string{c.dirs[f], "wal: fdatasync ", "/raft/", "input/output error", "fix the disk"})
	// The other two keep serving: a hundred writes more.
	w.waitCount(t, atExit+100, 20*time.Second)
	w.stop(t)
	acked := w.acked()
	t.Logf("member %d stopped after %d acknowledged writes (%s); %d in all", f+1, atExit, line, len(acked))

	c.start(f)
	var newest uint64
	for _, rv := range acked {
		newest = max(newest, rv)
	}
	c.checkSameCatalogs([]int{0, 1, 2}, newest)
	checkFaultAcks(t, c.cli(f), acked, fmt.Sprintf("on member %d after its restart", f+1), "--consistency", "serializable")
	if rv, why := put(c.cli(f), "after-fault"); rv == 0 {
		t.Fatalf("a write through member %d after its restart: %s", f+1, why)
	}
}

// startFaultyServer is startServer with $KSTORE_FAILPOINTS set to failpoints in the node's
// environment only.
func startFaultyServer(t *testing.T, bin, dir, addr, failpoints string, extra ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dir, "--listen", addr, "--log-level", "warn"}, extra...)
	s := &server{log: &serverLog{ready: make(chan struct{})}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = append(os.Environ(), serverGORACE, faultEnv+"="+failpoints)
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		checkRaces(t, "kstore serve ("+failpoints+")", s.log.String())
	})
	select {
	case <-s.log.ready:
	case <-s.exited:
		t.Fatalf("kstore serve (%s) exited before it was ready (%v):\n%s", failpoints, s.waitErr, s.log)
	case <-time.After(30 * time.Second):
		t.Fatalf("kstore serve (%s) printed no ready line within 30s:\n%s", failpoints, s.log)
	}
	if want := fmt.Sprintf(`"failpoints":%q`, failpoints); !strings.Contains(s.log.String(), want) {
		t.Fatalf("kstore serve logged no warning naming its failpoints (%s):\n%s", want, s.log)
	}
	return s
}

// checkFaultLog requires exactly one error-level line in a node's log, the stop after a
// failure, naming the failpoint and holding every string in want; it returns the error.
func checkFaultLog(t *testing.T, log, failpoint string, want []string) string {
	t.Helper()
	var errs []string
	for _, l := range strings.Split(log, "\n") {
		var e struct{ Level, Msg, Error string }
		if json.Unmarshal([]byte(l), &e) == nil && e.Level == "error" {
			errs = append(errs, l)
			if e.Msg != faultStopLine {
				t.Errorf("error-level line other than %q: %s", faultStopLine, l)
			}
		}
	}
	if len(errs) != 1 {
		t.Fatalf("%d error-level lines, want one:\n%s", len(errs), log)
	}
	var e struct{ Error string }
	_ = json.Unmarshal([]byte(errs[0]), &e)
	for _, s := range append(want, "(failpoint "+failpoint) {
		if !strings.Contains(e.Error, s) {
			t.Errorf("the error line does not say %q: %s", s, errs[0])
		}
	}
	return e.Error
}

// faultPut is a put of ConfigMap name whose data.v is the name, in kstore do's wire form.
func faultPut(name string) string {
	return fmt.Sprintf(`{"kind":"put","key":{"group":"","version":"v1","kind":"ConfigMap","namespace":%q,"name":%q},"value":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":%q},"data":{"v":%q}},"reason":"operator"}`,
		faultNamespace, name, name, faultNamespace, name) + "\n"
}

// checkFaultAcks lists the namespace through k and requires every acknowledged write (each
// wrote a key of its own) at its resourceVersion with its value.
func checkFaultAcks(t *testing.T, k *cli, acked map[string]uint64, when string, flags ...string) {
	t.Helper()
	got := map[string]string{}
	for _, it := range parseList(t, k.ok("", append([]string{"list", "ConfigMap.v1", "-n", faultNamespace}, flags...)...)).Items {
		var o struct {
			Metadata struct{ Name, ResourceVersion string }
			Data     struct{ V string }
		}
		if err := json.Unmarshal(it, &o); err != nil {
			t.Fatalf("listed %s: %v", it, err)
		}
		got[o.Metadata.Name] = o.Metadata.ResourceVersion + " " + o.Data.V
	}
	lost := 0
	for name, rv := range acked {
		if want := strconv.FormatUint(rv, 10) + " " + name; got[name] != want {
			if lost++; lost <= 10 {
				t.Errorf("%s: acknowledged write %s is %q, want %q", when, name, got[name], want)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%s: %d of %d acknowledged writes lost or changed", when, lost, len(acked))
	}
}

// faultWriters are faultStreams kstore do processes, each creating keys of its own (w<stream>-<i>)
// one at a time until the node stops it (a refusal or a timeout ends kstore do) or stop is
// called. Every acknowledged write is recorded.
type faultWriters struct {
	mu     sync.Mutex
	acks   map[string]uint64 // key -> acknowledged resourceVersion
	ends   []string          // how each stream ended
	bad    []string          // streams that ended otherwise than stopped or refused
	stdins []io.WriteCloser
	done   chan struct{} // closed when every stream has ended
}

func startFaultWriters(t *testing.T, k *cli, timeout time.Duration) *faultWriters {
	t.Helper()
	w := &faultWriters{acks: map[string]uint64{}, done: make(chan struct{})}
	var wg sync.WaitGroup
	for s := range faultStreams {
		cmd := exec.Command(k.bin, "do", "-f", "-", "--timeout", timeout.String())
		cmd.Env = k.env()
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.stdins = append(w.stdins, stdin)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results := bufio.NewScanner(stdout)
			// bad says how the stream ended when it was not stopped nor ended by kstore do
			// (which exits at the first refusal or timeout).
			bad := fmt.Sprintf("wrote all its %d keys", faultMaxWrites)
			for i := range faultMaxWrites {
				name := fmt.Sprintf("w%d-%d", s, i)
				if _, err := io.WriteString(stdin, faultPut(name)); err != nil || !results.Scan() {
					bad = ""
					break
				}
				var r writeResult
				if err := json.Unmarshal(results.Bytes(), &r); err != nil || r.ResourceVersion == 0 {
					bad = fmt.Sprintf("printed %q", results.Text())
					break
				}
				w.mu.Lock()
				w.acks[name] = r.ResourceVersion
				w.mu.Unlock()
			}
			stdin.Close()
			_, _ = io.Copy(io.Discard, stdout)
			err := cmd.Wait()
			w.mu.Lock()
			w.ends = append(w.ends, fmt.Sprintf("stream %d: %v %s", s, err, strings.TrimSpace(stderr.String())))
			if bad != "" {
				w.bad = append(w.bad, fmt.Sprintf("stream %d %s", s, bad))
			}
			w.mu.Unlock()
		}()
	}
	go func() {
		wg.Wait()
		close(w.done)
	}()
	return w
}

// wait waits for every stream to end by itself.
func (w *faultWriters) wait(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(within):
		w.stop(t)
		t.Fatalf("the writers did not stop within %v (%d writes acknowledged): the failpoint did not stop the node", within, w.count())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.bad) > 0 {
		t.Fatalf("writers ended otherwise than by the node's failure: %v", w.bad)
	}
	t.Logf("the writers ended: %v", w.ends)
}

// stop ends the streams and waits for them.
func (w *faultWriters) stop(t *testing.T) {
	t.Helper()
	for _, in := range w.stdins {
		in.Close()
	}
	select {
	case <-w.done:
	case <-time.After(commandTimeout):
		t.Fatalf("the writers did not end within %v of their stdin's end", commandTimeout)
	}
}

func (w *faultWriters) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// waitCount waits until n writes were acknowledged in all.
func (w *faultWriters) waitCount(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for w.count() < n {
		select {
		case <-w.done:
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Fatalf("the writers ended after %d acknowledged writes, want %d: %v", len(w.acks), n, w.ends)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes acknowledged within %v, want %d", w.count(), within, n)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// acked returns the acknowledged writes once the streams have ended.
func (w *faultWriters) acked() map[string]uint64 {
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acks
}
