package actors

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/kstore/kstore/cluster"
	"github.com/kstore/kstore/messages"
)

// nonLoopbackIPv4 is an IPv4 address of this machine that is not loopback, "" when it has none.
func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	ips, err := localIPs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range ips {
		if ip.To4() != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
			return ip.String()
		}
	}
	return ""
}

func TestPlanAddresses(t *testing.T) {
	other := nonLoopbackIPv4(t)
	tests := []struct {
		name              string
		listen, advertise string
		wantErr           string // in the error; "" for success
		wantAdvertised    string // host part; the port is the one picked
		wantAliases       []string
		needsOther        bool // the case needs a non-loopback address of this machine
	}{
		{name: "loopback", listen: "127.0.0.1:0", wantAdvertised: "127.0.0.1", wantAliases: []string{"localhost"}},
		{name: "a name is resolved", listen: "localhost:0", wantAdvertised: "127.0.0.1", wantAliases: []string{"localhost"}},
		{name: "wildcard needs an advertised address", listen: "0.0.0.0:0", wantErr: "--advertise-address"},
		{name: "empty host is a wildcard", listen: ":0", wantErr: "--advertise-address"},
		{name: "wildcard advertised on loopback", listen: "0.0.0.0:0", advertise: "127.0.0.1:0",
			wantAdvertised: "127.0.0.1", wantAliases: []string{"localhost", "0.0.0.0"}},
		{name: "wildcard advertised on the host's address", listen: "0.0.0.0:0", advertise: other + ":0", needsOther: true,
			wantAdvertised: other, wantAliases: []string{"127.0.0.1", "localhost"}},
		{name: "another port", listen: "127.0.0.1:0", advertise: "127.0.0.1:1", wantErr: "but the node listens on port 0"},
		{name: "not this machine", listen: "0.0.0.0:0", advertise: "203.0.113.1:0", wantErr: "not an address of this machine"},
		{name: "advertised wildcard", listen: "0.0.0.0:0", advertise: "0.0.0.0:0", wantErr: "every interface"},
		{name: "not covered by the listener", listen: "127.0.0.1:0", advertise: other + ":0", needsOther: true,
			wantErr: "does not reach the listener"},
		{name: "advertised is not host:port", listen: "127.0.0.1:0", advertise: "127.0.0.1", wantErr: "is not host:port"},
		{name: "listen is not host:port", listen: "127.0.0.1", wantErr: "give host:port"},
		{name: "port out of range", listen: "127.0.0.1:70000", wantErr: "0 to 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needsOther && other == "" {
				t.Skip("this machine has no non-loopback IPv4 address")
			}
			at, err := planAddresses(tt.listen, tt.advertise)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("planAddresses(%q, %q) = %+v, %v; want an error saying %q", tt.listen, tt.advertise, at, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			port := strconv.Itoa(at.port)
			if at.port == 0 || at.advertised != net.JoinHostPort(tt.wantAdvertised, port) {
				t.Fatalf("advertised %s (port %d), want %s at the picked port", at.advertised, at.port, tt.wantAdvertised)
			}
			for _, h := range tt.wantAliases {
				if !at.aliases[net.JoinHostPort(h, port)] {
					t.Errorf("aliases %v lack %s", at.aliases, net.JoinHostPort(h, port))
				}
			}
			if at.aliases[at.advertised] {
				t.Errorf("aliases %v hold the advertised address", at.aliases)
			}
		})
	}
}

// listeningSockets counts this process's TCP sockets in the LISTEN state (Linux /proc).
func listeningSockets(t *testing.T) int {
	t.Helper()
	listening := map[string]bool{} // socket inodes
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		file, err := os.Open(f)
		if err != nil {
			t.Skipf("no %s to count listening sockets: %v", f, err)
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && fields[3] == "0A" { // st: TCP_LISTEN
				listening[fields[9]] = true
			}
		}
		file.Close()
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok && listening[strings.TrimSuffix(inode, "]")] {
			n++
		}
	}
	return n
}

