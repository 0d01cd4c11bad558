package wal

import (
	"errors"
	"fmt"
	"io"
	"os"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// replay reads segs in order into a State and leaves w positioned to
// append to the last one. See the package doc (Replay, Crash safety).
func (w *WAL) replay(segs []segment) (*State, error) {
	t := newTracker(segs[0].first-1, true)
	var (
		hs   *raftpb.HardState
		snap *raftpb.SnapshotMetadata
	)
	for i := range segs {
		seg := &segs[i]
		if i > 0 && t.last != seg.first-1 {
			return nil, w.corrupt(seg.path, 0, "the segment begins at index %d but the log before it ends at index %d; a segment was lost or cut short", seg.first, t.last)
		}
		last := i == len(segs)-1
		flag := os.O_RDONLY
		if last {
			flag = os.O_RDWR
		}
		f, err := os.OpenFile(seg.path, flag, 0)
		if err != nil {
			return nil, fmt.Errorf("wal: open %s: %w", seg.path, err)
		}
		end, err := w.replaySegment(f, seg, last, i > 0, t, &hs, &snap)
		if err != nil || !last {
			f.Close()
		}
		if err != nil {
			return nil, err
		}
		if last {
			w.f, w.off, w.synced = f, end, end
		}
	}
	w.segs = segs

	// What Open returns must be durable, even if it was only in the page
	// cache of a process that was killed. A torn tail was cut: fsync (not
	// fdatasync), the size may have changed.
	if _, err := preallocate(w.f, w.segSize, w.alloc); err != nil {
		return nil, err
	}
	if err := w.fsync(w.f); err != nil {
		return nil, err
	}

	lastSeg := segs[len(segs)-1]
	if want := t.snapIdx; t.base != want {
		return nil, w.corrupt(segs[0].path, 0, "the log starts after index %d but its latest snapshot is at %d (or there is none); older segments were deleted before a snapshot covered them", t.base, want)
	}
	if hs.GetCommit() > t.last {
		return nil, w.corrupt(lastSeg.path, w.off, "the HardState commits index %d but the log ends at index %d", hs.GetCommit(), t.last)
	}
	// The caller gets copies: raft fills in the ConfState it is handed (EnsureConfState), and
	// the WAL writes snapMeta into every new segment's header from another goroutine.
	st := &State{HardState: proto.CloneOf(hs), Snapshot: proto.CloneOf(snap), Entries: t.ents}
	t.keep, t.ents = false, nil
	w.t = t
	w.snapMeta = snap
	if hs != nil {
		var err error
		if w.hsPayload, err = w.enc.mo.Marshal(hs); err != nil {
			return nil, fmt.Errorf("wal: marshal HardState: %w", err)
		}
	}
	return st, nil
}

// replaySegment replays the records of one segment into t, hs and snap and
// returns the offset where its records end. In the last segment a torn tail
// is truncated there.
//
// When checkHeader is set (every segment but the first), the header's
// HardState and snapshot must be the ones the previous segments ended with:
// that catches an earlier segment that lost its last records, which the
// index check at the segment boundary cannot see when they are HardStates.
func (w *WAL) replaySegment(f *os.File, seg *segment, last, checkHeader bool, t *tracker, hs **raftpb.HardState, snap **raftpb.SnapshotMetadata) (int64, error) {
	prevHS, prevSnap := *hs, *snap
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("wal: stat %s: %w", seg.path, err)
	}
	size := fi.Size()
	rr := newRecordReader(io.NewSectionReader(f, 0, size), size)
	seenBatch := false
	for {
		off := rr.off
		typ, payload, st, why, err := rr.next()
		if err != nil {
			return 0, err
		}
		switch st {
		case readAlien:
			return 0, w.corrupt(seg.path, off, "%s", why)
		case readEnd, readBad:
			if st == readEnd {
				why = "the records end"
			}
			if !seenBatch {
				return 0, w.corrupt(seg.path, off, "%s inside the segment header, which was durable before the segment was named", why)
			}
			if !last {
				if st == readBad {
					return 0, w.corrupt(seg.path, off, "%s in a segment that was synced before a later one was created", why)
				}
				return off, nil
			}
			return off, w.tail(f, seg.path, off, size, st, why)
		}
		switch typ {
		case recBatch:
			if !seenBatch {
				seenBatch = true
				seg.hdrEnd = rr.off
				if checkHeader && (!sameHardState(*hs, prevHS) || !sameSnapshot(*snap, prevSnap)) {
					return 0, w.corrupt(seg.path, off, "the segment header holds HardState %v and snapshot %v, but the segments before it end with %v and %v; records were lost",
						describeHS(*hs), describeSnap(*snap), describeHS(prevHS), describeSnap(prevSnap))
				}
			}
		case recEntry:
			e := &raftpb.Entry{}
			if err := proto.Unmarshal(payload, e); err != nil {
				return 0, w.corrupt(seg.path, off, "undecodable entry: %v", err)
			}
			seg.maxIndex = max(seg.maxIndex, e.GetIndex())
			if err := t.addEntry(e); err != nil {
				return 0, w.corrupt(seg.path, off, "%v", err)
			}
		case recHardState:
			h := &raftpb.HardState{}
			if err := proto.Unmarshal(payload, h); err != nil {
				return 0, w.corrupt(seg.path, off, "undecodable HardState: %v", err)
			}
			*hs = h
		case recSnapshot:
			m := &raftpb.SnapshotMetadata{}
			if err := proto.Unmarshal(payload, m); err != nil {
				return 0, w.corrupt(seg.path, off, "undecodable snapshot record: %v", err)
			}
			if t.applySnapshot(m.GetIndex(), m.GetTerm()) {
				*snap = m
			}
		}
	}
}

