package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// scenarioOrder is the order tables appear in, so a README reads writes, then reads, then
// watches, then the mix, whatever order the run measured them in.
func scenarioOrder() []string {
	return []string{"put", "update", "patch", "get", "get-serializable", "list", "list-selector",
		"watch", "watch-selective", "watch-idle", "mix"}
}

// scenarioRank places unknown scenarios after the known ones; callers break ties by name.
func scenarioRank(s string) int {
	if i := slices.Index(scenarioOrder(), s); i >= 0 {
		return i
	}
	return len(scenarioOrder())
}

func isWatch(scenario string) bool { return strings.HasPrefix(scenario, "watch") }
func isList(scenario string) bool  { return strings.HasPrefix(scenario, "list") }

// key is what a kstore row and an etcd row must share to be compared.
type key struct {
	Members  int
	Scenario string
	Variant  string
	Clients  int
	Watchers int
}

// pair is one comparison; either side may be missing when a run measured only one target.
type pair struct {
	key
	K, E *Result
}

// pairs matches kstore and etcd rows and orders them as the tables show them. Rows of any
// other target are ignored; a repeated key keeps its first row, the one measured first.
func pairs(results []Result) []pair {
	byKey := map[key]*pair{}
	var order []key
	for i := range results {
		r := &results[i]
		k := key{r.Members, r.Scenario, r.Variant, r.Clients, r.Watchers}
		p, ok := byKey[k]
		if !ok {
			p = &pair{key: k}
		}
		switch r.Target {
		case "kstore":
			if p.K == nil {
				p.K = r
			}
		case "etcd":
			if p.E == nil {
				p.E = r
			}
		default:
			continue
		}
		if !ok {
			byKey[k] = p
			order = append(order, k)
		}
	}
	out := make([]pair, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	slices.SortStableFunc(out, func(a, b pair) int {
		return cmp.Or(
			cmp.Compare(scenarioRank(a.Scenario), scenarioRank(b.Scenario)),
			cmp.Compare(a.Scenario, b.Scenario),
			cmp.Compare(a.Members, b.Members),
			cmp.Compare(a.Clients, b.Clients),
			cmp.Compare(a.Watchers, b.Watchers),
			cmp.Compare(a.Variant, b.Variant),
		)
	})
	return out
}

// groups splits sorted pairs into one slice per scenario.
func groups(ps []pair) [][]pair {
	var out [][]pair
	for i := 0; i < len(ps); {
		j := i + 1
		for j < len(ps) && ps[j].Scenario == ps[i].Scenario {
			j++
		}
		out = append(out, ps[i:j])
		i = j
	}
	return out
}

// Markdown renders a run as a section a README can hold between its markers: when, where and
// how it ran, the machine's own ceilings, and one kstore-vs-etcd table per scenario.
func Markdown(run Run) string {
	parts := []string{runLine(run), limitsLine(run.Limits)}
	for _, g := range groups(pairs(run.Results)) {
		parts = append(parts, scenarioSection(g, run.Limits))
	}
	return strings.Join(parts, "\n\n") + "\n"
}

func runLine(run Run) string {
	date := "an unrecorded date"
	if !run.Started.IsZero() {
		date = run.Started.UTC().Format(time.DateOnly)
	}
	machine := cmp.Or(strings.TrimSpace(run.Machine), "an undescribed machine")
	command := "an unrecorded command"
	if run.Command != "" {
		command = codeSpan(run.Command)
	}
	return fmt.Sprintf("Measured on %s (UTC) on %s, with %s.", date, machine, command)
}

// codeSpan fences s with more backticks than it holds, so a command with backticks stays code.
func codeSpan(s string) string {
	longest, run := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if longest > 0 {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

func limitsLine(l Limits) string {
	disk := "synced 4 KiB writes/s on the data dir's disk not measured"
	if l.DiskSyncsPerS > 0 {
		disk = fmt.Sprintf("%s synced 4 KiB writes/s one at a time on the data dir's disk (p50 %s ms)",
			rate(l.DiskSyncsPerS), ms(l.DiskSyncP50))
	}
	badger := "batched synced Badger writes/s not measured"
	if l.BadgerBatchedPerS > 0 {
		badger = fmt.Sprintf("%s values/s (1 KiB each) written to Badger in synced transactions of %s values",
			rate(l.BadgerBatchedPerS), thousands(int64(l.BadgerBatch)))
	}
	return fmt.Sprintf("Machine ceilings, measured in the same run: %s; %s.", disk, badger)
}

// caption says in one sentence what a scenario measured; the bold name lets a reader scan.
func caption(scenario string) string {
	var what string
	switch scenario {
	case "put":
		what = "create-or-replace of objects over the key space, each put changing its object, with puts/s as a share of the machine's ceilings (synced 4 KiB writes one at a time; Badger's synced batches)."
	case "update":
		what = "read-modify-write: a read, then a write with the object's resourceVersion as its precondition (etcd: a txn comparing the mod revision); conflicts count as errors."
	case "patch":
		what = "a JSON merge patch of one field of an existing object (etcd has no merge patch, so its side is n/a)."
	case "get":
		what = "linearizable reads of one object by key."
	case "get-serializable":
		what = "serializable reads of one object by key, served by the member asked from its own state."
	case "list":
		what = "every object of the namespace in pages of 500, in lists/s with items/s in brackets."
	case "list-selector":
		what = "the same list filtered by a label selector matching a tenth of the objects, in lists/s with items/s in brackets (etcd has no label selector, so its side is n/a)."
	case "watch":
		what = "watchers of one namespace, each seeing every write, while new objects are written at a fixed rate: each event's lag from its write's scheduled send, deliveries seen of those owed, server memory per watcher, then the most writes/s reached with the watchers open (0 watchers: the baseline); the ratio is kstore's max write rate ÷ etcd's."
	case "watch-selective":
		what = "watchers each of their own namespace, the writes spread over the namespaces (one delivery owed per write), with the same figures as watch; the ratio is kstore's max write rate ÷ etcd's, and the baseline is the watch table's."
	case "watch-idle":
		what = "watches of one namespace opened from the current revision on a one-member target's fresh store, each confirmed by one write they all see, then left idle: watches opened/s (from the first watch call until every watch has seen that write), the server's RSS with them open, and its growth over the RSS before them per watcher; the ratio is kstore's opened/s ÷ etcd's."
	case "mix":
		what = "writers creating and patching objects (etcd: a read and a compare-and-swap), watchers of their namespace and listers at once, split by operation, with the whole mix as the \"all\" row; the watch row is events delivered and their lag."
	default:
		what = "ops/s and latency by concurrent clients."
	}
	return fmt.Sprintf("**%s**: %s", scenario, what)
}

func scenarioSection(g []pair, l Limits) string {
	scenario := g[0].Scenario
	var t mdTable
	switch {
	case scenario == "watch-idle":
		t = idleTable(g)
	case isWatch(scenario):
		t = watchTable(g)
	case scenario == "mix":
		t = mixTable(g)
	default:
		t = opTable(g, l)
	}
	return caption(scenario) + "\n\n" + strings.TrimSuffix(t.String(), "\n")
}

// showVariant is true when a group holds more than one named variant; a lone variant (and a
// baseline with none) says nothing a column would need to.
func showVariant(g []pair) bool {
	seen := map[string]bool{}
	for _, p := range g {
		if p.Variant != "" {
			seen[p.Variant] = true
		}
	}
	return len(seen) > 1
}

type column struct {
	title string
	left  bool // text columns read better left-aligned; numbers right-aligned
}

type mdTable struct {
	cols []column
	rows [][]string
}

func (t mdTable) String() string {
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + strings.ReplaceAll(c, "|", `\|`) + " |")
		}
		b.WriteString("\n")
	}
	titles := make([]string, len(t.cols))
	aligns := make([]string, len(t.cols))
	for i, c := range t.cols {
		titles[i] = c.title
		aligns[i] = "---:"
		if c.left {
			aligns[i] = ":---"
		}
	}
	line(titles)
	b.WriteString("|" + strings.Join(aligns, "|") + "|\n")
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}

