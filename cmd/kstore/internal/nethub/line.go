package nethub

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Bounds of a port's queue. A frame that would take a queue past either is dropped and
// counted (Stats.Overflowed), as a switch drops what its buffer cannot hold.
const (
	// maxQueueFrames bounds the frames waiting in one port's queue: at 200 ms of delay it
	// lets a port carry 20,000 frames a second, more than a test cluster sends, and the
	// ring of 4096 slots costs 192 KiB per port.
	maxQueueFrames = 4096
	// maxQueueBytes bounds the bytes waiting in one port's queue, the bound GSO frames (up to
	// 64 KiB each) meet first: 8 MiB lets a port carry 40 MiB/s at 200 ms of delay.
	maxQueueBytes = 8 << 20
)

// frame is one frame on its way out of a port: its virtio-net header and Ethernet frame, as
// read, and when it may leave. data is shared by the copies of a flooded frame and never
// written after it was read.
type frame struct {
	data []byte
	due  time.Time
}

// line is the queue and delay line of one output port: frames wait in arrival order until
// their due time, then run sends them. Any goroutine may push; one goroutine runs it.
type line struct {
	mu    sync.Mutex
	ring  [maxQueueFrames]frame // ring[head], ring[head+1], ... (mod len) are queued
	head  int
	n     int
	bytes int           // sum of len(data) of the queued frames, at most maxQueueBytes
	wake  chan struct{} // capacity 1; signalled when a frame is pushed onto an empty line
}

func newLine() *line {
	return &line{wake: make(chan struct{}, 1)}
}

// push queues f, or reports false (f dropped) when the line holds maxQueueFrames frames or f
// would take it past maxQueueBytes.
func (l *line) push(f frame) bool {
	l.mu.Lock()
	if l.n == len(l.ring) || l.bytes+len(f.data) > maxQueueBytes {
		l.mu.Unlock()
		return false
	}
	l.ring[(l.head+l.n)%len(l.ring)] = f
	l.n++
	l.bytes += len(f.data)
	wasEmpty := l.n == 1
	l.mu.Unlock()
	if wasEmpty {
		select {
		case l.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	return true
}

// peek returns the frame at the head of the line, if any, leaving it queued.
func (l *line) peek() (frame, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return frame{}, false
	}
	return l.ring[l.head], true
}

// pop removes the frame at the head of the line.
func (l *line) pop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bytes -= len(l.ring[l.head].data)
	l.ring[l.head] = frame{} // let the frame's bytes be collected
	l.head = (l.head + 1) % len(l.ring)
	l.n--
}

// run sends the queued frames, each at its due time and in the order they were pushed, until
// ctx ends or send returns errClosed (the port's socket is closed). A frame that send fails
// to send otherwise is dropped, and send counts it. run is the line's only consumer.
func (l *line) run(ctx context.Context, send func([]byte) error) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		f, ok := l.peek()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-l.wake:
			}
			continue
		}
		if wait := time.Until(f.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		l.pop()
		if err := send(f.data); errors.Is(err, errClosed) {
			return
		}
	}
}
