package actors

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/cluster"
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
	// reserveQuery asks whether writes are refused for the disk reserve: the refusal's error,
	// or nil (CheckHealth).
	reserveQuery  struct{}
	reserveAnswer struct{ err error }
	children      struct{ watch, catalog, raft *actor.PID }
)

// nodeActor is the node's public face, named "kstore" by default: it admits commands (validates
// and stamps them, then hands them to raft), routes reads to the catalog and status to raft, and
// supervises both. It holds no state beyond its children's PIDs.
type nodeActor struct {
	id      uint64
	name    string            // the node actor's name, the same on every member
	members map[uint64]string // every member's address, by node id
	log     *zap.Logger
	// fail reports that the node can no longer serve and must stop: an internal actor stopped
	// without being asked to, or this actor did (a Stop or Poison that reached it).
	fail     func(error)
	disk     *diskSpace // free space of the data dir, measured by a goroutine this actor owns
	stale    bool       // linearizable gets and lists skip the read barrier: Faults.StaleReads (test builds only)
	watch    *actor.Props
	catalog  func(watch *actor.PID) *actor.Props
	raft     func(catalog *actor.PID) *actor.Props
	kids     children
	serving  bool // reads and writes are refused until raft has caught up (raftactor.CaughtUp)
	stopping bool
	// leader is the member raft last reported leading (0: none known); leads is set when that
	// is this node. Writes go to raft here only when it leads, else to the leader's node actor.
	leader uint64
	leads  bool
	// held are the linearizable reads waiting for raft's read barrier (raftactor.ReadIndexed),
	// by barrier id; raft bounds how many wait and answers each one.
	held     map[uint64]heldRead
	nextRead uint64
	// barrier observes the wait of a held read for raft's barrier; nil: metrics off.
	barrier prometheus.Observer
	// down are the peers whose node actor was reported terminated (the process died or the
	// connection broke) since raft last named them leader.
	down map[uint64]bool
	// ms is what this node knows of the members and their identities (members.go).
	ms *membership
	// cluster is the actor cluster the node is a member of (nil: none), for ClusterInfoRequest.
	cluster   *cluster.Config
	helloStop chan struct{}
	helloDone chan struct{}
	// guard is told the members' addresses whenever they change (peer.go); nil when the node
	// runs in a system of the caller's. told is what it was told last.
	guard func(map[uint64]string)
	told  map[uint64]string
}

// tellGuard tells the guard the members' addresses, this node's included, if they changed.
func (a *nodeActor) tellGuard(ctx actor.Context) {
	if a.guard == nil {
		return
	}
	now := maps.Clone(a.members)
	now[a.id] = ctx.Self().GetAddress()
	if maps.Equal(now, a.told) {
		return
	}
	a.told = now
	a.guard(now)
}

type helloTick struct{}

// startHellos starts the goroutine that has this node say Hello every helloInterval; Stopping
// stops it.
func (a *nodeActor) startHellos(ctx actor.Context) {
	stop, done := make(chan struct{}), make(chan struct{})
	a.helloStop, a.helloDone = stop, done
	root, self := ctx.ActorSystem().Root, ctx.Self()
	go func() {
		defer close(done)
		t := time.NewTicker(helloInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				root.Send(self, helloTick{})
			}
		}
	}()
}

// peerGone notes that a peer's node actor was reported terminated: its process stopped, or
// its connection broke. A pid of a member removed since is forgotten.
func (a *nodeActor) peerGone(ctx actor.Context, pid *actor.PID) {
	id, ok := a.peerOf(pid)
	if !ok {
		return
	}
	// Writes are not forwarded to it into the void until it is back (Hello) or raft reports a
	// leader again.
	a.log.Info("peer unreachable", zap.Uint64("peer", id), zap.String("address", pid.GetAddress()))
	a.down[id] = true
	// Whoever answers at that address next says Hello again before raft takes its messages,
	// and is watched again.
	delete(a.ms.checked, id)
	delete(a.ms.acked, id)
	delete(a.ms.watched, id)
	ctx.Send(a.kids.raft, &raftactor.Unreachable{ID: id})
}

