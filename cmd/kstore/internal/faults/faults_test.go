package faults

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kstore/kstore/cmd/kstore/internal/checker"
	"github.com/kstore/kstore/cmd/kstore/internal/nethub"
)

// roleEnv tells a re-executed test binary what to be instead of a test: "agent" or "nethub".
const roleEnv = "KSTORE_FAULTS_ROLE"

var (
	soak = flag.Duration("soak", 0, "run every fault family for this long in all (rounds of about a minute each) and print a summary table; 0: one short round each, as make test does")
	out  = flag.String("out", "", "where porcupine's visualizations go (default: the folder out/ beside this package's tests)")
)

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "agent":
		os.Exit(runAgent())
	case "nethub":
		nethub.Main()
		os.Exit(0)
	}
	flag.Parse()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// family is one kind of fault: what it does to a running cluster until the round's end.
type family struct {
	name string
	slow bool // links through nethub
	// inject runs the faults until `until`, on the round's random source.
	inject func(c *testCluster, rng *rand.Rand, until time.Time)
}

// wait sleeps d, the length of a fault or of the quiet between faults: the schedule itself,
// not a wait for something to happen.
func wait(d time.Duration) { time.Sleep(d) }

func jitter(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// leaderOr is the leader's index, or a random member's when none is known.
func leaderOr(c *testCluster, rng *rand.Rand) int {
	if l := c.leader(); l != 0 {
		return l - 1
	}
	return rng.IntN(len(c.members))
}

// isolate cuts member i from every other member; the client still reaches all of them.
func isolate(c *testCluster, i int) {
	for j := range c.members {
		if j != i {
			c.net.cut(i, j)
		}
	}
	c.faults++
}

var families = []family{
	{name: "partition-leader", inject: func(c *testCluster, rng *rand.Rand, until time.Time) {
		for time.Now().Before(until) {
			isolate(c, leaderOr(c, rng))
			wait(jitter(rng, 3*time.Second, 5*time.Second))
			c.net.heal()
			wait(jitter(rng, time.Second, 2*time.Second))
		}
	}},
	{name: "partition-follower", inject: func(c *testCluster, rng *rand.Rand, until time.Time) {
		for time.Now().Before(until) {
			l := leaderOr(c, rng)
			isolate(c, (l+1+rng.IntN(len(c.members)-1))%len(c.members))
			wait(jitter(rng, 2*time.Second, 4*time.Second))
			c.net.heal()
			wait(jitter(rng, time.Second, 2*time.Second))
		}
	}},
	{name: "split-moves", inject: func(c *testCluster, rng *rand.Rand, until time.Time) {
		// A two-one split whose lone side moves from member to member without a heal between.
		for i := rng.IntN(len(c.members)); time.Now().Before(until); i = (i + 1) % len(c.members) {
			c.net.heal()
			isolate(c, i)
			wait(jitter(rng, 2*time.Second, 3*time.Second))
		}
		c.net.heal()
	}},
	{name: "flapping-link", inject: func(c *testCluster, rng *rand.Rand, until time.Time) {
		for time.Now().Before(until) {
			i := leaderOr(c, rng)
			for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
				c.net.link(i, false)
				c.faults++
				wait(jitter(rng, 100*time.Millisecond, 600*time.Millisecond))
				c.net.link(i, true)
				wait(jitter(rng, 100*time.Millisecond, 600*time.Millisecond))
			}
			wait(jitter(rng, time.Second, 2*time.Second))
		}
	}},
	{name: "slow-links", slow: true, inject: func(c *testCluster, rng *rand.Rand, until time.Time) {
		c.net.slow(200*time.Millisecond, 0.1)
		c.faults++
		wait(time.Until(until))
		c.net.slow(0, 0)
	}},
	{name: "kill", inject: func(c *testCluster, rng *rand.Rand, until time.Time) {
		for time.Now().Before(until) {
			i := rng.IntN(len(c.members))
			c.kill(i)
			wait(jitter(rng, 500*time.Millisecond, 3*time.Second))
			c.start(i)
			wait(jitter(rng, time.Second, 3*time.Second))
		}
	}},
	{name: "pause-leader", inject: func(c *testCluster, rng *rand.Rand, until time.Time) {
		// Long enough for the others to elect a new leader: the old one wakes up believing it
		// still leads, and must not serve a read or take a write on that belief.
		for time.Now().Before(until) {
			i := leaderOr(c, rng)
			c.pause(i)
			wait(jitter(rng, 3*time.Second, 5*time.Second))
			c.resume(i)
			wait(jitter(rng, time.Second, 3*time.Second))
		}
	}},
	{name: "restart-all", inject: func(c *testCluster, rng *rand.Rand, until time.Time) {
		for time.Now().Before(until) {
			for i := range c.members {
				c.kill(i)
			}
			for i := range c.members {
				c.start(i)
			}
			wait(jitter(rng, 3*time.Second, 6*time.Second))
		}
	}},
}

