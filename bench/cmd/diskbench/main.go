// Command diskbench shows what a node's disk use does under an overwrite loop: it starts
// `kstore serve` on a fresh data dir, overwrites a few large objects at a steady rate for a
// while, and every sample interval prints one JSON line with the bytes the Raft log (raft/) and
// the catalog (catalog/) take on disk (allocated blocks, so preallocated segments count):
//
//	{"elapsed_s":60,"writes":1200,"errors":0,"max_put_ms":..,"raft_mib":..,"catalog_mib":..,"total_mib":..}
//
// The objects default to 1.2 MiB, over Badger's value threshold (1 MiB), so they live in its
// value log, which only value-log GC reclaims. The retained history is made small
// (--history-revisions 1000) so that what the node must keep is bounded: disk use should climb
// to that and stay flat.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/bench/internal/driver"
	"github.com/kstore/kstore/messages"
)

func main() {
	bin := flag.String("kstore", "bin/kstore", "the kstore binary to start")
	duration := flag.Duration("duration", 10*time.Minute, "how long to overwrite")
	sample := flag.Duration("sample", 30*time.Second, "how often to measure disk use")
	size := flag.Int("size", 1200<<10, "object bytes")
	keys := flag.Int("keys", 50, "objects overwritten in turn")
	rate := flag.Int("rate", 20, "writes per second")
	history := flag.Int("history-revisions", 1000, "the node's --history-revisions")
	flag.Parse()
	if err := run(*bin, *duration, *sample, *size, *keys, *rate, *history); err != nil {
		fmt.Fprintln(os.Stderr, "diskbench:", err)
		os.Exit(1)
	}
}

type line struct {
	Elapsed    int     `json:"elapsed_s"`
	Writes     int     `json:"writes"`
	Errors     int     `json:"errors"`
	MaxMS      float64 `json:"max_put_ms"`
	NodeRSSMiB float64 `json:"node_rss_mib"`
	RaftMiB    float64 `json:"raft_mib"`
	CatalogMiB float64 `json:"catalog_mib"`
	TotalMiB   float64 `json:"total_mib"`
}

func run(bin string, duration, sample time.Duration, size, keys, rate, history int) error {
	node, err := driver.StartNode(bin, "", append([]string{"--history-revisions", fmt.Sprint(history)}, strings.Fields(os.Getenv("DISKBENCH_SERVE_ARGS"))...))
	if err != nil {
		return err
	}
	defer node.Stop()
	sys, err := actors.NewSystem("127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	defer sys.Close()
	c := actors.NewClient(sys.ActorSystem, []string{node.Addr}, 10*time.Second)
	defer c.Close()
	if err := driver.WaitLeader(c, 30*time.Second); err != nil {
		return err
	}
	// Random hex: Snappy, which Badger compresses tables with, cannot shrink it.
	raw := make([]byte, size/2)
	_, _ = rand.Read(raw)
	pad := hex.EncodeToString(raw)
	enc := json.NewEncoder(os.Stdout)
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	next := start.Add(sample)
	writes, errs := 0, 0
	var maxPut time.Duration
	report := func() {
		raft, catalog := diskUse(filepath.Join(node.DataDir(), "raft")), diskUse(filepath.Join(node.DataDir(), "catalog"))
		_ = enc.Encode(line{Elapsed: int(time.Since(start).Seconds()), Writes: writes, Errors: errs,
			MaxMS: float64(maxPut.Microseconds()) / 1000, NodeRSSMiB: mib(rss(node.PID)),
			RaftMiB: mib(raft), CatalogMiB: mib(catalog), TotalMiB: mib(raft + catalog)})
		maxPut = 0
	}
	for time.Since(start) < duration {
		<-tick.C
		obj := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big-%d","namespace":"disk"},"data":{"n":"%d","pad":%q}}`, writes%keys, writes, pad)
		t0 := time.Now()
		if _, err := c.Put(context.Background(), []byte(obj), messages.Reason_OPERATOR); err != nil {
			errs++
			fmt.Fprintf(os.Stderr, "diskbench: write %d: %v\n", writes, err)
		} else {
			writes++
		}
		maxPut = max(maxPut, time.Since(t0))
		if time.Now().After(next) {
			report()
			next = next.Add(sample)
		}
	}
	report()
	return nil
}

// diskUse is the bytes allocated to the files under dir.
func diskUse(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}

func mib(b int64) float64 { return float64(b*10>>20) / 10 }

// rss is the resident memory of process pid, in bytes (0 when unknown).
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb << 10
		}
	}
	return 0
}
