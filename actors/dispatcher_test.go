package actors

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
)

// TestOwnDispatcher: an actor on an ownDispatcher gets every message in order, all on one
// goroutine, and a Schedule after close still runs (on a goroutine of its own); close ends the
// dispatcher's goroutine.
func TestOwnDispatcher(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions...)
	sys := quietSystem()
	defer sys.Shutdown()
	var ds dispatchers
	const n = 5000
	got := make(chan int, n)
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if i, ok := c.Message().(int); ok {
			got <- i
		}
	}, ds.own()))
	// Senders from several goroutines at once, each in order.
	for s := range 4 {
		go func() {
			for i := s; i < n; i += 4 {
				sys.Root.Send(pid, i)
			}
		}()
	}
	last := map[int]int{0: -4, 1: -3, 2: -2, 3: -1}
	for range n {
		select {
		case i := <-got:
			if i != last[i%4]+4 {
				t.Fatalf("message %d after %d from the same sender", i, last[i%4])
			}
			last[i%4] = i
		case <-time.After(10 * time.Second):
			t.Fatal("messages stopped arriving")
		}
	}
	if err := sys.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	ds.close()

	// An actor given a dispatcher after close still runs, and leaves no goroutine behind.
	late := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if i, ok := c.Message().(int); ok {
			got <- i
		}
	}, ds.own()))
	sys.Root.Send(late, 7)
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("an actor on a dispatcher owned after close got no message")
	}
	if err := sys.Root.StopFuture(late).Wait(); err != nil {
		t.Fatal(err)
	}

	d := newOwnDispatcher()
	d.close()
	ran := make(chan struct{})
	d.Schedule(func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("a run scheduled after close did not run")
	}
}
