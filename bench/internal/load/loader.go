// Package load runs the benchmark's scenarios against a driver.Store: closed-loop clients
// (optionally held to a rate) whose latencies go to an HDR histogram, the watch fan-out rounds,
// and the controller-like mix. Each scenario returns report.Results; the caller owns the store.
package load

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kstore/kstore/bench/internal/driver"
	"github.com/kstore/kstore/bench/internal/report"
)

// Spec is how one measurement drives its clients.
type Spec struct {
	Clients int
	// Duration bounds the measurement; Total, when non-zero, ends it after that many operations
	// instead (whichever comes first when both are set).
	Duration time.Duration
	Total    int64
	// Rate, when non-zero, holds all clients together to that many operations a second: op i is
	// due at start + i/Rate, and its latency counts from when it was due, so a store that falls
	// behind is charged for the wait (no coordinated omission).
	Rate float64
}

// Op is one operation of client worker, the i-th of the measurement (from 0).
type Op func(ctx context.Context, c driver.Conn, worker int, i int64) error

// Stats collects one measurement's latencies and errors; safe for concurrent use.
type Stats struct {
	mu     sync.Mutex
	hist   *hdrhistogram.Histogram // µs
	errsBy map[string]int64
	errs   atomic.Int64
	ops    atomic.Int64
	shown  atomic.Int64
}

// NewStats makes an empty Stats.
func NewStats() *Stats {
	return &Stats{hist: hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3), errsBy: map[string]int64{}}
}

// Record counts one successful operation of latency d.
func (s *Stats) Record(d time.Duration) {
	s.mu.Lock()
	_ = s.hist.RecordValue(max(int64(d/time.Microsecond), 1))
	s.mu.Unlock()
	s.ops.Add(1)
}

// Fail counts one failed operation by its reason, and shows the first few on stderr.
func (s *Stats) Fail(what, reason string, err error) {
	s.mu.Lock()
	s.errsBy[reason]++
	s.mu.Unlock()
	s.errs.Add(1)
	if s.shown.Add(1) <= 3 {
		fmt.Fprintf(os.Stderr, "\n%s: %s: %v\n", what, reason, err)
	}
}

// Ops and Errors are the counts so far.
func (s *Stats) Ops() int64    { return s.ops.Load() }
func (s *Stats) Errors() int64 { return s.errs.Load() }

// Quantile is the latency at q (0..1) in ms.
func (s *Stats) Quantile(q float64) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(s.hist.ValueAtQuantile(q*100)) / 1000
}

// Fill puts the counts and latencies into r, over elapsed.
func (s *Stats) Fill(r *report.Result, elapsed time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Ops, r.Errors = s.ops.Load(), s.errs.Load()
	r.Seconds = elapsed.Seconds()
	if elapsed > 0 {
		r.OpsPerS = float64(r.Ops) / elapsed.Seconds()
	}
	ms := func(q float64) float64 { return float64(s.hist.ValueAtQuantile(q)) / 1000 }
	r.P50, r.P90, r.P99, r.P999 = ms(50), ms(90), ms(99), ms(99.9)
	r.Max = float64(s.hist.Max()) / 1000
	r.Dist = r.Dist[:0]
	for _, q := range report.DistQuantiles {
		r.Dist = append(r.Dist, ms(q*100))
	}
	if len(s.errsBy) > 0 {
		r.ErrorsBy = map[string]int64{}
		for k, v := range s.errsBy {
			r.ErrorsBy[k] = v
		}
	}
}

// CPU measures the CPU seconds the servers and this process use over a measurement.
type CPU struct {
	pids           []int
	server, loader time.Duration
}

// StartCPU starts measuring.
func StartCPU(pids []int) CPU {
	return CPU{pids: pids, server: driver.ServerCPU(pids), loader: driver.SelfCPU()}
}

