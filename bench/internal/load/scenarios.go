package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kstore/kstore/bench/internal/driver"
	"github.com/kstore/kstore/bench/internal/report"
)

// Env is what the operation scenarios share on one started store: the object shape, the key
// space and whether it has been written yet.
type Env struct {
	Store driver.Store
	Size  int // object bytes
	Keys  int // key space of put, update, patch, get and list
	// Groups is how many values label "group" takes over the key space (list-selector reads
	// one of them).
	Groups int
	Limits report.Limits

	loaded bool // every key of the key space exists
}

// Namespace is where the operation scenarios keep their objects.
const Namespace = "bench"

// Scenarios are the operation scenarios, in the order a run does them; watch, watch-selective,
// watch-idle and mix are separate (they open watches, and start a fresh store).
var Scenarios = []string{"put", "update", "patch", "get", "get-serializable", "list", "list-selector"}

// AllScenarios is every scenario name.
var AllScenarios = append(append([]string{}, Scenarios...), "watch", "watch-selective", "watch-idle", "mix")

func (e *Env) doc(key int, seq int64) driver.Doc {
	return driver.Doc{Namespace: Namespace, Name: fmt.Sprintf("p%06d", key), Seq: int(seq), Size: e.Size, Group: key % e.Groups}
}

// result is a Result naming this env's target.
func (e *Env) result(scenario string, clients int) report.Result {
	t := e.Store.Target()
	return report.Result{Target: t.System, Members: t.Members, Scenario: scenario, Clients: clients}
}

// Load writes every key of the key space once, unless a put measurement has already written
// them all.
func (e *Env) Load(ctx context.Context) error {
	if e.loaded {
		return nil
	}
	Note("  writing %d objects of %d bytes", e.Keys, e.Size)
	var wg sync.WaitGroup
	errs := make([]error, 64)
	for w := range 64 {
		conn := e.Store.Conn(w)
		wg.Go(func() {
			for k := w; k < e.Keys; k += 64 {
				if err := conn.Put(ctx, e.doc(k, int64(k))); err != nil {
					errs[w] = fmt.Errorf("loading the key space: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.loaded = true
	return nil
}

// Measure runs one operation scenario at the given clients.
func (e *Env) Measure(ctx context.Context, scenario string, spec Spec) (report.Result, error) {
	r := e.result(scenario, spec.Clients)
	label := fmt.Sprintf("%s %s c=%d", e.Store.Target(), scenario, spec.Clients)
	keys := int64(e.Keys)
	var op Op
	var itemsMu sync.Mutex
	var items int64 // read by the list scenarios
	switch scenario {
	case "put":
		// Every put changes its object (the sequence number is in it): a put equal to the stored
		// object would be a NoOp on kstore, cheaper than the revision etcd writes.
		op = func(ctx context.Context, c driver.Conn, _ int, i int64) error {
			return c.Put(ctx, e.doc(int(i%keys), i))
		}
	case "update":
		op = func(ctx context.Context, c driver.Conn, _ int, i int64) error {
			return c.Update(ctx, e.doc(int(i%keys), i))
		}
	case "patch":
		op = func(ctx context.Context, c driver.Conn, _ int, i int64) error {
			return c.Patch(ctx, Namespace, fmt.Sprintf("p%06d", i%keys), int(i))
		}
	case "get", "get-serializable":
		serializable := scenario == "get-serializable"
		op = func(ctx context.Context, c driver.Conn, _ int, i int64) error {
			return c.Get(ctx, Namespace, fmt.Sprintf("p%06d", i%keys), serializable)
		}
	case "list", "list-selector":
		sel := ""
		if scenario == "list-selector" {
			sel = "group=g3"
		}
		op = func(ctx context.Context, c driver.Conn, _ int, _ int64) error {
			got, err := c.List(ctx, Namespace, 500, sel)
			itemsMu.Lock()
			items += int64(got)
			itemsMu.Unlock()
			return err
		}
	default:
		return r, fmt.Errorf("unknown scenario %q (give one of %v)", scenario, AllScenarios)
	}
	if scenario != "put" {
		if err := e.Load(ctx); err != nil {
			return r, err
		}
	}
	// A target without the operation says so on its first call: the row is n/a.
	if err := op(ctx, e.Store.Conn(0), 0, 0); errors.Is(err, driver.ErrUnsupported) {
		r.NA = true
		return r, nil
	} else if err != nil && scenario != "update" {
		return r, fmt.Errorf("%s: the first operation failed: %w", scenario, err)
	}
	items = 0
	Run(ctx, e.Store, spec, label, op, &r)
	if r.Seconds > 0 {
		r.ItemsPerS = float64(items) / r.Seconds
	}
	if scenario == "put" && (spec.Total == 0 || spec.Total >= keys) && r.Errors == 0 && r.Ops >= keys {
		e.loaded = true
	}
	if scenario == "put" {
		if e.Limits.DiskSyncsPerS > 0 {
			r.OfDiskSyncs = r.OpsPerS / e.Limits.DiskSyncsPerS
		}
		if e.Limits.BadgerBatchedPerS > 0 {
			r.OfBadgerBatch = r.OpsPerS / e.Limits.BadgerBatchedPerS
		}
	}
	return r, nil
}

// waitFor polls cond until it holds or timeout passes, and says whether it held.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	return true
}