// peerOf reports which peer's node actor pid is.
func (a *nodeActor) peerOf(pid *actor.PID) (uint64, bool) {
	if pid.GetId() != a.name {
		return 0, false
	}
	for id, addr := range a.members {
		if id != a.id && addr == pid.GetAddress() {
			return id, true
		}
	}
	return 0, false
}

// heldRead is a read and its caller, held until raft confirms that this node's state is
// current enough to serve it linearizably.
type heldRead struct {
	msg    any
	sender *actor.PID
	at     time.Time // when it was held; zero when metrics are off
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
	case *raftactor.Leader:
		a.leader, a.leads = m.ID, m.Self
		if a.down[m.ID] {
			delete(a.down, m.ID) // raft heard from it: it is back
			a.watchPeers(ctx)
		}
		a.log.Info("leader changed", zap.Uint64("leader", m.ID), zap.Uint64("term", m.Term))
	case *raftactor.ReadIndexed:
		a.readIndexed(ctx, m)
	case servingQuery:
		ctx.Respond(a.serving)
	case reserveQuery:
		ctx.Respond(reserveAnswer{a.disk.admit(0)})
	case *actor.Started:
		a.disk.start(ctx.ActorSystem().Root, ctx.Self())
		// Introduce this node to its peers before its raft speaks: they take its Raft messages
		// only once they know who it is.
		a.down = map[uint64]bool{}
		a.sayHello(ctx)
		a.startHellos(ctx)
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
		a.watchPeers(ctx)
		a.tellGuard(ctx)
	case *messages.Command:
		a.command(ctx, m, false)
	case *messages.Forwarded:
		if m.GetMember() != nil {
			a.memberRequest(ctx, m.GetMember(), true)
			return
		}
		a.command(ctx, m.GetCommand(), true)
	case *messages.MemberRequest:
		a.memberRequest(ctx, m, false)
	case *messages.Hello:
		a.hello(ctx, m)
		a.tellGuard(ctx)
	case *messages.HelloAck:
		a.helloAck(ctx, m)
	case helloTick:
		a.sayHello(ctx)
	case *messages.MemberRefused:
		a.refused(ctx, m)
	case *raftactor.MembersChanged:
		a.membersChanged(ctx, m)
		a.tellGuard(ctx)
	case *messages.GetRequest:
		if m.GetResourceVersion() != 0 || m.GetConsistency() == messages.Consistency_SERIALIZABLE || a.stale {
			ctx.Forward(a.kids.catalog)
			return
		}
		a.hold(ctx)
	case *messages.ListRequest:
		if m.GetResourceVersion() != 0 || m.GetContinue() != "" || m.GetConsistency() == messages.Consistency_SERIALIZABLE || a.stale {
			ctx.Forward(a.kids.catalog) // a continue token reads at the revision of its first page
			return
		}
		a.hold(ctx)
	case *messages.WatchRequest:
		if m.GetResourceVersion() != 0 || m.GetConsistency() == messages.Consistency_SERIALIZABLE {
			ctx.Forward(a.kids.watch)
			return
		}
		a.hold(ctx)
	case *messages.StatusRequest:
		ctx.Forward(a.kids.raft)
	case *messages.HashKVRequest:
		ctx.Forward(a.kids.catalog)
	case *messages.SnapshotSaveRequest:
		// The catalog reads itself at its applied index when the request reaches it: after a
		// read barrier, that holds every write acknowledged before the request (catalogactor/save.go).
		if m.GetConsistency() == messages.Consistency_SERIALIZABLE {
			ctx.Forward(a.kids.catalog)
			return
		}
		a.hold(ctx)
	case *messages.ClusterInfoRequest:
		info := a.clusterInfo()
		if info.GetStatus() == nil {
			info.Members = cluster.Members(ctx.ActorSystem())
		}
		ctx.Respond(info)
	case *catalogactor.Installed:
		// The catalog holds the snapshot's state: raft learns how far it reaches, then steps
		// the snapshot message, which moves its log to the same index.
		ctx.Send(a.kids.raft, &raftactor.Applied{Index: m.Applied, Compacted: m.Compacted})
		ctx.Send(a.kids.raft, &raftactor.Durable{Index: m.Applied})
		ctx.Send(a.kids.raft, &raftactor.InstallSnapshot{Message: m.Message})
	case stopIntake:
		a.stopping = true
		ctx.Respond(a.kids)
	case *actor.Terminated:
		if m.GetWho().GetAddress() != ctx.Self().GetAddress() {
			a.peerGone(ctx, m.GetWho())
			return
		}
		// A child stopped. During a stop that is the plan; otherwise the node lost a part it
		// cannot serve without (the supervisor reports failures it saw itself first).
		if !a.stopping {
			a.fail(fmt.Errorf("kstore: internal actor %s stopped while the node was serving", m.GetWho().GetId()))
		}
	case measured:
		a.disk.update(m)
	case *actor.Stopping:
		a.disk.close()
		if a.helloStop != nil {
			close(a.helloStop)
			<-a.helloDone
			a.helloStop = nil
		}
		if !a.stopping {
			a.stopping = true
			a.fail(fmt.Errorf("kstore: the node actor %s was stopped from outside the node's own shutdown", ctx.Self().GetId()))
		}
	}
}

