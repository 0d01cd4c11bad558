package actors

// This file holds the guard: what another process may send to this one through protoactor
// remote. protoactor's server takes any message from anyone who reaches the port and trusts the
// batch it decodes (remote/endpoint_reader.go in the pinned version):
//   - an out-of-range type, target or sender index (m.TypeNames[envelope.TypeId], arr[index]),
//     a serializer id it does not have, or a type name the protobuf registry does not know
//     (upstream issue 1229) panics inside the gRPC handler, which ends the process;
//   - actor.Stop and actor.PoisonPill stop any actor, the node's internal ones included: the
//     process stays up with a dead node in it;
//   - any registered message reaches any actor: a forged raftpb.Message to the raft actor, a
//     read straight to the catalog, a message to protoactor's own endpoint actors;
//   - its unary methods (ListProcesses, GetProcessDiagnostics) are panic("implement me");
//   - a message to a PID that names this system by another of its addresses (127.0.0.1:7451 for
//     a node advertised as 10.0.0.5:7451) is taken for another system's and sent on, to itself.
// The guard sits in front, as gRPC interceptors, and removes from each batch what would do harm,
// delivers messages to this system's aliases (address.go) as its own, keeps peer traffic (Raft
// messages, member handshakes, membership changes) to peers' connections (peer.go), and answers
// ListProcesses with this system's address: the probe clients use (AdvertisedAddress).

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// guardLogsPerSecond bounds the guard's log lines of each kind: a peer that floods refused
// messages must not fill the disk. Each line carries the total refused so far, so the scale of a
// flood shows even when most lines are dropped.
const guardLogsPerSecond = 10

// Full protobuf names of protoactor's actor messages the guard treats specially (actor.proto).
const (
	nameStop       protoreflect.FullName = "actor.Stop"
	namePoisonPill protoreflect.FullName = "actor.PoisonPill"
	nameWatch      protoreflect.FullName = "actor.Watch"
	nameUnwatch    protoreflect.FullName = "actor.Unwatch"
	nameTerminated protoreflect.FullName = "actor.Terminated"
)

// Why an envelope was refused, as logged.
const (
	reasonOversized     = "more type names, targets or senders than envelopes (protoactor's writer sends each once)"
	reasonTypeIndex     = "type index out of range"
	reasonUnknownType   = "message type not in this process's protobuf registry"
	reasonSerializer    = "serializer is not protobuf (id 0)"
	reasonBytes         = "message bytes do not decode as the named type"
	reasonTargetIndex   = "target index out of range"
	reasonNoTarget      = "target has no PID"
	reasonElsewhere     = "target is not on this system (the guard relays nothing)"
	reasonSenderIndex   = "sender index out of range"
	reasonNoSender      = "sender has no PID"
	reasonSenderInside  = "sender names a protected actor of this system (its replies would reach it from inside)"
	reasonLethal        = "stops the actor (actor.Stop and actor.PoisonPill are refused from outside)"
	reasonProtected     = "type not allowed to this protected actor"
	reasonRemoteActor   = "protoactor's own remote actors take nothing from outside"
	reasonWatchPID      = "watch names no watcher, or a watcher on this system"
	reasonTerminatedPID = "terminated names no actor, or an actor of this system"
	reasonPeerOnly      = "peer traffic from a client connection (a peer is told by its certificate's chain and OU " + PeerOU + ", or without TLS by a member's IP)"
)

// typeClass says how the guard treats a message type.
type typeClass uint8

const (
	classPlain      typeClass = iota
	classLethal               // refused to every target
	classWatch                // actor.Watch, actor.Unwatch: the watcher must be the peer's
	classTerminated           // actor.Terminated: the actor that ended must be the peer's
)

// guard filters the message batches other processes send to one actor system. It is installed
// on the system's gRPC server by NewSystem; System.Protect adds to its policy.
type guard struct {
	sys *actor.ActorSystem
	log *zap.Logger // sampled: guardLogsPerSecond lines of each message a second

	mu        sync.Mutex                             // serialises writers of protected
	protected atomic.Pointer[map[string]*protection] // copy on write; read once per batch

	refused atomic.Uint64 // envelopes and calls refused since start, for the logs

	// aliases are the other host:port forms of this system's address (addresses.aliases): a
	// target naming one is this system's. Set before the server starts, read-only after.
	aliases map[string]bool

	// The peer-only rules and who is a peer (peer.go).
	peerOnly atomic.Pointer[map[string]*peerRule] // copy on write, as protected; under mu
	// peerTypes are the message types only a peer may send to any actor here; copy on write.
	peerTypes atomic.Pointer[map[protoreflect.FullName]bool]
	peers     peerCheck
}

