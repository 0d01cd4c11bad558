package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

// TestTLSCluster runs three `kstore serve` processes with mutual TLS, with certificates made by
// `kstore certs`, and checks who gets in: a client with a certificate of the cluster's CA is
// served; a client without TLS, a client with a certificate of another CA, and a client whose
// (valid) client certificate sends peer traffic are each refused, and the node logs each refusal
// with the remote address. Last, the same forged Raft message over a peer certificate is shown
// to move the term: what the client certificate was refused is what would have hurt.
func TestTLSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kstore binary")
	}
	bin := kstoreBinary(t)
	pki, other := t.TempDir(), t.TempDir()
	base := &cli{t: t, bin: bin, endpoints: "127.0.0.1:1"}
	out := base.ok("", "certs", "--dir", pki, "--nodes", "3")
	if !strings.Contains(out, "kstore serve --cert-file") || !strings.Contains(out, "--cacert") {
		t.Fatalf("kstore certs printed no commands to start and call a TLS node:\n%s", out)
	}
	for _, f := range []string{"ca.key", "node1.key", "client.key"} {
		if fi, err := os.Stat(filepath.Join(pki, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
	base.ok("", "certs", "--dir", other)
	base.fail("AlreadyExists", "", "certs", "--dir", other)
	p := func(f string) string { return filepath.Join(pki, f) }

	const n = 3
	var addrs, initial []string
	for i := range n {
		addrs = append(addrs, freeAddr(t))
		initial = append(initial, fmt.Sprintf("%d=%s", i+1, addrs[i]))
	}
	servers := make([]*server, n)
	for i := range n {
		cert, key := p(fmt.Sprintf("node%d.crt", i+1)), p(fmt.Sprintf("node%d.key", i+1))
		servers[i] = startServer(t, bin, t.TempDir(), addrs[i], "--node-id", fmt.Sprint(i+1), "--disk-reserve-bytes", "0",
			"--initial-cluster", strings.Join(initial, ","),
			"--cert-file", cert, "--key-file", key, "--peer-cert-file", cert, "--peer-key-file", key,
			"--trusted-ca-file", p("ca.crt"), "--peer-trusted-ca-file", p("ca.crt"), "--client-cert-auth")
	}
	clientTLS := []string{"--cacert", p("ca.crt"), "--cert", p("client.crt"), "--key", p("client.key")}
	k := &cli{t: t, bin: bin, endpoints: strings.Join(addrs, ",")}
	leader := waitTLSLeader(t, k, clientTLS, addrs)

	// Served: a write on one member, read back linearizably on each.
	res := result1(t, k.ok(pod("tls", "a", "nginx", nil), append([]string{"apply", "-f", "-"}, clientTLS...)...), "Created")
	for i := range n {
		one := &cli{t: t, bin: bin, endpoints: addrs[i]}
		o := parseObj(t, one.ok("", append([]string{"get", "Pod.v1/a", "-n", "tls"}, clientTLS...)...))
		if o.meta("resourceVersion") != fmt.Sprint(res.ResourceVersion) {
			t.Fatalf("member %d serves resourceVersion %s, want %d", i+1, o.meta("resourceVersion"), res.ResourceVersion)
		}
	}

	lead := &cli{t: t, bin: bin, endpoints: addrs[leader]}
	srv := servers[leader]
	tests := []struct {
		name    string
		args    []string
		wantLog string // in the leader's log, with the remote address
	}{
		{"a client without TLS", nil, `first record does not look like a TLS handshake`},
		{"a client with a certificate of another CA", []string{"--cacert", p("ca.crt"),
			"--cert", filepath.Join(other, "client.crt"), "--key", filepath.Join(other, "client.key")}, `x509: certificate signed by unknown authority`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := lead.fail("Unavailable", "", append([]string{"status"}, tt.args...)...)
			if !strings.Contains(msg, "no kstore node listens") {
				t.Errorf("refusal says %q", msg)
			}
			waitLogLine(t, srv, "refused a TLS handshake", `"peer":"127.0.0.1:`, tt.wantLog)
		})
	}

	t.Run("a membership change with a client certificate", func(t *testing.T) {
		msg := lead.fail("Invalid", "", append([]string{"member", "add", "4", "127.0.0.1:1"}, clientTLS...)...)
		if !strings.Contains(msg, "peer certificate") {
			t.Errorf("refusal says %q, want it to ask for a peer certificate", msg)
		}
		waitLogLine(t, srv, "refused a remote message", `"type":"kstore.v1.MemberRequest"`, `"subject":"CN=kstore-client,O=kstore"`, `"peer":"127.0.0.1:`)
		// A peer certificate may: the CLI given a node's certificate.
		peerTLS := []string{"--cacert", p("ca.crt"), "--cert", p("node1.crt"), "--key", p("node1.key")}
		lead.ok("", append([]string{"member", "add", "4", freeAddr(t)}, peerTLS...)...)
		lead.ok("", append([]string{"member", "remove", "4"}, peerTLS...)...)
	})

	follower := uint64((leader+1)%n + 1)
	before := tlsStatus(t, lead, clientTLS)
	forged := func(cert string) {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(p(cert+".crt"), p(cert+".key"))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		ca, _ := os.ReadFile(p("ca.crt"))
		pool.AppendCertsFromPEM(ca)
		creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool})
		sendRaw(t, addrs[leader], grpc.WithTransportCredentials(creds), forgedPeerBatch(addrs[leader], uint64(leader+1), follower, before.Term+100))
	}
	t.Run("a client certificate sending Raft messages and a Hello", func(t *testing.T) {
		forged("client")
		waitLogLine(t, srv, "refused a remote message", `"type":"raftpb.Message"`, `"subject":"CN=kstore-client,O=kstore"`, `"peer":"127.0.0.1:`)
		waitLogLine(t, srv, "refused a remote message", `"type":"kstore.v1.Hello"`, `"subject":"CN=kstore-client,O=kstore"`)
		after := tlsStatus(t, lead, clientTLS)
		if after.Term != before.Term || after.Leader != before.Leader {
			t.Fatalf("after the forged heartbeat at term %d: term %d, leader %d; want term %d, leader %d unchanged",
				before.Term+100, after.Term, after.Leader, before.Term, before.Leader)
		}
	})
	t.Run("control: the same over a peer certificate moves the term", func(t *testing.T) {
		forged(fmt.Sprintf("node%d", follower))
		deadline := time.Now().Add(10 * time.Second)
		for tlsStatus(t, lead, clientTLS).Term < before.Term+100 {
			if time.Now().After(deadline) {
				t.Fatalf("the forged heartbeat over a peer certificate did not reach raft: the refusal above proves nothing")
			}
			time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
		}
	})
}

