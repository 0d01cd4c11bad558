package load

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kstore/kstore/bench/internal/driver"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		give     string
		phase    byte
		round, i int
		run      string
		ok       bool
	}{
		{give: objectName('s', 3, 12345, "k2x9a"), phase: 's', round: 3, i: 12345, run: "k2x9a", ok: true},
		{give: objectName('m', 0, 0, "0"), phase: 'm', round: 0, i: 0, run: "0", ok: true},
		{give: "s3-12-", ok: false},
		{give: "s3-12", ok: false},
		{give: "s-12-ab", ok: false},
		{give: "s3-12x-ab", ok: false},
		{give: "p000001", ok: false},
	}
	for _, tt := range tests {
		phase, round, i, run, ok := parseName(tt.give)
		if ok != tt.ok || ok && (phase != tt.phase || round != tt.round || i != tt.i || run != tt.run) {
			t.Errorf("parseName(%q) = %c %d %d %q %v, want %c %d %d %q %v", tt.give, phase, round, i, run, ok, tt.phase, tt.round, tt.i, tt.run, tt.ok)
		}
	}
}

func TestDocSize(t *testing.T) {
	for _, size := range []int{256, 1024, 4096} {
		d := driver.Doc{Namespace: "ws9999", Name: objectName('s', 1, 123456, "k2x9a"), Seq: 123456, Size: size, Group: 7}
		if got := len(d.JSON("")); got != size {
			t.Errorf("a Doc of size %d encodes to %d bytes", size, got)
		}
	}
}

// fakeStore is a one-member store whose first deliverTo watches see every Put; the others
// never see anything. It counts the Puts.
type fakeStore struct {
	deliverTo int
	mu        sync.Mutex
	fns       []func(driver.Event)
	puts      atomic.Int64
}

func (f *fakeStore) Target() driver.Target { return driver.Target{System: "fake", Members: 1} }
func (f *fakeStore) PIDs() []int           { return nil }
func (f *fakeStore) DataDir() string       { return "" }
func (f *fakeStore) Conn(int) driver.Conn  { return fakeConn{f} }
func (f *fakeStore) Close() error          { return nil }

type fakeConn struct{ f *fakeStore }

func (c fakeConn) Put(_ context.Context, d driver.Doc) error {
	c.f.puts.Add(1)
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	for i, fn := range c.f.fns {
		if i < c.f.deliverTo {
			fn(driver.Event{Namespace: d.Namespace, Name: d.Name})
		}
	}
	return nil
}
func (fakeConn) Update(context.Context, driver.Doc) error         { return driver.ErrUnsupported }
func (fakeConn) Patch(context.Context, string, string, int) error { return driver.ErrUnsupported }
func (fakeConn) Get(context.Context, string, string, bool) error  { return driver.ErrUnsupported }
func (fakeConn) Revision(context.Context) (int64, error)          { return 1, nil }
func (fakeConn) Reason(error) string                              { return "Fake" }
func (fakeConn) List(context.Context, string, int, string) (int, error) {
	return 0, driver.ErrUnsupported
}

func (c fakeConn) Watch(ctx context.Context, _ string, _ int64, fn func(driver.Event)) func() error {
	c.f.mu.Lock()
	c.f.fns = append(c.f.fns, fn)
	c.f.mu.Unlock()
	return func() error { <-ctx.Done(); return nil }
}

var _ driver.Store = (*fakeStore)(nil)

// TestIdleRound: an idle round writes only its one first write, whatever the steady and
// max-rate settings say, and a store that opens too few watches in time yields a row that
// counts them, not an error.
func TestIdleRound(t *testing.T) {
	Quiet = true
	tests := []struct {
		name          string
		give          int // watches the store opens
		wantOps       int64
		wantNotOpened int64
	}{
		{name: "all open", give: 10, wantOps: 10},
		{name: "three never open", give: 7, wantOps: 7, wantNotOpened: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeStore{deliverTo: tt.give}
			spec := WatchSpec{Watchers: 10, Idle: true, Spread: 10, Rate: 100, Steady: time.Second, Writers: 2,
				MaxPhase: time.Second, MaxWriters: 2, Drain: time.Second, OpenTimeout: 100 * time.Millisecond, Size: 256}
			r, err := WatchRound(context.Background(), s, spec, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Scenario != "watch-idle" || r.Variant != "" || r.Watchers != 10 {
				t.Errorf("row %s/%s at %d watchers, want watch-idle with no variant at 10", r.Scenario, r.Variant, r.Watchers)
			}
			if got := s.puts.Load(); got != 1 {
				t.Errorf("%d puts, want the one first write", got)
			}
			if r.Ops != tt.wantOps || r.ErrorsBy["NotOpened"] != tt.wantNotOpened || r.Errors != tt.wantNotOpened {
				t.Errorf("ops %d, errors %d %v; want ops %d, %d NotOpened", r.Ops, r.Errors, r.ErrorsBy, tt.wantOps, tt.wantNotOpened)
			}
			if opened := tt.wantNotOpened == 0; opened != (r.OpsPerS > 0) || r.OpenSeconds <= 0 {
				t.Errorf("opened/s %.0f in %.2fs", r.OpsPerS, r.OpenSeconds)
			}
			if r.Rate != 0 || r.MaxWriteRate != 0 || r.Expected != 0 || r.LagP99 != 0 {
				t.Errorf("idle row has write figures: rate %d, max %.0f, expected %d, lag %.2f", r.Rate, r.MaxWriteRate, r.Expected, r.LagP99)
			}
		})
	}
}