// tally is what the rounds of one family did, for the summary table.
type tally struct {
	rounds, ops, unknown, faults, violations int
	watchEvents                              int
	seconds                                  float64
}

func (a *tally) add(b tally) {
	a.rounds += b.rounds
	a.ops += b.ops
	a.unknown += b.unknown
	a.faults += b.faults
	a.violations += b.violations
	a.watchEvents += b.watchEvents
	a.seconds += b.seconds
}

// round runs one family for d against a fresh three-member cluster and checks what the
// clients saw. It returns the round's counts and every violation it found.
func round(t *testing.T, f family, d time.Duration, seed uint64, failpoints string) (tally, []string) {
	t.Helper()
	c := startTestCluster(t, 3, f.slow, failpoints)
	timeout := 5 * time.Second
	if f.slow {
		timeout = 15 * time.Second
	}
	c.startAgent(agentConfig{Clients: 6, Readers: 3, Keys: 6, Interval: 20 * time.Millisecond, Timeout: timeout, Watches: 2,
		Out: filepath.Join(t.TempDir(), "record.json"), Seed: seed})
	began := time.Now()
	rng := rand.New(rand.NewPCG(seed, 0))
	f.inject(c, rng, time.Now().Add(d))
	c.healAll()
	if l := c.agent.ask("finish", 5*time.Minute); l != "done" {
		t.Fatalf("the agent did not finish: %q\n%s", l, c.agent.stderr)
	}
	return check(t, f.name, c, began)
}

// check reads the agent's record and holds it to the checker's properties.
func check(t *testing.T, name string, c *testCluster, began time.Time) (tally, []string) {
	t.Helper()
	rec := &record{}
	b, err := os.ReadFile(c.agent.cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, rec); err != nil {
		t.Fatal(err)
	}
	var violations []string
	violations = append(violations, rec.Problems...)
	hashes := map[string][]string{}
	for ep, h := range rec.Hashes {
		hashes[h] = append(hashes[h], ep)
	}
	if len(hashes) != 1 || len(rec.Hashes) != len(c.members) {
		violations = append(violations, fmt.Sprintf("the members' catalogs differ at revision %d: %v", rec.Revision, hashes))
	}
	for _, err := range checker.Changes(rec.Ops, rec.Reference) {
		violations = append(violations, "changes: "+err.Error())
	}
	for _, err := range checker.Watches(rec.Watches, rec.Reference) {
		violations = append(violations, "watch: "+err.Error())
	}
	html := filepath.Join(outDir(t), fmt.Sprintf("%s-%s.html", strings.ReplaceAll(t.Name(), "/", "_"), name))
	// The writes with an unknown outcome are settled from the reference log first (Changes and
	// Watches hold the log itself to what clients saw), as etcd's robustness tests patch theirs.
	if err := checker.Linearizable(checker.Resolve(rec.Ops, rec.Reference), 2*time.Minute, html); err != nil {
		violations = append(violations, "linearizability: "+err.Error())
	}
	outcomes := map[string]int{}
	for _, op := range rec.Ops {
		k := string(op.Kind) + ":" + string(op.Outcome)
		if op.Reason != "" {
			k += ":" + op.Reason
		}
		outcomes[k]++
	}
	t.Logf("%s: outcomes %v", name, outcomes)
	tl := tally{rounds: 1, ops: len(rec.Ops), faults: c.faults, violations: len(violations), seconds: time.Since(began).Seconds()}
	for _, op := range rec.Ops {
		if op.Outcome == checker.Unknown {
			tl.unknown++
		}
	}
	for _, w := range rec.Watches {
		tl.watchEvents += len(w.Events)
	}
	return tl, violations
}

