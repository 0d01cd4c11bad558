package wal

import (
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// SlowSync is how long an fsync or fdatasync may take before the WAL logs a warning: etcd's
// threshold for its "slow fdatasync" warning. A sync that slow holds up every write of the
// node (raft sends nothing of a Ready before its entries are durable) and, on a follower, the
// leader's commits; the usual causes are a disk shared with a busy neighbour or one failing.
const SlowSync = time.Second

// Observer takes one measurement, in seconds: a prometheus.Histogram is one. Declared here so
// that the WAL depends on no metrics library.
type Observer interface{ Observe(float64) }

// noteBatch records the last index and term of the batch Save is about to write, for the
// slow-sync warning: which part of the log the sync held up.
func (w *WAL) noteBatch(hs *raftpb.HardState, ents []*raftpb.Entry) {
	switch {
	case len(ents) > 0:
		e := ents[len(ents)-1]
		w.batchIndex, w.batchTerm = e.GetIndex(), e.GetTerm()
	case hs != nil:
		w.batchIndex, w.batchTerm = w.t.last, hs.GetTerm()
	}
}

// observeSync reports a sync that succeeded: to Options.SyncDuration, and as a warning when it
// took over the WAL's slow threshold.
func (w *WAL) observeSync(op, file string, took time.Duration) {
	if w.syncs != nil {
		w.syncs.Observe(took.Seconds())
	}
	if took <= w.slowThreshold() {
		return
	}
	w.log.Warn("slow "+op, zap.Duration("took", took), zap.Duration("expected-duration", SlowSync),
		zap.String("file", file), zap.Uint64("index", w.batchIndex), zap.Uint64("term", w.batchTerm))
}

// slowThreshold is SlowSync, or the lower one a test set.
func (w *WAL) slowThreshold() time.Duration {
	if w.slowSync > 0 {
		return w.slowSync
	}
	return SlowSync
}