// protection is the policy for one protected actor id.
type protection struct {
	allowed []protoreflect.FullName // a handful at most: a linear search allocates nothing
}

func newGuard(sys *actor.ActorSystem, logger *zap.Logger) *guard {
	g := &guard{
		sys: sys,
		log: logger.Named("guard").WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewSamplerWithOptions(c, time.Second, guardLogsPerSecond, 0)
		})),
	}
	g.protected.Store(&map[string]*protection{})
	g.peerOnly.Store(&map[string]*peerRule{})
	g.peerTypes.Store(&map[protoreflect.FullName]bool{})
	g.peers.ips.Store(&map[netip.Addr]bool{})
	g.peers.resolved = map[string][]netip.Addr{}
	g.peers.ctx, g.peers.cancel = context.WithCancel(context.Background())
	return g
}

// Protect limits what other processes may send to the local actor with the given id (e.g.
// "kstore/raft"): from then on only messages of the allowed types reach it from outside, none
// when allowed is empty; actor.Stop and actor.PoisonPill never do. Local senders are not
// affected. Protect an internal actor before spawning it; it is safe while the system serves.
//
// The returned func removes this protection again (for a node stopped inside a longer-lived
// system); it does nothing if the id was protected anew since.
func (s *System) Protect(id string, allowed ...protoreflect.FullName) (undo func()) {
	return s.guard.protect(id, allowed)
}

func (g *guard) protect(id string, allowed []protoreflect.FullName) func() {
	p := &protection{allowed: append([]protoreflect.FullName(nil), allowed...)}
	g.update(func(m map[string]*protection) { m[id] = p })
	return func() {
		g.update(func(m map[string]*protection) {
			if m[id] == p {
				delete(m, id)
			}
		})
	}
}

