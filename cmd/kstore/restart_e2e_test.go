package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kstore/kstore/raftactor"
)

// TestLongHistoryRestarts runs the node users run, with the default settings, long enough that
// the Raft log is compacted more than once (small objects, then objects of 4 KiB), or with
// objects so large that replaying the log at start takes several Readys, and restarts it after
// a SIGKILL and after a SIGTERM. After each restart the node must lead, hold every acknowledged
// write and take new ones.
func TestLongHistoryRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kstore binary; writes about 100,000 objects")
	}
	tests := []struct {
		name   string
		procs  int // concurrent kstore do processes
		keys   int // distinct objects, spread over the processes
		writes int
		size   int // bytes of each object's data
		// minSnapshot: the Raft log must start after this index once the writes are done.
		minSnapshot uint64
	}{
		// With the defaults (catalog sync every 10,000 entries, compaction once 20,000 synced
		// entries are in the log, 5,000 kept), the first compaction moves the log's start to
		// 25,000 at most: a start past it means a second one.
		{name: "small objects, log compacted twice", procs: 8, keys: 2000, writes: 52_000, size: 40, minSnapshot: 25_001},
		{name: "4 KiB objects, log compacted twice", procs: 8, keys: 2000, writes: 52_000, size: 4 << 10, minSnapshot: 25_001},
		// 120 objects of 1 MB: more than MaxCommittedSizePerReady (8 MiB) many times over, so
		// the restart replays them in several Readys, all of them applied already.
		{name: "1 MB objects, replay over several Readys", procs: 4, keys: 60, writes: 120, size: 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := plainKstoreBinary(t) // a volume test: see plainKstoreBinary
			dir, addr := t.TempDir(), freeAddr(t)
			k := &cli{t: t, bin: bin, endpoints: addr}
			want := map[string]seqAck{}

			srv := startServer(t, bin, dir, addr)
			k.waitLeader()
			start := time.Now()
			streamPuts(t, k, want, tt.procs, tt.keys, tt.writes, tt.size, 0)
			t.Logf("%d writes of %d-byte objects in %v", tt.writes, tt.size, time.Since(start).Round(time.Millisecond))

			// SIGKILL, restart, check, write more.
			if err := srv.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			srv.wait(t, 10*time.Second)
			srv = startServer(t, bin, dir, addr)
			k.waitLeader()
			checkObjects(t, k, want, tt.size, "after a SIGKILL")
			streamPuts(t, k, want, tt.procs, tt.keys, tt.procs*4, tt.size, tt.writes)

			// SIGTERM, restart, check, write more.
			if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := srv.wait(t, 30*time.Second); code != 0 {
				t.Fatalf("kstore serve exited %d on SIGTERM:\n%s", code, srv.log)
			}
			if tt.minSnapshot > 0 {
				if snap := raftLogStart(t, dir); snap < tt.minSnapshot {
					t.Fatalf("the Raft log starts after %d, want past %d: it was not compacted twice", snap, tt.minSnapshot)
				}
			}
			srv = startServer(t, bin, dir, addr)
			k.waitLeader()
			checkObjects(t, k, want, tt.size, "after a SIGTERM")
			streamPuts(t, k, want, tt.procs, tt.keys, tt.procs, tt.size, tt.writes+tt.procs*4)
			checkObjects(t, k, want, tt.size, "after writing again")
			if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			srv.wait(t, 30*time.Second)
			if log := srv.log.String(); hasKstoreRace(log) {
				t.Errorf("the node reported a race:\n%s", log)
			}
		})
	}
}

// seqAck is the last acknowledged write of a key: its resourceVersion and the seq in its data.
type seqAck struct {
	rv  uint64
	seq string
}

// streamPuts writes ConfigMaps through procs concurrent `kstore do` processes, each with its own
// keys, and records the last acknowledged write of every key in acked. Object i of the run
// carries seq+i in its data, so later writes of a key differ from earlier ones.
func streamPuts(t *testing.T, k *cli, acked map[string]seqAck, procs, keys, writes, size, seq int) {
	t.Helper()
	pad := strings.Repeat("x", size)
	tmp := t.TempDir()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []string
	)
	for p := range procs {
		path := filepath.Join(tmp, fmt.Sprintf("cmds-%d.jsonl", p))
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		var names []string
		for i := p; i < writes; i += procs {
			// Process p owns the keys j with j%procs == p, in turn.
			name := fmt.Sprintf("cm-%d", (i/procs)%(keys/procs)*procs+p)
			value := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"restart"},"data":{"seq":"%d","pad":%q}}`, name, seq+i, pad)
			fmt.Fprintf(w, `{"kind":"put","key":{"group":"","version":"v1","kind":"ConfigMap","namespace":"restart","name":%q},"value":%s,"reason":"operator"}`+"\n", name, value)
			names = append(names, name+"="+strconv.Itoa(seq+i))
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(k.bin, "do", "-f", path)
			cmd.Env = k.env()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			mu.Lock()
			defer mu.Unlock()
			if err != nil || len(lines) != len(names) {
				errs = append(errs, fmt.Sprintf("kstore do -f %s: %v, %d results for %d commands: %s", path, err, len(lines), len(names), stderr.String()))
				return
			}
			for i, l := range lines {
				var r writeResult
				if err := json.Unmarshal([]byte(l), &r); err != nil || r.Op == "" {
					errs = append(errs, fmt.Sprintf("result %q: %v", l, err))
					return
				}
				name, s, _ := strings.Cut(names[i], "=")
				acked[name] = seqAck{rv: r.ResourceVersion, seq: s}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("writes failed: %s", strings.Join(errs, "\n"))
	}
}

// checkObjects lists every ConfigMap in namespace restart and requires each key's last
// acknowledged write: its resourceVersion and its data.
func checkObjects(t *testing.T, k *cli, want map[string]seqAck, size int, when string) {
	t.Helper()
	got := map[string]obj{}
	limit := strconv.Itoa(min(500, max(1, (4<<20)/size))) // pages of about 4 MiB
	for cont := ""; ; {
		args := []string{"list", "ConfigMap.v1", "-n", "restart", "--limit", limit}
		if cont != "" {
			args = append(args, "--continue", cont)
		}
		l := parseList(t, k.ok("", args...))
		for _, it := range l.Items {
			o := parseObj(t, string(it))
			got[o.meta("name")] = o
		}
		if cont = l.Continue; cont == "" {
			break
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d objects listed, want %d", when, len(got), len(want))
	}
	for name, a := range want {
		o, ok := got[name]
		if !ok {
			t.Errorf("%s: %s is missing; its last acknowledged write was at %d", when, name, a.rv)
			continue
		}
		data, _ := o["data"].(map[string]any)
		if rv := o.meta("resourceVersion"); rv != strconv.FormatUint(a.rv, 10) || data["seq"] != a.seq {
			t.Errorf("%s: %s has resourceVersion %s and seq %v, want %d and %s (its last acknowledged write)", when, name, rv, data["seq"], a.rv, a.seq)
		}
	}
}

// raftLogStart opens the Raft log of a stopped node and returns the index it starts after.
func raftLogStart(t *testing.T, dir string) uint64 {
	t.Helper()
	log, err := raftactor.OpenLog(filepath.Join(dir, "raft"), []uint64{1}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer log.WAL.Close()
	return log.State.Snapshot.GetIndex()
}
