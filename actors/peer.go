package actors

// This file holds how the guard tells peer traffic from client traffic. Peer traffic is what
// only a member sends: Raft messages, snapshot chunks, the members' handshake (Hello, HelloAck,
// MemberRefused), writes forwarded to the leader, and membership changes. The guard decides by
// the connection a batch came over, never by what a message says:
//   - with TLS, a connection is a peer's when its certificate chains to the peer trusted CA and
//     carries the OU PeerOU (tls.go); any other is a client's;
//   - without TLS a connection has no identity, and the best the guard knows is where it comes
//     from: a peer's is one whose remote IP is an IP of a current member (the node actor tells
//     the guard when the members change) or of this system itself. So a cluster without TLS
//     trusts every process on its members' hosts; a process anywhere else is a client.

import (
	"context"
	"crypto/x509"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/remote"
	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/kstore/kstore/messages"
)

// peerRule is what only peers may send to one local actor: every message when all, else the
// listed types (a handful: a linear search allocates nothing).
type peerRule struct {
	all   bool
	types []protoreflect.FullName
}

func (r *peerRule) covers(name protoreflect.FullName) bool {
	return r.all || slices.Contains(r.types, name)
}

// PeerOnly makes the given message types to the local actor id peer traffic: from another
// process they reach it only over a peer's connection (see this file's comment); none given:
// every message to it. Local senders are not affected. It undoes itself with the returned func.
func (s *System) PeerOnly(id string, types ...protoreflect.FullName) (undo func()) {
	return s.guard.peerOnlyTo(id, types)
}

// PeerOnlyTypes makes messages of the given types peer traffic to every actor of the system,
// whatever their target: from another process they are delivered only over a peer's connection.
// It undoes itself with the returned func.
func (s *System) PeerOnlyTypes(types ...protoreflect.FullName) (undo func()) {
	g := s.guard
	change := func(f func(map[protoreflect.FullName]bool)) {
		g.mu.Lock()
		defer g.mu.Unlock()
		m := maps.Clone(*g.peerTypes.Load())
		f(m)
		g.peerTypes.Store(&m)
	}
	change(func(m map[protoreflect.FullName]bool) {
		for _, t := range types {
			m[t] = true
		}
	})
	return func() {
		change(func(m map[protoreflect.FullName]bool) {
			for _, t := range types {
				delete(m, t)
			}
		})
	}
}

func (g *guard) peerOnlyTo(id string, types []protoreflect.FullName) func() {
	r := &peerRule{all: len(types) == 0, types: slices.Clone(types)}
	change := func(f func(map[string]*peerRule)) {
		g.mu.Lock()
		defer g.mu.Unlock()
		m := maps.Clone(*g.peerOnly.Load())
		f(m)
		g.peerOnly.Store(&m)
	}
	change(func(m map[string]*peerRule) { m[id] = r })
	return func() {
		change(func(m map[string]*peerRule) {
			if m[id] == r {
				delete(m, id)
			}
		})
	}
}

// peerCheck is who the guard takes for a peer.
type peerCheck struct {
	// tls is set when the listener serves TLS: then only the certificate counts. roots: the
	// peer trusted CA (nil on a client process, where no connection is a peer's).
	tls   bool
	roots *x509.CertPool
	// self are this system's own IPs (its listen and advertised hosts, every interface's with
	// a wildcard listen); set before the server starts, read-only after.
	self map[netip.Addr]bool
	// ips are the members' IPs, replaced whole when the members change (membersAt); gen counts
	// those calls, and mu orders the stores of a call and of its name lookups.
	ips atomic.Pointer[map[netip.Addr]bool]
	gen atomic.Uint64
	mu  sync.Mutex
	// resolved is what each member's host name resolved to last (under mu). The lookups run on
	// goroutines counted by wg, under ctx, which close cancels.
	resolved map[string][]netip.Addr
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closed   atomic.Bool
}

// origin is what the guard knows of one connection, worked out once per stream.
type origin struct {
	ip       netip.Addr // the remote IP; invalid when unknown
	tls      bool
	peerCert bool   // TLS: its certificate is a peer's
	subject  string // TLS: its certificate's subject, for the logs
}

// unknownOrigin is a connection the guard knows nothing of: never a peer's.
var unknownOrigin origin

func (p *peerCheck) origin(ctx context.Context) origin {
	var o origin
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return o
	}
	if tcp, ok := pr.Addr.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(tcp.IP); ok {
			o.ip = ip.Unmap()
		}
	}
	if info, ok := pr.AuthInfo.(credentials.TLSInfo); ok {
		o.tls = true
		o.peerCert, o.subject = peerIdentity(p.roots, info.State)
	}
	return o
}

