package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// dist makes a plausible latency distribution rising from p50 into the tail.
func dist(p50 float64) []float64 {
	out := make([]float64, len(DistQuantiles))
	for i := range out {
		out[i] = p50 * (1 + float64(i)*float64(i)*0.5)
	}
	return out
}

// fabricatedRun holds every kind of row the tables and plots handle, with round numbers so a
// test can name the ratio it expects.
func fabricatedRun() Run {
	var rs []Result
	for _, members := range []int{1, 3} {
		for _, clients := range []int{1, 16, 64, 256} {
			k := float64(clients) * 40 / float64(members)
			e := k / 2
			if members == 1 && clients == 64 {
				k, e = 2000, 1000
			}
			rs = append(rs,
				Result{Target: "kstore", Members: members, Scenario: "put", Clients: clients,
					OpsPerS: k, P50: 0.8 * float64(members), P99: 4.2, OfDiskSyncs: 2.1, OfBadgerBatch: 0.45,
					Dist: dist(0.8)},
				Result{Target: "etcd", Members: members, Scenario: "put", Clients: clients,
					OpsPerS: e, P50: 1.6, P99: 120.4, Dist: dist(1.6)})
		}
	}
	rs = append(rs,
		Result{Target: "kstore", Members: 1, Scenario: "update", Clients: 16, OpsPerS: 1500, P50: 2, P99: 9,
			Errors: 12, ErrorsBy: map[string]int64{"Conflict": 12}},
		Result{Target: "etcd", Members: 1, Scenario: "update", Clients: 16, OpsPerS: 1200, P50: 2.5, P99: 11},
		Result{Target: "kstore", Members: 1, Scenario: "patch", Clients: 16, OpsPerS: 1400, P50: 2, P99: 8},
		Result{Target: "etcd", Members: 1, Scenario: "patch", Clients: 16, NA: true},
		Result{Target: "kstore", Members: 3, Scenario: "get", Clients: 16, OpsPerS: 52000, P50: 0.3, P99: 1.1},
		Result{Target: "kstore", Members: 1, Scenario: "list", Clients: 4, OpsPerS: 12.5, ItemsPerS: 12500, P50: 80, P99: 310},
		Result{Target: "etcd", Members: 1, Scenario: "list", Clients: 4, OpsPerS: 10, ItemsPerS: 10000, P50: 95, P99: 400},
		Result{Target: "kstore", Members: 1, Scenario: "mix", Clients: 32, OpsPerS: 9000, P50: 1, P99: 6,
			PerOp: []OpStat{{Op: "get", OpsPerS: 6000, P50: 0.5, P99: 2}, {Op: "put", OpsPerS: 3000, P50: 2, P99: 9}}},
		Result{Target: "etcd", Members: 1, Scenario: "mix", Clients: 32, OpsPerS: 6000, P50: 1.5, P99: 8,
			PerOp: []OpStat{{Op: "get", OpsPerS: 4000, P50: 0.7, P99: 3}, {Op: "put", OpsPerS: 2000, P50: 3, P99: 12}}},
	)
	for _, members := range []int{1, 3} {
		for _, w := range []int{0, 100, 1000} {
			for _, target := range []string{"kstore", "etcd"} {
				r := Result{Target: target, Members: members, Scenario: "watch", Variant: "steady",
					Watchers: w, MaxWriteRateNoW: 4000}
				if w > 0 {
					r.Rate, r.OpsPerS = 500, 498
					r.LagP50, r.LagP99 = 1.5, 12
					r.Deliveries, r.Expected = int64(w)*30000, int64(w)*30000
					r.ServerRSSPerW = 6 * 1024
					r.MaxWriteRate = 4000 - float64(w)
					r.WriteRatio = r.MaxWriteRate / 4000
				}
				if target == "etcd" {
					r.LagP99, r.MaxWriteRate = 2*r.LagP99, r.MaxWriteRate/4
				}
				rs = append(rs, r)
			}
		}
	}
	rs = append(rs, idleResults()...)
	return Run{
		Started: time.Date(2025, 3, 4, 23, 30, 0, 0, time.FixedZone("x", -2*3600)),
		Command: "go run ./cmd/bench -all",
		Machine: "8 CPUs, AMD EPYC, 32 GiB, go1.26",
		Limits:  Limits{DiskSyncsPerS: 950, DiskSyncP50: 1.05, BadgerBatchedPerS: 44000, BadgerBatch: 64},
		Results: rs,
	}
}

