package actors

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/kstore/kstore/messages"
)

// watchScript is how a scripted node serves a watch.
type watchScript struct {
	applied uint64                // its revision: a watch from beyond it ends with Timeout
	serveTo uint64                // it delivers the history up to here (0: all of it), then ends
	end     messages.StatusReason // how: with this ERROR, or (unset) it stays
	dies    bool                  // or it dies: watcher and node actor stop
	refuses bool                  // it refuses every watch at once, as a starting node does
	silent  bool                  // it never answers
	dead    bool                  // no node actor at all: requests dead-letter
}

// watchNode is a scripted node actor: it logs each WatchRequest (name@resourceVersion) and
// spawns a scripted watcher for it that talks to the client's mux as a real one does.
type watchNode struct {
	name    string
	script  watchScript
	history []*messages.WatchEvent // every change, in order
	log     *arrivals
}

func (n *watchNode) Receive(ctx actor.Context) {
	req, ok := ctx.Message().(*messages.WatchRequest)
	if !ok {
		return
	}
	n.log.add(fmt.Sprintf("%s@%d", n.name, req.GetResourceVersion()))
	sub := ctx.Sender()
	switch {
	case n.script.silent:
		return
	case n.script.refuses:
		st := &messages.Status{Reason: messages.StatusReason_UNAVAILABLE, Message: "the node is starting"}
		ctx.Send(sub, &messages.WatchEvents{WatchId: req.GetWatchId(), Seq: 1, Events: []*messages.WatchEvent{
			{Type: messages.EventType_EVENT_ERROR, Status: st}}})
		return
	}
	w := &scriptedWatcher{req: req, sub: sub, dies: n.script.dies}
	if req.GetResourceVersion() > n.script.applied {
		w.end = &messages.Status{Reason: messages.StatusReason_TIMEOUT, ResourceVersion: n.script.applied,
			Message: fmt.Sprintf("resourceVersion %d is ahead of this node's applied resourceVersion %d", req.GetResourceVersion(), n.script.applied)}
		w.dies = false
	} else {
		for _, ev := range n.history {
			if ev.GetResourceVersion() > req.GetResourceVersion() && ev.GetResourceVersion() <= n.script.applied &&
				(n.script.serveTo == 0 || ev.GetResourceVersion() <= n.script.serveTo) {
				w.events = append(w.events, ev)
			}
		}
		if n.script.end != messages.StatusReason_STATUS_REASON_UNSPECIFIED {
			w.end = &messages.Status{Reason: n.script.end, Message: "scripted " + messages.ReasonName(n.script.end)}
		}
	}
	ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return w }))
}

// scriptedWatcher says hello, sends its events and its end through the client's mux, then waits
// for the cancel, or dies with its node.
type scriptedWatcher struct {
	req    *messages.WatchRequest
	sub    *actor.PID
	events []*messages.WatchEvent
	end    *messages.Status
	dies   bool
	seq    uint64
}

func (w *scriptedWatcher) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		w.send(ctx, nil)
		if len(w.events) > 0 {
			w.send(ctx, w.events)
		}
		if w.end != nil {
			w.send(ctx, []*messages.WatchEvent{{Type: messages.EventType_EVENT_ERROR, Status: w.end}})
		}
		if w.dies {
			ctx.Stop(ctx.Parent())
		}
	case *messages.WatchCancel:
		ctx.Stop(ctx.Self())
	}
}

func (w *scriptedWatcher) send(ctx actor.Context, events []*messages.WatchEvent) {
	w.seq++
	at := make([]uint32, len(events))
	for i := range at {
		at[i] = uint32(i)
	}
	mux := actor.NewPID(w.sub.GetAddress(), w.req.GetMux())
	ctx.Request(mux, &messages.WatchStream{Seq: w.seq, Events: events, Deliveries: []*messages.WatchDelivery{
		{WatchId: w.req.GetWatchId(), Seq: w.seq, Events: at, Watcher: ctx.Self().GetId()}}})
}

// changes is a history of one ADDED event per revision from..to.
func changes(from, to uint64) []*messages.WatchEvent {
	var evs []*messages.WatchEvent
	for rv := from; rv <= to; rv++ {
		evs = append(evs, &messages.WatchEvent{Type: messages.EventType_EVENT_ADDED, ResourceVersion: rv,
			Key: &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: fmt.Sprintf("p%d", rv)}})
	}
	return evs
}

