package report

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plotFile is one rendered plot and the file name it is written under.
type plotFile struct {
	name string
	data []byte
}

// plotSpec builds one plot; a nil plot means the results hold nothing for it.
type plotSpec struct {
	name  string
	build func([]Result) (*plot.Plot, error)
}

func plotSpecs() []plotSpec {
	return []plotSpec{
		{"put-latency.svg", putLatencyPlot},
		{"put-throughput.svg", putThroughputPlot},
		{"watch-lag.svg", watchLagPlot},
		{"watch-rate.svg", watchRatePlot},
	}
}

// renderPlots renders every plot the results have data for, skipping the rest.
func renderPlots(results []Result) ([]plotFile, error) {
	var out []plotFile
	for _, s := range plotSpecs() {
		p, err := s.build(results)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if p == nil {
			continue
		}
		b, err := renderSVG(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		out = append(out, plotFile{s.name, b})
	}
	return out, nil
}

// renderSVG turns gonum's panics (it panics on a log axis that reaches zero) into an error,
// so one odd figure costs a plot, not the run's results.
func renderSVG(p *plot.Plot) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("render: %v", r)
		}
	}()
	w, err := p.WriterTo(18*vg.Centimeter, 11*vg.Centimeter, "svg")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// series is one line: one target at one cluster size.
type series struct {
	name string
	rank int // fixes colour and dash, so a series looks the same in every plot
	xys  plotter.XYs
}

func seriesName(r Result) string {
	if r.Members <= 1 {
		return r.Target
	}
	return fmt.Sprintf("%s-%d", r.Target, r.Members)
}

// seriesRank orders kstore, kstore-3, etcd, etcd-3; other targets follow.
func seriesRank(r Result) int {
	t := 2
	switch r.Target {
	case "kstore":
		t = 0
	case "etcd":
		t = 1
	}
	m := 0
	if r.Members > 1 {
		m = 1
	}
	return t*2 + m
}

// collect groups the points point accepts into one series per target-members, points sorted
// by x. Points that are not finite, or not positive on a log axis, are dropped there.
func collect(results []Result, point func(Result) (x, y float64, ok bool)) []series {
	byName := map[string]*series{}
	for _, r := range results {
		if r.NA {
			continue
		}
		x, y, ok := point(r)
		if !ok || !finite(x) || !finite(y) {
			continue
		}
		name := seriesName(r)
		s, found := byName[name]
		if !found {
			s = &series{name: name, rank: seriesRank(r)}
			byName[name] = s
		}
		s.xys = append(s.xys, plotter.XY{X: x, Y: y})
	}
	out := make([]series, 0, len(byName))
	for _, s := range byName {
		slices.SortFunc(s.xys, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b series) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.name, b.name))
	})
	return out
}

// seriesColor picks strong colours that stay apart on white and in greyscale print.
func seriesColor(rank int) color.Color {
	palette := []color.RGBA{
		{24, 90, 169, 255},  // kstore: blue
		{0, 140, 72, 255},   // kstore-3: green
		{238, 46, 47, 255},  // etcd: red
		{244, 125, 35, 255}, // etcd-3: orange
		{102, 44, 145, 255},
		{180, 56, 148, 255},
	}
	return palette[rank%len(palette)]
}

// addSeries draws each series as a line with its points marked; dashes, when non-nil,
// overrides the per-series dash pattern (the lag plot uses it to tell p50 from p99, and
// names only one of the two in the legend so the legend stays short).
func addSeries(p *plot.Plot, ss []series, dashes []vg.Length, legend bool) error {
	for _, s := range ss {
		line, points, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return err
		}
		line.Color = seriesColor(s.rank)
		line.Width = vg.Points(1.5)
		line.Dashes = plotutil.Dashes(s.rank)
		if dashes != nil {
			line.Dashes = dashes
		}
		points.Color = seriesColor(s.rank)
		points.Shape = plotutil.Shape(s.rank)
		points.Radius = vg.Points(2.5)
		p.Add(line, points)
		if legend {
			p.Legend.Add(s.name, line, points)
		}
	}
	return nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	return p
}