func opTable(g []pair, l Limits) mdTable {
	scenario := g[0].Scenario
	unit := "ops/s"
	if isList(scenario) {
		unit = "lists/s (items/s)"
	}
	variant := showVariant(g)
	var cols []column
	if variant {
		cols = append(cols, column{title: "variant", left: true})
	}
	cols = append(cols,
		column{title: "members"}, column{title: "clients"},
		column{title: "kstore " + unit}, column{title: "kstore p50 / p99 ms"},
		column{title: "etcd " + unit}, column{title: "etcd p50 / p99 ms"},
		column{title: "kstore ÷ etcd"}, column{title: "errors (kstore / etcd)", left: true})
	if scenario == "put" {
		cols = append(cols, column{title: "kstore of disk syncs / of Badger"},
			column{title: "etcd of disk syncs / of Badger"})
	}
	t := mdTable{cols: cols}
	for _, p := range g {
		var row []string
		if variant {
			row = append(row, p.Variant)
		}
		row = append(row, fmt.Sprint(p.Members), fmt.Sprint(p.Clients),
			side(p.K, opsCell), side(p.K, latencyCell),
			side(p.E, opsCell), side(p.E, latencyCell),
			ratioCell(p.K, p.E, func(r *Result) float64 { return r.OpsPerS }),
			side(p.K, errorsCell)+" / "+side(p.E, errorsCell))
		if scenario == "put" {
			share := func(r *Result) string { return shareCell(r, l) }
			row = append(row, side(p.K, share), side(p.E, share))
		}
		t.rows = append(t.rows, row)
	}
	return t
}

