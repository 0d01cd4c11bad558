// Package limits measures the machine's own ceilings for durable writes, in the same run as the
// benchmarks and on the same filesystem as their data dirs, so that the put results can be read
// as a share of what the disk and Badger could do with no Raft and no actors in the way.
//
//   - Disk: synced 4 KiB writes one at a time, as a write-ahead log does them, into a file
//     preallocated the way raftactor/wal preallocates its segments (fallocate, ftruncate where the
//     filesystem does not support it, then one fsync), so what is measured is the sync of an
//     append and not block allocation.
//   - Badger: 1 KiB values committed in batches of 64 per transaction with SyncWrites, one
//     transaction at a time: the ceiling of durable writes through Badger alone when writes are
//     grouped, as kstore's Raft log groups the proposals that arrive during one fsync. Badger
//     does not group concurrent transactions into one sync by itself: v4.9.6 syncs the
//     memtable's WAL (an msync) once per transaction even when its writer goroutine takes
//     several at once (writeToLSM calls mt.SyncWAL for each request), so 64 writers of one key
//     each came to about one sync per commit (4,400 commits/s beside 3,500 disk syncs/s).
package limits

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"

	"github.com/kstore/kstore/bench/internal/report"
	"github.com/kstore/kstore/catalogactor"
)

const (
	// syncBlock is the size of one synced write.
	syncBlock = 4 << 10
	// syncFileSize is the preallocated file the synced writes go to, the WAL's default
	// segment size; the writes wrap to its start when it is full.
	syncFileSize = 64 << 20

	// BadgerBatch is how many values one synced Badger transaction holds.
	BadgerBatch = 64
	// badgerKeys is the key space the writers pick their keys from.
	badgerKeys = 10_000
	// badgerValue is the size of each value written to Badger.
	badgerValue = 1 << 10
)

// Measure measures the disk's synced writes and Badger's batched synced writes in a scratch
// folder it creates in dir (which must exist, on the same filesystem as the benchmark's data
// dirs), spending d/2 writing on each (plus the time to preallocate the file and to open and
// close Badger). It removes everything it created, also when it fails.
func Measure(dir string, d time.Duration) (_ report.Limits, err error) {
	if d <= 0 {
		return report.Limits{}, fmt.Errorf("limits: measurement time %v is not positive", d)
	}
	work, err := os.MkdirTemp(dir, "limits-")
	if err != nil {
		return report.Limits{}, fmt.Errorf("limits: create a scratch folder in %s: %w", dir, err)
	}
	defer func() {
		if rerr := os.RemoveAll(work); rerr != nil {
			err = errors.Join(err, fmt.Errorf("limits: remove %s: %w", work, rerr))
		}
	}()

	half := d / 2
	var l report.Limits
	l.DiskSyncsPerS, l.DiskSyncP50, err = measureSyncs(filepath.Join(work, "syncs"), half)
	if err != nil {
		return report.Limits{}, err
	}
	l.BadgerBatchedPerS, err = measureBadger(filepath.Join(work, "badger"), half)
	if err != nil {
		return report.Limits{}, err
	}
	l.BadgerBatch = BadgerBatch
	return l, nil
}