// logX sets a log x axis with ticks at exactly the values measured (client or watcher counts),
// since the eye wants to find "64 clients", not a power of ten.
func logX(p *plot.Plot, ss []series) {
	var xs []float64
	for _, s := range ss {
		for _, xy := range s.xys {
			if !slices.Contains(xs, xy.X) {
				xs = append(xs, xy.X)
			}
		}
	}
	slices.Sort(xs)
	ticks := make(plot.ConstantTicks, len(xs))
	for i, x := range xs {
		ticks[i] = plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'f', -1, 64)}
	}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = ticks
	widenLog(&p.X)
}

func logY(p *plot.Plot) {
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.TickerFunc(logTicks)
	widenLog(&p.Y)
}

// legendRoom raises the y axis so the top share of the plot is free for the legend, which
// gonum draws inside the data area; without it the legend hides whichever line runs high.
func legendRoom(p *plot.Plot, share float64) {
	a := &p.Y
	if _, log := a.Scale.(plot.LogScale); log {
		if a.Min > 0 && a.Max > a.Min {
			a.Max *= math.Pow(a.Max/a.Min, share/(1-share))
		}
		return
	}
	a.Max = a.Min + (a.Max-a.Min)/(1-share)
}

// widenLog gives a log axis a range when all its data sit on one value; gonum would widen it
// by ±1, which can reach zero and panic.
func widenLog(a *plot.Axis) {
	if a.Min >= a.Max {
		a.Min, a.Max = a.Min/2, a.Max*2
	}
}

// linearFromZero starts a rate axis at zero so ratios between lines read true.
func linearFromZero(p *plot.Plot) {
	p.Y.Min = 0
	if p.Y.Max <= 0 {
		p.Y.Max = 1
	}
	p.Y.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		ticks := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ticks {
			if ticks[i].Label != "" {
				ticks[i].Label = rate(ticks[i].Value)
			}
		}
		return ticks
	})
}

// logTicks labels 1, 2 and 5 of each decade; gonum's LogTicks labels only powers of ten,
// which leaves a latency axis spanning one decade with a single label.
func logTicks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for d := math.Floor(math.Log10(lo)); math.Pow(10, d) <= hi; d++ {
		base := math.Pow(10, d)
		for i := 1; i < 10; i++ {
			v := base * float64(i)
			t := plot.Tick{Value: v}
			if i == 1 || i == 2 || i == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// nearestClients picks the client count closest to want on a log scale, preferring the larger
// on a tie, among rows that pass ok.
func nearestClients(results []Result, want int, ok func(Result) bool) (int, bool) {
	best, found := 0, false
	dist := func(c int) float64 { return math.Abs(math.Log2(float64(c) / float64(want))) }
	for _, r := range results {
		if !ok(r) || r.Clients <= 0 {
			continue
		}
		if !found || dist(r.Clients) < dist(best) || (dist(r.Clients) == dist(best) && r.Clients > best) {
			best, found = r.Clients, true
		}
	}
	return best, found
}

func hasDist(r Result) bool {
	return r.Scenario == "put" && !r.NA && len(r.Dist) > 0
}

func putLatencyPlot(results []Result) (*plot.Plot, error) {
	clients, ok := nearestClients(results, 64, hasDist)
	if !ok {
		return nil, nil
	}
	// Each row contributes a whole line, so gather rows, not points.
	var ss []series
	rows := map[string]Result{}
	for _, r := range results {
		if hasDist(r) && r.Clients == clients {
			if _, dup := rows[seriesName(r)]; !dup {
				rows[seriesName(r)] = r
			}
		}
	}
	for name, r := range rows {
		s := series{name: name, rank: seriesRank(r)}
		for i, q := range DistQuantiles {
			if i < len(r.Dist) && r.Dist[i] > 0 && finite(r.Dist[i]) {
				s.xys = append(s.xys, plotter.XY{X: 1 / (1 - q), Y: r.Dist[i]})
			}
		}
		if len(s.xys) > 0 {
			ss = append(ss, s)
		}
	}
	if len(ss) == 0 {
		return nil, nil
	}
	slices.SortFunc(ss, func(a, b series) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.name, b.name))
	})
	p := newPlot(fmt.Sprintf("put latency by percentile, %d clients, 1 KiB puts", clients),
		"percentile (log scale of 1/(1−q))", "latency (ms)")
	if err := addSeries(p, ss, nil, true); err != nil {
		return nil, err
	}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.ConstantTicks{
		{Value: 2, Label: "50%"}, {Value: 10, Label: "90%"}, {Value: 100, Label: "99%"},
		{Value: 1000, Label: "99.9%"}, {Value: 10000, Label: "99.99%"},
	}
	widenLog(&p.X)
	logY(p)
	legendRoom(p, 0.25)
	return p, nil
}

