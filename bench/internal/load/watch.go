package load

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstore/kstore/bench/internal/driver"
	"github.com/kstore/kstore/bench/internal/report"
)

// WatchSpec is one round of a watch scenario. A round
//
//  1. opens Watchers watches from the store's current revision (no initial list), each read as
//     fast as it can, and waits until each has seen a first write (OpenTimeout);
//  2. reads the servers' RSS with the watches open, against the RSS before they were opened;
//  3. writes new objects of Size bytes at Rate per second for Steady from Writers writers, on a
//     fixed schedule, and takes each event's delivery lag from its write's scheduled send time
//     (a write sent late is charged for it), then waits up to Drain for the last events; writes
//     still due Steady + Drain after the start are skipped and charged as lag;
//  4. writes as fast as MaxWriters closed-loop writers can for MaxPhase, the watches open;
//  5. stops the watches.
//
// Fan-out (Selective false): every watcher watches namespace "watch" and sees every write.
// Selective: watcher k watches namespace "ws<k>" alone, and write i goes to namespace ws<i mod
// Spread>, as kubelets each watch their own node's Pods: each write owes one delivery.
// Idle (scenario watch-idle): a fan-out round without phases 3 and 4, which measures what open
// watches cost while nothing happens: how fast they open and the memory they hold.
type WatchSpec struct {
	Watchers  int
	Selective bool
	// Idle skips phases 3 and 4, whatever Steady and MaxPhase say. A watch-idle round whose
	// watches do not all open within OpenTimeout is a result (its row counts the watches not
	// opened as NotOpened errors), not an error of the round.
	Idle bool
	// Spread is how many namespaces a selective round's writes go to (its watcher count, and
	// the same for its baseline, which has no watcher).
	Spread      int
	Rate        int
	Steady      time.Duration
	Writers     int
	MaxPhase    time.Duration
	MaxWriters  int
	Drain       time.Duration
	OpenTimeout time.Duration
	Size        int
}

// watchRound is one round's state: its objects are named <phase><round>-<i>-<run>, phase 's'
// for the steady writes, 'm' for the max-rate writes, 'y' for the writes that show the watches
// are established, so that every write is new (an ADDED) and a consumer tells a round's events
// from anything else on the store.
type watchRound struct {
	spec  WatchSpec
	store driver.Store
	round int
	run   string
	epoch time.Time
	sends sendLog
}

func objectName(phase byte, round, i int, run string) string {
	return string(phase) + strconv.Itoa(round) + "-" + strconv.Itoa(i) + "-" + run
}

func parseName(name string) (phase byte, round, i int, run string, ok bool) {
	if len(name) < 5 {
		return 0, 0, 0, "", false
	}
	phase = name[0]
	num := func(s string) (int, string, bool) {
		n, j := 0, 0
		for ; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
			n = n*10 + int(s[j]-'0')
		}
		return n, s[j:], j > 0 && j < len(s) && s[j] == '-'
	}
	round, rest, ok1 := num(name[1:])
	if !ok1 {
		return 0, 0, 0, "", false
	}
	i, rest, ok2 := num(rest[1:])
	if !ok2 || len(rest) < 2 {
		return 0, 0, 0, "", false
	}
	return phase, round, i, rest[1:], true
}

// sendLog holds each steady write's scheduled send time, as an offset from the epoch, by the
// write's number. The writer stores it before sending; every consumer that receives the event
// loads it.
type sendLog []atomic.Int64

// consumer is one watch. Its counters are read while it runs; its histogram only after the
// watch has ended.
type consumer struct {
	wr            *watchRound
	synced        *atomic.Int64
	lag           histogram
	steady, maxed atomic.Int64
	other         atomic.Int64 // events of no write of this round: should stay 0
	wait          func() error
	err           error
}

