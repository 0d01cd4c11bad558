package wal

import (
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
)

// testFaults fails what its fields say; the zero value fails nothing.
type testFaults struct {
	syncErr  error // every sync fails with it
	writeErr error // every write fails with it, after writing half its bytes when half is set
	half     bool
	syncs    int // syncs asked for, failed or not
}

func (f *testFaults) Write(_ string, n int) (int, error) {
	if f.writeErr == nil {
		return n, nil
	}
	if f.half {
		return n / 2, f.writeErr
	}
	return 0, f.writeErr
}

func (f *testFaults) Sync(string) error {
	f.syncs++
	return f.syncErr
}

// TestFaults: after a failed write or sync the WAL refuses every later call, even once the disk
// is fine again, and Close syncs nothing (a retried fsync may report success for pages the kernel
// dropped); reopening keeps every batch that was synced before the failure, and a torn batch
// (the short write) is truncated as a torn tail.
func TestFaults(t *testing.T) {
	tests := []struct {
		name  string
		give  testFaults
		want  error
		after string // the log after reopening
	}{
		{
			name: "fsync error",
			give: testFaults{syncErr: syscall.EIO},
			want: syscall.EIO,
			// The write went to the page cache before the sync failed, and the process did
			// not crash: the unacknowledged batch may be there or not; here it is.
			after: "hs=1/1/3 snap=none ents=[1@1:d1 2@1:d2 3@1:d3 4@1:d4]",
		},
		{
			name:  "short write",
			give:  testFaults{writeErr: io.ErrShortWrite, half: true},
			want:  io.ErrShortWrite,
			after: "hs=1/1/2 snap=none ents=[1@1:d1 2@1:d2 3@1:d3]",
		},
		{
			name:  "disk full",
			give:  testFaults{writeErr: syscall.ENOSPC},
			want:  syscall.ENOSPC,
			after: "hs=1/1/2 snap=none ents=[1@1:d1 2@1:d2 3@1:d3]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := &testFaults{}
			opts := Options{SegmentSize: 4096, Faults: f}
			w, _ := mustOpen(t, dir, opts)
			if err := w.Save(hardState(1, 1, 2), ents(1, 3, 1), true); err != nil {
				t.Fatal(err)
			}
			*f = tt.give
			err := w.Save(hardState(1, 1, 3), ents(4, 4, 1), true)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("Save with the fault: %v, want an error naming the file in %s and wrapping %v", err, dir, tt.want)
			}
			*f = testFaults{} // the disk is fine again; the WAL must not believe it
			if err := w.Save(nil, ents(5, 5, 1), true); err == nil || !strings.Contains(err.Error(), "unusable") || !errors.Is(err, tt.want) {
				t.Fatalf("Save after the fault: %v, want unusable, wrapping %v", err, tt.want)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if f.syncs != 0 {
				t.Fatalf("%d syncs after the failure, want none", f.syncs)
			}

			w, st := mustOpen(t, dir, Options{SegmentSize: 4096})
			defer mustClose(t, w)
			checkState(t, st, tt.after)
			if err := w.Save(hardState(1, 1, 4), ents(4, 4, 1), true); err != nil {
				t.Fatalf("Save after reopening: %v", err)
			}
		})
	}
}
