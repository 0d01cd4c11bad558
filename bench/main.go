// Command bench is kstore's benchmark harness: it starts kstore and etcd (one member or three,
// each member a process of its own on loopback, etcd with its default fsync durability), drives
// both with the same operations on the same objects from this process (kstore through its
// typed client over protoactor remote, etcd through clientv3), and reports them side by side.
//
//	make bench                 # the standard suite (about 10 minutes on 2 cores)
//	make bench-quick           # every scenario briefly (under 2 minutes)
//	cd bench && go run . --target kstore,etcd --scenario put --clients 1,64 --duration 5s
//
// Every result is one JSON line on stdout as soon as it is measured; a progress line goes to
// stderr while a measurement runs, and a table of every result to stderr at the end. The
// output folder (--out) gets results.json, results.md (the tables, with the kstore/etcd ratio
// on every row) and SVG plots of the put and watch scenarios.
//
// The same executable is etcd's server: run with "etcd-server" as its first argument it runs
// etcd's own main (go.etcd.io/etcd/server/v3/etcdmain), which is how the harness starts etcd
// members without a separate install.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kstore/kstore/bench/internal/driver"
	"github.com/kstore/kstore/bench/internal/limits"
	"github.com/kstore/kstore/bench/internal/load"
	"github.com/kstore/kstore/bench/internal/report"
)