// scriptedWatchCluster spawns a scripted node per script (named a, b, c, ...) over history and a
// client of them.
func scriptedWatchCluster(t *testing.T, timeout time.Duration, history []*messages.WatchEvent, scripts ...watchScript) (*Client, *arrivals) {
	t.Helper()
	system := quietSystem()
	log := &arrivals{}
	pids := make([]*actor.PID, len(scripts))
	for i, sc := range scripts {
		n := &watchNode{name: string(rune('a' + i)), script: sc, history: history, log: log}
		pids[i] = system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return n }))
		if sc.dead {
			if err := system.Root.StopFuture(pids[i]).Wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := NewClientPIDs(system, pids, timeout)
	t.Cleanup(func() {
		c.Close()
		for _, pid := range pids {
			_ = system.Root.StopFuture(pid).Wait()
		}
		system.Shutdown()
	})
	return c, log
}

// TestWatchResumesOnTheNextEndpoint scripts a pair (or trio) of nodes, the first of which
// stops serving the watch part-way, and checks that the caller sees each change after the
// watch's start exactly once, in order, and which node was asked to watch from where.
func TestWatchResumesOnTheNextEndpoint(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions...)
	all := changes(2, 11)
	tests := []struct {
		name    string
		scripts []watchScript
		asked   []string // the WatchRequests, node@resourceVersion, in order
	}{
		{name: "first dies at rv 6",
			scripts: []watchScript{{applied: 11, serveTo: 6, dies: true}, {applied: 11}},
			asked:   []string{"a@1", "b@6"}},
		{name: "first ends with Unavailable at rv 6",
			scripts: []watchScript{{applied: 11, serveTo: 6, end: messages.StatusReason_UNAVAILABLE}, {applied: 11}},
			asked:   []string{"a@1", "b@6"}},
		{name: "first ends with Timeout at rv 6",
			scripts: []watchScript{{applied: 11, serveTo: 6, end: messages.StatusReason_TIMEOUT}, {applied: 11}},
			asked:   []string{"a@1", "b@6"}},
		{name: "the next is behind, the one after serves",
			scripts: []watchScript{{applied: 11, serveTo: 6, dies: true}, {applied: 4}, {applied: 11}},
			asked:   []string{"a@1", "b@6", "c@6"}},
		{name: "the first refuses at start",
			scripts: []watchScript{{refuses: true}, {applied: 11}},
			asked:   []string{"a@1", "b@1"}},
		{name: "the first is dead",
			scripts: []watchScript{{dead: true}, {applied: 11}},
			asked:   []string{"b@1"}},
		{name: "the first is silent",
			scripts: []watchScript{{silent: true}, {applied: 11}},
			asked:   []string{"a@1", "b@1"}},
		{name: "every node is behind for a while",
			scripts: []watchScript{{applied: 11, serveTo: 6, dies: true}, {applied: 4}, {applied: 5}, {applied: 11}},
			asked:   []string{"a@1", "b@6", "c@6", "d@6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, log := scriptedWatchCluster(t, time.Second, all, tt.scripts...)
			w := c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: 1}, WatchOptions{})
			var got []uint64
			for range all {
				got = append(got, next(t, w).GetResourceVersion())
			}
			w.Stop()
			for ev := range w.Events() {
				got = append(got, ev.GetResourceVersion())
			}
			var want []uint64
			for _, ev := range all {
				want = append(want, ev.GetResourceVersion())
			}
			if !slices.Equal(got, want) {
				t.Errorf("the caller saw %v, want %v: each change once, in order", got, want)
			}
			if got := log.take(); !slices.Equal(got, tt.asked) {
				t.Errorf("watch requests %v, want %v", got, tt.asked)
			}
			if err := w.Err(); err != nil {
				t.Errorf("err = %v after Stop, want nil", err)
			}
		})
	}
}

