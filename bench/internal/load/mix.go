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

// MixSpec is the controller-like mix: Writers create Pods and patch them, Watchers watch every
// Pod of the namespace, Listers list it in pages of 500, all at once for Duration.
type MixSpec struct {
	Writers, Watchers, Listers int
	Duration                   time.Duration
	Size                       int
	// PodsPerWriter is how many Pods each writer cycles over: it creates them on its first
	// pass and replaces them afterwards, so lists read a bounded namespace.
	PodsPerWriter int
}

const mixNamespace = "mix"

// Mix runs the mix. Each write is a create-or-replace of a Pod followed by a merge patch of it
// (on etcd, which has no patch, a read and a compare-and-swap on its mod revision, as the
// Kubernetes API server patches an object stored in etcd). The result's per-op figures are
// the writes' and patches' latencies, the lists', and the watchers' delivery lag.
func Mix(ctx context.Context, s driver.Store, spec MixSpec) (report.Result, error) {
	t := s.Target()
	r := report.Result{Target: t.System, Members: t.Members, Scenario: "mix", Clients: spec.Writers, Watchers: spec.Watchers}
	label := fmt.Sprintf("%s mix", t)
	pods := spec.Writers * spec.PodsPerWriter
	sent := make([]atomic.Int64, pods) // the latest write of each Pod, as an offset from epoch
	epoch := time.Now()
	doc := func(i, seq int) driver.Doc {
		return driver.Doc{Namespace: mixNamespace, Name: "m" + strconv.Itoa(i), Seq: seq, Size: spec.Size, Group: i % 10}
	}
	conn0 := s.Conn(0)
	patchUnsupported := errors.Is(conn0.Patch(ctx, mixNamespace, "none", 0), driver.ErrUnsupported)

	rev, err := conn0.Revision(ctx)
	if err != nil {
		return r, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	all := NewStats() // every operation, for the progress line and the row's figures
	creates, patches, lists, lag := NewStats(), NewStats(), NewStats(), NewStats()
	var waits []func() error
	for w := range spec.Watchers {
		waits = append(waits, s.Conn(w).Watch(ctx, mixNamespace, rev, func(ev driver.Event) {
			if len(ev.Name) < 2 || ev.Deleted {
				return
			}
			// The lag from the Pod's latest write: a later write of the same Pod before this
			// event arrives would shorten it, but a writer comes back to a Pod only after
			// PodsPerWriter others.
			if i, err := strconv.Atoi(ev.Name[1:]); err == nil && i >= 0 && i < pods {
				lag.Record(time.Since(epoch) - time.Duration(sent[i].Load()))
			}
		}))
	}
	cpu := StartCPU(s.PIDs())
	prog := StartProgress(label, all)
	// The duration ends the sending of new operations; those under way finish (see Run).
	start := time.Now()
	end := start.Add(spec.Duration)
	more := func() bool { return ctx.Err() == nil && time.Now().Before(end) }
	var wg sync.WaitGroup
	for w := range spec.Writers {
		conn := s.Conn(w)
		wg.Go(func() {
			for j := 0; more(); j++ {
				i := w*spec.PodsPerWriter + j%spec.PodsPerWriter
				t0 := time.Now()
				sent[i].Store(int64(t0.Sub(epoch)))
				timed(ctx, conn, label+" create", creates, all, func() error { return conn.Put(ctx, doc(i, j)) })
				t1 := time.Now()
				sent[i].Store(int64(t1.Sub(epoch)))
				timed(ctx, conn, label+" patch", patches, all, func() error {
					if patchUnsupported {
						return conn.Update(ctx, doc(i, j+1))
					}
					return conn.Patch(ctx, mixNamespace, "m"+strconv.Itoa(i), j+1)
				})
			}
		})
	}
	for l := range spec.Listers {
		conn := s.Conn(spec.Writers + l)
		wg.Go(func() {
			for more() {
				timed(ctx, conn, label+" list", lists, all, func() error {
					_, err := conn.List(ctx, mixNamespace, 500, "")
					return err
				})
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	prog.Stop()
	cpu.Fill(&r)
	cancel()
	failed := 0
	for _, wait := range waits {
		if wait() != nil {
			failed++
		}
	}
	all.Fill(&r, elapsed)
	r.Dist = nil
	for _, op := range []struct {
		name  string
		stats *Stats
	}{{"create", creates}, {"patch", patches}, {"list", lists}, {"watch delivery", lag}} {
		var x report.Result
		op.stats.Fill(&x, elapsed)
		r.PerOp = append(r.PerOp, report.OpStat{Op: op.name, Ops: x.Ops, OpsPerS: x.OpsPerS, P50: x.P50, P99: x.P99, Errors: x.Errors})
	}
	if failed > 0 {
		if r.ErrorsBy == nil {
			r.ErrorsBy = map[string]int64{}
		}
		r.ErrorsBy["WatchEnded"] += int64(failed)
		r.Errors += int64(failed)
	}
	return r, nil
}

// timed runs one operation, counting it in its own stats and in all.
func timed(ctx context.Context, conn driver.Conn, label string, own, all *Stats, op func() error) {
	t := time.Now()
	err := op()
	switch {
	case err == nil:
		d := time.Since(t)
		own.Record(d)
		all.Record(d)
	case ctx.Err() != nil: // the run ended under it
	default:
		reason := conn.Reason(err)
		own.Fail(label, reason, err)
		all.Fail(label, reason, err)
	}
}