func putThroughputPlot(results []Result) (*plot.Plot, error) {
	ss := collect(results, func(r Result) (float64, float64, bool) {
		return float64(r.Clients), r.OpsPerS, r.Scenario == "put" && r.Clients > 0
	})
	if len(ss) == 0 {
		return nil, nil
	}
	p := newPlot("put throughput by clients, 1 KiB puts", "clients (log scale)", "puts/s")
	if err := addSeries(p, ss, nil, true); err != nil {
		return nil, err
	}
	logX(p, ss)
	linearFromZero(p)
	legendRoom(p, 0.25)
	return p, nil
}

func isSteadyWatch(r Result) bool {
	return r.Scenario == "watch" && r.Variant == "steady" && r.Watchers > 0
}

func watchLagPlot(results []Result) (*plot.Plot, error) {
	p99 := collect(results, func(r Result) (float64, float64, bool) {
		return float64(r.Watchers), r.LagP99, isSteadyWatch(r) && r.LagP99 > 0
	})
	p50 := collect(results, func(r Result) (float64, float64, bool) {
		return float64(r.Watchers), r.LagP50, isSteadyWatch(r) && r.LagP50 > 0
	})
	if len(p99) == 0 && len(p50) == 0 {
		return nil, nil
	}
	title := "watch event lag by watchers (solid p99, dashed p50)"
	if w := steadyRate(results); w > 0 {
		title = fmt.Sprintf("watch event lag by watchers at %s writes/s (solid p99, dashed p50)", rate(float64(w)))
	}
	p := newPlot(title, "watchers (log scale)", "lag from scheduled write to event (ms)")
	if err := addSeries(p, p99, []vg.Length{}, true); err != nil {
		return nil, err
	}
	if err := addSeries(p, p50, []vg.Length{vg.Points(5), vg.Points(3)}, len(p99) == 0); err != nil {
		return nil, err
	}
	logX(p, append(p99, p50...))
	logY(p)
	legendRoom(p, 0.25)
	return p, nil
}

// steadyRate is the write rate the steady watch rows share, or 0 when they differ.
func steadyRate(results []Result) int {
	w := 0
	for _, r := range results {
		if !isSteadyWatch(r) || r.Rate == 0 {
			continue
		}
		if w != 0 && r.Rate != w {
			return 0
		}
		w = r.Rate
	}
	return w
}

func watchRatePlot(results []Result) (*plot.Plot, error) {
	ss := collect(results, func(r Result) (float64, float64, bool) {
		return float64(r.Watchers), r.MaxWriteRate, isSteadyWatch(r) && r.MaxWriteRate > 0
	})
	if len(ss) == 0 {
		return nil, nil
	}
	p := newPlot("max write rate with the watchers open", "watchers (log scale)", "writes/s")
	if err := addSeries(p, ss, nil, true); err != nil {
		return nil, err
	}
	// Rates fall as watchers grow, so the top right is where the lines are not.
	p.Legend.Left = false
	logX(p, ss)
	linearFromZero(p)
	legendRoom(p, 0.25)
	return p, nil
}
