package actors

import (
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/sys/unix"

	"github.com/kstore/kstore/messages"
)

// The free-space reserve. Badger writes its memtables and tables through mmap: on a full disk
// a write to the mapping is a SIGBUS that kills the process, again at every start while the
// disk stays full, and nothing in Go can catch it. So the node keeps a reserve: it refuses
// writes while the data dir's file system has less free space than that, and does not start
// with less. What a refused write leaves room for: the Raft log's next segment (64 MiB,
// preallocated), Badger's flush of a memtable (64 MiB) and its compactions, and the value log's
// next file (64 MiB).

// DefaultDiskReserve is the free space a node keeps: several times what Badger and the Raft log
// may need at once after the last write it accepted.
const DefaultDiskReserve = 512 << 20

// diskCheckInterval is how often the node measures the free space. Between two measurements
// the intake counts what it admitted (writeAmplification bytes of disk for each byte of
// command), so a burst of writes cannot run through the reserve unseen.
const (
	diskCheckInterval  = time.Second
	writeAmplification = 3 // the Raft log, Badger's memtable log, then its table or value log
)

// freeSpace returns the bytes available to this process on the file system holding dir.
func freeSpace(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("kstore: free space of %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// diskSpace is the node actor's view of the free space, refreshed by a goroutine it owns.
type diskSpace struct {
	dir      string
	reserve  uint64
	free     uint64 // at the last measurement
	admitted uint64 // command bytes admitted since
	stop     chan struct{}
	wg       sync.WaitGroup
}

// measured is the goroutine's report to the node actor.
type measured struct {
	free uint64
	err  error
}

// start measures now and then every diskCheckInterval, sending measured to self.
func (d *diskSpace) start(root *actor.RootContext, self *actor.PID) {
	if d.reserve == 0 {
		return // no reserve: nothing to refuse, nothing to measure
	}
	d.free, _ = freeSpace(d.dir)
	d.stop = make(chan struct{})
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(diskCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-d.stop:
				return
			case <-t.C:
				free, err := freeSpace(d.dir)
				root.Send(self, measured{free: free, err: err})
			}
		}
	}()
}

func (d *diskSpace) close() {
	if d.stop != nil {
		close(d.stop)
		d.wg.Wait()
		d.stop = nil
	}
}

func (d *diskSpace) update(m measured) {
	if m.err == nil {
		d.free, d.admitted = m.free, 0
	}
}

// admit counts a write of n bytes, or refuses it with Unavailable when the reserve is reached.
func (d *diskSpace) admit(n int) error {
	if d.reserve == 0 {
		return nil
	}
	used := d.admitted * writeAmplification
	if d.free < d.reserve+used {
		free := d.free - min(d.free, used)
		return messages.Errorf(messages.StatusReason_UNAVAILABLE,
			"the disk holding %s has about %d MiB free, less than the node's reserve of %d MiB (--disk-reserve-bytes): writes are refused until space is freed; reads go on",
			d.dir, free>>20, d.reserve>>20)
	}
	d.admitted += uint64(n)
	return nil
}

// checkStartSpace refuses to start a node on a disk that is already inside its reserve: Badger
// may need to flush what it replays.
func checkStartSpace(dir string, reserve uint64) error {
	if reserve == 0 {
		return nil
	}
	free, err := freeSpace(dir)
	if err != nil {
		return err
	}
	if free < reserve {
		return fmt.Errorf("kstore: the disk holding %s has %d MiB free, less than the node's reserve of %d MiB: free space first (or start with a smaller --disk-reserve-bytes, at the risk of the node dying when the disk fills)", dir, free>>20, reserve>>20)
	}
	return nil
}