func watchTable(g []pair) mdTable {
	variant := showVariant(g)
	var cols []column
	if variant {
		cols = append(cols, column{title: "variant", left: true})
	}
	for _, c := range []string{"members", "watchers",
		"kstore writes/s asked / achieved", "etcd writes/s asked / achieved",
		"kstore lag p50 / p99 ms", "etcd lag p50 / p99 ms",
		"kstore deliveries seen / expected", "etcd deliveries seen / expected",
		"kstore RSS per watcher KiB", "etcd RSS per watcher KiB",
		"kstore max writes/s with watchers (÷ without)", "etcd max writes/s with watchers (÷ without)",
		"kstore ÷ etcd max writes/s"} {
		cols = append(cols, column{title: c})
	}
	t := mdTable{cols: cols}
	for _, p := range g {
		var row []string
		if variant {
			row = append(row, p.Variant)
		}
		row = append(row, fmt.Sprint(p.Members), fmt.Sprint(p.Watchers),
			side(p.K, writesCell), side(p.E, writesCell),
			side(p.K, lagCell), side(p.E, lagCell),
			side(p.K, deliveriesCell), side(p.E, deliveriesCell),
			side(p.K, rssCell), side(p.E, rssCell),
			side(p.K, maxRateCell), side(p.E, maxRateCell),
			ratioCell(p.K, p.E, maxRate))
		t.rows = append(t.rows, row)
	}
	return t
}

