package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kstore/kstore/bench/internal/driver"
	"github.com/kstore/kstore/bench/internal/load"
	"github.com/kstore/kstore/bench/internal/report"
)

// The test binary is etcd's server main too, as the harness's own executable is.
func TestMain(m *testing.M) {
	driver.RunEtcdServerIfAsked()
	os.Exit(m.Run())
}

// TestEveryScenario runs every scenario for about a second against a one-member kstore and a
// one-member etcd, through the same code as `make bench`, so the harness cannot rot: every
// scenario yields a row for both targets (n/a only where etcd has no equivalent), every JSON
// line has the fields other tools read, the watchers see every write, and the output folder
// gets its tables and plots.
func TestEveryScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kstore and etcd processes")
	}
	load.Quiet = !testing.Verbose()
	out := t.TempDir()
	cfg, err := parseFlags([]string{"--target", "kstore,etcd", "--scenario", "all", "--clients", "4", "--watchers", "20", "--idle-watchers", "200",
		"--keys", "500", "--duration", "500ms", "--watch-rate", "200", "--watch-seconds", "1s", "--max-seconds", "500ms",
		"--drain", "10s", "--mix-seconds", "700ms", "--limits", "200ms", "--fresh=false", "--out", out})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var lines bytes.Buffer
	run, err := execute(ctx, cfg, &lines)
	if err != nil {
		t.Fatal(err)
	}
	if err := finish(cfg, run); err != nil {
		t.Fatal(err)
	}
	if run.Limits.DiskSyncsPerS <= 0 || run.Limits.BadgerBatchedPerS <= 0 {
		t.Errorf("machine ceilings not measured: %+v", run.Limits)
	}

	// Every JSON line carries the fields the issue promises to other tools.
	var parsed []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(lines.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		for _, k := range []string{"target", "members", "scenario", "ops_per_s", "p50_ms", "p99_ms", "p999_ms", "errors"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %q has no %q", line, k)
			}
		}
		if _, ok := m["dist_ms"]; ok {
			t.Errorf("line %q carries the distribution, which belongs in results.json only", line)
		}
		parsed = append(parsed, m)
	}
	if len(parsed) != len(run.Results) {
		t.Errorf("%d JSON lines for %d results", len(parsed), len(run.Results))
	}

	na := map[string]bool{"etcd/patch": true, "etcd/list-selector": true}
	for _, target := range []string{"kstore", "etcd"} {
		for _, sc := range load.AllScenarios {
			rows := find(run.Results, target, sc)
			if len(rows) == 0 {
				t.Errorf("%s %s: no result", target, sc)
				continue
			}
			for _, r := range rows {
				check(t, r, na[target+"/"+sc])
			}
		}
	}

	for _, f := range []string{"results.json", "results.md", "put-latency.svg", "put-throughput.svg", "watch-lag.svg", "watch-rate.svg"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}

// TestSuites checks what each suite asks of the scenarios that take their own sizes, and that
// every scenario is one "all" runs.
func TestSuites(t *testing.T) {
	tests := []struct {
		give      []string
		wantIdle  int
		wantFresh bool
		wantAll   bool // every scenario
	}{
		{give: []string{"--suite", "standard"}, wantIdle: 100000, wantFresh: true, wantAll: true},
		{give: []string{"--suite", "quick"}, wantIdle: 10000, wantFresh: false, wantAll: true},
		{give: []string{"--scenario", "all"}, wantIdle: 100000, wantFresh: true, wantAll: true},
		{give: []string{"--scenario", "watch-idle", "--idle-watchers", "5000"}, wantIdle: 5000, wantFresh: true},
	}
	for _, tt := range tests {
		cfg, err := parseFlags(tt.give)
		if err != nil {
			t.Errorf("%v: %v", tt.give, err)
			continue
		}
		if cfg.idle != tt.wantIdle || cfg.fresh != tt.wantFresh {
			t.Errorf("%v: %d idle watchers, fresh %v; want %d, %v", tt.give, cfg.idle, cfg.fresh, tt.wantIdle, tt.wantFresh)
		}
		if tt.wantAll {
			if !slices.Equal(cfg.scenarios, load.AllScenarios) || !slices.Contains(cfg.scenarios, "watch-idle") {
				t.Errorf("%v: scenarios %v, want every one of %v", tt.give, cfg.scenarios, load.AllScenarios)
			}
		}
	}
	if _, err := parseFlags([]string{"--idle-watchers", "0"}); err == nil {
		t.Error("--idle-watchers 0 accepted")
	}
}