func (k *consumer) event(ev driver.Event) {
	phase, round, i, run, ok := parseName(ev.Name)
	switch {
	case ev.Deleted || !ok || round != k.wr.round || run != k.wr.run:
		k.other.Add(1)
	case phase == 's' && i < len(k.wr.sends):
		// The clock is read only for the steady phase's events, the ones whose lag counts:
		// at full speed the loader takes millions of events a second.
		k.lag.add(time.Since(k.wr.epoch) - time.Duration(k.wr.sends[i].Load()))
		k.steady.Add(1)
	case phase == 'm':
		k.maxed.Add(1)
	case phase == 'y':
		k.synced.Add(1)
	default:
		k.other.Add(1)
	}
}

func (wr *watchRound) namespace(i int) string {
	if wr.spec.Selective {
		return "ws" + strconv.Itoa(i%max(wr.spec.Spread, 1))
	}
	return "watch"
}

func (wr *watchRound) doc(phase byte, i int) driver.Doc {
	return driver.Doc{Namespace: wr.namespace(i), Name: objectName(phase, wr.round, i, wr.run), Size: wr.spec.Size}
}

// deliveries is how many events n writes owe the watchers.
func (wr *watchRound) deliveries(n int64) int64 {
	if wr.spec.Selective || wr.spec.Watchers == 0 {
		return n
	}
	return n * int64(wr.spec.Watchers)
}