func idleTable(g []pair) mdTable {
	t := mdTable{}
	for _, c := range []string{"members", "watchers",
		"kstore opened/s (s to open all)", "etcd opened/s (s to open all)",
		"kstore RSS MiB", "etcd RSS MiB",
		"kstore RSS per watcher KiB", "etcd RSS per watcher KiB",
		"kstore ÷ etcd opened/s"} {
		t.cols = append(t.cols, column{title: c})
	}
	t.cols = append(t.cols, column{title: "errors (kstore / etcd)", left: true})
	for _, p := range g {
		t.rows = append(t.rows, []string{fmt.Sprint(p.Members), fmt.Sprint(p.Watchers),
			side(p.K, openedCell), side(p.E, openedCell),
			side(p.K, rssTotalCell), side(p.E, rssTotalCell),
			side(p.K, rssCell), side(p.E, rssCell),
			ratioCell(p.K, p.E, openedRate),
			side(p.K, errorsCell) + " / " + side(p.E, errorsCell)})
	}
	return t
}

func mixTable(g []pair) mdTable {
	t := mdTable{cols: []column{
		{title: "members"}, {title: "clients"}, {title: "op", left: true},
		{title: "kstore ops/s"}, {title: "kstore p50 / p99 ms"},
		{title: "etcd ops/s"}, {title: "etcd p50 / p99 ms"},
		{title: "kstore ÷ etcd"}, {title: "errors (kstore / etcd)", left: true},
	}}
	for _, p := range g {
		for _, o := range mixRows(p) {
			t.rows = append(t.rows, []string{fmt.Sprint(p.Members), fmt.Sprint(p.Clients), o.op,
				side(o.K, opsCell), side(o.K, latencyCell),
				side(o.E, opsCell), side(o.E, latencyCell),
				ratioCell(o.K, o.E, func(r *Result) float64 { return r.OpsPerS }),
				side(o.K, errorsCell) + " / " + side(o.E, errorsCell)})
		}
	}
	return t
}

// opPair is one operation of a mix on both sides, as Results so the op tables' cells serve.
type opPair struct {
	op   string
	K, E *Result
}

// mixRows gives the whole mix first, then each op in the order kstore reported them.
func mixRows(p pair) []opPair {
	rows := []opPair{{op: "all", K: p.K, E: p.E}}
	var ops []string
	for _, r := range []*Result{p.K, p.E} {
		if r == nil {
			continue
		}
		for _, s := range r.PerOp {
			if !slices.Contains(ops, s.Op) {
				ops = append(ops, s.Op)
			}
		}
	}
	for _, op := range ops {
		rows = append(rows, opPair{op: op, K: opResult(p.K, op), E: opResult(p.E, op)})
	}
	return rows
}

func opResult(r *Result, op string) *Result {
	if r == nil {
		return nil
	}
	if r.NA {
		return &Result{NA: true}
	}
	for _, s := range r.PerOp {
		if s.Op == op {
			return &Result{Ops: s.Ops, OpsPerS: s.OpsPerS, P50: s.P50, P99: s.P99, Errors: s.Errors}
		}
	}
	return nil
}

// side renders one target's cell: "—" when the run has no row for it, "n/a" when the target
// has no equivalent of the scenario.
func side(r *Result, cell func(*Result) string) string {
	switch {
	case r == nil:
		return "—"
	case r.NA:
		return "n/a"
	}
	return cell(r)
}

func ratioCell(k, e *Result, v func(*Result) float64) string {
	switch {
	case (k != nil && k.NA) || (e != nil && e.NA):
		return "n/a"
	case k == nil || e == nil:
		return "—"
	}
	kv, ev := v(k), v(e)
	if ev <= 0 || kv < 0 || !finite(kv/ev) {
		return "—"
	}
	return fmt.Sprintf("%.2f", kv/ev)
}

func opsCell(r *Result) string {
	if isList(r.Scenario) || r.ItemsPerS > 0 {
		return fmt.Sprintf("%s (%s)", rate(r.OpsPerS), rate(r.ItemsPerS))
	}
	return rate(r.OpsPerS)
}

func latencyCell(r *Result) string { return ms(r.P50) + " / " + ms(r.P99) }

