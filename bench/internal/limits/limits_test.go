package limits

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMeasure(t *testing.T) {
	dir := t.TempDir()
	l, err := Measure(dir, 400*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("disk: %.0f synced 4 KiB writes/s, p50 %.3f ms; badger: %.0f values/s in synced batches of %d",
		l.DiskSyncsPerS, l.DiskSyncP50, l.BadgerBatchedPerS, l.BadgerBatch)
	if !(l.DiskSyncsPerS > 0) || math.IsInf(l.DiskSyncsPerS, 0) {
		t.Errorf("DiskSyncsPerS = %v, want positive and finite", l.DiskSyncsPerS)
	}
	if !(l.DiskSyncP50 > 0) || math.IsInf(l.DiskSyncP50, 0) {
		t.Errorf("DiskSyncP50 = %v, want positive and finite", l.DiskSyncP50)
	}
	if !(l.BadgerBatchedPerS > 0) || math.IsInf(l.BadgerBatchedPerS, 0) {
		t.Errorf("BadgerBatchedPerS = %v, want positive and finite", l.BadgerBatchedPerS)
	}
	if l.BadgerBatch != 64 {
		t.Errorf("BadgerBatch = %d, want 64", l.BadgerBatch)
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind in %s: %s", dir, e.Name())
	}
}

func TestMeasureUnusableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "data")
	_, err := Measure(dir, 400*time.Millisecond)
	if err == nil {
		t.Fatalf("Measure(%s) succeeded, want an error", dir)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name %s", err, dir)
	}
}

func TestMeasureNonPositiveDuration(t *testing.T) {
	dir := t.TempDir()
	if _, err := Measure(dir, 0); err == nil {
		t.Error("Measure with d = 0 succeeded, want an error")
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("left %d entries in %s", len(left), dir)
	}
}
