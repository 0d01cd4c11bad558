package actors

import (
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
)

// mux is a Client's end of the nodes' watch streams: it receives the events of every watch of
// the process multiplexed (WatchStream, each event once), acknowledges them, and hands each
// subscriber its WatchEvents, with the watcher as the sender. It owns the table of watch ids.
type mux struct {
	subs map[string]*actor.PID
}

func (m *mux) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		m.subs = map[string]*actor.PID{}
	case muxRegister:
		m.subs[msg.watchID] = msg.sub
	case muxUnregister:
		delete(m.subs, msg.watchID)
	case *messages.WatchStream:
		if ctx.Sender() != nil {
			ctx.Respond(&messages.WatchStreamAck{Seq: msg.GetSeq()})
		}
		node := ctx.Sender().GetAddress()
		for _, d := range msg.GetDeliveries() {
			sub, ok := m.subs[d.GetWatchId()]
			if !ok {
				continue // a watch given up on
			}
			evs := make([]*messages.WatchEvent, len(d.GetEvents()))
			for i, at := range d.GetEvents() {
				if int(at) >= len(msg.GetEvents()) {
					evs = nil
					break
				}
				evs[i] = msg.GetEvents()[at]
			}
			out := &messages.WatchEvents{WatchId: d.GetWatchId(), Seq: d.GetSeq(), Events: evs}
			if d.GetWatcher() != "" {
				ctx.RequestWithCustomSender(sub, out, actor.NewPID(node, d.GetWatcher()))
			} else {
				ctx.Send(sub, out)
			}
		}
	}
}