// TestWatchResumesFromABookmark checks that a bookmark the caller did not ask for still moves
// the resume point, and stays hidden from the caller.
func TestWatchResumesFromABookmark(t *testing.T) {
	history := append(changes(2, 4), &messages.WatchEvent{Type: messages.EventType_EVENT_BOOKMARK, ResourceVersion: 6})
	history = append(history, changes(7, 8)...)
	c, log := scriptedWatchCluster(t, time.Second, history, watchScript{applied: 8, serveTo: 6, dies: true}, watchScript{applied: 8})
	w := c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: 1}, WatchOptions{})
	defer w.Stop()
	var got []uint64
	for range 5 {
		ev := next(t, w)
		if ev.GetType() == messages.EventType_EVENT_BOOKMARK {
			t.Fatalf("the caller got %s, a bookmark it did not ask for", describe(ev))
		}
		got = append(got, ev.GetResourceVersion())
	}
	if want := []uint64{2, 3, 4, 7, 8}; !slices.Equal(got, want) {
		t.Errorf("the caller saw %v, want %v", got, want)
	}
	if got, want := log.take(), []string{"a@1", "b@6"}; !slices.Equal(got, want) {
		t.Errorf("watch requests %v, want %v: the resume starts at the bookmark", got, want)
	}
}

// TestWatchEnds checks the endings a resume cannot help: Gone and Invalid at once, Timeout once
// every endpoint said the resourceVersion is ahead of it since the last event (a dead endpoint
// has not said so: it may come back with it, and the watch keeps trying; see
// TestWatchResumesOnTheNextEndpoint), and the retry budget.
func TestWatchEnds(t *testing.T) {
	all := changes(2, 11)
	tests := []struct {
		name      string
		scripts   []watchScript
		giveUp    time.Duration
		want      messages.StatusReason
		asked     []string // nil: not checked
		minAsked  int
		delivered int
	}{
		{name: "Gone is final",
			scripts: []watchScript{{applied: 11, serveTo: 6, end: messages.StatusReason_GONE}, {applied: 11}},
			want:    messages.StatusReason_GONE, asked: []string{"a@1"}, delivered: 5},
		{name: "Invalid is final",
			scripts: []watchScript{{applied: 11, end: messages.StatusReason_INVALID, serveTo: 1}, {applied: 11}},
			want:    messages.StatusReason_INVALID, asked: []string{"a@1"}},
		{name: "ahead of every endpoint",
			scripts: []watchScript{{applied: 0}, {applied: 0}, {applied: 0}},
			want:    messages.StatusReason_TIMEOUT, asked: []string{"a@1", "b@1", "c@1"}},
		{name: "ahead of every endpoint after progress",
			scripts: []watchScript{{applied: 11, serveTo: 6, end: messages.StatusReason_TIMEOUT}, {applied: 4}, {applied: 5}},
			want:    messages.StatusReason_TIMEOUT, asked: []string{"a@1", "b@6", "c@6"}, delivered: 5},
		// A budget is for endpoints down or refusing: one round of "ahead" answers ends it.
		{name: "ahead of every endpoint with a budget",
			scripts: []watchScript{{applied: 0}, {applied: 0}}, giveUp: 300 * time.Millisecond,
			want: messages.StatusReason_TIMEOUT, asked: []string{"a@1", "b@1"}},
		{name: "every endpoint dead for the whole budget",
			scripts: []watchScript{{dead: true}, {dead: true}}, giveUp: 300 * time.Millisecond,
			want: messages.StatusReason_UNAVAILABLE},
		{name: "every endpoint refusing for the whole budget",
			scripts: []watchScript{{refuses: true}, {refuses: true}}, giveUp: 300 * time.Millisecond,
			want: messages.StatusReason_UNAVAILABLE, minAsked: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, log := scriptedWatchCluster(t, time.Second, all, tt.scripts...)
			w := c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: 1}, WatchOptions{GiveUpAfter: tt.giveUp})
			defer w.Stop()
			n := 0
			for {
				select {
				case _, ok := <-w.Events():
					if ok {
						n++
						continue
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("the watch did not end within 10s (%d events)", n)
				}
				break
			}
			if got := messages.ReasonOf(w.Err()); got != tt.want {
				t.Errorf("err = %v, want %s", w.Err(), messages.ReasonName(tt.want))
			}
			if n != tt.delivered {
				t.Errorf("delivered %d events, want %d", n, tt.delivered)
			}
			got := log.take()
			if tt.asked != nil && !slices.Equal(got, tt.asked) {
				t.Errorf("watch requests %v, want %v", got, tt.asked)
			}
			if len(got) < tt.minAsked {
				t.Errorf("watch requests %v, want at least %d: the budget allows retries", got, tt.minAsked)
			}
		})
	}
}
