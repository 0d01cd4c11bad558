package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstore/kstore/messages"
)

// writes is what a write phase did: puts done and failed, how long from its start to the last
// reply, the puts' latencies, and when the writes it gave up on were due (offsets from the
// epoch).
type writes struct {
	ok, errs int64
	elapsed  time.Duration
	lat      histogram
	skipped  []time.Duration
}

// steady puts len(sends) objects at b.cfg.rate per second. Write i is due at start + i/rate: a
// ticker releases the writes that are due to b.cfg.writers writers, and each write's time is
// counted from when it was due, however late a writer takes it. A node that cannot keep up would
// stretch the phase without end, so writes still due b.cfg.steady + b.cfg.drain after the start
// are skipped, and returned for the caller to count.
func (b *bench) steady(round int, sends sendLog) *writes {
	period := time.Second / time.Duration(b.cfg.rate)
	due := make(chan int, len(sends)) // never blocks the ticker
	start := time.Now()
	origin := start.Sub(b.epoch)
	giveUp := start.Add(b.cfg.steady + b.cfg.drain)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(due)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for next := 0; ; <-t.C {
			for n := min(len(sends), int(time.Since(start)/period)+1); next < n; next++ {
				due <- next
			}
			if next == len(sends) {
				return
			}
		}
	})
	per := make([]writes, b.cfg.writers)
	for w := range per {
		wg.Go(func() {
			for i := range due {
				at := origin + time.Duration(i)*period
				if time.Now().After(giveUp) {
					per[w].skipped = append(per[w].skipped, at)
					continue
				}
				sends[i].Store(int64(at))
				b.put(&per[w], objectName('s', round, i, b.run), at)
			}
		})
	}
	wg.Wait()
	return mergeWrites(per, time.Since(start))
}

// maxRate puts new objects from b.cfg.maxWriters writers, each sending its next put when the
// last one is answered, for b.cfg.maxPhase.
func (b *bench) maxRate(round int) *writes {
	var next atomic.Int64
	per := make([]writes, b.cfg.maxWriters)
	start := time.Now()
	end := start.Add(b.cfg.maxPhase)
	var wg sync.WaitGroup
	for w := range per {
		wg.Go(func() {
			for time.Now().Before(end) {
				b.put(&per[w], objectName('m', round, int(next.Add(1)), b.run), time.Since(b.epoch))
			}
		})
	}
	wg.Wait()
	return mergeWrites(per, time.Since(start))
}

// put writes one object, counting it in st with its latency from at (an offset from the epoch).
func (b *bench) put(st *writes, name string, at time.Duration) {
	_, err := b.c.Put(context.Background(), b.object(name), messages.Reason_OPERATOR)
	if err != nil {
		st.errs++
		if b.putErrs.Add(1) <= 3 {
			fmt.Fprintln(os.Stderr, "put:", err)
		}
		return
	}
	st.ok++
	st.lat.add(time.Since(b.epoch) - at)
}

func mergeWrites(per []writes, elapsed time.Duration) *writes {
	all := &writes{elapsed: elapsed}
	for i := range per {
		all.ok += per[i].ok
		all.errs += per[i].errs
		all.lat.merge(&per[i].lat)
		all.skipped = append(all.skipped, per[i].skipped...)
	}
	return all
}

// object returns a Pod named name in namespace bench, of b.cfg.size bytes when that is enough.
func (b *bench) object(name string) []byte {
	head := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"` + name + `","namespace":"bench"},"spec":{"data":"`
	const tail = `"}}`
	obj := make([]byte, 0, max(b.cfg.size, len(head)+len(tail)))
	obj = append(obj, head...)
	for range b.cfg.size - len(head) - len(tail) {
		obj = append(obj, 'x')
	}
	return append(obj, tail...)
}
