package actors

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/kstore/kstore/messages"
)

// TestGuardPeerOnly checks who may send peer traffic: without TLS, connections from a member's
// IP or the system's own; with TLS, connections with a peer certificate. Other messages to the
// same actor pass from anyone.
func TestGuardPeerOnly(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	g := guardForTest(t, zap.New(core))
	g.peers.self = map[netip.Addr]bool{netip.MustParseAddr("127.0.0.1"): true}
	g.peerOnlyTo("kstore/raft", nil)
	g.peerOnlyTo("kstore", []protoreflect.FullName{"kstore.v1.Hello"})
	g.membersAt(map[uint64]string{1: selfAddr, 2: "10.0.0.2:7450", 3: "[fd00::3]:7450"})

	batch := func() *batchOf {
		return new(batchOf).
			to(actor.NewPID(selfAddr, "kstore/raft"), &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), Term: proto.Uint64(9)}).
			to(actor.NewPID(selfAddr, "kstore"), &messages.Hello{NodeId: 2}).
			to(actor.NewPID(selfAddr, "kstore"), &messages.StatusRequest{})
	}
	ip := func(s string) origin { return origin{ip: netip.MustParseAddr(s)} }
	tests := []struct {
		name     string
		tls      bool
		from     origin
		wantKept int // of 3: the status request passes from anyone
	}{
		{"a member's IP", false, ip("10.0.0.2"), 3},
		{"a member's IPv6", false, ip("fd00::3"), 3},
		{"the system's own IP", false, ip("127.0.0.1"), 3},
		{"another loopback IP", false, ip("127.0.0.2"), 1},
		{"another host", false, ip("10.0.0.9"), 1},
		{"no address known", false, unknownOrigin, 1},
		{"TLS: a peer certificate", true, origin{ip: netip.MustParseAddr("10.0.0.9"), tls: true, peerCert: true, subject: "CN=n2"}, 3},
		{"TLS: a client certificate from a member's IP", true, origin{ip: netip.MustParseAddr("10.0.0.2"), tls: true, subject: "CN=c"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.peers.tls = tt.tls
			b := batch()
			g.filterFrom(&b.b, &scratch{}, "remote:1", &tt.from)
			if len(b.b.Envelopes) != tt.wantKept {
				t.Fatalf("kept %d of 3 envelopes, want %d", len(b.b.Envelopes), tt.wantKept)
			}
		})
	}
	g.peers.tls = false

	// A member removed: its IP is a client's from then on.
	g.membersAt(map[uint64]string{1: selfAddr, 3: "[fd00::3]:7450"})
	b, from := batch(), ip("10.0.0.2")
	g.filterFrom(&b.b, &scratch{}, "10.0.0.2:4000", &from)
	if len(b.b.Envelopes) != 1 {
		t.Fatalf("after node 2's removal its IP still sends peer traffic: kept %d of 3", len(b.b.Envelopes))
	}
	refused := logs.FilterField(zap.String("reason", reasonPeerOnly)).FilterField(zap.String("peer", "10.0.0.2:4000")).All()
	if len(refused) != 2 {
		t.Errorf("logged %d peer-only refusals from 10.0.0.2:4000, want 2: %v", len(refused), logs.All())
	}
}

// TestGuardPeerOnlyAllocatesNothing holds the peer path to no allocation per batch.
func TestGuardPeerOnlyAllocatesNothing(t *testing.T) {
	g := guardForTest(t, zap.NewNop())
	g.peerOnlyTo("kstore/raft", nil)
	g.membersAt(map[uint64]string{1: selfAddr})
	from := origin{ip: netip.MustParseAddr("127.0.0.1")}
	b, s := heartbeats(1000), &scratch{}
	g.filterFrom(b, s, "peer", &from)
	if len(b.Envelopes) != 1000 {
		t.Fatalf("kept %d of 1000 heartbeats from a member", len(b.Envelopes))
	}
	if n := testing.AllocsPerRun(10, func() { g.filterFrom(b, s, "peer", &from) }); n != 0 {
		t.Errorf("filter allocates %v times per batch of 1,000, want 0", n)
	}
}

// TestGuardMembersByName: a member named by a host name joins the peers when the name
// resolves, off the caller's goroutine (the node actor's Receive must not wait on a resolver);
// its IP-named peers are there at once; a name keeps the IPs it resolved to while it resolves
// again; a later member set wins over an earlier one's lookups still in flight; Close waits for
// the lookups.
func TestGuardMembersByName(t *testing.T) {
	release := make(chan struct{})
	lookups := make(chan string, 10)
	defer func(old func(context.Context, string) ([]net.IP, error)) { lookupMember = old }(lookupMember)
	lookupMember = func(ctx context.Context, host string) ([]net.IP, error) {
		lookups <- host
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []net.IP{net.ParseIP("10.1.1.1")}, nil
	}
	g := guardForTest(t, zap.NewNop())
	has := func(ip string) bool {
		m := g.peers.ips.Load()
		return m != nil && (*m)[netip.MustParseAddr(ip)]
	}
	waitHas := func(ip string, want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for has(ip) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s a peer: %v, want %v, within 10s", ip, has(ip), want)
			}
			time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
		}
	}

	g.membersAt(map[uint64]string{1: "10.0.0.1:7450", 2: "node-2.example:7450"})
	<-lookups // blocked in the resolver: the call returned without waiting for it
	if !has("10.0.0.1") || has("10.1.1.1") {
		t.Fatal("want the IP-named member at once, the named one only once resolved")
	}
	release <- struct{}{}
	waitHas("10.1.1.1", true)

	// A change elsewhere keeps the name's IPs while it resolves again.
	g.membersAt(map[uint64]string{1: "10.0.0.1:7450", 2: "node-2.example:7450", 3: "10.0.0.3:7450"})
	<-lookups
	if !has("10.1.1.1") || !has("10.0.0.3") {
		t.Fatal("the named member lost its peer IPs while its name resolved again")
	}
	// The member set changes again before that lookup ends: the newer set stands.
	g.membersAt(map[uint64]string{1: "10.0.0.1:7450"})
	release <- struct{}{}
	g.peers.close() // waits for the lookup
	if has("10.1.1.1") || has("10.0.0.3") {
		t.Fatal("an older member set's lookup replaced the newer set")
	}
}
