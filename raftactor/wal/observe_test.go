package wal

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

type countingObserver struct{ n int }

func (o *countingObserver) Observe(float64) { o.n++ }

// TestSyncObservedAndSlowWarned: every fdatasync of a synced Save is observed, and one over the
// slow threshold is logged as a warning naming the batch's index and term; unsynced Saves
// neither observe nor warn.
func TestSyncObservedAndSlowWarned(t *testing.T) {
	tests := []struct {
		name      string
		slow      bool // the threshold lowered so that every sync is slow
		sync      bool
		wantWarns int
	}{
		{"fast synced save", false, true, 0},
		{"slow synced save", true, true, 1},
		{"unsynced save", true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			syncs := &countingObserver{}
			w, _ := mustOpen(t, t.TempDir(), Options{Logger: zap.New(core), SyncDuration: syncs})
			defer mustClose(t, w)
			if tt.slow {
				w.slowSync = 1 // any sync takes longer than a nanosecond
			} else {
				w.slowSync = 1 << 62
			}
			before := syncs.n
			if err := w.Save(hardState(3, 1, 7), ents(1, 7, 3), tt.sync); err != nil {
				t.Fatal(err)
			}
			if got := syncs.n - before; tt.sync && got != 1 || !tt.sync && got != 0 {
				t.Errorf("syncs observed by Save(sync=%v) = %d, want %d", tt.sync, got, map[bool]int{true: 1}[tt.sync])
			}
			warns := logs.FilterMessage("slow fdatasync").All()
			if len(warns) != tt.wantWarns {
				t.Fatalf("slow fdatasync warnings = %d, want %d: %v", len(warns), tt.wantWarns, logs.All())
			}
			if tt.wantWarns > 0 {
				f := warns[0].ContextMap()
				if f["index"] != uint64(7) || f["term"] != uint64(3) || f["took"] == nil {
					t.Errorf("warning fields = %v, want index 7, term 3 and took", f)
				}
			}
		})
	}
}
