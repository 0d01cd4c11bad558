package main

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/kstore/kstore/actors"
)

// bench runs the phases against one node, through one client.
type bench struct {
	cfg   config
	c     *actors.Client
	epoch time.Time // send and receive times are offsets from it, on the monotonic clock
	run   string    // names this run's objects apart from other runs' on the same node

	putErrs atomic.Int64 // failed puts, to show the first few
}

// result is one JSON line. Fields that were not measured (memory with no watcher, the node's
// RSS without its pid, the max-rate phase with --max-seconds 0) are left out.
type result struct {
	Target   string `json:"target"`
	Watchers int    `json:"watchers"`
	Rate     int    `json:"rate"`
	// The steady phase: writes done and their rate, from its start to the last reply. Writes
	// still due --seconds + --drain after its start are skipped (the node could not keep up);
	// each counts in the lag figures once per watcher, with the lag it had when the round
	// stopped waiting for events (a lower bound), so a node cannot look better by being sent less.
	AchievedRate  float64 `json:"achieved_rate"`
	Writes        int64   `json:"writes"`
	WriteErrors   int64   `json:"write_errors"`
	WritesSkipped int     `json:"writes_skipped"`
	// Events of the steady phase's writes received, of watchers × writes; their delivery lag,
	// from each write's scheduled send time to its receipt by a watcher's consumer. A put that
	// timed out may still have been applied, so events can pass expected_events then.
	Events         int64   `json:"events"`
	ExpectedEvents int64   `json:"expected_events"`
	LagP50         float64 `json:"lag_p50_ms"`
	LagP99         float64 `json:"lag_p99_ms"`
	LagMax         float64 `json:"lag_max_ms"`
	// Put latency in the steady phase, also from the scheduled send time.
	PutP50 float64 `json:"put_p50_ms"`
	PutP99 float64 `json:"put_p99_ms"`
	// CPU used over the steady phase and its drain, in cores: by the node, by this process, and
	// by everything else on the machine (other tenants: how noisy the run was).
	ServerCPU *float64 `json:"server_cpu_cores,omitempty"`
	ClientCPU float64  `json:"client_cpu_cores"`
	OtherCPU  *float64 `json:"other_cpu_cores,omitempty"`
	// The same CPU time per event delivered in that time: what one delivery costs each side,
	// which a busy machine disturbs less than the rates and lags.
	ServerUSPerEvent *float64 `json:"server_cpu_us_per_event,omitempty"`
	ClientUSPerEvent *float64 `json:"client_cpu_us_per_event,omitempty"`
	// How long opening the watches took, until each had seen one write.
	OpenSeconds float64 `json:"open_seconds"`
	// The node's RSS with the watches open and idle after the steady phase, less its RSS before
	// they were opened, per watcher. The steady phase's writes grow the RSS by themselves (the
	// baseline's server_rss_after_bytes less its server_rss_before_bytes), so the net figure
	// takes that growth off, and the open figure is read right after opening, before any write.
	// A Go process keeps freed memory a while, so RSS figures are coarse; the raw ones follow.
	ServerRSSPerWatcher     *int64 `json:"server_rss_per_watcher_bytes,omitempty"`
	ServerRSSPerWatcherNet  *int64 `json:"server_rss_per_watcher_net_bytes,omitempty"`
	ServerRSSPerWatcherOpen *int64 `json:"server_rss_per_watcher_open_bytes,omitempty"`
	ServerRSSBefore         *int64 `json:"server_rss_before_bytes,omitempty"`
	ServerRSSOpen           *int64 `json:"server_rss_open_bytes,omitempty"`
	ServerRSSAfter          *int64 `json:"server_rss_after_bytes,omitempty"`
	// This process's live heap the same way, after the steady phase, less the benchmark's own
	// per-watcher state. Goroutine stacks are not heap and not counted.
	ClientHeapPerWatcher *int64 `json:"client_heap_per_watcher_bytes,omitempty"`
	// The max-rate phase: puts per second from --max-writers closed-loop writers, with these
	// watchers and with none, and the ratio.
	MaxWriteRate     *float64 `json:"max_write_rate,omitempty"`
	MaxPutP50        *float64 `json:"max_put_p50_ms,omitempty"`
	MaxPutP99        *float64 `json:"max_put_p99_ms,omitempty"`
	MaxWriteRateNone *float64 `json:"max_write_rate_no_watchers,omitempty"`
	WriteRatio       *float64 `json:"write_ratio,omitempty"`
	// Events of the max-rate phase's writes received within --drain after it, of watchers ×
	// writes: whether the watchers kept up with the fastest writes.
	MaxEvents         *int64 `json:"max_events,omitempty"`
	MaxExpectedEvents *int64 `json:"max_expected_events,omitempty"`
	// Watches that ended by themselves (Err() set), and events of other writers' objects: both
	// should be none.
	WatchErrors   int   `json:"watch_errors"`
	ForeignEvents int64 `json:"foreign_events"`
}