func find(rs []report.Result, target, scenario string) []report.Result {
	var out []report.Result
	for _, r := range rs {
		if r.Target == target && r.Scenario == scenario {
			out = append(out, r)
		}
	}
	return out
}

// check says what is wrong with one row.
func check(t *testing.T, r report.Result, wantNA bool) {
	t.Helper()
	name := r.Target + " " + r.Scenario
	if r.NA != wantNA {
		t.Errorf("%s: n/a is %v, want %v", name, r.NA, wantNA)
		return
	}
	if r.NA {
		return
	}
	if (r.Scenario == "watch" || r.Scenario == "watch-selective") && r.Watchers == 0 {
		// The baseline: the full-speed write rate with no watcher open, and nothing else.
		if r.MaxWriteRate <= 0 || r.Errors > 0 {
			t.Errorf("%s baseline: max write rate %.0f/s, %d errors", name, r.MaxWriteRate, r.Errors)
		}
		return
	}
	if r.Scenario == "watch-idle" {
		// Watches opened, no write but their first: no latency, no lag, no write rate.
		if r.Members != 1 || r.Watchers != 200 || r.Ops != int64(r.Watchers) || r.OpsPerS <= 0 || r.OpenSeconds <= 0 {
			t.Errorf("%s: %d members, %d of %d watches opened at %.0f/s in %.2fs", name, r.Members, r.Ops, r.Watchers, r.OpsPerS, r.OpenSeconds)
		}
		if r.ServerRSS <= 0 || r.Errors > 0 || r.Rate != 0 || r.MaxWriteRate != 0 {
			t.Errorf("%s: server RSS %d bytes, %d errors %v, steady rate %d, max write rate %.0f", name, r.ServerRSS, r.Errors, r.ErrorsBy, r.Rate, r.MaxWriteRate)
		}
		return
	}
	if r.Ops == 0 || r.OpsPerS <= 0 || r.P50 <= 0 || r.P99 < r.P50 {
		t.Errorf("%s: nothing measured: %d ops, %.0f/s, p50 %.2f ms, p99 %.2f ms", name, r.Ops, r.OpsPerS, r.P50, r.P99)
	}
	// An update may lose a race with another client's (a Conflict, which the scenario counts);
	// nothing else may fail on an idle machine's loopback.
	if bad := r.Errors - r.ErrorsBy["Conflict"]; bad > 0 {
		t.Errorf("%s: %d errors: %v", name, r.Errors, r.ErrorsBy)
	}
	if r.ServerCPU <= 0 || r.LoaderCPU <= 0 {
		t.Errorf("%s: CPU not measured: server %.2f s, loader %.2f s", name, r.ServerCPU, r.LoaderCPU)
	}
	switch r.Scenario {
	case "put":
		if r.OfDiskSyncs <= 0 || r.OfBadgerBatch <= 0 {
			t.Errorf("%s: no share of the machine's ceilings: %.2f, %.2f", name, r.OfDiskSyncs, r.OfBadgerBatch)
		}
	case "list", "list-selector":
		if r.ItemsPerS <= 0 {
			t.Errorf("%s: no items read", name)
		}
	case "watch", "watch-selective":
		if r.Watchers > 0 && r.Deliveries < r.Expected {
			t.Errorf("%s at %d watchers: %d deliveries of %d", name, r.Watchers, r.Deliveries, r.Expected)
		}
		if r.MaxWriteRate <= 0 {
			t.Errorf("%s at %d watchers: no full-speed write rate", name, r.Watchers)
		}
	case "mix":
		if len(r.PerOp) != 4 {
			t.Errorf("%s: per-op figures %+v", name, r.PerOp)
		}
		for _, op := range r.PerOp {
			if op.Ops == 0 {
				t.Errorf("%s: no %s measured", name, op.Op)
			}
		}
	}
}