// TestNoTLSForgedRaftFromNonMember sends, without TLS, a Raft heartbeat at a higher term in a
// follower's name to the leader, from 127.0.0.2, an IP no member has: the leader does not step
// down and logs the refusal with the remote address. The same from 127.0.0.1, the members' IP,
// does reach raft (the control: the refused message would have hurt).
func TestNoTLSForgedRaftFromNonMember(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kstore binary")
	}
	c := startCluster(t, 3)
	leader := c.waitLeader(nil)
	k := c.cli(leader)
	before := k.status()
	follower := uint64((leader+1)%3 + 1)
	batch := forgedPeerBatch(c.addrs[leader], uint64(leader+1), follower, before.Term+100)

	sendRaw(t, c.addrs[leader], grpc.WithTransportCredentials(insecure.NewCredentials()), batch, "127.0.0.2")
	waitLogLine(t, c.servers[leader], "refused a remote message", `"type":"raftpb.Message"`, `"peer":"127.0.0.2:`)
	waitLogLine(t, c.servers[leader], "refused a remote message", `"type":"kstore.v1.Hello"`, `"peer":"127.0.0.2:`)
	// The same peer traffic to another actor, such as the actor cluster's store identity (which
	// passes kstore messages on to the node actor), is refused by its type.
	relayed := forgedPeerBatch(c.addrs[leader], uint64(leader+1), follower, before.Term+100)
	relayed.Targets = []*actor.PID{actor.NewPID(c.addrs[leader], "partition-activator/relay"), actor.NewPID(c.addrs[leader], "partition-activator/relay")}
	sendRaw(t, c.addrs[leader], grpc.WithTransportCredentials(insecure.NewCredentials()), relayed, "127.0.0.2")
	for _, typ := range []string{"raftpb.Message", "kstore.v1.Hello"} {
		waitLogLine(t, c.servers[leader], "refused a remote message", `"type":"`+typ+`"`, `partition-activator/relay`, `"peer":"127.0.0.2:`)
	}
	if after := k.status(); after.Term != before.Term || after.Leader != before.Leader {
		t.Fatalf("after the forged heartbeat from 127.0.0.2: term %d, leader %d; want term %d, leader %d unchanged",
			after.Term, after.Leader, before.Term, before.Leader)
	}

	sendRaw(t, c.addrs[leader], grpc.WithTransportCredentials(insecure.NewCredentials()), batch, "127.0.0.1")
	deadline := time.Now().Add(10 * time.Second)
	for k.status().Term < before.Term+100 {
		if time.Now().After(deadline) {
			t.Fatalf("the forged heartbeat from the members' IP did not reach raft: the refusal above proves nothing")
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
	c.waitLeader(nil)
}

// forgedPeerBatch is what a forger sends the leader (node id leader) at addr: a heartbeat in
// the follower's name at term, and a Hello in its name.
func forgedPeerBatch(addr string, leader, follower, term uint64) *remote.MessageBatch {
	hb, _ := proto.Marshal(&raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(follower),
		To: proto.Uint64(leader), Term: proto.Uint64(term)})
	hello, _ := proto.Marshal(&messages.Hello{NodeId: follower})
	return &remote.MessageBatch{
		TypeNames: []string{"raftpb.Message", "kstore.v1.Hello"},
		Targets:   []*actor.PID{actor.NewPID(addr, "kstore/raft"), actor.NewPID(addr, "kstore")},
		Envelopes: []*remote.MessageEnvelope{
			{TypeId: 0, MessageData: hb, Target: 0},
			{TypeId: 1, MessageData: hello, Target: 1},
		},
	}
}

