package raftactor

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

// ChangeMembers asks the raft actor of the leader to change the membership, one change at a
// time. Sender: the node actor. The caller at ReplyTo gets a MemberResult once the change is
// applied here, or a refusal.
type ChangeMembers struct {
	Request *messages.MemberRequest
	ReplyTo *actor.PID
}

// MembersChanged tells the raft actor's parent the members after a configuration change was
// applied (or a member's address was learned): every member's address by id, voters and
// learners, and the ids removed. Self is set when this node was removed: it must stop.
type MembersChanged struct {
	Addresses         map[uint64]string
	Voters, Learners  []uint64
	Removed           []uint64
	Self              bool
	SelfRemovedReason string
}

// Verified tells the raft actor that a peer's identity was checked (see messages.Hello), and
// where it listens: raft takes its messages from now on. Sender: the node actor.
type Verified struct {
	ID      uint64
	Address string
	// Refused: the peer's identity is not the one the cluster knows; raft takes no more of
	// its messages.
	Refused bool
}

// Unreachable tells the raft actor that a peer's process stopped or its connection broke:
// raft stops streaming appends to it and probes it instead (raft.ReportUnreachable).
type Unreachable struct{ ID uint64 }

// While a peer is unreachable its identity counts as unchecked: the process that answers next
// may be another one (a wiped data dir), and must say Hello first.

// maxPromoteLag is how far behind the leader's log a learner may be when it is promoted: a
// voter that far behind slows the commit of nothing, as the others make the quorum, and catches
// up in a moment. One further behind could, with one more member down, stall the cluster.
const maxPromoteLag = 1000

// memberWait is the caller of a membership change proposed here.
type memberWait struct {
	seq      uint64
	replyTo  *actor.PID
	deadline time.Time
	placed   bool // seen among the entries raft appended (else raft refused it silently)
}