// putAndGet writes a Pod through c and reads it back.
func putAndGet(t *testing.T, c *Client, name string) {
	t.Helper()
	ctx := context.Background()
	res, err := c.Put(ctx, pod(name), messages.Reason_OPERATOR)
	if err != nil || res.GetOp() != messages.ResourceOp_CREATED {
		t.Fatalf("put %s: %v %v", name, res, err)
	}
	got, err := c.Get(ctx, &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: name}, 0)
	if err != nil || !strings.Contains(string(got.GetObject()), `"name":"`+name+`"`) {
		t.Fatalf("get %s: %s %v", name, got.GetObject(), err)
	}
}

// TestInProcessNodeOpensNoPort runs a node in a quiet system without remote, both ways: spawned
// into NewSystem("", nil), and started by Start with no Listen. A client in the same system
// puts and gets; the process listens on no port more than before.
func TestInProcessNodeOpensNoPort(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions...)
	before := listeningSockets(t)

	sys, err := NewSystem("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sys.Remote != nil || sys.Address() != localAddress || len(sys.ProcessRegistry.RemoteHandlers) != 0 {
		t.Fatalf("NewSystem(\"\"): remote %v, address %q: want no remote", sys.Remote, sys.Address())
	}
	n, err := Spawn(sys.ActorSystem, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	putAndGet(t, NewClientPIDs(sys.ActorSystem, []*actor.PID{n.PID()}, 0), "spawned")
	if got := listeningSockets(t); got != before {
		t.Errorf("with a node spawned into NewSystem(\"\"), the process listens on %d sockets, want %d as before", got, before)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	sys.Close()

	n, err = Start(Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if n.Address() != localAddress {
		t.Errorf("Start without Listen: address %q, want %q", n.Address(), localAddress)
	}
	putAndGet(t, NewClientPIDs(n.System(), []*actor.PID{n.PID()}, 0), "started")
	if got := listeningSockets(t); got != before {
		t.Errorf("with a node started without Listen, the process listens on %d sockets, want %d as before", got, before)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestInProcessNodeRefusesPeers: a node without a listener cannot have peers; Start says so
// before it creates the data dir.
func TestInProcessNodeRefusesPeers(t *testing.T) {
	tests := []struct {
		name string
		give Config
		want string
	}{
		{"initial cluster", Config{InitialCluster: map[uint64]string{1: "127.0.0.1:7450"}}, "initial cluster"},
		{"join", Config{Join: []string{"127.0.0.1:7450"}}, "cannot join"},
		{"actor cluster", Config{Cluster: &cluster.Config{}}, "actor cluster"},
		{"advertise", Config{Advertise: "127.0.0.1:7450"}, "no address to advertise"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "new")
			tt.give.DataDir = dir
			n, err := Start(tt.give)
			if err == nil {
				n.Stop()
				t.Fatal("started; want a refusal")
			}
			if !strings.Contains(err.Error(), "without a listen address") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to say a node without a listen address cannot (%s)", err, tt.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the data dir %s exists after the refusal (%v)", dir, err)
			}
		})
	}
	// Spawned into a system without remote, the same.
	sys, err := NewSystem("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	if n, err := Spawn(sys.ActorSystem, Config{DataDir: t.TempDir(), Join: []string{"127.0.0.1:7450"}}); err == nil {
		n.Stop()
		t.Fatal("Spawn with Join into a system without remote started")
	}
}

// TestFailedStartLeavesTheDataDirAsItWas: a start that fails on a port in use removes the data
// dir it created (and the parents it created), and leaves one that existed as it was.
func TestFailedStartLeavesTheDataDirAsItWas(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	root := t.TempDir()

	fresh := filepath.Join(root, "parent", "data")
	if _, err := Start(Config{DataDir: fresh, Listen: l.Addr().String()}); err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("start on a port in use: err = %v, want cannot listen", err)
	}
	if _, err := os.Stat(filepath.Join(root, "parent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after the failed start (%v): want it removed", filepath.Join(root, "parent"), err)
	}

	existing := filepath.Join(root, "existing")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(existing, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(Config{DataDir: existing, Listen: l.Addr().String()}); err == nil {
		t.Fatal("start on a port in use succeeded")
	}
	ents, err := os.ReadDir(existing)
	if err != nil || len(ents) != 1 || ents[0].Name() != "keep" {
		t.Errorf("the existing data dir holds %v (%v) after the failed start, want only keep", ents, err)
	}
}