// WatchRound measures one round (spec.Watchers 0: the baseline, which writes with no watcher
// open, and spec.Steady 0 skips the steady phase). base is the baseline's result, whose max
// write rate the round compares with.
func WatchRound(ctx context.Context, s driver.Store, spec WatchSpec, round int, base *report.Result) (report.Result, error) {
	t := s.Target()
	scenario, variant := "watch", "steady"
	switch {
	case spec.Idle:
		// A fan-out round: one first write confirms every watch.
		scenario, variant = "watch-idle", ""
		spec.Selective, spec.Steady, spec.MaxPhase = false, 0, 0
	case spec.Selective:
		scenario = "watch-selective"
	}
	r := report.Result{Target: t.System, Members: t.Members, Scenario: scenario, Variant: variant, Watchers: spec.Watchers}
	if spec.Steady > 0 {
		r.Rate = spec.Rate
	}
	wr := &watchRound{spec: spec, store: s, round: round, run: strconv.FormatInt(time.Now().UnixNano()%1e9, 36), epoch: time.Now(),
		sends: make(sendLog, spec.Rate*int(spec.Steady/time.Second))}
	label := fmt.Sprintf("%s %s w=%d", t, scenario, spec.Watchers)

	// 1. Open the watches.
	rssBefore := driver.ServerRSS(s.PIDs())
	openCPU := StartCPU(s.PIDs())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	cons, err := wr.open(ctx, label)
	stop := func() {
		cancel()
		for _, k := range cons {
			if k.wait != nil {
				if err := k.wait(); err != nil && k.err == nil {
					k.err = err
				}
			}
		}
	}
	defer stop()
	r.OpenSeconds = time.Since(start).Seconds()
	var late *openTimeout
	if spec.Idle && errors.As(err, &late) {
		// How many watches a store opens in time is what the round measures: the row says
		// how many did not, and the table shows it instead of a rate.
		r.Ops, r.Seconds = late.opened, r.OpenSeconds
		r.Errors = int64(spec.Watchers) - late.opened
		r.ErrorsBy = map[string]int64{"NotOpened": r.Errors}
		openCPU.Fill(&r)
		Note("  %s: %v (server RSS %s MiB); its row records %d NotOpened", label, err, mib(driver.ServerRSS(s.PIDs())), r.Errors)
		return r, nil
	}
	if err != nil {
		return r, err
	}

	// 2. The servers' memory with the watches open.
	if n := spec.Watchers; n > 0 {
		r.ServerRSS = driver.ServerRSS(s.PIDs())
		r.ServerRSSPerW = (r.ServerRSS - rssBefore) / int64(n)
		Note("  %s: %d watches open in %.1fs (%s/s), server RSS %s MiB", label, n, r.OpenSeconds,
			Thousands(float64(n)/r.OpenSeconds), mib(r.ServerRSS))
	}
	if spec.Idle {
		// The round's operations are the watches opened, its CPU what opening them took.
		r.Ops, r.Seconds, r.OpsPerS = int64(spec.Watchers), r.OpenSeconds, float64(spec.Watchers)/r.OpenSeconds
		openCPU.Fill(&r)
	}

	// 3. The steady phase, then its last events.
	st := &writes{stats: NewStats()}
	var steadyEnd time.Duration
	if !spec.Idle {
		cpu := StartCPU(s.PIDs())
		if spec.Steady > 0 {
			st = wr.steady(ctx, label)
		}
		st.stats.Fill(&r, st.elapsed) // the steady writes: their rate and latency
		r.Dist = nil
		r.Expected = wr.deliveries(st.stats.Ops())
		steadyEvents := func() int64 { return sum(cons, func(k *consumer) int64 { return k.steady.Load() }) }
		if spec.Watchers > 0 {
			waitFor(ctx, spec.Drain, func() bool { return steadyEvents() >= r.Expected })
		}
		cpu.Fill(&r)
		steadyEnd = time.Since(wr.epoch)
		if len(st.skipped) > 0 {
			Note("  %s: skipped %d writes the store could not take in time", label, len(st.skipped))
		}
	}

	// 4. The max-rate phase.
	if spec.MaxPhase > 0 {
		mw := wr.maxRate(ctx, label)
		if mw.ops == 0 {
			return r, fmt.Errorf("%s: no write succeeded in the max-rate phase", label)
		}
		r.MaxWriteRate = float64(mw.ops) / mw.elapsed.Seconds()
		switch {
		case spec.Watchers == 0:
			r.MaxWriteRateNoW, r.WriteRatio = r.MaxWriteRate, 1
		case base != nil && base.MaxWriteRate > 0:
			r.MaxWriteRateNoW, r.WriteRatio = base.MaxWriteRate, r.MaxWriteRate/base.MaxWriteRate
		}
		if spec.Watchers > 0 {
			want := wr.deliveries(mw.ops)
			waitFor(ctx, spec.Drain, func() bool { return sum(cons, func(k *consumer) int64 { return k.maxed.Load() }) >= want })
		}
	}

	// 5. Stop the watches; the histograms are final once every consumer has returned.
	stop()
	var lag histogram
	failed := 0
	var firstErr error
	var foreign int64
	for _, k := range cons {
		lag.merge(&k.lag)
		foreign += k.other.Load()
		if k.err != nil {
			failed++
			firstErr = k.err
		}
	}
	r.Deliveries = int64(lag.n)
	if spec.Watchers > 0 && !spec.Idle {
		for _, at := range st.skipped {
			lag.addN(steadyEnd-at, uint32(wr.deliveries(1)))
		}
		r.LagP50, r.LagP99, r.LagMax = ms(lag.quantile(0.50)), ms(lag.quantile(0.99)), ms(lag.max)
	}
	if failed > 0 {
		if r.ErrorsBy == nil {
			r.ErrorsBy = map[string]int64{}
		}
		r.ErrorsBy["WatchEnded"] += int64(failed)
		r.Errors += int64(failed)
		Note("  %s: %d watches ended by themselves: %v", label, failed, firstErr)
	}
	if foreign > 0 {
		Note("  %s: the watches received %d events of no write of this round: is another program writing?", label, foreign)
	}
	return r, nil
}

// openTimeout is open's error when some watches had not seen their first write within the
// round's OpenTimeout.
type openTimeout struct {
	label           string
	opened, watches int64
	timeout         time.Duration
}

func (e *openTimeout) Error() string {
	return fmt.Sprintf("%s: only %d of %d watches saw their first write within %v", e.label, e.opened, e.watches, e.timeout)
}

// mib is a byte count in MiB, rounded, for a progress line.
func mib(b int64) string { return Thousands(float64(b) / (1 << 20)) }

