// Command watchbench measures how a kstore node streams writes to many watchers.
//
// For the baseline (no watcher) and then for each watcher count N it starts `kstore serve` (the
// binary given by --kstore) on a fresh data dir and a free port, or uses a running node
// (--endpoints). This one process holds every watcher and every writer. A round
//
//  1. opens N watches of every Pod in namespace "bench" from the node's applied revision (no
//     initial list), each read as fast as it can by a goroutine of its own, and waits until
//     every one has seen one write;
//  2. puts new Pods of --size bytes at --rate per second for --seconds, on a fixed schedule, and
//     takes each event's delivery lag from its write's scheduled send time (a write that goes
//     out late is charged for it, not omitted), then waits up to --drain for the last events.
//     A node that cannot keep up gets until --seconds + --drain; the writes still due then are
//     skipped, counted, and charged as lag;
//  3. reads what the open, idle watches cost in memory: the node's RSS (when its pid is known)
//     and this process's live heap, against the figures before they were opened;
//  4. puts as fast as --max-writers writers can for --max-seconds, with the N watches open;
//  5. stops the watches.
//
// Each round prints one JSON line (the fields are documented on type result):
//
//	{"target":"kstore","watchers":1000,"rate":1000,"achieved_rate":..,"events":..,"expected_events":..,
//	 "lag_p50_ms":..,"lag_p99_ms":..,"lag_max_ms":..,"server_rss_per_watcher_bytes":..,
//	 "client_heap_per_watcher_bytes":..,"max_write_rate":..,"max_write_rate_no_watchers":..,"write_ratio":..,...}
//
// The baseline's line comes first, with "watchers":0; its max_write_rate is every later line's
// max_write_rate_no_watchers. The floors on a 2-core machine: 1,000 watchers at 1,000
// writes/s with lag_p99_ms under 100, and write_ratio at 1,000 watchers of at least 0.7.
//
// Profiles: --cpuprofile writes this process's CPU profile of each round (cpu.prof becomes
// cpu-0.prof, cpu-1000.prof, ...); --server-cpuprofile asks each started node for its own, named
// the same way, through $CPUPROFILE, which the scratch/serve stand-in honours:
//
//	go build -o /tmp/scratchserve ./scratch/serve
//	go run ./bench/cmd/watchbench --kstore /tmp/scratchserve --watchers 100,1000 \
//		--cpuprofile /tmp/wb/client.prof --server-cpuprofile /tmp/wb/server.prof
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/kstore/kstore/actors"
	kbench "github.com/kstore/kstore/bench"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.bin, "kstore", "bin/kstore", "the kstore binary to start (ignored with --endpoints)")
	flag.StringVar(&cfg.endpoints, "endpoints", "", "use a running node instead of starting one")
	flag.IntVar(&cfg.serverPID, "server-pid", 0, "with --endpoints: the node's pid, to read its RSS and CPU time (same machine only)")
	flag.BoolVar(&cfg.baseline, "baseline", true, "measure with no watcher first (the write rate to compare with, and the RSS the writes alone add)")
	watchersFlag := flag.String("watchers", "100,1000,10000", "comma-separated watcher counts")
	flag.IntVar(&cfg.rate, "rate", 1000, "writes per second in the steady phase")
	seconds := flag.Int("seconds", 10, "length of the steady phase, in seconds")
	maxSeconds := flag.Int("max-seconds", 5, "length of each max-rate phase, in seconds; 0 skips them")
	flag.IntVar(&cfg.size, "size", 256, "object bytes")
	flag.IntVar(&cfg.window, "window", 0, "credits window per watch (0: the client's default)")
	flag.IntVar(&cfg.writers, "writers", 16, "writer goroutines of the steady phase")
	flag.IntVar(&cfg.maxWriters, "max-writers", 16, "writer goroutines of the max-rate phases")
	drain := flag.Int("drain", 30, "how long to wait for the last events of a phase to arrive, in seconds")
	openTimeout := flag.Int("open-timeout", 60, "how long to wait for the watches to be established, in seconds")
	cpuprofile := flag.String("cpuprofile", "", "write this process's CPU profile of each round here (cpu.prof: cpu-0.prof for the baseline, cpu-1000.prof, ...)")
	serverProfile := flag.String("server-cpuprofile", "", "ask each started node for a CPU profile, named as --cpuprofile's (sets CPUPROFILE in its environment; the scratch/serve stand-in honours it)")
	flag.Parse()
	cfg.steady, cfg.maxPhase = time.Duration(*seconds)*time.Second, time.Duration(*maxSeconds)*time.Second
	cfg.drain, cfg.openTimeout = time.Duration(*drain)*time.Second, time.Duration(*openTimeout)*time.Second
	if err := cfg.parse(*watchersFlag); err != nil {
		fmt.Fprintln(os.Stderr, "watchbench:", err)
		os.Exit(2)
	}
	if err := run(cfg, *cpuprofile, *serverProfile); err != nil {
		fmt.Fprintln(os.Stderr, "watchbench:", err)
		os.Exit(1)
	}
}