// clusterInfo tells a client how to join the actor cluster. With the automanaged provider the
// endpoints are the health addresses of the members as this node knows them now, so a client
// also finds the members added since the others started.
func (a *nodeActor) clusterInfo() *messages.ClusterInfo {
	if a.cluster == nil {
		return &messages.ClusterInfo{Status: &messages.Status{Reason: messages.StatusReason_NOT_FOUND,
			Message: "this kstore node is in no actor cluster: reach it by address (--endpoints)"}}
	}
	info := &messages.ClusterInfo{Name: cmp.Or(a.cluster.Name, cluster.DefaultName), Provider: cmp.Or(a.cluster.Provider, cluster.Automanaged),
		Endpoints: a.cluster.Endpoints, Kind: cluster.Kind, Identity: cluster.Identity}
	if info.Provider == cluster.Automanaged && len(info.Endpoints) == 0 {
		for _, id := range slices.Sorted(maps.Keys(a.members)) {
			if h, err := cluster.HealthAddress(a.members[id]); err == nil {
				info.Endpoints = append(info.Endpoints, h)
			}
		}
	}
	return info
}

// command proposes a write where this node leads, and forwards it to the leader otherwise. A
// forwarded command is not forwarded again: a member that got one and does not lead (leadership
// moved on the way) refuses it with Unavailable, and the caller retries.
func (a *nodeActor) command(ctx actor.Context, m *messages.Command, forwarded bool) {
	if m == nil {
		m = &messages.Command{}
	}
	if !a.leads && len(a.members) > 1 {
		switch {
		case forwarded:
			ctx.Respond(&messages.CommandResult{RequestId: echoID(m), Status: &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
				Message: fmt.Sprintf("node %d got a write forwarded as to the leader, but it does not lead now (leadership is changing): nothing was written; retry", a.id)}})
		case a.leader == 0 || a.members[a.leader] == "":
			ctx.Respond(&messages.CommandResult{RequestId: echoID(m), Status: &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
				Message: fmt.Sprintf("node %d knows no leader (an election is under way, or it is cut off from the quorum): nothing was written; retry shortly, or on another member", a.id)}})
		case a.down[a.leader]:
			ctx.Respond(&messages.CommandResult{RequestId: echoID(m), Status: &messages.Status{Reason: messages.StatusReason_UNAVAILABLE,
				Message: fmt.Sprintf("the leader, node %d, is unreachable from node %d (a new one is being elected): nothing was written; retry shortly", a.leader, a.id)}})
		default:
			// The leader answers the caller directly; this node keeps no state for it.
			ctx.RequestWithCustomSender(actor.NewPID(a.members[a.leader], a.name),
				&messages.Forwarded{Command: m, From: a.id}, ctx.Sender())
		}
		return
	}
	cmd, err := admit(m, time.Now())
	if err == nil {
		err = a.disk.admit(len(cmd.GetValue()) + len(cmd.GetPatch()))
	}
	if err != nil {
		ctx.Respond(&messages.CommandResult{RequestId: echoID(m), Status: messages.StatusOf(err)})
		return
	}
	ctx.Send(a.kids.raft, &raftactor.Propose{Command: cmd, ReplyTo: ctx.Sender()})
}

