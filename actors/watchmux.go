package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kstore/kstore/messages"
)

// Messages from subscribers to their mux.
type (
	muxRegister struct {
		watchID string
		sub     *actor.PID
	}
	muxUnregister struct{ watchID string }
	// muxRelay asks the mux to send msg to the subscriber to behind every delivery it has
	// received so far: a subscriber whose watcher stopped then reads the watcher's last events
	// (an ERROR saying why) before it decides what the stop means.
	muxRelay struct {
		to  *actor.PID
		msg any
	}
	// muxWake asks the mux to send the subscriber refill after muxWakeAfter: it waits for its
	// caller to take events before it can grant the node more credits.
	muxWake struct{ sub *actor.PID }
	muxTick struct{}
)

// muxWakeAfter is how soon a subscriber waiting for its caller looks again.
const muxWakeAfter = 5 * time.Millisecond

// mux is a Client's end of the nodes' watch streams: it receives the events of every watch of
// the process multiplexed (WatchStream, each event once), acknowledges them, and hands each
// subscriber its WatchEvents, with the watcher as the sender. It owns the table of watch ids.
type mux struct {
	subs      map[string]*actor.PID
	waking    []*actor.PID // subscribers to wake at the next tick
	ticking   bool
	cancelled map[string]bool // watches it no longer knows and told their watchers so
}

// maxCancelled bounds the memory of cancelled watches; forgetting one only means cancelling it
// again should more of its events come.
const maxCancelled = 10_000

func (m *mux) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		m.subs, m.cancelled = map[string]*actor.PID{}, map[string]bool{}
	case muxRegister:
		m.subs[msg.watchID] = msg.sub
	case muxUnregister:
		delete(m.subs, msg.watchID)
	case muxRelay:
		ctx.Send(msg.to, msg.msg)
	case muxWake:
		m.waking = append(m.waking, msg.sub)
		if !m.ticking {
			m.ticking = true
			root, self := ctx.ActorSystem().Root, ctx.Self()
			time.AfterFunc(muxWakeAfter, func() { root.Send(self, muxTick{}) })
		}
	case muxTick:
		m.ticking = false
		waking := m.waking
		m.waking = nil
		for _, sub := range waking {
			ctx.Send(sub, refill{})
		}
	case *messages.WatchStream:
		if ctx.Sender() != nil {
			ctx.Respond(&messages.WatchStreamAck{Seq: msg.GetSeq()})
		}
		node := ctx.Sender().GetAddress()
		for _, d := range msg.GetDeliveries() {
			sub, ok := m.subs[d.GetWatchId()]
			if !ok {
				// A watch given up on whose watcher the subscriber could not cancel (its first
				// message was lost, say): cancel it here, once.
				if id := d.GetWatchId(); !m.cancelled[id] && d.GetWatcher() != "" {
					if len(m.cancelled) >= maxCancelled {
						clear(m.cancelled)
					}
					m.cancelled[id] = true
					ctx.Send(actor.NewPID(node, d.GetWatcher()), &messages.WatchCancel{WatchId: id})
				}
				continue
			}
			out := &messages.WatchEvents{WatchId: d.GetWatchId(), Seq: d.GetSeq(), Events: deliveryEvents(msg.GetEvents(), d.GetEvents())}
			if d.GetSeq() == 1 {
				// The hello: the subscriber learns its watcher from the sender. Later messages
				// need none, and a send without one allocates neither a PID nor an envelope.
				ctx.RequestWithCustomSender(sub, out, actor.NewPID(node, d.GetWatcher()))
			} else {
				ctx.Send(sub, out)
			}
		}
	}
}

// deliveryEvents is the events a delivery indexes in its stream message's events. Indices that
// run in order over a range (every event of the message, for watchers that see every change)
// share the message's slice, which nobody changes, instead of copying it once per watcher. An
// index out of range gives none.
func deliveryEvents(events []*messages.WatchEvent, at []uint32) []*messages.WatchEvent {
	if len(at) == 0 {
		return nil
	}
	first := int(at[0])
	contiguous := first+len(at) <= len(events)
	for i, x := range at {
		if int(x) != first+i {
			contiguous = false
			break
		}
	}
	if contiguous {
		return events[first : first+len(at) : first+len(at)]
	}
	evs := make([]*messages.WatchEvent, len(at))
	for i, x := range at {
		if int(x) >= len(events) {
			return nil
		}
		evs[i] = events[x]
	}
	return evs
}
