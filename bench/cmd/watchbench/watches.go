package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/messages"
)

// Object names say which run of this program, which round and which phase wrote them:
// <phase><round>-<number>-<run>, phase 's' for the steady phase, 'm' for the max-rate phase, 'y'
// for the write that shows the watches are established. Every name is new, even on a node that
// an earlier run wrote to, so every write is an ADDED.
func objectName(phase byte, round, i int, run string) string {
	return fmt.Sprintf("%c%d-%d-%s", phase, round, i, run)
}

func parseName(name string) (phase byte, round, i int, run string, ok bool) {
	if len(name) < 5 {
		return 0, 0, 0, "", false
	}
	phase = name[0]
	num := func(s string) (int, string, bool) {
		n, j := 0, 0
		for ; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
			n = n*10 + int(s[j]-'0')
		}
		return n, s[j:], j > 0 && j < len(s) && s[j] == '-'
	}
	round, rest, ok1 := num(name[1:])
	if !ok1 {
		return 0, 0, 0, "", false
	}
	i, rest, ok2 := num(rest[1:])
	if !ok2 || len(rest) < 2 {
		return 0, 0, 0, "", false
	}
	return phase, round, i, rest[1:], true
}

// sendLog holds each steady write's scheduled send time, as an offset from the epoch, by the
// write's number. The writer stores it before sending; every consumer that receives the event
// loads it.
type sendLog []atomic.Int64

// consumer reads one watch as fast as it can. Its counters are read by the round while it runs;
// its histogram only after the watch has ended.
type consumer struct {
	w      *actors.Watch
	round  int
	run    string
	sends  sendLog
	epoch  time.Time
	synced *atomic.Int64 // consumers that saw the round's first write

	lag           histogram // steady events
	steady, maxed atomic.Int64
	other         atomic.Int64 // events of no write of this round and run: should stay 0
}

func (k *consumer) consume() {
	for ev := range k.w.Events() {
		now := time.Since(k.epoch)
		phase, round, i, run, ok := parseName(ev.GetKey().GetName())
		switch {
		case ev.GetType() != messages.EventType_EVENT_ADDED || !ok || round != k.round || run != k.run:
			k.other.Add(1)
		case phase == 's' && i < len(k.sends):
			k.lag.add(now - time.Duration(k.sends[i].Load()))
			k.steady.Add(1)
		case phase == 'm':
			k.maxed.Add(1)
		case phase == 'y':
			k.synced.Add(1)
		default:
			k.other.Add(1)
		}
	}
}

// watchSet is a round's watches and their consumers.
type watchSet struct {
	cons    []*consumer
	wg      sync.WaitGroup // the consumers
	stopped bool
}

// open opens n watches of the Pods in namespace bench from the node's applied revision, starts
// a consumer for each, and waits until each has seen one write. The watches are the caller's to
// stop, error or not.
func (b *bench) open(round, n int, sends sendLog) (*watchSet, error) {
	ctx := context.Background()
	st, err := b.c.Status(ctx)
	if err != nil {
		return nil, err
	}
	var synced atomic.Int64
	ws := &watchSet{cons: make([]*consumer, n)}
	for i := range ws.cons {
		k := &consumer{round: round, run: b.run, sends: sends, epoch: b.epoch, synced: &synced}
		k.w = b.c.Watch(&messages.WatchRequest{Version: "v1", Kind: "Pod", Namespace: "bench", ResourceVersion: st.GetApplied()},
			actors.WatchOptions{Window: b.cfg.window})
		ws.cons[i] = k
		ws.wg.Go(k.consume)
	}
	if _, err := b.c.Put(ctx, b.object(objectName('y', round, 0, b.run)), messages.Reason_OPERATOR); err != nil {
		return ws, fmt.Errorf("first write: %w", err)
	}
	if !waitFor(b.cfg.openTimeout, func() bool { return synced.Load() == int64(n) }) {
		return ws, fmt.Errorf("only %d of %d watches saw the first write within %v (raise --open-timeout); %d ended: %v",
			synced.Load(), n, b.cfg.openTimeout, ws.errs(), ws.firstErr())
	}
	return ws, nil
}

// stop stops the watches, a few at a time (each Stop waits for its subscriber actor), and waits
// for the consumers to return.
func (ws *watchSet) stop() {
	if ws.stopped {
		return
	}
	ws.stopped = true
	todo := make(chan *consumer)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for k := range todo {
				k.w.Stop()
			}
		})
	}
	for _, k := range ws.cons {
		todo <- k
	}
	close(todo)
	wg.Wait()
	ws.wg.Wait()
}

// errs counts the watches that ended by themselves.
func (ws *watchSet) errs() int {
	n := 0
	for _, k := range ws.cons {
		if k.w.Err() != nil {
			n++
		}
	}
	return n
}

func (ws *watchSet) firstErr() error {
	for _, k := range ws.cons {
		if err := k.w.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (ws *watchSet) sum(f func(*consumer) int64) int64 {
	var s int64
	for _, k := range ws.cons {
		s += f(k)
	}
	return s
}
