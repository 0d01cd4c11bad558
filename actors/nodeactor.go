package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/raftactor"
	"github.com/kstore/kstore/watcheractor"
)

// stopTimeout bounds each step of a node's shutdown.
const stopTimeout = 10 * time.Second

// Internal messages between Node and its node actor.
type (
	// stopIntake makes the node actor refuse new work and answer with its children.
	stopIntake struct{}
	// servingQuery asks whether the node serves yet (a bool); see waitReady.
	servingQuery struct{}
	children     struct{ watch, catalog, raft *actor.PID }
)

// nodeActor is the node's public face, named "kstore" by default: it admits commands (validates
// and stamps them, then hands them to raft), routes reads to the catalog and status to raft, and
// supervises both. It holds no state beyond its children's PIDs.
type nodeActor struct {
	log *zap.Logger
	// fail reports that the node can no longer serve and must stop: an internal actor stopped
	// without being asked to, or this actor did (a Stop or Poison that reached it).
	fail     func(error)
	disk     *diskSpace // free space of the data dir, measured by a goroutine this actor owns
	watch    *actor.Props
	catalog  func(watch *actor.PID) *actor.Props
	raft     func(catalog *actor.PID) *actor.Props
	kids     children
	serving  bool // reads and writes are refused until raft has caught up (raftactor.CaughtUp)
	stopping bool
}

func (a *nodeActor) Receive(ctx actor.Context) {
	if ctx.Sender() == nil && needsReply(ctx.Message()) {
		// A request sent with Send rather than Request: there is no one to answer, and the
		// reply paths below the intake all assume a caller. Commands are the exception: a
		// command sent without a sender is carried out, its result goes nowhere.
		a.log.Debug("request without a sender dropped", zap.String("type", fmt.Sprintf("%T", ctx.Message())))
		return
	}
	switch {
	case a.stopping && refuse(ctx, shuttingDown, true):
		return
	case !a.serving && refuse(ctx, starting, false):
		return
	}
	switch m := ctx.Message().(type) {
	case *raftactor.CaughtUp:
		a.serving = true
	case servingQuery:
		ctx.Respond(a.serving)
	case *actor.Started:
		a.disk.start(ctx.ActorSystem().Root, ctx.Self())
		// The watch hub first, the catalog hands it changes; the catalog before raft, which
		// hands it committed entries from its first Ready on.
		var err error
		if a.kids.watch, err = ctx.SpawnNamed(a.watch, "watch"); err != nil {
			panic(err)
		}
		if a.kids.catalog, err = ctx.SpawnNamed(a.catalog(a.kids.watch), "catalog"); err != nil {
			panic(err)
		}
		ctx.Send(a.kids.watch, &watcheractor.Attach{Catalog: a.kids.catalog})
		if a.kids.raft, err = ctx.SpawnNamed(a.raft(a.kids.catalog), "raft"); err != nil {
			panic(err)
		}
	case *messages.Command:
		cmd, err := admit(m, time.Now())
		if err == nil {
			err = a.disk.admit(len(cmd.GetValue()) + len(cmd.GetPatch()))
		}
		if err != nil {
			ctx.Respond(&messages.CommandResult{RequestId: echoID(m), Status: messages.StatusOf(err)})
			return
		}
		ctx.Send(a.kids.raft, &raftactor.Propose{Command: cmd, ReplyTo: ctx.Sender()})
	case *messages.GetRequest, *messages.ListRequest:
		ctx.Forward(a.kids.catalog)
	case *messages.WatchRequest:
		ctx.Forward(a.kids.watch)
	case *messages.StatusRequest:
		ctx.Forward(a.kids.raft)
	case stopIntake:
		a.stopping = true
		ctx.Respond(a.kids)
	case *actor.Terminated:
		// A child stopped. During a stop that is the plan; otherwise the node lost a part it
		// cannot serve without (the supervisor reports failures it saw itself first).
		if !a.stopping {
			a.fail(fmt.Errorf("kstore: internal actor %s stopped while the node was serving", m.GetWho().GetId()))
		}
	case measured:
		a.disk.update(m)
	case *actor.Stopping:
		a.disk.close()
		if !a.stopping {
			a.stopping = true
			a.fail(fmt.Errorf("kstore: the node actor %s was stopped from outside the node's own shutdown", ctx.Self().GetId()))
		}
	}
}

// needsReply reports whether m is a request whose answer goes to its sender.
func needsReply(m any) bool {
	switch m.(type) {
	case *messages.GetRequest, *messages.ListRequest, *messages.WatchRequest, *messages.StatusRequest:
		return true
	}
	return false
}

var starting = &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
	Message: "the node is starting and still applying its log: retry shortly"}

// refuse answers a request with status and reports whether it did: every request while the node
// stops, every one but StatusRequest (which start-up polls) while it starts.
func refuse(ctx actor.Context, status *messages.Status, withStatus bool) bool {
	switch m := ctx.Message().(type) {
	case *messages.Command:
		ctx.Respond(&messages.CommandResult{RequestId: echoID(m), Status: status})
	case *messages.GetRequest:
		ctx.Respond(&messages.GetResult{Status: status})
	case *messages.ListRequest:
		ctx.Respond(&messages.ListResult{Status: status})
	case *messages.WatchRequest:
		ctx.Send(ctx.Sender(), &messages.WatchEvents{WatchId: m.GetWatchId(), Seq: 1, Events: []*messages.WatchEvent{
			{Type: messages.EventType_EVENT_ERROR, Status: status, Object: messages.StatusObjectJSON(status)}}})
	case *messages.StatusRequest:
		if !withStatus {
			return false
		}
		ctx.Respond(&messages.NodeStatus{Status: status})
	default:
		return false
	}
	return true
}

var shuttingDown = &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
	Message: "the node is shutting down: retry on another node, or once it is back"}

// echoID is the request id a refusal echoes: none when it is over the bound, which is one of
// the reasons for refusing.
func echoID(m *messages.Command) string {
	if id := m.GetRequestId(); len(id) <= messages.MaxRequestIDBytes {
		return id
	}
	return ""
}