// round measures n watchers (none: the baseline, base nil).
func (b *bench) round(round, n int, base *result) (*result, error) {
	r := &result{Target: "kstore", Watchers: n, Rate: b.cfg.rate}
	sends := make(sendLog, b.cfg.rate*int(b.cfg.steady/time.Second))
	rssBefore, rssOK := b.serverRSS()
	heapBefore := heapBytes()

	// 1. Open the watches.
	start := time.Now()
	ws, err := b.open(round, n, sends)
	if ws != nil {
		defer ws.stop()
	}
	if err != nil {
		return nil, err
	}
	r.OpenSeconds = time.Since(start).Seconds()
	b.progress(n, "opened in %.1fs", r.OpenSeconds)
	rssOpen, _ := b.serverRSS()

	// 2. The steady phase, then wait for its last events.
	cpu := b.startCPU()
	st := b.steady(round, sends)
	r.Writes, r.WriteErrors, r.WritesSkipped = st.ok, st.errs, len(st.skipped)
	r.AchievedRate = float64(st.ok) / st.elapsed.Seconds()
	r.PutP50, r.PutP99 = ms(st.lat.quantile(0.50)), ms(st.lat.quantile(0.99))
	r.ExpectedEvents = int64(n) * st.ok
	steadyEvents := func() int64 { return ws.sum(func(k *consumer) int64 { return k.steady.Load() }) }
	waitFor(b.cfg.drain, func() bool { return steadyEvents() >= r.ExpectedEvents })
	wall := cpu.stop(r, steadyEvents())
	steadyEnd := time.Since(b.epoch)
	b.progress(n, "steady phase and its drain took %.1fs", wall.Seconds())
	if len(st.skipped) > 0 {
		b.progress(n, "skipped %d writes the node could not take in time", len(st.skipped))
	}

	// 3. Memory, with the watches open and idle.
	if rssIdle, ok := b.serverRSS(); ok && rssOK {
		r.ServerRSSBefore, r.ServerRSSOpen, r.ServerRSSAfter = ptr(rssBefore), ptr(rssOpen), ptr(rssIdle)
		if n > 0 {
			r.ServerRSSPerWatcher = ptr((rssIdle - rssBefore) / int64(n))
			r.ServerRSSPerWatcherOpen = ptr((rssOpen - rssBefore) / int64(n))
			if base != nil && base.ServerRSSAfter != nil && base.ServerRSSBefore != nil {
				grown := *base.ServerRSSAfter - *base.ServerRSSBefore
				r.ServerRSSPerWatcherNet = ptr((rssIdle - rssBefore - grown) / int64(n))
			}
		}
	}
	if n > 0 {
		// The consumers' own state (a lag histogram each) is the benchmark's, not the watch's.
		r.ClientHeapPerWatcher = ptr((heapBytes()-heapBefore)/int64(n) - int64(unsafe.Sizeof(consumer{})))
	}

	// 4. The max-rate phase.
	if b.cfg.maxPhase > 0 {
		mw := b.maxRate(round)
		if mw.ok == 0 {
			return nil, fmt.Errorf("no write succeeded in the max-rate phase")
		}
		rate := float64(mw.ok) / mw.elapsed.Seconds()
		r.MaxWriteRate = ptr(rate)
		r.MaxPutP50, r.MaxPutP99 = ptr(ms(mw.lat.quantile(0.50))), ptr(ms(mw.lat.quantile(0.99)))
		switch {
		case n == 0:
			r.MaxWriteRateNone, r.WriteRatio = ptr(rate), ptr(1.0)
		case base != nil && base.MaxWriteRate != nil:
			r.MaxWriteRateNone, r.WriteRatio = base.MaxWriteRate, ptr(rate / *base.MaxWriteRate)
		}
		b.progress(n, "max-rate phase: %.0f puts/s", rate)
		if n > 0 {
			t := time.Now()
			want := int64(n) * mw.ok
			maxEvents := func() int64 { return ws.sum(func(k *consumer) int64 { return k.maxed.Load() }) }
			waitFor(b.cfg.drain, func() bool { return maxEvents() >= want })
			b.progress(n, "max-rate phase's events drained in %.1fs", time.Since(t).Seconds())
			r.MaxEvents, r.MaxExpectedEvents = ptr(maxEvents()), ptr(want)
		}
	}

	// 5. Stop the watches; the consumers' histograms are final once every one has returned.
	r.WatchErrors = ws.errs() // before Stop, which ends a watch without an error
	if r.WatchErrors > 0 {
		fmt.Fprintln(os.Stderr, "watch:", ws.firstErr())
	}
	ws.stop()
	if n > 0 {
		b.progress(n, "stopped the watches")
	}
	var lag histogram
	for _, k := range ws.cons {
		lag.merge(&k.lag)
	}
	r.Events = int64(lag.n)
	if n > 0 {
		for _, at := range st.skipped {
			lag.addN(steadyEnd-at, uint32(n))
		}
	}
	r.LagP50, r.LagP99, r.LagMax = ms(lag.quantile(0.50)), ms(lag.quantile(0.99)), ms(lag.max)
	if r.ForeignEvents = ws.sum(func(k *consumer) int64 { return k.other.Load() }); r.ForeignEvents > 0 {
		fmt.Fprintf(os.Stderr, "watchbench: the watches received %d events of no write of this round: is another program writing Pods in namespace bench?\n", r.ForeignEvents)
	}
	return r, nil
}

// waitFor polls cond until it holds or timeout passes, and says whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	return true
}

// progress tells stderr where a long run is.
func (b *bench) progress(watchers int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "watchbench: %6.1fs %d watchers: %s\n", time.Since(b.epoch).Seconds(), watchers, fmt.Sprintf(format, args...))
}

func (b *bench) serverRSS() (int64, bool) {
	if b.cfg.serverPID == 0 {
		return 0, false
	}
	v, err := rssBytes(b.cfg.serverPID)
	return v, err == nil
}

func (b *bench) serverCPU() (time.Duration, bool) {
	if b.cfg.serverPID == 0 {
		return 0, false
	}
	v, err := cpuTime(b.cfg.serverPID)
	return v, err == nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ptr[T any](v T) *T { return &v }
