package watcheractor

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kstore/kstore/messages"
)

// deliver is a watcher's WatchEvents for a subscriber behind a mux, handed to the stream of the
// subscriber's process. events are shared with other watchers and never modified.
type deliver struct {
	watchID string
	seq     uint64
	events  []*messages.WatchEvent
	watcher string // the watcher's actor id
	bytes   int    // the events' objects plus overhead
}

// streamFlush asks a stream to send what it has gathered.
type streamFlush struct{}

// streamRelease tells a stream its last watcher is gone: send what is left, then stop.
type streamRelease struct{}

const (
	// streamWindow bounds the WatchStream messages a stream has in flight without an ack.
	// Remote delivery shares one ordered connection per process; the window keeps watch
	// traffic from queueing without bound in front of that process's other replies.
	streamWindow = 8
	// maxStreamBytes bounds one WatchStream message (objects plus overhead), far below the
	// remote message limit that protoactor's batches of many messages must also fit in.
	maxStreamBytes = 1 << 20
	// streamAckTimeout gives up waiting for acks of a full window: acks are sent at most once,
	// like everything else, and a later one acknowledges every earlier message.
	streamAckTimeout = 5 * time.Second
)

// stream sends the events of every watch of one client process, multiplexed: each event once,
// and one message per flush rather than one per watch. It owns what it has gathered and its
// window of unacknowledged messages; the hub spawns one per mux and stops it with its last
// watcher.
type stream struct {
	mux       *actor.PID
	flushWait time.Duration

	pending   []deliver
	bytes     int
	queued    bool // a streamFlush is on its way
	seq       uint64
	acked     uint64
	waitSince time.Time // when the window filled
}

func (s *stream) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.Watch(s.mux)
	case deliver:
		s.pending = append(s.pending, m)
		s.bytes += m.bytes
		if s.bytes >= maxStreamBytes && s.seq-s.acked < streamWindow {
			s.flush(ctx)
		} else if !s.queued {
			// Wait a little: the other watchers of this process are handling the same push,
			// and their deliveries go out with this one.
			s.queued = true
			root, self := ctx.ActorSystem().Root, ctx.Self()
			time.AfterFunc(s.flushWait, func() { root.Send(self, streamFlush{}) })
		}
	case streamFlush:
		s.queued = false
		s.flush(ctx)
	case streamRelease:
		s.acked = s.seq // the last words go out whatever the window
		s.flush(ctx)
		ctx.Stop(ctx.Self())
	case *messages.WatchStreamAck:
		s.acked = max(s.acked, m.GetSeq())
		s.waitSince = time.Time{}
		s.flush(ctx)
	case *actor.Terminated:
		// The client process is gone; its watchers stop on their own subscribers' deaths.
		ctx.Stop(ctx.Self())
	}
}

// flush sends what is pending, in messages of at most maxStreamBytes, while the window allows.
func (s *stream) flush(ctx actor.Context) {
	for len(s.pending) > 0 {
		if s.seq-s.acked >= streamWindow {
			if s.waitSince.IsZero() {
				s.waitSince = time.Now()
			}
			if time.Since(s.waitSince) < streamAckTimeout {
				if !s.queued {
					s.queued = true
					root, self := ctx.ActorSystem().Root, ctx.Self()
					time.AfterFunc(streamAckTimeout, func() { root.Send(self, streamFlush{}) })
				}
				return // an ack, or the timeout, flushes again
			}
			s.acked, s.waitSince = s.seq, time.Time{} // the acks were lost
		}
		msg := &messages.WatchStream{}
		index := map[*messages.WatchEvent]uint32{}
		bytes, sent, n := 0, 0, 0
		for _, d := range s.pending {
			if n > 0 && bytes >= maxStreamBytes {
				break
			}
			del := &messages.WatchDelivery{WatchId: d.watchID, Seq: d.seq, Watcher: d.watcher, Events: make([]uint32, len(d.events))}
			for i, ev := range d.events {
				at, ok := index[ev]
				if !ok {
					at = uint32(len(msg.Events))
					index[ev] = at
					msg.Events = append(msg.Events, ev)
					bytes += len(ev.GetObject()) + eventOverhead
				}
				del.Events[i] = at
			}
			sent += d.bytes
			msg.Deliveries = append(msg.Deliveries, del)
			n++
		}
		s.pending = s.pending[n:]
		s.bytes -= sent
		s.seq++
		msg.Seq = s.seq
		ctx.Request(s.mux, msg)
	}
	s.pending, s.bytes = nil, 0
}