func (g *guard) update(change func(map[string]*protection)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := *g.protected.Load()
	m := make(map[string]*protection, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	change(m)
	g.protected.Store(&m)
}

// stream is the gRPC stream interceptor. It filters each MessageBatch as it is received, and
// turns a panic in the handler into an error that ends that stream only.
//
// The recover works because gRPC (v1.60 server.go, processStreamingRPC) calls the interceptor
// and, through it, protoactor's endpointReader.Receive on the stream's own goroutine, and
// Receive decodes and delivers each batch in its read loop on that goroutine. A panic on any other
// goroutine protoactor starts (the disconnect goroutine in Receive, an actor, an endpoint) is not
// caught here.
func (g *guard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	gs := &guardedStream{ServerStream: ss, g: g, peer: peerAddr(ss.Context()), from: g.peers.origin(ss.Context())}
	defer func() {
		if p := recover(); p != nil {
			n := g.refused.Add(1)
			if ce := g.log.Check(zap.ErrorLevel, "remote message handler panicked; closed the stream"); ce != nil {
				ce.Write(zap.String("peer", gs.peer), zap.String("method", info.FullMethod), zap.Any("panic", p),
					zap.Stack("stack"), zap.Uint64("refused", n))
			}
			err = status.Error(codes.Internal, "actors: the message handler failed on this stream's last batch; the stream is closed")
		}
	}()
	return handler(srv, gs)
}

// unary answers ListProcesses with one PID that names no actor, only this system's advertised
// address (the probe of AdvertisedAddress: it tells a kstore system from other servers and
// gives the address its PIDs name), and refuses every other unary call. Neither reaches
// protoactor: in the pinned version both of its unary methods, ListProcesses and
// GetProcessDiagnostics, are panic("implement me") on the handler's goroutine, and one call
// from anyone who reaches the port would end the process.
func (g *guard) unary(ctx context.Context, _ any, info *grpc.UnaryServerInfo, _ grpc.UnaryHandler) (any, error) {
	if info.FullMethod == probeMethod {
		return &remote.ListProcessesResponse{Pids: []*actor.PID{{Address: g.sys.ProcessRegistry.Address}}}, nil
	}
	n := g.refused.Add(1)
	if ce := g.log.Check(zap.WarnLevel, "refused a remote call"); ce != nil {
		ce.Write(zap.String("peer", peerAddr(ctx)), zap.String("method", info.FullMethod), zap.Uint64("refused", n))
	}
	return nil, status.Errorf(codes.Unimplemented, "actors: %s is not served", info.FullMethod)
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return "unknown"
}

// guardedStream filters what protoactor reads from one stream. RecvMsg is called by one
// goroutine at a time (gRPC's contract), so the scratch space needs no lock.
type guardedStream struct {
	grpc.ServerStream
	g    *guard
	peer string
	from origin // who the connection is, for the peer-only rules
	scratch
}

func (s *guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if rm, ok := m.(*remote.RemoteMessage); ok {
		if b := rm.GetMessageBatch(); b != nil {
			s.g.filterFrom(b, &s.scratch, s.peer, &s.from)
		}
	}
	return nil
}

// scratch holds what filter works out once per batch, reused from batch to batch so that the
// normal path allocates nothing.
type scratch struct {
	types   []typeCheck
	targets []pidCheck
	senders []pidCheck
	// fromPeer is whether this batch's connection is a peer's, worked out at the first
	// peer-only envelope (the member IPs may change between batches).
	fromPeer peerAnswer
}

type typeCheck struct {
	mt     protoreflect.MessageType // nil when unknown
	name   protoreflect.FullName
	class  typeClass
	reason string // why every envelope of this type is refused; "" if none
	// peerOnly: peer traffic to any actor of this system (PeerOnlyTypes), whatever the
	// target: an actor that passes messages on (the actor cluster's store identity) must not
	// carry a client's Raft message or membership change in.
	peerOnly bool
}

type pidCheck struct {
	pid    *actor.PID
	prot   *protection // non-nil for a protected target
	peer   *peerRule   // non-nil for a target with peer-only messages
	reason string
}

// filter removes from b, in place and keeping the order of the rest, every envelope that
// protoactor would crash on or that policy refuses, and logs each refusal.
//
// A batch with more type names, targets or senders than envelopes is dropped whole: protoactor's
// endpoint writer sends each of them once, for the envelopes that use it, and bounding them by
// the envelopes bounds the scratch space too.
//
// filter knows nothing of the connection the batch came over: no peer traffic passes.
func (g *guard) filter(b *remote.MessageBatch, s *scratch, peer string) {
	g.filterFrom(b, s, peer, &unknownOrigin)
}

// filterFrom is filter for a batch that came over a connection from.
func (g *guard) filterFrom(b *remote.MessageBatch, s *scratch, peer string, from *origin) {
	if n := len(b.Envelopes); len(b.TypeNames) > n || len(b.Targets) > n || len(b.Senders) > n {
		g.refuseBatch(peer, b)
		clear(b.Envelopes)
		b.Envelopes = b.Envelopes[:0]
		return
	}
	self := g.sys.ProcessRegistry.Address
	protected := *g.protected.Load()
	peerOnly := *g.peerOnly.Load()
	peerTypes := *g.peerTypes.Load()
	s.fromPeer = peerUnknown

	s.types = s.types[:0]
	for _, name := range b.TypeNames {
		t := classify(protoreflect.FullName(name))
		t.peerOnly = peerTypes[t.name]
		s.types = append(s.types, t)
	}
	s.targets = s.targets[:0]
	for _, pid := range b.Targets {
		if pid != nil && g.aliases[pid.Address] {
			// This system under another of its addresses: protoactor delivers locally only to
			// the one it advertises. The PID was decoded for this batch alone.
			pid.Address = self
		}
		c := pidCheck{pid: pid}
		switch {
		case pid == nil:
			c.reason = reasonNoTarget
		case pid.Address != self:
			c.reason = reasonElsewhere
		case isRemoteActor(pid.Id):
			c.reason = reasonRemoteActor
		default:
			c.prot = protected[pid.Id]
			c.peer = peerOnly[pid.Id]
		}
		s.targets = append(s.targets, c)
	}
	s.senders = s.senders[:0]
	for _, pid := range b.Senders {
		c := pidCheck{pid: pid}
		switch {
		case pid == nil:
			c.reason = reasonNoSender
		case g.isSelf(pid.Address, self) && (protected[pid.Id] != nil || isRemoteActor(pid.Id)):
			c.reason = reasonSenderInside
		}
		s.senders = append(s.senders, c)
	}

	kept := b.Envelopes[:0]
	for _, e := range b.Envelopes {
		if reason := g.check(e, s, self, from); reason != "" {
			g.refuse(peer, e, s, reason, from)
			if reason == reasonPeerOnly {
				g.answerPeerOnly(e, s)
			}
			continue
		}
		kept = append(kept, e)
	}
	clear(b.Envelopes[len(kept):])
	b.Envelopes = kept
}

// check returns why e is refused, or "" to deliver it.
func (g *guard) check(e *remote.MessageEnvelope, s *scratch, self string, from *origin) string {
	if e.TypeId < 0 || int(e.TypeId) >= len(s.types) {
		return reasonTypeIndex
	}
	t := &s.types[e.TypeId]
	if e.Target < 0 || int(e.Target) >= len(s.targets) {
		return reasonTargetIndex
	}
	target := &s.targets[e.Target]
	if e.Sender < 0 || int(e.Sender) > len(s.senders) { // 0 is no sender, i is Senders[i-1]
		return reasonSenderIndex
	}
	switch {
	case target.reason != "":
		return target.reason
	case e.Sender > 0 && s.senders[e.Sender-1].reason != "":
		return s.senders[e.Sender-1].reason
	case t.reason != "":
		return t.reason
	case e.SerializerId != 0:
		return reasonSerializer
	case target.prot != nil && !allows(target.prot, t.name):
		return reasonProtected
	case (t.peerOnly || target.peer != nil && target.peer.covers(t.name)) && !g.fromPeer(s, from):
		return reasonPeerOnly
	}
	switch t.class {
	case classWatch, classTerminated:
		return g.checkLifecycle(t, e.MessageData, self)
	}
	switch validWire(e.MessageData, t.mt.Descriptor(), 0) {
	case wireInvalid:
		return reasonBytes
	case wireNeedsDecode:
		if proto.Unmarshal(e.MessageData, t.mt.New().Interface()) != nil {
			return reasonBytes
		}
	}
	return ""
}

// isSelf reports whether addr names this system, whose advertised address is self.
func (g *guard) isSelf(addr, self string) bool { return addr == self || g.aliases[addr] }

func classify(name protoreflect.FullName) typeCheck {
	t := typeCheck{name: name}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
	if err != nil {
		t.reason = reasonUnknownType
		return t
	}
	t.mt = mt
	switch name {
	case nameStop, namePoisonPill:
		t.class, t.reason = classLethal, reasonLethal
	case nameWatch, nameUnwatch:
		t.class = classWatch
	case nameTerminated:
		t.class = classTerminated
	}
	return t
}

// isRemoteActor says whether id is one of protoactor remote's own actors: the endpoint
// supervisor, the endpoint writers and watchers under it, and the activator. They expect only
// local messages; any other message makes an endpoint writer panic (remote/endpoint_writer.go,
// sendEnvelopes), and its supervisor stops it, which cuts this system off from that peer.
func isRemoteActor(id string) bool {
	return id == "activator" || id == "EndpointSupervisor" || strings.HasPrefix(id, "EndpointSupervisor/")
}

func allows(p *protection, name protoreflect.FullName) bool {
	for _, a := range p.allowed {
		if a == name {
			return true
		}
	}
	return false
}

// checkLifecycle decodes a watch message (rare: it allocates) and checks the PID it names: a
// peer may watch for its own actors only, and report only its own actors ended. Unchecked, a
// Watch without a watcher panics the watched actor (PIDSet.Add(nil)), a Terminated without an
// actor panics the reader, and either naming this system's address makes it deliver to its own
// actors, or dial itself, on the peer's word.
func (g *guard) checkLifecycle(t *typeCheck, data []byte, self string) string {
	m := t.mt.New().Interface()
	if proto.Unmarshal(data, m) != nil {
		return reasonBytes
	}
	var pid *actor.PID
	reason := reasonWatchPID
	switch m := m.(type) {
	case *actor.Watch:
		pid = m.Watcher
	case *actor.Unwatch:
		pid = m.Watcher
	case *actor.Terminated:
		pid, reason = m.Who, reasonTerminatedPID
	}
	if pid == nil || g.isSelf(pid.Address, self) {
		return reason
	}
	return ""
}

type wireResult uint8

const (
	wireValid       wireResult = iota
	wireInvalid                // proto.Unmarshal fails on it
	wireNeedsDecode            // a required field or an extension may be involved: only decoding tells
)

// validWire says whether proto.Unmarshal would accept b as a message of md, without building the
// message: protoactor returns from its read loop on the first message that does not decode,
// losing the rest of the batch and the stream. It walks the wire format, checks UTF-8 where the
// protobuf runtime does, and descends into present sub-messages and packed fields. A field whose
// wire type does not match its declaration is an unknown field to the runtime, not an error.
func validWire(b []byte, md protoreflect.MessageDescriptor, depth int) wireResult {
	if depth > protowire.DefaultRecursionLimit {
		return wireInvalid
	}
	if md.RequiredNumbers().Len() > 0 || md.ExtensionRanges().Len() > 0 {
		return wireNeedsDecode
	}
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return wireInvalid
		}
		b = b[n:]
		fd := fields.ByNumber(num)
		if fd != nil && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return wireInvalid
			}
			b = b[n:]
			if r := validBytesField(v, fd, depth); r != wireValid {
				return r
			}
			continue
		}
		if fd != nil && typ == protowire.StartGroupType && fd.Kind() == protoreflect.GroupKind {
			v, n := protowire.ConsumeGroup(num, b)
			if n < 0 {
				return wireInvalid
			}
			b = b[n:]
			if r := validWire(v, fd.Message(), depth+1); r != wireValid {
				return r
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return wireInvalid
		}
		b = b[n:]
	}
	return wireValid
}