func main() {
	driver.RunEtcdServerIfAsked()
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if cfg.render != "" {
		if err := rerender(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: --cpuprofile:", err)
			os.Exit(2)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run, err := execute(ctx, cfg, os.Stdout)
	if run != nil {
		fmt.Fprintln(os.Stderr)
		fmt.Fprint(os.Stderr, report.Table(run.Results))
		err = errors.Join(err, finish(cfg, run))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile() // os.Exit runs no deferred call
		os.Exit(1)
	}
}

// finish writes the run's output folder, and the README's tables when asked.
func finish(cfg *config, run *report.Run) error {
	paths, err := report.WriteAll(cfg.out, *run)
	if err != nil {
		return err
	}
	load.Note("wrote %s", strings.Join(paths, ", "))
	if cfg.readme != "" {
		if err := report.ReplaceBetweenMarkers(cfg.readme, "<!-- bench:begin -->", "<!-- bench:end -->", report.Markdown(*run)); err != nil {
			return err
		}
		load.Note("updated %s", cfg.readme)
	}
	return nil
}

// rerender writes the output of an earlier run again from its results.json, so a change of
// the tables or plots needs no new measurement.
func rerender(cfg *config) error {
	b, err := os.ReadFile(cfg.render)
	if err != nil {
		return err
	}
	var run report.Run
	if err := json.Unmarshal(b, &run); err != nil {
		return fmt.Errorf("%s: %w", cfg.render, err)
	}
	return finish(cfg, &run)
}

// config is what the flags ask for.
type config struct {
	suite      string
	targets    []driver.Target
	scenarios  []string
	clients    []int
	watchers   []int
	watchers3  []int  // the watch scenario's counts on three members (empty: watchers)
	idle       int    // watch-idle's watchers
	cpuProfile string // where the loader's CPU profile goes ("": none)
	conns      int
	size       int
	watchSize  int
	keys       int
	duration   time.Duration
	total      int64
	rate       float64
	watchRate  int
	steady     time.Duration
	maxPhase   time.Duration
	drain      time.Duration
	mixTime    time.Duration
	limitsDur  time.Duration
	fresh      bool // a fresh store for each watch round
	out        string
	kstore     string
	serveArgs  []string
	readme     string
	render     string
	command    string
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	suite := fs.String("suite", "", "run a whole suite instead of the scenarios given: standard (make bench) or quick (make bench-quick)")
	targets := fs.String("target", "kstore,etcd", "targets, each in turn: kstore, kstore-3, etcd, etcd-3 (-3: three members)")
	scenarios := fs.String("scenario", "put", "scenarios: "+strings.Join(load.AllScenarios, ", ")+", or all")
	clients := fs.String("clients", "1,16,64,256", "client counts of the operation scenarios")
	watchers := fs.String("watchers", "100,1000,10000", "watcher counts of the watch scenario (watch-selective takes the largest)")
	idle := fs.Int("idle-watchers", 100000, "watches the watch-idle scenario opens (one-member targets only)")
	conns := fs.Int("conns", 8, "client connections the clients share (etcd: gRPC connections; kstore: one actor system holds one client per member)")
	size := fs.Int("size", 1024, "object bytes of the operation scenarios and the mix")
	watchSize := fs.Int("watch-size", 256, "object bytes of the watch scenarios")
	keys := fs.Int("keys", 10000, "key space of the operation scenarios")
	duration := fs.Duration("duration", 5*time.Second, "length of each measurement of an operation scenario")
	total := fs.Int64("total", 0, "end each operation measurement after this many operations instead (0: by --duration)")
	rate := fs.Float64("rate", 0, "hold each operation measurement to this many operations a second (0: as fast as the clients go)")
	watchRate := fs.Int("watch-rate", 1000, "writes per second of the watch scenarios' steady phase")
	steady := fs.Duration("watch-seconds", 5*time.Second, "length of the watch scenarios' steady phase")
	maxPhase := fs.Duration("max-seconds", 3*time.Second, "length of the watch scenarios' full-speed phase (0 skips it)")
	drain := fs.Duration("drain", 10*time.Second, "how long a watch round waits for its last events")
	mixTime := fs.Duration("mix-seconds", 10*time.Second, "length of the mix scenario")
	limitsDur := fs.Duration("limits", 2*time.Second, "time spent measuring the machine's own ceilings (0 skips them)")
	fresh := fs.Bool("fresh", true, "start a fresh store for each watch round, so no round inherits another's history or heap")
	out := fs.String("out", "out", "output folder for results.json, results.md and the plots")
	kstore := fs.String("kstore", "", "the kstore binary (default: built from the repository this harness sits in)")
	serveArgs := fs.String("serve-args", "", "more arguments for kstore serve, space-separated (e.g. --pprof-listen 127.0.0.1:6060 for profiles, --listen-metrics 127.0.0.1:9101 for /metrics; member N of a cluster serves them at that port + N-1)")
	render := fs.String("render", "", "measure nothing: read a run's results.json and write its tables and plots again (to --out, and --readme)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the loader (this process, which drives both systems) to this file")
	readme := fs.String("readme", "", "replace the text between <!-- bench:begin --> and <!-- bench:end --> in this file with the run's tables")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: bench [flags]\n\nRuns kstore and etcd side by side on this machine; see the package doc (go doc .) for what each scenario does.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cfg := &config{suite: *suite, idle: *idle, conns: *conns, size: *size, watchSize: *watchSize, keys: *keys, duration: *duration, total: *total,
		rate: *rate, watchRate: *watchRate, steady: *steady, maxPhase: *maxPhase, drain: *drain, mixTime: *mixTime,
		limitsDur: *limitsDur, fresh: *fresh, out: *out, render: *render, kstore: *kstore, serveArgs: strings.Fields(*serveArgs), readme: *readme, cpuProfile: *cpuProfile,
		command: "bench " + strings.Join(args, " ")}
	var err error
	if cfg.targets, err = driver.ParseTargets(*targets); err != nil {
		return nil, err
	}
	if cfg.clients, err = counts("--clients", *clients); err != nil {
		return nil, err
	}
	if cfg.watchers, err = counts("--watchers", *watchers); err != nil {
		return nil, err
	}
	cfg.scenarios = strings.Split(*scenarios, ",")
	if *scenarios == "all" {
		cfg.scenarios = load.AllScenarios
	}
	for _, s := range cfg.scenarios {
		if !contains(load.AllScenarios, s) {
			return nil, fmt.Errorf("--scenario %q: give %s, or all", s, strings.Join(load.AllScenarios, ", "))
		}
	}
	switch cfg.suite {
	case "":
	case "standard", "quick":
		applySuite(cfg)
	default:
		return nil, fmt.Errorf("--suite %q: give standard or quick", cfg.suite)
	}
	switch {
	case cfg.size < 64 || cfg.watchSize < 64:
		return nil, fmt.Errorf("--size and --watch-size must be at least 64 bytes")
	case cfg.keys < 1:
		return nil, fmt.Errorf("--keys must be positive")
	case cfg.idle < 1:
		return nil, fmt.Errorf("--idle-watchers must be positive")
	case cfg.duration <= 0 && cfg.total <= 0:
		return nil, fmt.Errorf("give a positive --duration or --total")
	case cfg.watchRate <= 0 || cfg.steady < time.Second || cfg.maxPhase < 0:
		return nil, fmt.Errorf("--watch-rate must be positive and --watch-seconds at least 1s")
	}
	return cfg, nil
}

// applySuite sets what a suite runs. The standard suite is sized to finish within 10 minutes
// on a 2-core machine; the quick one within 2.
func applySuite(cfg *config) {
	cfg.scenarios = load.AllScenarios
	if cfg.suite == "standard" {
		cfg.targets = []driver.Target{{System: "kstore", Members: 1}, {System: "etcd", Members: 1}, {System: "kstore", Members: 3}, {System: "etcd", Members: 3}}
		cfg.clients = []int{1, 16, 64, 256}
		cfg.watchers = []int{100, 1000, 10000}
		// Three members and the loader on two cores fall seconds behind at 10,000 watchers of
		// every write, so a round there would measure mostly its own drain: 1,000 shows the
		// fan-out, and watch-selective still has 10,000.
		cfg.watchers3 = []int{1000}
		cfg.idle = 100000
		cfg.duration, cfg.total = 3*time.Second, 0
		cfg.steady, cfg.maxPhase, cfg.drain, cfg.mixTime = 4*time.Second, 2*time.Second, 5*time.Second, 5*time.Second
		return
	}
	cfg.targets = []driver.Target{{System: "kstore", Members: 1}, {System: "etcd", Members: 1}}
	cfg.clients = []int{1, 64}
	cfg.watchers = []int{100, 1000}
	cfg.idle = 10000
	cfg.duration, cfg.total = time.Second, 0
	cfg.steady, cfg.maxPhase, cfg.drain, cfg.mixTime = time.Second, time.Second, 5*time.Second, 2*time.Second
	cfg.limitsDur = time.Second
	cfg.fresh = false
}

func counts(name, s string) ([]int, error) {
	var ns []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive number", name, f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// execute runs what cfg asks for, writing each result's JSON line to out as it comes. It
// returns the run so far even when a measurement failed (the error says which).
func execute(ctx context.Context, cfg *config, out io.Writer) (*report.Run, error) {
	run := &report.Run{Started: time.Now().UTC(), Command: cfg.command, Machine: machine()}
	work, err := os.MkdirTemp("", "kstore-bench-run")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	opts := driver.Options{Kstore: cfg.kstore, Self: self, Conns: cfg.conns, Dir: work, KstoreArgs: cfg.serveArgs}
	if opts.Kstore == "" {
		if opts.Kstore, err = buildKstore(work); err != nil {
			return nil, err
		}
	}
	if cfg.limitsDur > 0 {
		load.Note("measuring the machine's ceilings (%v)", cfg.limitsDur)
		if run.Limits, err = limits.Measure(work, cfg.limitsDur); err != nil {
			return nil, err
		}
		load.Note("  synced 4 KiB writes: %s/s (p50 %.2f ms); batched synced Badger writes: %s/s", load.Thousands(run.Limits.DiskSyncsPerS),
			run.Limits.DiskSyncP50, load.Thousands(run.Limits.BadgerBatchedPerS))
	}
	emit := func(r report.Result) {
		run.Results = append(run.Results, r)
		fmt.Fprintln(out, string(r.Line()))
	}
	var errs []error
	fail := func(t driver.Target, what string, err error) {
		err = fmt.Errorf("%s %s: %w", t, what, err)
		load.Note("%v", err)
		errs = append(errs, err)
	}
	ops := filter(cfg.scenarios, load.Scenarios)
	for _, t := range cfg.targets {
		if ctx.Err() != nil {
			break
		}
		if len(ops) == 0 && !contains(cfg.scenarios, "mix") {
			continue
		}
		load.Note("%s: starting %d member(s)", t, t.Members)
		s, err := driver.Start(t, opts)
		if err != nil {
			fail(t, "start", err)
			continue
		}
		env := &load.Env{Store: s, Size: cfg.size, Keys: cfg.keys, Groups: 10, Limits: run.Limits}
		for _, sc := range ops {
			cs := cfg.clients
			switch sc {
			case "update", "patch", "get", "get-serializable":
				cs = []int{largestUpTo(cfg.clients, 64)}
			case "list", "list-selector":
				cs = []int{min(largestUpTo(cfg.clients, 64), 4)}
			}
			for _, c := range cs {
				if ctx.Err() != nil {
					break
				}
				r, err := env.Measure(ctx, sc, load.Spec{Clients: c, Duration: cfg.duration, Total: cfg.total, Rate: cfg.rate})
				if err != nil {
					fail(t, sc, err)
					break
				}
				emit(r)
			}
		}
		if contains(cfg.scenarios, "mix") && ctx.Err() == nil {
			r, err := load.Mix(ctx, s, load.MixSpec{Writers: 10, Watchers: 50, Listers: 5, Duration: cfg.mixTime, Size: cfg.size, PodsPerWriter: 200})
			if err != nil {
				fail(t, "mix", err)
			} else {
				emit(r)
			}
		}
		if err := s.Close(); err != nil {
			fail(t, "stop", err)
		}
	}
	fanOut, selective, idle := contains(cfg.scenarios, "watch"), contains(cfg.scenarios, "watch-selective"), contains(cfg.scenarios, "watch-idle")
	for _, t := range cfg.targets {
		if ctx.Err() != nil || !fanOut && !selective && !idle {
			break
		}
		var rounds []load.WatchSpec
		if fanOut {
			ws := cfg.watchers
			if t.Members == 3 && len(cfg.watchers3) > 0 {
				ws = cfg.watchers3
			}
			for _, n := range ws {
				rounds = append(rounds, cfg.watchSpec(n, false))
			}
		}
		if selective {
			rounds = append(rounds, cfg.watchSpec(cfg.watchers[len(cfg.watchers)-1], true))
		}
		if len(rounds) > 0 {
			if err := watchRounds(ctx, cfg, opts, t, rounds, emit); err != nil {
				fail(t, "watch", err)
			}
		}
		if idle && ctx.Err() == nil {
			if err := idleRound(ctx, cfg, opts, t, emit); err != nil {
				fail(t, "watch-idle", err)
			}
		}
	}
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("interrupted: %w", ctx.Err()))
	}
	return run, errors.Join(errs...)
}

// watchSpec is a round of n watchers.
func (cfg *config) watchSpec(n int, selective bool) load.WatchSpec {
	return load.WatchSpec{Watchers: n, Selective: selective, Spread: n, Rate: cfg.watchRate, Steady: cfg.steady, Writers: 16,
		MaxPhase: cfg.maxPhase, MaxWriters: 16, Drain: cfg.drain, OpenTimeout: 60 * time.Second, Size: cfg.watchSize}
}

// idleRound opens cfg.idle watches on a fresh store of t and reads the server's memory with
// them open (scenario watch-idle). It measures one node, so it skips a target of three members.
func idleRound(ctx context.Context, cfg *config, opts driver.Options, t driver.Target, emit func(report.Result)) (err error) {
	if t.Members != 1 {
		load.Note("%s: skipping watch-idle, which measures the watches one node holds: it runs on one-member targets only", t)
		return nil
	}
	load.Note("%s: starting %d member(s) for %d idle watchers", t, t.Members, cfg.idle)
	s, err := driver.Start(t, opts)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	spec := cfg.watchSpec(cfg.idle, false)
	spec.Idle = true
	r, err := load.WatchRound(ctx, s, spec, 1, nil)
	if err != nil {
		return err
	}
	emit(r)
	return nil
}

// watchRounds measures the baseline (the full-speed write rate with no watcher open, which
// every round's ratio is of) and then each round, each on a fresh store when cfg.fresh, so no
// round inherits another's history or heap.
func watchRounds(ctx context.Context, cfg *config, opts driver.Options, t driver.Target, rounds []load.WatchSpec, emit func(report.Result)) error {
	var s driver.Store
	defer func() {
		if s != nil {
			s.Close()
		}
	}()
	baseline := cfg.watchSpec(0, false)
	baseline.Steady = 0 // the rounds' steady phases have their own put latencies
	var base *report.Result
	for round, spec := range append([]load.WatchSpec{baseline}, rounds...) {
		if ctx.Err() != nil {
			return nil
		}
		if s == nil || cfg.fresh {
			if s != nil {
				s.Close()
				s = nil
			}
			load.Note("%s: starting %d member(s) for %d watchers", t, t.Members, spec.Watchers)
			var err error
			if s, err = driver.Start(t, opts); err != nil {
				return err
			}
		}
		r, err := load.WatchRound(ctx, s, spec, round, base)
		if err != nil {
			return err
		}
		if spec.Watchers == 0 {
			base = &r
		}
		emit(r)
	}
	return nil
}

func filter(asked, known []string) []string {
	var out []string
	for _, s := range known {
		if contains(asked, s) {
			out = append(out, s)
		}
	}
	return out
}

func largestUpTo(cs []int, limit int) int {
	best := cs[0]
	for _, c := range cs {
		if c <= limit && (c > best || best > limit) {
			best = c
		}
	}
	return best
}

// buildKstore builds the server from the repository the harness sits in (the parent of the
// bench module), so that a run always measures the source beside it.
func buildKstore(dir string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kstore")
	load.Note("building kstore from %s", root)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kstore")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building kstore in %s: %w (or give --kstore)", root, err)
	}
	return bin, nil
}

// repoRoot finds the kstore repository from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/kstore/kstore\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no kstore repository above %s: run the harness from the repository, or give --kstore", dir)
		}
	}
}

// machine says what the run ran on: cores, CPU model, memory, Go version.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					mem = fmt.Sprintf(", %d GiB", (kb+1<<19)>>20)
				}
			}
		}
	}
	return fmt.Sprintf("%d cores, %s%s, %s, %s", runtime.NumCPU(), model, mem, runtime.GOOS, runtime.Version())
}
