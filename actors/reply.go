package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// replyBox is the sender address of one blocking request: a process in the actor system's
// registry that keeps the first message it gets, the reply, and drops any later one. The client
// waits on it instead of an actor.Future, because a Future writes its result outside its lock
// for every message that reaches it: a reply racing another message (a dead-letter response, or
// the cancellation a caller whose context ended used to send to complete the future) is a data
// race on the result, which `go test -race` caught in TestCallEndsWithItsContext.
type replyBox struct {
	reg *actor.ProcessRegistryValue
	ch  chan any // capacity 1: the first message
}

// deadLetter stands for the DeadLetterResponse a request to no actor gets.
type deadLetter struct{}

func (b *replyBox) SendUserMessage(_ *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	if _, ok := msg.(*actor.DeadLetterResponse); ok {
		msg = deadLetter{}
	}
	select {
	case b.ch <- msg:
	default: // not the first: the request has its answer
	}
}

// SendSystemMessage ignores system messages: a request's reply is a user message.
func (b *replyBox) SendSystemMessage(*actor.PID, any) {}

func (b *replyBox) Stop(pid *actor.PID) { b.reg.Remove(pid) }

// request sends msg to pid and waits for the reply, at most wait, or until ctx ends. Its errors
// are the Future's, so that callers read them alike: actor.ErrTimeout when wait passed,
// actor.ErrDeadLetter when no actor had pid; errCancelled when ctx ended first. It starts no
// goroutine, and a reply that comes after it returned reaches no one.
func request(ctx context.Context, root *actor.RootContext, pid *actor.PID, msg any, wait time.Duration) (any, error) {
	reg := root.ActorSystem().ProcessRegistry
	b := &replyBox{reg: reg, ch: make(chan any, 1)}
	self, _ := reg.Add(b, "reply"+reg.NextId())
	defer b.Stop(self)
	root.RequestWithCustomSender(pid, msg, self)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case m := <-b.ch:
		if _, ok := m.(deadLetter); ok {
			return nil, actor.ErrDeadLetter
		}
		return m, nil
	case <-t.C:
		return nil, actor.ErrTimeout
	case <-ctx.Done():
		return nil, errCancelled
	}
}