// idleResults are watch-idle rows: both sides open 10,000 watches; at 100,000 etcd opens only
// 61,234 within the timeout.
func idleResults() []Result {
	return []Result{
		{Target: "kstore", Members: 1, Scenario: "watch-idle", Watchers: 10000, Ops: 10000, Seconds: 0.4, OpsPerS: 25000,
			OpenSeconds: 0.4, ServerRSS: 300 << 20, ServerRSSPerW: 3 * 1024},
		{Target: "etcd", Members: 1, Scenario: "watch-idle", Watchers: 10000, Ops: 10000, Seconds: 1, OpsPerS: 10000,
			OpenSeconds: 1, ServerRSS: 500 << 20, ServerRSSPerW: 40 * 1024},
		{Target: "kstore", Members: 1, Scenario: "watch-idle", Watchers: 100000, Ops: 100000, Seconds: 4, OpsPerS: 25000,
			OpenSeconds: 4, ServerRSS: 900 << 20, ServerRSSPerW: 8 * 1024},
		{Target: "etcd", Members: 1, Scenario: "watch-idle", Watchers: 100000, Ops: 61234, Seconds: 60.2, OpenSeconds: 60.2,
			Errors: 38766, ErrorsBy: map[string]int64{"NotOpened": 38766}},
	}
}