// validBytesField checks the content v of a length-delimited field fd.
func validBytesField(v []byte, fd protoreflect.FieldDescriptor, depth int) wireResult {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if enforceUTF8(fd) && !utf8.Valid(v) {
			return wireInvalid
		}
	case protoreflect.MessageKind:
		return validWire(v, fd.Message(), depth+1)
	case protoreflect.BytesKind, protoreflect.GroupKind:
		// bytes are anything; a group sent length-delimited is an unknown field
	default: // a scalar: packed if the field is repeated, else an unknown field
		if !fd.IsList() {
			return wireValid
		}
		switch fd.Kind() {
		case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
			if len(v)%4 != 0 {
				return wireInvalid
			}
		case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
			if len(v)%8 != 0 {
				return wireInvalid
			}
		default:
			for len(v) > 0 {
				_, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return wireInvalid
				}
				v = v[n:]
			}
		}
	}
	return wireValid
}

// enforceUTF8 mirrors the protobuf runtime's rule (internal/strs.EnforceUTF8): proto3 strings
// must be UTF-8, proto2 strings need not, editions say per field.
func enforceUTF8(fd protoreflect.FieldDescriptor) bool {
	if fd.Syntax() == protoreflect.Editions {
		if e, ok := fd.(interface{ EnforceUTF8() bool }); ok {
			return e.EnforceUTF8()
		}
	}
	return fd.Syntax() == protoreflect.Proto3
}