type config struct {
	bin, endpoints      string
	baseline            bool
	serverPID           int
	watchers            []int
	rate, size, window  int
	writers, maxWriters int
	steady, maxPhase    time.Duration // --seconds, --max-seconds
	drain, openTimeout  time.Duration
}

func (c *config) parse(watchers string) error {
	for _, f := range strings.Split(watchers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("--watchers: %q is not a positive number", f)
		}
		c.watchers = append(c.watchers, n)
	}
	switch {
	case c.rate <= 0 || c.rate > 1_000_000:
		return fmt.Errorf("--rate %d: give a number of writes per second from 1 to 1,000,000", c.rate)
	case c.steady <= 0:
		return fmt.Errorf("--seconds: give a positive number of seconds")
	case c.writers <= 0 || c.maxWriters <= 0:
		return fmt.Errorf("--writers and --max-writers must be positive")
	case c.maxPhase < 0:
		return fmt.Errorf("--max-seconds: give a number of seconds, 0 to skip the max-rate phases")
	case c.drain < 0 || c.openTimeout <= 0:
		return fmt.Errorf("--drain and --open-timeout take a number of seconds")
	}
	return nil
}

// run measures the baseline (no watcher), then each watcher count. Each gets a fresh node when
// this program starts them, so that every count writes into the same history as the baseline
// and the node's RSS is not inflated or deflated by an earlier count's heap.
func run(cfg config, cpuprofile, serverProfile string) error {
	sys, err := actors.NewSystem("127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	defer sys.Close()
	epoch := time.Now()
	var base *result
	counts := cfg.watchers
	if cfg.baseline {
		counts = append([]int{0}, counts...)
	}
	for i, n := range counts {
		r, err := measure(sys, cfg, epoch, i, n, base, profilePath(cpuprofile, n), profilePath(serverProfile, n))
		if err != nil {
			if n == 0 {
				return fmt.Errorf("baseline: %w", err)
			}
			return fmt.Errorf("%d watchers: %w", n, err)
		}
		if n == 0 {
			base = r
		}
		fmt.Println(jsonLine(r))
	}
	return nil
}

// measure runs one round of n watchers (0: the baseline) on a node of its own, or on
// cfg.endpoints.
func measure(sys *actors.System, cfg config, epoch time.Time, round, n int, base *result, cpuprofile, serverProfile string) (*result, error) {
	if cfg.endpoints == "" {
		var env []string
		if serverProfile != "" {
			abs, err := filepath.Abs(serverProfile)
			if err != nil {
				return nil, err
			}
			env = append(env, "CPUPROFILE="+abs)
		}
		node, err := kbench.StartNode(cfg.bin, env...)
		if err != nil {
			return nil, err
		}
		defer node.Stop()
		cfg.endpoints, cfg.serverPID = node.Addr, node.PID
	}
	c := actors.NewClient(sys.ActorSystem, strings.Split(cfg.endpoints, ","), 10*time.Second)
	if err := kbench.WaitLeader(c); err != nil {
		return nil, err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	b := &bench{cfg: cfg, c: c, epoch: epoch, run: strconv.FormatInt(epoch.UnixNano()%(36*36*36*36*36*36), 36)}
	return b.round(round, n, base)
}

// profilePath names the profile of the round of n watchers: cpu.prof becomes cpu-1000.prof.
func profilePath(path string, n int) string {
	if path == "" {
		return ""
	}
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), n, ext)
}

func jsonLine(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf(`{"error":%q}`, err.Error())
	}
	return string(b)
}