// tail judges what follows the end of the records at off in the last
// segment: nothing (the normal end), a torn write (truncated, zeroed and
// logged) or damage to a durable record (ErrCorrupt).
func (w *WAL) tail(f *os.File, path string, off, size int64, st readStatus, why string) error {
	if st == readEnd {
		nz, found, err := firstNonZero(f, off, size)
		if err != nil || !found {
			return err
		}
		why = fmt.Sprintf("the records end but nonzero bytes follow at offset %d", nz)
	}
	claimOff, claim := int64(-1), int64(-1)
	err := scanBatches(f, off+recordAlign, size, seekData(f), func(o, synced int64) {
		if synced > claim {
			claimOff, claim = o, synced
		}
	})
	if err != nil {
		return err
	}
	if claim > off {
		return w.corrupt(path, off, "%s, but the batch at offset %d was written after the segment had been synced up to offset %d: a durable record is damaged", why, claimOff, claim)
	}
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("wal: truncate torn tail of %s at offset %d: %w", path, off, err)
	}
	if _, err := preallocate(f, w.segSize, w.alloc); err != nil {
		return err
	}
	if err := w.fsync(f); err != nil {
		return err
	}
	w.log.Warn("wal: truncated a torn write at the end of the log (a crash during a write that had not been synced)",
		zap.String("file", path), zap.Int64("offset", off), zap.String("reason", why), zap.Int64("discardedUpTo", size))
	return nil
}

// firstNonZero returns the offset of the first nonzero byte in [from, size)
// of f.
func firstNonZero(f *os.File, from, size int64) (int64, bool, error) {
	seek := seekData(f)
	buf := make([]byte, 1<<20)
	for pos := from; pos < size; {
		d, err := seek(pos)
		if errors.Is(err, errNoData) {
			return 0, false, nil
		}
		if err == nil && d > pos {
			pos = d
			continue
		}
		n := min(int64(len(buf)), size-pos)
		if _, err := f.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, false, fmt.Errorf("wal: read %s at offset %d: %w", f.Name(), pos, err)
		}
		for k, b := range buf[:n] {
			if b != 0 {
				return pos + int64(k), true, nil
			}
		}
		pos += n
	}
	return 0, false, nil
}

// corrupt reports damage at offset off of the segment at path.
func (w *WAL) corrupt(path string, off int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d: %s; the data dir %s is damaged: restore it from a backup, or remove this member from the cluster and add it back empty so it catches up from its peers",
		ErrCorrupt, path, off, fmt.Sprintf(format, args...), w.dir)
}

// sameHardState and sameSnapshot compare what the records mean, not how they were encoded: a
// field written at its zero value and a field left out are the same (raft's EnsureConfState
// sets AutoLeave to false where it was absent, and older kstore versions wrote that into
// segment headers).
func sameHardState(a, b *raftpb.HardState) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.GetTerm() == b.GetTerm() && a.GetVote() == b.GetVote() && a.GetCommit() == b.GetCommit()
}

func sameSnapshot(a, b *raftpb.SnapshotMetadata) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if a.GetIndex() != b.GetIndex() || a.GetTerm() != b.GetTerm() {
		return false
	}
	return raftpb.EnsureConfState(proto.CloneOf(a.GetConfState())).Equivalent(raftpb.EnsureConfState(proto.CloneOf(b.GetConfState()))) == nil
}

func describeHS(hs *raftpb.HardState) string {
	if hs == nil {
		return "none"
	}
	return fmt.Sprintf("{term %d, vote %d, commit %d}", hs.GetTerm(), hs.GetVote(), hs.GetCommit())
}

func describeSnap(m *raftpb.SnapshotMetadata) string {
	if m == nil {
		return "none"
	}
	return fmt.Sprintf("{index %d, term %d}", m.GetIndex(), m.GetTerm())
}