// refuseBatch logs a batch dropped whole, within the sampler's budget.
func (g *guard) refuseBatch(peer string, b *remote.MessageBatch) {
	n := g.refused.Add(uint64(len(b.Envelopes)))
	if ce := g.log.Check(zap.WarnLevel, "refused a remote batch"); ce != nil {
		ce.Write(zap.String("peer", peer), zap.Int("envelopes", len(b.Envelopes)), zap.Int("types", len(b.TypeNames)),
			zap.Int("targets", len(b.Targets)), zap.Int("senders", len(b.Senders)), zap.String("reason", reasonOversized),
			zap.Uint64("refused", n))
	}
}

// refuse logs one refused envelope, within the sampler's budget.
func (g *guard) refuse(peer string, e *remote.MessageEnvelope, s *scratch, reason string, from *origin) {
	n := g.refused.Add(1)
	ce := g.log.Check(zap.WarnLevel, "refused a remote message")
	if ce == nil {
		return
	}
	target, typeName := "?", "?"
	if i := int(e.Target); i >= 0 && i < len(s.targets) && s.targets[i].pid != nil {
		target = s.targets[i].pid.Id
	}
	if i := int(e.TypeId); i >= 0 && i < len(s.types) {
		typeName = string(s.types[i].name)
	}
	if from.subject != "" {
		ce.Write(zap.String("peer", peer), zap.String("target", target), zap.String("type", typeName),
			zap.String("reason", reason), zap.String("subject", from.subject), zap.Uint64("refused", n))
		return
	}
	ce.Write(zap.String("peer", peer), zap.String("target", target), zap.String("type", typeName),
		zap.String("reason", reason), zap.Uint64("refused", n))
}