// open starts the watches and waits until each has seen a first write.
func (wr *watchRound) open(ctx context.Context, label string) ([]*consumer, error) {
	n := wr.spec.Watchers
	if n == 0 {
		return nil, nil
	}
	rev, err := wr.store.Conn(0).Revision(ctx)
	if err != nil {
		return nil, err
	}
	var synced atomic.Int64
	cons := make([]*consumer, n)
	for i := range cons {
		k := &consumer{wr: wr, synced: &synced}
		cons[i] = k
		k.wait = wr.store.Conn(i).Watch(ctx, wr.namespace(i), rev, k.event)
	}
	// One first write per namespace watched: one in all for fan-out, one per watcher when
	// selective.
	firsts := 1
	if wr.spec.Selective {
		firsts = n
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := range min(64, firsts) {
		conn := wr.store.Conn(w)
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < firsts; i = int(next.Add(1) - 1) {
				if err := conn.Put(ctx, wr.doc('y', i)); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return cons, fmt.Errorf("%s: first write: %w", label, err)
	}
	if !waitFor(ctx, wr.spec.OpenTimeout, func() bool { return synced.Load() >= int64(n) }) {
		return cons, &openTimeout{label: label, opened: synced.Load(), watches: int64(n), timeout: wr.spec.OpenTimeout}
	}
	return cons, nil
}

// writes is what a write phase did.
type writes struct {
	stats   *Stats
	elapsed time.Duration
	skipped []time.Duration // when the writes given up on were due, as offsets from the epoch
}

// steady writes len(sends) objects at spec.Rate per second: a ticker releases the writes that
// are due to the writers, and each write's latency counts from when it was due, however late a
// writer takes it.
func (wr *watchRound) steady(ctx context.Context, label string) *writes {
	st := &writes{stats: NewStats()}
	prog := StartProgress(label+" steady", st.stats)
	defer prog.Stop()
	period := time.Second / time.Duration(wr.spec.Rate)
	due := make(chan int, len(wr.sends)) // never blocks the ticker
	start := time.Now()
	origin := start.Sub(wr.epoch)
	giveUp := start.Add(wr.spec.Steady + wr.spec.Drain)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(due)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for next := 0; ; {
			for n := min(len(wr.sends), int(time.Since(start)/period)+1); next < n; next++ {
				due <- next
			}
			if next == len(wr.sends) {
				return
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	})
	var mu sync.Mutex
	for w := range wr.spec.Writers {
		conn := wr.store.Conn(w)
		wg.Go(func() {
			for i := range due {
				at := origin + time.Duration(i)*period
				if time.Now().After(giveUp) || ctx.Err() != nil {
					mu.Lock()
					st.skipped = append(st.skipped, at)
					mu.Unlock()
					continue
				}
				wr.sends[i].Store(int64(at))
				if err := conn.Put(ctx, wr.doc('s', i)); err != nil {
					st.stats.Fail(label, conn.Reason(err), err)
					continue
				}
				st.stats.Record(time.Since(wr.epoch) - at)
			}
		})
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	return st
}

// maxRate writes new objects from spec.MaxWriters writers, each sending its next write when the
// last one is answered, for spec.MaxPhase.
func (wr *watchRound) maxRate(ctx context.Context, label string) maxWrites {
	stats := NewStats()
	prog := StartProgress(label+" max", stats)
	defer prog.Stop()
	start := time.Now()
	var next atomic.Int64
	end := time.Now().Add(wr.spec.MaxPhase)
	var wg sync.WaitGroup
	for w := range wr.spec.MaxWriters {
		conn := wr.store.Conn(w)
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				t := time.Now()
				err := conn.Put(ctx, wr.doc('m', int(next.Add(1))))
				switch {
				case err == nil:
					stats.Record(time.Since(t))
				case ctx.Err() == nil:
					stats.Fail(label, conn.Reason(err), err)
				}
			}
		})
	}
	wg.Wait()
	return maxWrites{ops: stats.Ops(), elapsed: time.Since(start)}
}

// maxWrites is what the max-rate phase did: writes done, from its start to the last reply.
type maxWrites struct {
	ops     int64
	elapsed time.Duration
}

func sum(cons []*consumer, f func(*consumer) int64) int64 {
	var s int64
	for _, k := range cons {
		s += f(k)
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