// changeMembers proposes a membership change, if it is one this leader can make now.
func (a *Actor) changeMembers(ctx actor.Context, m *ChangeMembers) {
	refuse := func(reason messages.StatusReason, format string, args ...any) {
		reply(ctx, m.ReplyTo, &messages.MemberResult{Status: &messages.Status{Reason: reason, Message: fmt.Sprintf(format, args...)}})
	}
	req := m.Request
	st := a.n.rn.Status()
	cs := a.n.confs[len(a.n.confs)-1].state
	voter, learner := slices.Contains(cs.GetVoters(), req.GetId()), slices.Contains(cs.GetLearners(), req.GetId())
	var change raftpb.ConfChangeSingle
	switch {
	case st.RaftState != raft.StateLeader:
		refuse(messages.StatusReason_UNAVAILABLE, "node %d does not lead (or leadership is changing): nothing changed; retry", a.cfg.NodeID)
		return
	case a.memberWait != nil:
		refuse(messages.StatusReason_CONFLICT, "another membership change is under way: retry once it is done")
		return
	case req.GetId() == 0:
		refuse(messages.StatusReason_INVALID, "member id 0 is not an id: give a non-zero id")
		return
	}
	switch req.GetOp() {
	case messages.MemberOp_MEMBER_ADD:
		host, port, err := net.SplitHostPort(req.GetAddress())
		switch {
		case voter || learner:
			refuse(messages.StatusReason_ALREADY_EXISTS, "member %d already exists: remove it first, or add another id", req.GetId())
			return
		case err != nil || host == "" || port == "" || port == "0":
			refuse(messages.StatusReason_INVALID, "member address %q is not HOST:PORT with a fixed port, such as 127.0.0.1:7454", req.GetAddress())
			return
		}
		for id, addr := range a.members {
			if addr == req.GetAddress() && (slices.Contains(cs.GetVoters(), id) || slices.Contains(cs.GetLearners(), id)) {
				refuse(messages.StatusReason_INVALID, "member %d listens on %s already: give the new member its own address", id, addr)
				return
			}
		}
		change = raftpb.ConfChangeSingle{Type: raftpb.ConfChangeType_ConfChangeAddLearnerNode.Enum(), NodeId: proto.Uint64(req.GetId())}
	case messages.MemberOp_MEMBER_PROMOTE:
		switch {
		case voter:
			refuse(messages.StatusReason_INVALID, "member %d votes already", req.GetId())
			return
		case !learner:
			refuse(messages.StatusReason_NOT_FOUND, "member %d is not a learner of this cluster: add it first (kstore member add)", req.GetId())
			return
		}
		// A learner just added counts as recently active (raft marks it so) with nothing
		// replicated: Match 0 is a learner that has not caught up at all.
		pr := st.Progress[req.GetId()]
		if lag := st.GetCommit() - min(pr.Match, st.GetCommit()); pr.Match == 0 || !pr.RecentActive || lag > maxPromoteLag {
			refuse(messages.StatusReason_UNAVAILABLE, "learner %d is %d entries behind the leader's commit index %d (at most %d may be missing), or has not answered lately: wait until it has caught up, then promote it",
				req.GetId(), lag, st.GetCommit(), maxPromoteLag)
			return
		}
		change = raftpb.ConfChangeSingle{Type: raftpb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: proto.Uint64(req.GetId())}
	case messages.MemberOp_MEMBER_REMOVE:
		switch {
		case !voter && !learner:
			refuse(messages.StatusReason_NOT_FOUND, "member %d is not a member of this cluster", req.GetId())
			return
		case voter && len(cs.GetVoters()) == 1:
			refuse(messages.StatusReason_INVALID, "member %d is the only voter: a cluster cannot remove its last voter", req.GetId())
			return
		}
		change = raftpb.ConfChangeSingle{Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(req.GetId())}
	default:
		refuse(messages.StatusReason_INVALID, "member change %v is not add, promote or remove", req.GetOp())
		return
	}
	a.memberSeq++
	mctx, err := proto.MarshalOptions{Deterministic: true}.Marshal(&messages.MemberContext{Address: req.GetAddress(),
		Proposer: a.cfg.NodeID, Epoch: a.proposals.self.Epoch, Seq: a.memberSeq})
	if err == nil {
		err = a.n.rn.ProposeConfChange(&raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{&change}, Context: mctx})
	}
	if err != nil {
		refuse(messages.StatusReason_UNAVAILABLE, "the membership change was not proposed (%v): nothing changed; retry", err)
		return
	}
	a.memberWait = &memberWait{seq: a.memberSeq, replyTo: m.ReplyTo, deadline: time.Now().Add(a.cfg.ProposalTimeout)}
	a.log.Info("membership change proposed", zap.Stringer("op", req.GetOp()), zap.Uint64("member", req.GetId()), zap.String("address", req.GetAddress()))
}

// placeMemberChange checks, in the entries raft is about to append, that the change proposed
// here is among them: raft turns a configuration change into an empty entry when another one
// is not applied yet (a new leader's predecessor may have left one), and says nothing.
func (a *Actor) placeMemberChange(ctx actor.Context, entries []*raftpb.Entry) {
	w := a.memberWait
	if w == nil || w.placed || len(entries) == 0 {
		return
	}
	for _, e := range entries {
		if mc, ok := a.memberContext(e); ok && mc.GetSeq() == w.seq {
			w.placed = true
			return
		}
	}
	a.memberWait = nil
	reply(ctx, w.replyTo, &messages.MemberResult{Status: &messages.Status{Reason: messages.StatusReason_CONFLICT,
		Message: "an earlier membership change is still being applied: nothing changed; retry shortly"}})
}

// memberContext reads the context of a configuration change entry this boot proposed.
func (a *Actor) memberContext(e *raftpb.Entry) (*messages.MemberContext, bool) {
	if e.GetType() != raftpb.EntryType_EntryConfChangeV2 {
		return nil, false
	}
	var cc raftpb.ConfChangeV2
	var mc messages.MemberContext
	if proto.Unmarshal(e.GetData(), &cc) != nil || proto.Unmarshal(cc.GetContext(), &mc) != nil {
		return nil, false
	}
	return &mc, mc.GetProposer() == a.cfg.NodeID && mc.GetEpoch() == a.proposals.self.Epoch
}