func (p *peerCheck) isPeer(o *origin) bool {
	if p.tls {
		return o.tls && o.peerCert
	}
	return o.ip.IsValid() && (p.self[o.ip] || (*p.ips.Load())[o.ip])
}

// peerAnswer caches isPeer for one batch.
type peerAnswer uint8

const (
	peerUnknown peerAnswer = iota
	peerYes
	peerNo
)

// fromPeer reports whether the batch being filtered came over a peer's connection.
func (g *guard) fromPeer(s *scratch, from *origin) bool {
	if s.fromPeer == peerUnknown {
		s.fromPeer = peerNo
		if g.peers.isPeer(from) {
			s.fromPeer = peerYes
		}
	}
	return s.fromPeer == peerYes
}

// membersAt tells the guard the members' addresses (host:port, by node id): without TLS, their
// IPs are the ones peer traffic may come from. A host that is a name is resolved here, bounded
// by resolveTimeout; members are named by IP unless --advertise-address gives a name, and names
// resolve from /etc/hosts or the local resolver.
func (g *guard) membersAt(addrs map[uint64]string) {
	c := &g.peers
	gen := c.gen.Add(1)
	ips := map[netip.Addr]bool{}
	var names []string
	c.mu.Lock()
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			ips[ip.Unmap()] = true
			continue
		}
		names = append(names, host)
		// Until the name resolves again, what it resolved to last: a member named by a host
		// name must not lose its peer traffic each time the member set changes.
		for _, ip := range c.resolved[host] {
			ips[ip] = true
		}
	}
	c.mu.Unlock()
	c.store(gen, ips)
	if len(names) == 0 || c.closed.Load() {
		return
	}
	// Resolving may take up to resolveTimeout, which the node actor (the caller, in its Receive)
	// must not wait for. The IPs join the set when they come, unless the members changed again
	// meanwhile; System.Close cancels the lookups and waits for them.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		all := maps.Clone(ips)
		for _, host := range names {
			found, err := lookupMember(c.ctx, host)
			if err != nil {
				if c.ctx.Err() == nil {
					g.log.Warn("a member's host name does not resolve: its peer traffic is refused until it does", zap.String("host", host), zap.Error(err))
				}
				continue
			}
			var got []netip.Addr
			for _, ip := range found {
				if ip, ok := netip.AddrFromSlice(ip); ok {
					got = append(got, ip.Unmap())
					all[ip.Unmap()] = true
				}
			}
			c.mu.Lock()
			c.resolved[host] = got
			c.mu.Unlock()
		}
		c.store(gen, all)
	}()
}

// lookupMember resolves a member's host name; tests replace it.
var lookupMember = lookupHostCtx

// store makes ips the members' IPs if gen is still the newest membersAt call.
func (c *peerCheck) store(gen uint64, ips map[netip.Addr]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() == gen {
		c.ips.Store(&ips)
	}
}

// close cancels the name lookups in flight and waits for them.
func (c *peerCheck) close() {
	c.closed.Store(true)
	c.cancel()
	c.wg.Wait()
}

// selfIPs are the IPs of a system's addresses: the hosts of its advertised address and aliases
// that are IPs (the names among the aliases name the same IPs).
func selfIPs(at addresses) map[netip.Addr]bool {
	ips := map[netip.Addr]bool{}
	for _, a := range append(slices.Collect(maps.Keys(at.aliases)), at.advertised) {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			ips[ip.Unmap()] = true
		}
	}
	return ips
}

// answerPeerOnly answers a membership change refused as peer traffic, so that `kstore member`
// with a client certificate fails at once with a reason instead of timing out with an unknown
// outcome. Other peer-only messages come from no legitimate client: they get no answer.
func (g *guard) answerPeerOnly(e *remote.MessageEnvelope, s *scratch) {
	if e.Sender <= 0 || s.types[e.TypeId].name != nameMemberRequest {
		return
	}
	sender := s.senders[e.Sender-1].pid
	msg := "membership changes are peer traffic: this connection is a client's. With TLS, give a peer certificate (Organizational Unit " + PeerOU + ", signed by the node's --peer-trusted-ca-file, such as a node's from kstore certs) as --cert and --key; without TLS, run the command on a member's host"
	if !g.peers.tls {
		msg = "membership changes are peer traffic, and without TLS a node takes it only from its members' IPs: run the command on a member's host, or turn TLS on and give a peer certificate"
	}
	g.sys.Root.Send(sender, &messages.MemberResult{Status: &messages.Status{Reason: messages.StatusReason_INVALID, Message: msg}})
}

const nameMemberRequest protoreflect.FullName = "kstore.v1.MemberRequest"