// measureSyncs creates the file at path, preallocates it, then for d writes 4 KiB at successive
// offsets with pwrite, each followed by fdatasync. It returns the synced writes per second and
// the median latency (ms) of one synced write (the pwrite, into the page cache, and its
// fdatasync). The file is closed and removed before it returns.
func measureSyncs(path string, d time.Duration) (perS, p50 float64, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, 0, fmt.Errorf("limits: create %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("limits: close %s: %w", path, cerr))
		}
		if rerr := os.Remove(path); rerr != nil {
			err = errors.Join(err, fmt.Errorf("limits: remove %s: %w", path, rerr))
		}
	}()
	if err := preallocate(f, path); err != nil {
		return 0, 0, err
	}
	fd := int(f.Fd())
	// Make the allocation (size and extents) durable once, as the WAL does before a segment
	// is used, so no fdatasync below also flushes it.
	if err := retryEINTR(func() error { return unix.Fsync(fd) }); err != nil {
		return 0, 0, fmt.Errorf("limits: fsync %s: %w", path, err)
	}

	buf := make([]byte, syncBlock)
	for i := range buf {
		buf[i] = byte(i*7 + 1) // not zeros, so nothing can skip the write
	}
	lat := make([]time.Duration, 0, 4096)
	var off int64
	start := time.Now()
	deadline := start.Add(d)
	for {
		t0 := time.Now()
		if _, err := f.WriteAt(buf, off); err != nil {
			return 0, 0, fmt.Errorf("limits: write %s at offset %d: %w", path, off, err)
		}
		if err := retryEINTR(func() error { return unix.Fdatasync(fd) }); err != nil {
			return 0, 0, fmt.Errorf("limits: fdatasync %s: %w", path, err)
		}
		t1 := time.Now()
		lat = append(lat, t1.Sub(t0))
		if off += syncBlock; off+syncBlock > syncFileSize {
			off = 0
		}
		if !t1.Before(deadline) {
			break
		}
	}
	elapsed := time.Since(start)
	slices.Sort(lat)
	med := lat[len(lat)/2]
	if len(lat)%2 == 0 {
		med = (lat[len(lat)/2-1] + lat[len(lat)/2]) / 2
	}
	return float64(len(lat)) / elapsed.Seconds(), float64(med) / float64(time.Millisecond), nil
}

// preallocate gives f its syncFileSize bytes as raftactor/wal does for its segments: fallocate,
// or ftruncate (a sparse file) where the filesystem does not support it.
func preallocate(f *os.File, path string) error {
	err := retryEINTR(func() error { return unix.Fallocate(int(f.Fd()), 0, 0, syncFileSize) })
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("limits: fallocate %s: %w", path, err)
	}
	if err := f.Truncate(syncFileSize); err != nil {
		return fmt.Errorf("limits: ftruncate %s: %w", path, err)
	}
	return nil
}

// retryEINTR calls fn until it fails with something other than EINTR (a signal, such as the Go
// runtime's preemption signal, arriving during the system call).
func retryEINTR(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// badgerOptions are the catalog's (catalogactor.BadgerOptions, with its default memtable),
// except where this measurement needs otherwise: WithSyncWrites(true), since the point is
// durable writes (the catalog does not sync: its Raft log is the durable record); no logger;
// and badger.Open instead of OpenManaged, since db.Update needs Badger to pick the commit
// timestamps (the commit path, its write channel and the synced write, is the same).
func badgerOptions(path string) badger.Options {
	return catalogactor.BadgerOptions(path).
		WithSyncWrites(true).
		WithLogger(nil).
		WithMemTableSize(catalogactor.DefaultMemTableSize)
}

// measureBadger opens a fresh Badger DB at path and for d commits transactions of BadgerBatch
// 1 KiB values each, to keys picked at random from badgerKeys, one after the other. It returns
// the values committed per second. The DB is closed and its folder removed before it returns.
func measureBadger(path string, d time.Duration) (perS float64, err error) {
	db, err := badger.Open(badgerOptions(path))
	if err != nil {
		// Badger may have created part of the folder before failing.
		return 0, errors.Join(fmt.Errorf("limits: open badger at %s: %w", path, err), removeAll(path))
	}
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("limits: close badger at %s: %w", path, cerr))
		}
		err = errors.Join(err, removeAll(path))
	}()

	value := make([]byte, badgerValue)
	for i := range value {
		value[i] = byte(i*13 + 5)
	}
	var values int64
	start := time.Now()
	for time.Since(start) < d {
		err := db.Update(func(txn *badger.Txn) error {
			for range BadgerBatch {
				if err := txn.Set(fmt.Appendf(nil, "k%05d", rand.IntN(badgerKeys)), value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("limits: commit a batch of %d values to badger at %s: %w", BadgerBatch, path, err)
		}
		values += BadgerBatch
	}
	return float64(values) / time.Since(start).Seconds(), nil
}

func removeAll(path string) error {
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("limits: remove %s: %w", path, err)
	}
	return nil
}