// confApplied takes in the configuration changes just applied: the addresses of members added,
// the members removed, the caller of a change proposed here, and this node's own removal.
func (a *Actor) confApplied(ctx actor.Context, applied []appliedConf) {
	if len(applied) == 0 {
		return
	}
	self := false
	for _, c := range applied {
		var mc messages.MemberContext
		_ = proto.Unmarshal(c.context, &mc) // a change without kstore's context (none are made) adds no address
		for _, ch := range c.changes {
			id := ch.GetNodeId()
			switch ch.GetType() {
			case raftpb.ConfChangeType_ConfChangeAddNode, raftpb.ConfChangeType_ConfChangeAddLearnerNode:
				delete(a.removed, id)
				if mc.GetAddress() != "" {
					a.members[id] = mc.GetAddress()
				}
				if id != a.cfg.NodeID && a.members[id] != "" {
					a.pids[id] = actor.NewPID(a.members[id], ctx.Self().GetId())
				}
			case raftpb.ConfChangeType_ConfChangeRemoveNode:
				a.removed[id] = true
				delete(a.pids, id)
				self = self || id == a.cfg.NodeID
			}
		}
		if w := a.memberWait; w != nil && mc.GetProposer() == a.cfg.NodeID && mc.GetEpoch() == a.proposals.self.Epoch && mc.GetSeq() == w.seq {
			a.memberWait = nil
			reply(ctx, w.replyTo, &messages.MemberResult{Members: a.memberList(c.state)})
		}
	}
	a.reportMembers(ctx, self)
}

// reportMembers tells the parent the membership as it is now.
func (a *Actor) reportMembers(ctx actor.Context, selfRemoved bool) {
	p := ctx.Parent()
	if p == nil {
		return
	}
	cs := a.n.confs[len(a.n.confs)-1].state
	m := &MembersChanged{Addresses: maps.Clone(a.members), Voters: slices.Clone(cs.GetVoters()), Learners: slices.Clone(cs.GetLearners()),
		Removed: slices.Sorted(maps.Keys(a.removed)), Self: selfRemoved}
	if selfRemoved {
		m.SelfRemovedReason = fmt.Sprintf("node %d was removed from the cluster (kstore member remove %d): it stops serving. To bring this machine back, delete its data dir and add it again (kstore member add, then kstore serve --join)", a.cfg.NodeID, a.cfg.NodeID)
	}
	ctx.Send(p, m)
}

// memberList is the members of cs with their addresses, by id.
func (a *Actor) memberList(cs *raftpb.ConfState) []*messages.Member {
	lead := a.n.rn.BasicStatus().Lead
	var out []*messages.Member
	for _, id := range cs.GetVoters() {
		out = append(out, &messages.Member{Id: id, Address: a.members[id], Role: "voter", Leader: id == lead})
	}
	for _, id := range cs.GetLearners() {
		out = append(out, &messages.Member{Id: id, Address: a.members[id], Role: "learner"})
	}
	slices.SortFunc(out, func(x, y *messages.Member) int { return cmp.Compare(x.GetId(), y.GetId()) })
	return out
}

// expireMemberWait answers a membership change that did not apply in time: its outcome is
// unknown.
func (a *Actor) expireMemberWait(ctx actor.Context, now time.Time) {
	if w := a.memberWait; w != nil && now.After(w.deadline) {
		a.memberWait = nil
		reply(ctx, w.replyTo, &messages.MemberResult{Status: &messages.Status{Reason: messages.StatusReason_TIMEOUT,
			Message: "the membership change was proposed but not applied in time: its outcome is unknown; run kstore member list to find out"}})
	}
}