func errorsCell(r *Result) string {
	if len(r.ErrorsBy) == 0 {
		return fmt.Sprint(thousands(r.Errors))
	}
	reasons := make([]string, 0, len(r.ErrorsBy))
	for reason := range r.ErrorsBy {
		reasons = append(reasons, reason)
	}
	slices.SortFunc(reasons, func(a, b string) int {
		return cmp.Or(cmp.Compare(r.ErrorsBy[b], r.ErrorsBy[a]), cmp.Compare(a, b))
	})
	var parts []string
	var counted int64
	for _, reason := range reasons {
		n := r.ErrorsBy[reason]
		counted += n
		parts = append(parts, thousands(n)+" "+reason)
	}
	// The reasons may cover fewer failures than Errors counts; say so rather than hide them.
	if rest := r.Errors - counted; rest > 0 {
		parts = append(parts, thousands(rest)+" other")
	}
	return strings.Join(parts, ", ")
}

// shareCell falls back to the run's Limits when a row was written without its shares, since
// the ceilings are measured in the same run either way.
func shareCell(r *Result, l Limits) string {
	disk, badger := r.OfDiskSyncs, r.OfBadgerBatch
	if disk == 0 && l.DiskSyncsPerS > 0 {
		disk = r.OpsPerS / l.DiskSyncsPerS
	}
	if badger == 0 && l.BadgerBatchedPerS > 0 {
		badger = r.OpsPerS / l.BadgerBatchedPerS
	}
	return fraction(disk) + " / " + fraction(badger)
}

func writesCell(r *Result) string {
	return orDash(float64(r.Rate), rate) + " / " + orDash(r.OpsPerS, rate)
}

func lagCell(r *Result) string {
	if r.LagP50 == 0 && r.LagP99 == 0 {
		return "—"
	}
	return ms(r.LagP50) + " / " + ms(r.LagP99)
}

func deliveriesCell(r *Result) string {
	if r.Expected == 0 && r.Deliveries == 0 {
		return "—"
	}
	return thousands(r.Deliveries) + " / " + thousands(r.Expected)
}

func rssCell(r *Result) string {
	if r.Watchers == 0 || r.ServerRSSPerW == 0 {
		return "—"
	}
	return rate(float64(r.ServerRSSPerW) / 1024)
}

// notOpened is how many of a watch-idle row's watches had not seen their first write in time.
func notOpened(r *Result) int64 { return r.ErrorsBy["NotOpened"] }

// openedRate is a watch-idle row's watches opened/s, or -1 (no ratio) when not all opened.
func openedRate(r *Result) float64 {
	if notOpened(r) > 0 {
		return -1
	}
	return r.OpsPerS
}

func openedCell(r *Result) string {
	if n := notOpened(r); n > 0 {
		return fmt.Sprintf("failed: %s of %s open after %.0f s", thousands(int64(r.Watchers)-n), thousands(int64(r.Watchers)), r.OpenSeconds)
	}
	if r.OpsPerS <= 0 {
		return "—"
	}
	return fmt.Sprintf("%s (%.2f)", rate(r.OpsPerS), r.OpenSeconds)
}

func rssTotalCell(r *Result) string {
	if r.ServerRSS == 0 {
		return "—"
	}
	return rate(float64(r.ServerRSS) / (1 << 20))
}

// maxRate is the most writes/s reached with the row's watchers open; for the baseline row,
// which opens none, that is the rate without watchers.
func maxRate(r *Result) float64 {
	if r.MaxWriteRate == 0 && r.Watchers == 0 {
		return r.MaxWriteRateNoW
	}
	return r.MaxWriteRate
}

