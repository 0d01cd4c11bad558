package wal

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Faults injects I/O failures into a WAL, as pebble's vfs lets a test swap in a file system
// that fails: a test arms it through Options.Faults to see what the owner does when the disk
// fails. Nil in production: the WAL then calls the file system directly.
//
// Every write and sync the WAL makes to its files goes through it (the segments' headers and
// batches, fsync and fdatasync of segments and of the directory). An implementation may be
// called from whichever goroutine owns the WAL.
type Faults interface {
	// Write is called before each write of n bytes to the file at path. It returns how many of
	// them to write (n: all of them) and the error the write then fails with (nil: none).
	Write(path string, n int) (int, error)
	// Sync is called before each fsync or fdatasync of the file or directory at path; a
	// non-nil error is returned instead of syncing.
	Sync(path string) error
}

// name is the path of f for messages: the current segment's final name, which its descriptor,
// opened under the temporary name, does not know.
func (w *WAL) name(f *os.File) string {
	if f == w.f && len(w.segs) > 0 {
		return w.segs[len(w.segs)-1].path
	}
	return f.Name()
}

// writeAt writes b to f at off, or what w.faults lets through of it.
func (w *WAL) writeAt(f *os.File, b []byte, off int64) error {
	if w.faults != nil {
		n, ferr := w.faults.Write(w.name(f), len(b))
		if ferr != nil {
			if n = min(max(n, 0), len(b)); n > 0 {
				if _, err := f.WriteAt(b[:n], off); err != nil {
					return err
				}
			}
			return ferr
		}
	}
	_, err := f.WriteAt(b, off)
	return err
}

func (w *WAL) fdatasync(f *os.File) error {
	return w.sync(f, "fdatasync", unix.Fdatasync)
}

func (w *WAL) fsync(f *os.File) error {
	return w.sync(f, "fsync", unix.Fsync)
}

func (w *WAL) sync(f *os.File, op string, sync func(fd int) error) error {
	name := w.name(f)
	err := error(nil)
	start := time.Now() // a fault that delays the sync counts as a slow disk
	if w.faults != nil {
		err = w.faults.Sync(name)
	}
	if err == nil {
		err = sync(int(f.Fd()))
		w.observeSync(op, name, time.Since(start))
	}
	if err != nil {
		return fmt.Errorf("wal: %s %s: %w", op, name, err)
	}
	return nil
}