// TestWildcardSystemAnswersItsAliases: a system on every interface, advertised at one address,
// takes messages addressed to its other addresses at its port (localhost, 127.0.0.1, the
// machine's other addresses) as its own, refuses one for another machine, and tells its
// advertised address to the probe under any of them.
func TestWildcardSystemAnswersItsAliases(t *testing.T) {
	if inOwnProcess(t) {
		return
	}
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	host := nonLoopbackIPv4(t)
	if host == "" {
		host = "127.0.0.1"
	}
	s, err := newSystem("0.0.0.0:0", host+":0", zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, port, _ := net.SplitHostPort(s.Address())
	if want := net.JoinHostPort(host, port); s.Address() != want {
		t.Fatalf("advertised %s, want %s", s.Address(), want)
	}
	log := newDeliveries()
	if _, err := s.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &echo{name: "echo", log: log} }), "echo"); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Root.StopFuture(actor.NewPID(s.Address(), "echo")).Wait() }()

	aliases := []string{"localhost", "127.0.0.1", "0.0.0.0", host}
	for _, h := range aliases {
		addr := net.JoinHostPort(h, port)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := AdvertisedAddress(ctx, addr)
		cancel()
		if err != nil || got != s.Address() {
			t.Errorf("AdvertisedAddress(%s) = %q, %v; want %s", addr, got, err, s.Address())
		}
	}

	h := dialHostile(t, net.JoinHostPort("127.0.0.1", port))
	defer h.conn.Close()
	stream, cancel := h.open(t)
	defer cancel()
	b := new(batchOf)
	var want []string
	for _, a := range aliases {
		b.to(actor.NewPID(net.JoinHostPort(a, port), "echo"), mark("to "+a))
		want = append(want, "echo:to "+a)
	}
	b.to(actor.NewPID(net.JoinHostPort("203.0.113.1", port), "echo"), mark("elsewhere"))
	b.to(actor.NewPID(s.Address(), "echo"), mark("last"))
	if err := send(stream, &b.b); err != nil {
		t.Fatal(err)
	}
	log.waitFor(t, 5*time.Second, "messages to the system's own addresses", append(want, "echo:last")...)
	for _, got := range log.take() {
		if got == "echo:elsewhere" {
			t.Error("a message to another machine's address was delivered here")
		}
	}
}

// TestAdvertisedAddressTellsKstoreFromOthers: the probe names a kstore system's address, and
// fails, within its context, on anything else: a closed port (a *net.OpError), an HTTP server, a
// gRPC server without protoactor, a port that accepts and says nothing.
func TestAdvertisedAddressTellsKstoreFromOthers(t *testing.T) {
	if inOwnProcess(t) {
		return
	}
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	kstore, err := NewSystem("127.0.0.1:0", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer kstore.Close()

	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "hello") }))
	defer web.Close()

	plain := grpc.NewServer()
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = plain.Serve(pl) }()
	defer plain.Stop()

	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts (the kernel's backlog), never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	const bound = 500 * time.Millisecond
	tests := []struct {
		name     string
		endpoint string
		want     string // the address; "" for an error
		wantErr  string
	}{
		{"kstore", kstore.Address(), kstore.Address(), ""},
		{"closed port", closedAddr, "", "nothing listens"},
		{"http server", strings.TrimPrefix(web.URL, "http://"), "", "does not answer as a kstore node"},
		{"grpc server without protoactor", pl.Addr().String(), "", "does not answer as a kstore node"},
		{"silent listener", silent.Addr().String(), "", "did not answer as a kstore node in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			start := time.Now()
			got, err := AdvertisedAddress(ctx, tt.endpoint)
			took := time.Since(start)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("AdvertisedAddress(%s) = %q, %v; want %s", tt.endpoint, got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("AdvertisedAddress(%s) = %q, %v; want an error saying %q", tt.endpoint, got, err, tt.wantErr)
			}
			var op *net.OpError
			if errors.As(err, &op) != (tt.name == "closed port") {
				t.Errorf("err %v: a *net.OpError in it is %v, want it only for a closed port", err, errors.As(err, &op))
			}
			if took > bound+time.Second {
				t.Errorf("the probe took %v, beyond its context's %v", took, bound)
			}
		})
	}
}
