//go:build failpoints

package main

// A binary built with -tags failpoints (the end-to-end tests build one) arms the failpoints
// named in $KSTORE_FAILPOINTS when serve starts its node; other builds have none of this code
// and ignore the variable. The list is comma-separated; N counts the calls of its kind from the
// process's start, 1 being the first:
//
//	wal-fsync-error:N       the N-th fsync or fdatasync of the Raft log and every later one
//	                        fails with EIO, syncing nothing
//	wal-short-write:N       the N-th write to the Raft log writes half its bytes and fails
//	                        (io.ErrShortWrite); every later write fails with EIO
//	wal-enospc:N            the N-th write to the Raft log and every later one fails with
//	                        ENOSPC, writing nothing
//	wal-fsync-delay:D       every fsync or fdatasync of the Raft log waits D (a duration,
//	                        2ms) first: a slow disk, as a networked volume's, for benchmarks
//	catalog-commit-error:N  the N-th commit of the catalog to Badger (applied entries, or a
//	                        compaction) and every later one fails with EIO, committing nothing
//	stale-reads             linearizable gets and lists are served from the member's applied
//	                        state without Raft's read barrier: a deliberately broken node
//
// An entry that is none of these makes serve refuse to start; an armed node logs one warning
// naming its failpoints.

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kstore/kstore/actors"
)

const failpointsEnv = "KSTORE_FAILPOINTS"

func init() {
	actors.ArmFailpoints(func() (*actors.Faults, error) { return parseFailpoints(os.Getenv(failpointsEnv)) })
}

const failpointsUsage = "use a comma-separated list of wal-fsync-error:N, wal-short-write:N, wal-enospc:N, catalog-commit-error:N (N >= 1, the call that fails first), wal-fsync-delay:D (a duration) and stale-reads"

// parseFailpoints reads $KSTORE_FAILPOINTS; nil when it names none.
func parseFailpoints(s string) (*actors.Faults, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	f := &actors.Faults{}
	w, c := &walFaults{}, &catalogFaults{}
	seen := map[string]bool{}
	var armed []string
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		name, arg, hasArg := strings.Cut(entry, ":")
		if seen[name] {
			return nil, fmt.Errorf("%s=%q names %s twice: %s", failpointsEnv, s, name, failpointsUsage)
		}
		seen[name] = true
		if name == "stale-reads" {
			if hasArg {
				return nil, fmt.Errorf("%s=%q: stale-reads takes no argument: %s", failpointsEnv, s, failpointsUsage)
			}
			f.StaleReads = true
			armed = append(armed, entry)
			continue
		}
		if name == "wal-fsync-delay" {
			d, err := time.ParseDuration(arg)
			if !hasArg || err != nil || d <= 0 {
				return nil, fmt.Errorf("%s=%q: %q needs a duration above 0 (wal-fsync-delay:2ms): %s", failpointsEnv, s, entry, failpointsUsage)
			}
			w.delay = d
			armed = append(armed, entry)
			continue
		}
		var at *int64
		switch name {
		case "wal-fsync-error":
			at = &w.fsyncAt
		case "wal-short-write":
			at = &w.shortAt
		case "wal-enospc":
			at = &w.enospcAt
		case "catalog-commit-error":
			at = &c.at
		default:
			return nil, fmt.Errorf("%s=%q: %q is not a failpoint: %s", failpointsEnv, s, entry, failpointsUsage)
		}
		n, err := strconv.ParseInt(arg, 10, 64)
		if !hasArg || err != nil || n < 1 {
			return nil, fmt.Errorf("%s=%q: %q needs a count N >= 1 (%s:N): %s", failpointsEnv, s, entry, name, failpointsUsage)
		}
		*at = n
		armed = append(armed, entry)
	}
	if w.fsyncAt > 0 || w.shortAt > 0 || w.enospcAt > 0 || w.delay > 0 {
		f.WAL = w
	}
	if c.at > 0 {
		f.Catalog = c
	}
	f.Armed = strings.Join(armed, ",")
	return f, nil
}

// walFaults fails the Raft log's writes and syncs from the counts its fields give (0: never).
type walFaults struct {
	fsyncAt, shortAt, enospcAt int64
	delay                      time.Duration // before every sync
	syncs, writes              atomic.Int64
}

func (f *walFaults) Write(_ string, n int) (int, error) {
	i := f.writes.Add(1)
	switch {
	case f.enospcAt > 0 && i >= f.enospcAt:
		return 0, fmt.Errorf("%w (failpoint wal-enospc:%d, write %d)", syscall.ENOSPC, f.enospcAt, i)
	case f.shortAt > 0 && i == f.shortAt:
		return n / 2, fmt.Errorf("%w: %d of %d bytes written (failpoint wal-short-write:%d)", io.ErrShortWrite, n/2, n, f.shortAt)
	case f.shortAt > 0 && i > f.shortAt:
		return 0, fmt.Errorf("%w (failpoint wal-short-write:%d, write %d)", syscall.EIO, f.shortAt, i)
	}
	return n, nil
}

func (f *walFaults) Sync(string) error {
	if f.delay > 0 {
		time.Sleep(f.delay) // a slow disk: the WAL's worker goroutine waits, as in a real fsync
	}
	if i := f.syncs.Add(1); f.fsyncAt > 0 && i >= f.fsyncAt {
		return fmt.Errorf("%w (failpoint wal-fsync-error:%d, sync %d)", syscall.EIO, f.fsyncAt, i)
	}
	return nil
}

// catalogFaults fails the catalog's commits from the at-th on (0: never).
type catalogFaults struct {
	at      int64
	commits atomic.Int64
}

func (f *catalogFaults) Commit() error {
	if i := f.commits.Add(1); f.at > 0 && i >= f.at {
		return fmt.Errorf("%w (failpoint catalog-commit-error:%d, commit %d)", syscall.EIO, f.at, i)
	}
	return nil
}