func TestIdleTable(t *testing.T) {
	md := Markdown(Run{Results: idleResults()})
	sec := section(t, md, "watch-idle")
	for _, w := range []string{"watches opened/s", "kstore's opened/s ÷ etcd's",
		"| members | watchers | kstore opened/s (s to open all) | etcd opened/s (s to open all) | kstore RSS MiB | etcd RSS MiB | kstore RSS per watcher KiB | etcd RSS per watcher KiB | kstore ÷ etcd opened/s | errors (kstore / etcd) |"} {
		if !strings.Contains(sec, w) {
			t.Errorf("watch-idle section lacks %q:\n%s", w, sec)
		}
	}
	tests := []struct {
		name, prefix string
		want         []string
	}{
		{"both open", "| 1 | 10000 |", []string{"| 25,000 (0.40) | 10,000 (1.00) |", "| 300 | 500 |", "| 3.0 | 40.0 |", "| 2.50 |", "| 0 / 0 |"}},
		{"etcd failed", "| 1 | 100000 |", []string{"| 25,000 (4.00) |", "| failed: 61,234 of 100,000 open after 60 s |",
			"| 900 | — |", "| 8.0 | — |", "| — |", "| 0 / 38,766 NotOpened |"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := row(t, sec, tc.prefix)
			for _, w := range tc.want {
				if !strings.Contains(r, w) {
					t.Errorf("row %q lacks %q", r, w)
				}
			}
		})
	}

	out := Table(idleResults())
	for _, w := range []string{"failed (38,766 not open)", "2.50",
		"watch rows: watch-idle: ops/s is watches opened/s, ratio is of those."} {
		if !strings.Contains(out, w) {
			t.Errorf("Table lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "writes/s achieved") {
		t.Errorf("Table explains fan-out watch rows it does not have:\n%s", out)
	}
	if plots, err := renderPlots(idleResults()); err != nil || len(plots) != 0 {
		t.Errorf("watch-idle rows drew %d plots (%v), want none", len(plots), err)
	}
}

// section returns the Markdown from a scenario's caption to the next blank line after its table.
func section(t *testing.T, md, scenario string) string {
	t.Helper()
	i := strings.Index(md, "**"+scenario+"**:")
	if i < 0 {
		t.Fatalf("no section for %s in:\n%s", scenario, md)
	}
	s := md[i:]
	if j := strings.Index(s, "\n\n**"); j >= 0 {
		s = s[:j]
	}
	return s
}

func row(t *testing.T, sec, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(sec, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no row %q in:\n%s", prefix, sec)
	return ""
}

func TestMarkdown(t *testing.T) {
	md := Markdown(fabricatedRun())
	tests := []struct {
		name, scenario, prefix string
		want                   []string
	}{
		{"ratio of a known pair", "put", "| 1 | 64 |", []string{"| 2,000 |", "| 1,000 |", "| 2.00 |", "2.10 / 0.45"}},
		{"ms past 100 drop decimals", "put", "| 1 | 64 |", []string{"1.60 / 120"}},
		{"share from limits when the row has none", "put", "| 1 | 64 |", []string{"1.05 / 0.02"}},
		{"NA side", "patch", "| 1 | 16 |", []string{"| n/a | n/a | n/a |", "0 / n/a"}},
		{"missing side", "get", "| 3 | 16 |", []string{"| 52,000 |", "| — | — | — |"}},
		{"error reasons", "update", "| 1 | 16 |", []string{"12 Conflict / 0", "| 1.25 |"}},
		{"lists with items", "list", "| 1 | 4 |", []string{"12.5 (12,500)", "| 1.25 |"}},
		{"mix total", "mix", "| 1 | 32 | all |", []string{"| 9,000 |", "| 1.50 |"}},
		{"mix per op", "mix", "| 1 | 32 | get |", []string{"| 6,000 |", "0.50 / 2.00", "| 1.50 |"}},
		{"watch steady", "watch", "| 1 | 100 |", []string{"500 / 498", "1.50 / 12.00", "1.50 / 24.00",
			"3,000,000 / 3,000,000", "| 6.0 |", "3,900 (0.97)", "975 (0.97)", "| 4.00 |"}},
		{"watch baseline", "watch", "| 3 | 0 |", []string{"| — / — |", "| — |", "4,000 (1.00)", "| 1.00 |"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := row(t, section(t, md, tc.scenario), tc.prefix)
			for _, w := range tc.want {
				if !strings.Contains(r, w) {
					t.Errorf("row %q lacks %q", r, w)
				}
			}
		})
	}

	for _, w := range []string{"2025-03-05", "8 CPUs, AMD EPYC", "`go run ./cmd/bench -all`",
		"950 synced 4 KiB writes/s", "p50 1.05 ms", "44,000 values/s (1 KiB each) written to Badger in synced transactions of 64 values",
		"kstore's max write rate ÷ etcd's"} {
		if !strings.Contains(md, w) {
			t.Errorf("Markdown lacks %q", w)
		}
	}
	var order []int
	for _, s := range []string{"put", "update", "patch", "get", "list", "watch", "watch-idle", "mix"} {
		order = append(order, strings.Index(md, "**"+s+"**:"))
	}
	if !slices.IsSorted(order) {
		t.Errorf("sections out of order: %v", order)
	}
	put := section(t, md, "put")
	if strings.Index(put, "| 1 | 256 |") > strings.Index(put, "| 3 | 1 |") {
		t.Errorf("put rows not ordered by members then clients:\n%s", put)
	}
}

func TestTable(t *testing.T) {
	out := Table(fabricatedRun().Results)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	tests := []struct{ name, prefix, want string }{
		{"header", "scenario", "kstore ops/s"},
		{"ratio", "put ", "2.00"},
		{"NA", "patch", "n/a"},
		{"missing", "get", "—"},
		{"mix op", "  mix:put", "1.50"},
		{"watch ratio of max rates", "watch/steady", "4.00"},
		{"watch-idle ratio of opened/s", "watch-idle", "2.50"},
		{"watch footnote names both", "watch rows:", "writes/s achieved, p50/p99 is event lag, ratio is of max write rates with the watchers open; watch-idle: ops/s is watches opened/s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, l := range lines {
				if strings.HasPrefix(l, tc.prefix) && strings.Contains(l, tc.want) {
					return
				}
			}
			t.Errorf("no line starting %q with %q in:\n%s", tc.prefix, tc.want, out)
		})
	}
	width := len([]rune(lines[0]))
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "watch rows:") {
			continue
		}
		if n := len([]rune(l)); n != width {
			t.Errorf("line width %d, header %d: %q", n, width, l)
		}
	}
}