// Fill puts the CPU seconds used since StartCPU into r.
func (c CPU) Fill(r *report.Result) {
	r.ServerCPU = (driver.ServerCPU(c.pids) - c.server).Seconds()
	r.LoaderCPU = (driver.SelfCPU() - c.loader).Seconds()
}

// Run drives spec.Clients clients, each calling op in a loop on its connection, until the
// spec's duration or total is reached or ctx ends, and returns what it measured in r (whose
// identifying fields the caller sets). label names the measurement on the progress line.
//
// The duration ends the sending of new operations, not the ones under way: those finish and
// count (the elapsed time runs to the last of them), as a deadline on their context would
// fail them all at once and count a burst of errors no store caused.
func Run(ctx context.Context, s driver.Store, spec Spec, label string, op Op, r *report.Result) {
	stats := NewStats()
	cpu := StartCPU(s.PIDs())
	prog := StartProgress(label, stats)
	var next atomic.Int64
	start := time.Now()
	end := start.Add(spec.Duration)
	more := func(at time.Time) bool { return ctx.Err() == nil && (spec.Duration <= 0 || at.Before(end)) }
	var wg sync.WaitGroup
	for w := range spec.Clients {
		conn := s.Conn(w)
		wg.Go(func() {
			for more(time.Now()) {
				i := next.Add(1) - 1
				if spec.Total > 0 && i >= spec.Total {
					return
				}
				t := time.Now()
				if spec.Rate > 0 {
					t = start.Add(time.Duration(float64(i) / spec.Rate * float64(time.Second)))
					if !more(t) {
						return
					}
					if wait := time.Until(t); wait > 0 {
						select {
						case <-time.After(wait): // the op's place in the schedule
						case <-ctx.Done():
							return
						}
					}
				}
				err := op(ctx, conn, w, i)
				switch {
				case err == nil:
					stats.Record(time.Since(t))
				case ctx.Err() != nil:
					return // interrupted: neither a success nor a failure
				default:
					stats.Fail(label, conn.Reason(err), err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	prog.Stop()
	stats.Fill(r, elapsed)
	cpu.Fill(r)
}

// Progress shows a live line on stderr while a measurement runs: elapsed, operations, rate and
// errors. On a terminal it rewrites one line every second; otherwise it writes a line every
// 5 seconds, so a log stays short.
type Progress struct {
	stop chan struct{}
	done chan struct{}
}

var stderrIsTerminal = func() bool {
	fi, err := os.Stderr.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}()

// Quiet turns the progress lines off (tests).
var Quiet bool

// StartProgress starts the progress line of stats.
func StartProgress(label string, stats *Stats) *Progress {
	p := &Progress{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if Quiet {
			<-p.stop
			return
		}
		every := 5 * time.Second
		if stderrIsTerminal {
			every = time.Second
		}
		t := time.NewTicker(every)
		defer t.Stop()
		start := time.Now()
		var lastOps int64
		last := start
		for {
			select {
			case <-p.stop:
				if stderrIsTerminal {
					fmt.Fprint(os.Stderr, "\r\033[K")
				}
				return
			case now := <-t.C:
				ops := stats.Ops()
				rate := float64(ops-lastOps) / now.Sub(last).Seconds()
				lastOps, last = ops, now
				line := fmt.Sprintf("%-34s %5.1fs %10s ops %9s/s %6d errors", label, now.Sub(start).Seconds(), Thousands(float64(ops)), Thousands(rate), stats.Errors())
				if stderrIsTerminal {
					fmt.Fprint(os.Stderr, "\r\033[K"+line)
				} else {
					fmt.Fprintln(os.Stderr, line)
				}
			}
		}
	}()
	return p
}

// Stop ends the progress line.
func (p *Progress) Stop() {
	close(p.stop)
	<-p.done
}

// Note writes one line of progress (a phase's start or end) to stderr.
func Note(format string, args ...any) {
	if Quiet {
		return
	}
	if stderrIsTerminal {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Thousands formats v rounded, with commas: 12,345.
func Thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