// hold asks raft for a read barrier and keeps the read until raft answers: then it goes to the
// catalog (or the watch hub, for the start of a watch), which serves it at a state that holds
// every write acknowledged before the read arrived.
func (a *nodeActor) hold(ctx actor.Context) {
	if a.held == nil {
		a.held = map[uint64]heldRead{}
	}
	a.nextRead++
	r := heldRead{msg: ctx.Message(), sender: ctx.Sender()}
	if a.barrier != nil {
		r.at = time.Now()
	}
	a.held[a.nextRead] = r
	ctx.Request(a.kids.raft, &raftactor.ReadBarrier{ID: a.nextRead})
}

func (a *nodeActor) readIndexed(ctx actor.Context, m *raftactor.ReadIndexed) {
	r, ok := a.held[m.ID]
	if !ok {
		return
	}
	delete(a.held, m.ID)
	if m.Status != nil {
		switch req := r.msg.(type) {
		case *messages.GetRequest:
			ctx.Send(r.sender, &messages.GetResult{Status: m.Status})
		case *messages.ListRequest:
			ctx.Send(r.sender, &messages.ListResult{Status: m.Status})
		case *messages.WatchRequest:
			ctx.Send(r.sender, &messages.WatchEvents{WatchId: req.GetWatchId(), Seq: 1, Events: []*messages.WatchEvent{
				{Type: messages.EventType_EVENT_ERROR, Status: m.Status, Object: messages.StatusObjectJSON(m.Status)}}})
		case *messages.SnapshotSaveRequest:
			ctx.Send(r.sender, &messages.SnapshotSaveResult{NodeId: a.id, Status: m.Status})
		}
		return
	}
	if a.barrier != nil {
		a.barrier.Observe(time.Since(r.at).Seconds())
	}
	to := a.kids.catalog
	if _, watch := r.msg.(*messages.WatchRequest); watch {
		to = a.kids.watch
	}
	ctx.RequestWithCustomSender(to, r.msg, r.sender)
}

// needsReply reports whether m is a request whose answer goes to its sender.
func needsReply(m any) bool {
	switch m.(type) {
	case *messages.GetRequest, *messages.ListRequest, *messages.WatchRequest, *messages.StatusRequest, *messages.HashKVRequest,
		*messages.MemberRequest, *messages.ClusterInfoRequest, *messages.SnapshotSaveRequest:
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
	case *messages.Forwarded:
		if m.GetMember() != nil {
			ctx.Respond(&messages.MemberResult{Status: status})
			break
		}
		ctx.Respond(&messages.CommandResult{RequestId: echoID(m.GetCommand()), Status: status})
	case *messages.MemberRequest:
		ctx.Respond(&messages.MemberResult{Status: status})
	case *messages.GetRequest:
		ctx.Respond(&messages.GetResult{Status: status})
	case *messages.ListRequest:
		ctx.Respond(&messages.ListResult{Status: status})
	case *messages.SnapshotSaveRequest:
		ctx.Respond(&messages.SnapshotSaveResult{Status: status})
	case *messages.WatchRequest:
		ctx.Send(ctx.Sender(), &messages.WatchEvents{WatchId: m.GetWatchId(), Seq: 1, Events: []*messages.WatchEvent{
			{Type: messages.EventType_EVENT_ERROR, Status: status, Object: messages.StatusObjectJSON(status)}}})
	case *messages.StatusRequest:
		if !withStatus {
			return false
		}
		ctx.Respond(&messages.NodeStatus{Status: status, Version: messages.Version, ProtocolVersion: messages.ProtocolVersion})
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
