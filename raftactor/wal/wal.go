package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// DefaultSegmentSize is the segment size used when Options.SegmentSize is 0.
// Large enough that rolls (a file creation and up to three syncs, about
// 1 ms) are rare, small
// enough that ReleaseTo frees space in useful steps.
const DefaultSegmentSize int64 = 64 << 20

// minSegmentSize keeps a segment able to hold its header and a batch record.
const minSegmentSize = 512

// ErrCorrupt is wrapped by the errors that report a damaged log: a bad
// record that is not a torn tail, a missing segment, a gap in the indexes.
// The message names the file and offset. Match it with errors.Is.
var ErrCorrupt = errors.New("wal: corrupt log")

var errClosed = errors.New("wal: closed")

// Options configures Open.
type Options struct {
	// SegmentSize is the preallocated size of a segment file; 0 means
	// DefaultSegmentSize. A batch that does not fit in the rest of the
	// current segment goes to a new one; a batch larger than SegmentSize gets
	// a segment of its own that grows past SegmentSize.
	SegmentSize int64
	// Logger receives warnings (torn tails truncated) and information
	// (segments created and released); nil means zap.NewNop().
	Logger *zap.Logger
	// Faults, for tests, injects failures into the WAL's writes and syncs; nil in
	// production.
	Faults Faults
	// SyncDuration, when set, observes the seconds each fsync or fdatasync took
	// (etcd_disk_wal_fsync_duration_seconds); a sync over SlowSync is also logged
	// as a warning (see observe.go).
	SyncDuration Observer
}

// State is what a log holds after replay.
type State struct {
	// HardState is the latest one saved; nil when none was ever saved.
	HardState *raftpb.HardState
	// Snapshot is the latest saved compaction point; nil when none.
	Snapshot *raftpb.SnapshotMetadata
	// Entries are the entries with index > Snapshot.Index (or from index 1
	// when there is no snapshot), contiguous and in order, after raft's
	// overwrite rule.
	Entries []*raftpb.Entry
}

// WAL is an open log. It is not safe for concurrent use; see the package doc.
type WAL struct {
	dir     string
	dirFile *os.File // open for fsync and holding the flock
	log     *zap.Logger
	segSize int64
	alloc   allocMode

	segs []segment // in order; the last is the current one, open as f
	f    *os.File
	off  int64 // where the next batch goes in f
	// synced is how many bytes of f are known durable (fdatasync returned).
	synced int64

	t         *tracker
	hsPayload []byte // marshaled latest non-empty HardState, for segment headers; nil if none
	snapMeta  *raftpb.SnapshotMetadata

	enc    *encoder
	faults Faults // Options.Faults
	// syncs observes sync durations (Options.SyncDuration; nil: none). batchIndex and
	// batchTerm are the last index and term of the batch being saved, for the slow-sync
	// warning.
	syncs                 Observer
	batchIndex, batchTerm uint64
	slowSync              time.Duration // 0: SlowSync; tests lower it
	// err is the first write or sync failure; once set, every call fails.
	err    error
	closed bool
}

// Open opens the log in dir, creating dir and a first segment when missing,
// replays it and returns the WAL, positioned to append, and the State it
// holds. A torn tail in the last segment is truncated (and logged); damage
// anywhere else fails with an error wrapping ErrCorrupt. Before Open
// returns, everything it replayed is durable. Open fails while another
// WAL has dir open.
func Open(dir string, opts Options) (*WAL, *State, error) {
	return open(dir, opts, allocFallocate)
}