func maxRateCell(r *Result) string {
	m := maxRate(r)
	if m <= 0 {
		return "—"
	}
	ratio := r.WriteRatio
	if ratio == 0 && r.MaxWriteRateNoW > 0 {
		ratio = m / r.MaxWriteRateNoW
	}
	if ratio <= 0 {
		return rate(m)
	}
	return fmt.Sprintf("%s (%.2f)", rate(m), ratio)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func orDash(v float64, f func(float64) string) string {
	if v == 0 {
		return "—"
	}
	return f(v)
}

func fraction(v float64) string {
	if v == 0 || !finite(v) {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}

// rate shows a per-second figure to the precision a reader compares at: whole numbers with
// separators once they are large, a decimal when they are small enough for it to matter.
func rate(v float64) string {
	switch {
	case !finite(v):
		return "—"
	case math.Abs(v) >= 100 || v == 0:
		return thousands(int64(math.Round(v)))
	}
	return fmt.Sprintf("%.1f", v)
}

// ms keeps two decimals where they are a meaningful share of the value and drops them once
// they are noise.
func ms(v float64) string {
	switch {
	case !finite(v):
		return "—"
	case math.Abs(v) < 100:
		return fmt.Sprintf("%.2f", v)
	}
	return thousands(int64(math.Round(v)))
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}

// Table renders the results for a terminal at the end of a run: one fixed-width line per
// kstore/etcd pair, with a mix's ops on their own lines.
func Table(results []Result) string {
	header := []string{"scenario", "members", "clients/watchers",
		"kstore ops/s", "p50/p99 ms", "etcd ops/s", "p50/p99 ms", "ratio"}
	rows := [][]string{header}
	watch, idle := false, false
	for _, p := range pairs(results) {
		rows = append(rows, termRow(p))
		watch = watch || isWatch(p.Scenario) && p.Scenario != "watch-idle"
		idle = idle || p.Scenario == "watch-idle"
		if p.Scenario == "mix" {
			for _, o := range mixRows(p)[1:] {
				rows = append(rows, termOpRow(p, o))
			}
		}
	}
	out := fixedWidth(rows)
	var notes []string
	if watch {
		notes = append(notes, "ops/s is writes/s achieved, p50/p99 is event lag, ratio is of max write rates with the watchers open")
	}
	if idle {
		notes = append(notes, "watch-idle: ops/s is watches opened/s, ratio is of those")
	}
	if len(notes) > 0 {
		out += "watch rows: " + strings.Join(notes, "; ") + ".\n"
	}
	return out
}

func termRow(p pair) []string {
	name := p.Scenario
	if p.Variant != "" {
		name += "/" + p.Variant
	}
	n, ops, lat, value := p.Clients, opsCell, latencyCell, func(r *Result) float64 { return r.OpsPerS }
	switch {
	case p.Scenario == "watch-idle":
		n, ops, lat, value = p.Watchers, openedTermCell, lagCell, openedRate
	case isWatch(p.Scenario):
		n, lat, value = p.Watchers, lagCell, maxRate
	}
	return []string{name, fmt.Sprint(p.Members), fmt.Sprint(n),
		side(p.K, ops), side(p.K, lat), side(p.E, ops), side(p.E, lat),
		ratioCell(p.K, p.E, value)}
}

// openedTermCell is openedCell cut to a terminal column.
func openedTermCell(r *Result) string {
	if n := notOpened(r); n > 0 {
		return fmt.Sprintf("failed (%s not open)", thousands(n))
	}
	return rate(r.OpsPerS)
}

func termOpRow(p pair, o opPair) []string {
	return []string{"  " + p.Scenario + ":" + o.op, fmt.Sprint(p.Members), fmt.Sprint(p.Clients),
		side(o.K, opsCell), side(o.K, latencyCell), side(o.E, opsCell), side(o.E, latencyCell),
		ratioCell(o.K, o.E, func(r *Result) float64 { return r.OpsPerS })}
}

// fixedWidth pads the first column on the right and the numbers on the left, so digits line up.
func fixedWidth(rows [][]string) string {
	widths := map[int]int{}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			switch {
			case i == 0:
				b.WriteString(c + pad)
			default:
				b.WriteString("  " + pad + c)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