// sendRaw speaks protoactor's wire protocol to addr over its own gRPC connection, from the
// local IP from when given, and sends b.
func sendRaw(t *testing.T, addr string, creds grpc.DialOption, b *remote.MessageBatch, from ...string) {
	t.Helper()
	opts := []grpc.DialOption{creds}
	if len(from) > 0 {
		local := &net.TCPAddr{IP: net.ParseIP(from[0])}
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return (&net.Dialer{LocalAddr: local}).DialContext(ctx, "tcp", a)
		}))
	}
	conn, err := grpc.Dial("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := remote.NewRemotingClient(conn).Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hello := &remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{ConnectRequest: &remote.ConnectRequest{
		ConnectionType: &remote.ConnectRequest_ServerConnection{ServerConnection: &remote.ServerConnection{
			SystemId: "forger", Address: "forger.invalid:1"}}}}}
	if err := stream.Send(hello); err != nil {
		t.Fatal(err)
	}
	if res, err := stream.Recv(); err != nil || res.GetConnectResponse() == nil {
		t.Fatalf("connect: got %v, %v; want a ConnectResponse", res, err)
	}
	if err := stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: b}}); err != nil {
		t.Fatal(err)
	}
	// The batch is taken once the stream ends cleanly: the server reads it before the close.
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	_, _ = stream.Recv()
}

// waitLogLine waits until one line of s's log holds msg and every one of want.
func waitLogLine(t *testing.T, s *server, msg string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(s.log.String(), "\n") {
			if !strings.Contains(line, `"msg":"`+msg+`"`) {
				continue
			}
			all := true
			for _, w := range want {
				all = all && strings.Contains(line, w)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q with %q within 10s:\n%s", msg, want, s.log)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

func tlsStatus(t *testing.T, k *cli, tlsFlags []string) nodeStatus {
	t.Helper()
	var st nodeStatus
	out := k.ok("", append([]string{"status"}, tlsFlags...)...)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status printed %q: %v", out, err)
	}
	return st
}

// waitTLSLeader waits until every member reports the same leader, and returns its index.
func waitTLSLeader(t *testing.T, k *cli, tlsFlags []string, addrs []string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var leaders []uint64
		for _, a := range addrs {
			one := &cli{t: t, bin: k.bin, endpoints: a}
			r, err := one.exec("", append([]string{"status", "--timeout", "1s"}, tlsFlags...)...)
			var st nodeStatus
			if err == nil && r.code == 0 && json.Unmarshal([]byte(r.stdout), &st) == nil {
				leaders = append(leaders, st.Leader)
			} else {
				leaders = append(leaders, 0)
			}
		}
		if l := leaders[0]; l != 0 && leaders[1] == l && leaders[2] == l {
			return int(l - 1)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the TLS members agree on no leader within 30s: %v", leaders)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestServeRefusesPartialTLS: a partial set of TLS flags is refused before the node starts,
// with a sentence naming what is missing, and leaves no data dir behind; so are the client's.
func TestServeRefusesPartialTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kstore binary")
	}
	bin := kstoreBinary(t)
	pki := t.TempDir()
	k := &cli{t: t, bin: bin, endpoints: "127.0.0.1:1"}
	k.ok("", "certs", "--dir", pki)
	p := func(f string) string { return filepath.Join(pki, f) }
	peer := []string{"--peer-cert-file", p("node1.crt"), "--peer-key-file", p("node1.key"), "--peer-trusted-ca-file", p("ca.crt")}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"serve: a certificate without its key", []string{"serve", "--cert-file", p("node1.crt")}, "--cert-file is given without --key-file"},
		{"serve: no peer certificate", []string{"serve", "--cert-file", p("node1.crt"), "--key-file", p("node1.key")}, "without --peer-cert-file"},
		{"serve: client-cert-auth without a trusted CA", append([]string{"serve", "--cert-file", p("node1.crt"), "--key-file", p("node1.key"), "--client-cert-auth"}, peer...),
			"--client-cert-auth is given without --trusted-ca-file"},
		{"serve: peer flags only", append([]string{"serve"}, peer...), "without --cert-file and --key-file"},
		{"client: --cacert alone", []string{"status", "--cacert", p("ca.crt")}, "a client needs a certificate"},
		{"client: --cert without --key", []string{"status", "--cacert", p("ca.crt"), "--cert", p("client.crt")}, "without its key (--key)"},
		{"client: a key that is not a certificate's", []string{"status", "--cacert", p("ca.crt"), "--cert", p("client.crt"), "--key", p("node1.key")}, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := tt.args
			if args[0] == "serve" {
				args = append(args, "--data-dir", dir, "--listen", "127.0.0.1:0")
			}
			if msg := k.fail("Invalid", "", args...); !strings.Contains(msg, tt.want) {
				t.Errorf("refusal says %q, want %q", msg, tt.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("the refused serve left a data dir %s", dir)
			}
		})
	}
}