func open(dir string, opts Options, alloc allocMode) (_ *WAL, _ *State, err error) {
	if opts.SegmentSize == 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.SegmentSize < minSegmentSize {
		return nil, nil, fmt.Errorf("wal: SegmentSize %d is below the minimum of %d bytes", opts.SegmentSize, minSegmentSize)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	df, err := os.Open(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: open %s: %w", dir, err)
	}
	if err := unix.Flock(int(df.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		df.Close()
		return nil, nil, fmt.Errorf("wal: %s is in use by another WAL (flock: %w); close it first", dir, err)
	}
	w := &WAL{
		dir:     dir,
		dirFile: df,
		log:     opts.Logger.With(zap.String("dir", dir)),
		segSize: opts.SegmentSize,
		alloc:   alloc,
		enc:     newEncoder(),
		faults:  opts.Faults,
		syncs:   opts.SyncDuration,
	}
	defer func() {
		if err != nil {
			w.closeFiles()
		}
	}()

	segs, removed, err := listSegments(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range removed {
		w.log.Info("wal: removed a segment whose creation did not finish", zap.String("file", p))
	}
	if len(segs) == 0 {
		w.t = newTracker(0, false)
		if err := w.createSegment(0, 1); err != nil {
			return nil, nil, err
		}
		w.log.Info("wal: created a new log")
		return w, &State{}, nil
	}
	if len(removed) > 0 {
		if err := w.fsync(w.dirFile); err != nil {
			return nil, nil, err
		}
	}
	st, err := w.replay(segs)
	if err != nil {
		return nil, nil, err
	}
	return w, st, nil
}

// Save appends entries, then hs, as one batch, and fdatasyncs when sync is
// set (pass raft's Ready.MustSync); the batch is durable once a synced call
// returns. An hs that is nil or empty is not written. Entries must be
// contiguous and start at most one past the last index; an entry at or
// below the last index replaces the log from there on (raft's overwrite
// rule), and entries at or below the snapshot index are skipped. After a
// write or sync error the WAL is unusable.
func (w *WAL) Save(hs *raftpb.HardState, ents []*raftpb.Entry, sync bool) error {
	if err := w.usable(); err != nil {
		return err
	}
	if w.t.hasSnap {
		for len(ents) > 0 && ents[0].GetIndex() <= w.t.snapIdx {
			ents = ents[1:]
		}
	}
	if len(ents) > 0 {
		if err := w.t.checkAppend(ents[0].GetIndex()); err != nil {
			return fmt.Errorf("wal: save: %v", err)
		}
		for k := 1; k < len(ents); k++ {
			if ents[k].GetIndex() != ents[k-1].GetIndex()+1 {
				return fmt.Errorf("wal: save: entry %d follows entry %d; entries must be contiguous", ents[k].GetIndex(), ents[k-1].GetIndex())
			}
		}
	}
	writeHS := hs.GetTerm() != 0 || hs.GetVote() != 0 || hs.GetCommit() != 0 // raft.IsEmptyHardState
	if !writeHS && len(ents) == 0 {
		if sync && w.synced < w.off {
			return w.fail(w.fdatasync(w.f))
		}
		return nil
	}

	w.enc.reset()
	w.enc.appendBatch(0) // filled in by write, once the segment is known
	for _, e := range ents {
		if err := w.enc.appendProto(recEntry, e); err != nil {
			return err
		}
	}
	hsStart := len(w.enc.buf)
	if writeHS {
		if err := w.enc.appendProto(recHardState, hs); err != nil {
			return err
		}
	}
	w.noteBatch(hs, ents)
	if err := w.write(sync); err != nil {
		return err
	}
	if writeHS {
		w.hsPayload = append(w.hsPayload[:0], w.enc.payload(hsStart)...)
	}
	cur := &w.segs[len(w.segs)-1]
	for _, e := range ents {
		// Checked above; cannot fail.
		_ = w.t.addEntry(e)
		cur.maxIndex = max(cur.maxIndex, e.GetIndex())
	}
	return nil
}

// SaveSnapshot durably (fdatasync) records that the log now starts after
// meta.Index: on replay, entries at or below it are dropped, and when the
// log does not hold entry meta.Index with term meta.Term (raft restored a
// leader's snapshot) every older entry is dropped too, as
// raft.MemoryStorage.ApplySnapshot does. Save it before applying the
// snapshot to the MemoryStorage. A snapshot below the latest saved one is
// an error.
func (w *WAL) SaveSnapshot(meta *raftpb.SnapshotMetadata) error {
	if err := w.usable(); err != nil {
		return err
	}
	if meta == nil {
		return errors.New("wal: save snapshot: nil metadata")
	}
	if w.t.hasSnap && meta.GetIndex() < w.t.snapIdx {
		return fmt.Errorf("wal: save snapshot: index %d is below the saved snapshot at %d; snapshots only move forward", meta.GetIndex(), w.t.snapIdx)
	}
	w.enc.reset()
	w.enc.appendBatch(0)
	if err := w.enc.appendProto(recSnapshot, meta); err != nil {
		return err
	}
	if err := w.write(true); err != nil {
		return err
	}
	w.t.applySnapshot(meta.GetIndex(), meta.GetTerm())
	w.snapMeta = proto.CloneOf(meta)
	return nil
}

// ReleaseTo deletes the oldest segment files whose entries are all at or
// below index, stopping at the first that holds a later entry and never
// deleting the current segment. It requires a snapshot with Index >= index
// saved by SaveSnapshot (which syncs it), and fails otherwise without
// deleting anything; such a failure does not make the WAL unusable.
// Replay still works afterwards: each segment begins with the HardState and
// snapshot current when it was created, and the latest ones are always in
// a kept segment.
func (w *WAL) ReleaseTo(index uint64) error {
	if err := w.usable(); err != nil {
		return err
	}
	if !w.t.hasSnap || w.t.snapIdx < index {
		return fmt.Errorf("wal: release to %d: no saved snapshot covers it (latest at %d); save a snapshot first", index, w.t.snapIdx)
	}
	n := 0
	var err error
	for n < len(w.segs)-1 && w.segs[n].maxIndex <= index {
		// Oldest first: a crash part way leaves a prefix deleted, which
		// replay handles.
		if rerr := os.Remove(w.segs[n].path); rerr != nil {
			err = fmt.Errorf("wal: release %s: %w", w.segs[n].path, rerr)
			break
		}
		w.log.Info("wal: released segment", zap.String("file", w.segs[n].path), zap.Uint64("maxIndex", w.segs[n].maxIndex))
		n++
	}
	w.segs = append(w.segs[:0], w.segs[n:]...)
	if n > 0 {
		return errors.Join(err, w.fsync(w.dirFile))
	}
	return err
}

// Close fdatasyncs what was saved without sync, closes the files and
// releases the directory. The WAL cannot be used afterwards.
func (w *WAL) Close() error {
	if w.closed {
		return errClosed
	}
	var err error
	if w.err == nil && w.f != nil && w.synced < w.off {
		err = w.fdatasync(w.f)
	}
	return errors.Join(err, w.closeFiles())
}

func (w *WAL) closeFiles() error {
	w.closed = true
	var errs []error
	if w.f != nil {
		errs = append(errs, w.f.Close())
		w.f = nil
	}
	if w.dirFile != nil {
		// Closing the descriptor releases the flock.
		errs = append(errs, w.dirFile.Close())
		w.dirFile = nil
	}
	return errors.Join(errs...)
}

func (w *WAL) usable() error {
	switch {
	case w.closed:
		return errClosed
	case w.err != nil:
		return fmt.Errorf("wal: unusable after an earlier failure; stop the node and Open the log again: %w", w.err)
	}
	return nil
}

// fail makes err, when not nil, sticky: after a failed write or sync the
// state of the file is unknown, and a later fsync could report success for
// pages the kernel already dropped.
func (w *WAL) fail(err error) error {
	if err != nil && w.err == nil {
		w.err = err
	}
	return err
}

// write writes the encoded batch (its batch record first) to the current
// segment, rolling to a new one first when it does not fit, and fdatasyncs
// when sync is set.
func (w *WAL) write(sync bool) error {
	n := int64(len(w.enc.buf))
	if w.off+n > w.segSize && w.off > w.segs[len(w.segs)-1].hdrEnd {
		if err := w.roll(); err != nil {
			return err
		}
	}
	w.enc.setBatch(w.synced)
	if err := w.writeAt(w.f, w.enc.buf, w.off); err != nil {
		return w.fail(fmt.Errorf("wal: write %s at offset %d: %w", w.name(w.f), w.off, err))
	}
	w.off += n
	if sync {
		if err := w.fail(w.fdatasync(w.f)); err != nil {
			return err
		}
		w.synced = w.off
	}
	return nil
}

// roll makes the current segment durable and starts the next one.
func (w *WAL) roll() error {
	if w.synced < w.off {
		if err := w.fail(w.fdatasync(w.f)); err != nil {
			return err
		}
		w.synced = w.off
	}
	cur := w.segs[len(w.segs)-1]
	if err := w.f.Close(); err != nil {
		return w.fail(fmt.Errorf("wal: close %s: %w", cur.path, err))
	}
	w.f = nil
	return w.fail(w.createSegment(cur.seq+1, w.t.last+1))
}

// createSegment creates segment (seq, first) with its header as a temporary
// file, makes it durable, renames it into place and fsyncs the directory,
// then makes it the current segment.
func (w *WAL) createSegment(seq, first uint64) error {
	path := filepath.Join(w.dir, segmentName(seq, first))
	tmp := path + tmpExt
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("wal: create %s: %w", tmp, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if fallback, err := preallocate(f, w.segSize, w.alloc); err != nil {
		return err
	} else if fallback {
		w.log.Info("wal: fallocate is not supported here; segments are sparse files (ftruncate)", zap.String("file", tmp))
	}
	hdr := newEncoder()
	if w.hsPayload != nil {
		start := hdr.begin()
		hdr.buf = append(hdr.buf, w.hsPayload...)
		if err := hdr.finish(start, recHardState); err != nil {
			return err
		}
	}
	if w.snapMeta != nil {
		if err := hdr.appendProto(recSnapshot, w.snapMeta); err != nil {
			return err
		}
	}
	end := int64(len(hdr.buf))
	hdr.appendBatch(end)
	if err := w.writeAt(f, hdr.buf, 0); err != nil {
		return fmt.Errorf("wal: write %s: %w", tmp, err)
	}
	if err := w.fsync(f); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("wal: rename %s: %w", tmp, err)
	}
	ok = true
	if err := w.fsync(w.dirFile); err != nil {
		f.Close()
		return err
	}
	w.f = f
	w.off = int64(len(hdr.buf))
	w.synced = w.off
	w.segs = append(w.segs, segment{seq: seq, first: first, maxIndex: first - 1, path: path, hdrEnd: w.off})
	w.log.Info("wal: created segment", zap.String("file", path))
	return nil
}