func TestWriteAll(t *testing.T) {
	full := fabricatedRun()
	putsOnly := fabricatedRun()
	putsOnly.Results = slices.DeleteFunc(putsOnly.Results, func(r Result) bool { return r.Scenario != "put" })
	allFiles := []string{"results.json", "results.md", "put-latency.svg", "put-throughput.svg",
		"watch-lag.svg", "watch-rate.svg"}
	tests := []struct {
		name   string
		run    Run
		want   []string
		absent []string
	}{
		{"full run", full, allFiles, nil},
		{"no watch data skips watch plots", putsOnly, allFiles[:4], allFiles[4:]},
		{"empty run", Run{}, allFiles[:2], allFiles[2:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "a", "b")
			paths, err := WriteAll(dir, tc.run)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range paths {
				names = append(names, filepath.Base(p))
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("wrote %v, want %v", names, tc.want)
			}
			for _, name := range tc.want {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if len(b) == 0 {
					t.Errorf("%s is empty", name)
				}
				if strings.HasSuffix(name, ".svg") && !strings.HasPrefix(string(b), "<?xml") && !strings.HasPrefix(string(b), "<svg") {
					t.Errorf("%s does not start as SVG: %.40q", name, b)
				}
			}
			for _, name := range tc.absent {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					t.Errorf("%s written without data for it", name)
				}
			}
			var back Run
			b, _ := os.ReadFile(filepath.Join(dir, "results.json"))
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if len(back.Results) != len(tc.run.Results) {
				t.Errorf("results.json holds %d results, want %d", len(back.Results), len(tc.run.Results))
			}
			leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp-*"))
			if len(leftovers) > 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
		})
	}
}

func TestReplaceBetweenMarkers(t *testing.T) {
	const begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
	tests := []struct {
		name, file, content, want string
		wantErr                   bool
	}{
		{"replaces", "# kstore\n\n" + begin + "\nold\nolder\n" + end + "\ntail\n", "new table",
			"# kstore\n\n" + begin + "\nnew table\n" + end + "\ntail\n", false},
		{"fills an empty block", begin + "\n" + end + "\n", "x\n", begin + "\nx\n" + end + "\n", false},
		{"empties", begin + "\nold\n" + end, "", begin + "\n" + end, false},
		{"indented markers", "  " + begin + "\nold\n" + end + "  \n", "y",
			"  " + begin + "\ny\n" + end + "  \n", false},
		{"missing begin", "text\n" + end + "\n", "x", "", true},
		{"missing end", begin + "\ntext\n", "x", "", true},
		{"end before begin", end + "\n" + begin + "\n", "x", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "README.md")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			err := ReplaceBetweenMarkers(path, begin, end, tc.content)
			got, _ := os.ReadFile(path)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				if string(got) != tc.file {
					t.Errorf("file changed on error: %q", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want the file's own 0600", info.Mode().Perm())
			}
		})
	}
	if err := ReplaceBetweenMarkers(filepath.Join(t.TempDir(), "none.md"), begin, end, "x"); err == nil {
		t.Error("no error for a missing file")
	}
}