func outDir(t *testing.T) string {
	d := *out
	if d == "" {
		d, _ = filepath.Abs("out")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFaults runs every fault family against three members and fails on any violation: a
// history porcupine cannot linearize, a watch that breaks one of etcd's six watch properties,
// a change log that disagrees with what clients were told, members whose catalogs differ.
func TestFaults(t *testing.T) {
	if why := cannotRun(); why != "" {
		t.Skip(why)
	}
	if testing.Short() {
		t.Skip("minutes of real processes under faults")
	}
	if raceEnabled {
		t.Skip("make test runs the fault tests without the race detector, beside the race pass: a race-built agent turns every fault into a timeout")
	}
	per, rounds := 15*time.Second, 1
	if *soak > 0 {
		// Two families run at a time, so the rounds fill about the time asked for.
		per = time.Minute
		rounds = max(1, int(2**soak/time.Duration(len(families))/per))
	}
	var mu sync.Mutex
	totals := map[string]tally{}
	for fi, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel() // mostly waiting on the schedule: two families at a time on two cores
			for r := range rounds {
				tl, violations := round(t, f, per, uint64(fi*1000+r), "")
				for _, v := range violations {
					t.Error(v)
				}
				mu.Lock()
				sum := totals[f.name]
				sum.add(tl)
				totals[f.name] = sum
				mu.Unlock()
				t.Logf("round %d: %d operations (%d unknown), %d faults, %d watch events, %d violations", r+1, tl.ops, tl.unknown, tl.faults, tl.watchEvents, tl.violations)
			}
		})
	}
	t.Cleanup(func() { printSummary(t, totals) })
}

func printSummary(t *testing.T, totals map[string]tally) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n| family | rounds | seconds | operations | unknown outcome | faults injected | watch events | violations |\n|---|---|---|---|---|---|---|---|\n")
	var all tally
	for _, f := range families {
		s, ok := totals[f.name]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %d | %d | %d | %d | %d |\n", f.name, s.rounds, s.seconds, s.ops, s.unknown, s.faults, s.watchEvents, s.violations)
		all.add(s)
	}
	fmt.Fprintf(&b, "| all | %d | %.0f | %d | %d | %d | %d | %d |\n", all.rounds, all.seconds, all.ops, all.unknown, all.faults, all.watchEvents, all.violations)
	fmt.Print(b.String())
}

// TestCheckerCatchesStaleReads runs the leader partition against a build that serves
// linearizable reads from each member's own state (the stale-reads failpoint): the isolated old
// leader answers reads from a state the majority has moved past, and the check must say so.
func TestCheckerCatchesStaleReads(t *testing.T) {
	if why := cannotRun(); why != "" {
		t.Skip(why)
	}
	if testing.Short() {
		t.Skip("real processes under faults")
	}
	if raceEnabled {
		t.Skip("make test runs the fault tests without the race detector")
	}
	t.Parallel()
	_, violations := round(t, families[0], 12*time.Second, 7, "stale-reads")
	for _, v := range violations {
		if strings.HasPrefix(v, "linearizability: ") {
			t.Logf("caught, as it must be: %s", v)
			return
		}
	}
	t.Fatalf("the checker found no linearizability violation in a build that serves stale reads; it found: %v", violations)
}
