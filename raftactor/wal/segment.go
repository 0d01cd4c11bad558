package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	segmentExt = ".wal"
	tmpExt     = ".tmp"
)

// segment describes one segment file of the log.
type segment struct {
	seq   uint64
	first uint64 // index of the first entry expected: the log's last index + 1 at creation
	// maxIndex is the highest entry index written in the segment, or first-1
	// when it holds no entry. ReleaseTo may delete the segment once a
	// snapshot covers maxIndex.
	maxIndex uint64
	path     string
	// hdrEnd is the end of the segment header: a segment holding nothing
	// beyond it does not roll, so even a batch larger than SegmentSize is
	// written somewhere.
	hdrEnd int64
}

func segmentName(seq, first uint64) string {
	return fmt.Sprintf("%016x-%016x%s", seq, first, segmentExt)
}

func parseSegmentName(name string) (seq, first uint64, ok bool) {
	if len(name) != 16+1+16+len(segmentExt) || !strings.HasSuffix(name, segmentExt) {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(name, "%016x-%016x.wal", &seq, &first); err != nil {
		return 0, 0, false
	}
	return seq, first, segmentName(seq, first) == name
}

// listSegments returns the segments in dir in write order and removes
// leftover temporary files of segments whose creation did not finish.
func listSegments(dir string) (segs []segment, removedTmp []string, err error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, segmentExt+tmpExt) {
			p := filepath.Join(dir, name)
			if err := os.Remove(p); err != nil {
				return nil, nil, fmt.Errorf("wal: remove unfinished segment %s: %w", p, err)
			}
			removedTmp = append(removedTmp, p)
			continue
		}
		seq, first, ok := parseSegmentName(name)
		if !ok {
			continue
		}
		segs = append(segs, segment{seq: seq, first: first, maxIndex: first - 1, path: filepath.Join(dir, name)})
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmpUint64(a.seq, b.seq) })
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, nil, fmt.Errorf("%w: segment %016x is missing between %s and %s; the data dir %s is damaged",
				ErrCorrupt, segs[i-1].seq+1, filepath.Base(segs[i-1].path), filepath.Base(segs[i].path), dir)
		}
	}
	return segs, removedTmp, nil
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// allocMode says how segment files get their space.
type allocMode int

const (
	// allocFallocate reserves the space with fallocate (ftruncate where the
	// file system does not support it): the file has its final size, so
	// fdatasync after an append flushes no size change. The default.
	allocFallocate allocMode = iota
	// allocNone lets the file grow with each append. For benchmarks.
	allocNone
	// allocZeroFill writes zeros over the whole file: fastest fdatasync, but
	// slow to create. For benchmarks.
	allocZeroFill
)

// preallocate gives f its space up to size, from its current size on.
// fallbackUsed reports that fallocate was not supported and ftruncate made
// a sparse file instead.
func preallocate(f *os.File, size int64, mode allocMode) (fallbackUsed bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("wal: stat %s: %w", f.Name(), err)
	}
	cur := fi.Size()
	if cur >= size || mode == allocNone {
		return false, nil
	}
	switch mode {
	case allocZeroFill:
		zeros := make([]byte, 1<<20)
		for off := cur; off < size; {
			n := min(int64(len(zeros)), size-off)
			if _, err := f.WriteAt(zeros[:n], off); err != nil {
				return false, fmt.Errorf("wal: zero-fill %s: %w", f.Name(), err)
			}
			off += n
		}
		return false, nil
	default:
		err := unix.Fallocate(int(f.Fd()), 0, cur, size-cur)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
			return false, fmt.Errorf("wal: fallocate %s: %w", f.Name(), err)
		}
		if err := f.Truncate(size); err != nil {
			return true, fmt.Errorf("wal: ftruncate %s: %w", f.Name(), err)
		}
		return true, nil
	}
}

// seekData returns the offset of the first data at or after off in f, or
// errNoData when only a hole follows. File systems without SEEK_DATA
// report everything as data.
func seekData(f *os.File) func(int64) (int64, error) {
	return func(off int64) (int64, error) {
		d, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return 0, errNoData
		}
		return d, err
	}
}
