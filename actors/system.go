package actors

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/kstore/kstore/cluster"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	// Every message a node or a client may receive must be in the protobuf registry.
	_ "github.com/kstore/kstore/messages"
	_ "go.etcd.io/raft/v3/raftpb"
)

// maxMessageBytes bounds one gRPC message between actor systems. protoactor batches up to 1,000
// messages into one by count, not size, and a batch over the limit is refused and its connection
// dropped, with every message queued behind it. kstore bounds its own large messages (an object
// 1.5 MiB, a list page 16 MiB, a WatchStream 1 MiB); the limit leaves room for a batch of many.
const maxMessageBytes = 512 << 20

// System is an actor system, with protoactor remote listening on a TCP address or with no
// remote at all. A node runs on one; so does a client process that talks to nodes in other
// processes, for protoactor remote sends a reply over a connection the replying system opens
// to the requester's own listener.
type System struct {
	*actor.ActorSystem
	// Remote is protoactor remote; nil for a system without a listener (NewSystem("", ...)).
	Remote *remote.Remote
	guard  *guard // filters what other processes send (guard.go); Protect adds to it
	leave  func() // leaves the actor cluster, when the system is in one (NewSystemWith)
	// dialTLS is what the system dials other systems with (tls.go); nil without TLS.
	dialTLS *tls.Config
}

// SystemOptions are NewSystemOptions' settings. Zero fields: NewSystem's behaviour.
type SystemOptions struct {
	// Logger gets protoactor's logs at warn and above, and the guard's (nil: nowhere).
	Logger *zap.Logger
	// Start starts remote as part of a protoactor cluster (see NewSystemWith); nil: on its own.
	Start cluster.Starter
	// TLS, when set, serves and dials with mutual TLS, as a client process: CertFile and
	// KeyFile (--cert, --key) to listen and dial with, TrustedCAFile (--cacert) for the nodes'
	// certificates; see tls.go. A node's TLS is Config.TLS.
	TLS *TLS
}

// NewSystem starts an actor system listening on listen ("host:port"; port 0 picks a free one),
// its protoactor logs at warn and above going to logger (nil: nowhere).
//
// The listener is what other actor systems reach this one at, a client's included: a node
// answers a request over a connection it opens to the requester's own listener, so a client
// process must listen on an address its nodes can reach: 127.0.0.1:0 for nodes on loopback,
// else an address of the interface the nodes are reached through, port 0 or one a firewall
// lets in. listen is one address of this machine, an IP or a name (resolved: the system is
// known by the IP it listens on); a wildcard (0.0.0.0, [::]) is refused, as no address to reach
// the system at (a node that listens on every interface names its address in Config.Advertise).
//
// An empty listen makes a quiet system without remote, opening no port: its actors reach only
// each other, such as a node spawned into it (Spawn) and a client of that node
// (NewClientPIDs(sys.ActorSystem, []*actor.PID{node.PID()}, timeout)).
func NewSystem(listen string, logger *zap.Logger) (*System, error) {
	return NewSystemWith(listen, logger, nil)
}

// NewSystemWith is NewSystem with remote started by start (cluster.Member or cluster.Client,
// which start it as part of a protoactor cluster) instead of on its own; nil is NewSystem.
// A cluster needs remote: listen must not be empty then.
func NewSystemWith(listen string, logger *zap.Logger, start cluster.Starter) (*System, error) {
	return newSystem(listen, "", logger, start)
}

// NewSystemOptions is NewSystem with options: a cluster starter, mutual TLS.
func NewSystemOptions(listen string, o SystemOptions) (*System, error) {
	var setup *tlsSetup
	if o.TLS.enabled() {
		if listen == "" {
			return nil, errors.New("actors: TLS is for protoactor remote, and a system without a listen address has none; give it a listen address, or leave TLS out")
		}
		var err error
		if setup, err = o.TLS.load(false); err != nil {
			return nil, err
		}
	}
	return newSystemTLS(listen, "", o.Logger, o.Start, setup)
}

// newSystem is NewSystemWith with the address the system advertises (see address.go); empty:
// the one it listens on.
func newSystem(listen, advertise string, logger *zap.Logger, start cluster.Starter) (*System, error) {
	return newSystemTLS(listen, advertise, logger, start, nil)
}

// newSystemTLS is newSystem serving and dialling with setup (nil: without TLS).
func newSystemTLS(listen, advertise string, logger *zap.Logger, start cluster.Starter, setup *tlsSetup) (*System, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if listen == "" {
		if advertise != "" || start != nil {
			return nil, errors.New("actors: a system without a listen address has no remote: it can neither advertise an address nor be in an actor cluster; give it a listen address")
		}
		sys := newActorSystem(logger)
		return &System{ActorSystem: sys, guard: newGuard(sys, logger)}, nil
	}
	at, err := planAddresses(listen, advertise)
	if err != nil {
		return nil, err
	}
	sys := newActorSystem(logger)
	g := newGuard(sys, logger)
	g.aliases = at.aliases
	g.peers.self = selfIPs(at)
	serverOpts := []grpc.ServerOption{grpc.MaxRecvMsgSize(maxMessageBytes),
		grpc.ChainStreamInterceptor(g.stream), grpc.ChainUnaryInterceptor(g.unary)}
	dialCreds := insecure.NewCredentials()
	var dialTLS *tls.Config
	if setup != nil {
		g.peers.tls, g.peers.roots = true, setup.peerRoots
		serverOpts = append(serverOpts, grpc.Creds(loggedCreds{TransportCredentials: credentials.NewTLS(setup.server), g: g}))
		dialTLS = setup.dial
		dialCreds = credentials.NewTLS(setup.dial)
	}
	rc := remote.Configure(at.host, at.port,
		remote.WithAdvertisedHost(at.advertised),
		remote.WithServerOptions(serverOpts...),
		remote.WithDialOptions(append([]grpc.DialOption{
			grpc.WithTransportCredentials(dialCreds),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)),
		}, endpointDialOptions()...)...),
	)
	if start != nil {
		r, leave, err := start(sys, rc)
		if err != nil {
			if r != nil {
				(&System{ActorSystem: sys, Remote: r, guard: g, leave: leave, dialTLS: dialTLS}).Close()
			} else {
				sys.Shutdown()
			}
			return nil, err
		}
		return &System{ActorSystem: sys, Remote: r, guard: g, leave: leave, dialTLS: dialTLS}, nil
	}
	r := remote.NewRemote(sys, rc)
	if err := startRemote(r); err != nil {
		sys.Shutdown()
		return nil, fmt.Errorf("actors: cannot listen on %s: %w", listen, err)
	}
	return &System{ActorSystem: sys, Remote: r, guard: g, dialTLS: dialTLS}, nil
}

func newActorSystem(logger *zap.Logger) *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(debugOnly{zapslog.NewHandler(logger.Core(), zapslog.WithName("protoactor"))})
	}))
}

func startRemote(r *remote.Remote) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	r.Start()
	return nil
}

// Address is the host:port other systems reach this one at: the address it advertises, which
// its actors' PIDs name ("nonhost" for a system without remote).
func (s *System) Address() string { return s.ActorSystem.Address() }

// endpointStopWait bounds how long Close waits for protoactor's endpoint actors to stop. Each
// closes its connection in a few milliseconds; but the endpoint writer of a peer that went away
// just before (a client killed during a watch: the node's watchers of it stop and notify it,
// which dials it anew) is inside its connect loop, MaxRetryCount (5) tries 2 s apart with an
// uninterruptible sleep between them (remote/endpoint_writer.go, initialize), and cannot take
// its stop for up to 10 s. It holds no connection (the blocking dial of endpointDialOptions
// closes what it opened), so Close leaves it to end by itself.
const endpointStopWait = 300 * time.Millisecond

// Close leaves the actor cluster, if the system is in one, stops remote (releasing the port and
// every connection) and the actor system. Stop your actors first: shutting a system down stops
// none of them.
//
// It does not call protoactor's graceful Remote.Shutdown: that one clears the endpoint manager's
// connection table while connection-loss events may still be reading it (a data race, and a nil
// dereference when it loses the race). Instead it stops the gRPC server first, so that no
// incoming message can open a connection any more (one arriving after the endpoint actors are
// gone panics inside protoactor), then the endpoint actors, which close the outgoing connections,
// waiting for them at most endpointStopWait each: an endpoint writer still dialling a peer
// that went away ends by itself, within about 10 s.
func (s *System) Close() {
	if s.leave != nil {
		s.leave()
	}
	if s.guard != nil {
		s.guard.peers.close()
	}
	if s.Remote != nil {
		s.Remote.Shutdown(false)
		for _, name := range []string{"EndpointSupervisor", "activator"} {
			if err := s.stopWithin(name, endpointStopWait); err != nil {
				s.ActorSystem.Logger().Debug("stop remote actor", slog.String("name", name), slog.Any("error", err))
			}
		}
	}
	s.ActorSystem.Shutdown()
}

// stopWithin stops the local actor id and waits at most d for it to have stopped (StopFuture
// with a timeout of one's own: StopFuture's is 10 s).
func (s *System) stopWithin(id string, d time.Duration) error {
	p, ok := s.ProcessRegistry.GetLocal(id)
	if !ok {
		return nil
	}
	pid := actor.NewPID(s.Address(), id)
	f := actor.NewFuture(s.ActorSystem, d)
	p.SendSystemMessage(pid, &actor.Watch{Watcher: f.PID()})
	s.Root.Stop(pid)
	return f.Wait()
}

// probeMethod is the gRPC method AdvertisedAddress calls: protoactor remote's ListProcesses,
// which a kstore system's guard answers with its own address (guard.unary).
const probeMethod = "/remote.Remoting/ListProcesses"

// AdvertisedAddress asks the actor system listening at endpoint (host:port) for the address it
// advertises, the one its actors' PIDs name, within ctx. It sends no actor message: one gRPC
// call, on a connection of its own that it closes. An error says that no kstore actor system
// answered there: nothing listens (the error wraps a *net.OpError), or something else does (a
// server of another protocol, a port that accepts and stays silent), or it answered otherwise
// than kstore does.
//
// A client that addresses a node by what it advertises reaches it under any name (localhost, a
// host name, another of its addresses); a node accepts its own addresses too (address.go), but
// not names it cannot know.
//
// In a process that starts protoactor remote, call it after: remote.Start sets gRPC's global
// logger, which the probe's gRPC goroutines read, and the race detector reports the pair.
func AdvertisedAddress(ctx context.Context, endpoint string) (string, error) {
	return advertisedAddress(ctx, endpoint, insecure.NewCredentials())
}

// AdvertisedAddress is the package's AdvertisedAddress over this system's transport: with TLS
// when the system has it (NewSystemOptions), presenting its certificate.
func (s *System) AdvertisedAddress(ctx context.Context, endpoint string) (string, error) {
	if s.dialTLS == nil {
		return AdvertisedAddress(ctx, endpoint)
	}
	return advertisedAddress(ctx, endpoint, credentials.NewTLS(s.dialTLS))
}

func advertisedAddress(ctx context.Context, endpoint string, creds credentials.TransportCredentials) (string, error) {
	var dialErr atomic.Pointer[net.OpError] // the last dial's failure: gRPC dials on its own goroutine
	conn, err := grpc.DialContext(ctx, "passthrough:///"+endpoint,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			var op *net.OpError
			if errors.As(err, &op) {
				dialErr.Store(op)
			}
			return c, err
		}))
	if err != nil {
		return "", fmt.Errorf("actors: %s: %w", endpoint, err)
	}
	defer conn.Close()
	var res remote.ListProcessesResponse
	err = conn.Invoke(ctx, probeMethod, &remote.ListProcessesRequest{}, &res)
	op := dialErr.Load()
	switch {
	case err != nil && op != nil:
		return "", fmt.Errorf("actors: nothing listens at %s: %w", endpoint, op)
	case err != nil && ctx.Err() != nil:
		return "", fmt.Errorf("actors: %s accepts connections but did not answer as a kstore node in time: %w", endpoint, ctx.Err())
	case err != nil:
		return "", fmt.Errorf("actors: %s does not answer as a kstore node (%v): another server listens there?", endpoint, status.Convert(err).Message())
	case len(res.GetPids()) != 1 || res.GetPids()[0].GetAddress() == "":
		return "", fmt.Errorf("actors: %s answers protoactor's ListProcesses, but not as a kstore node does (with its address): another protoactor system?", endpoint)
	}
	return res.GetPids()[0].GetAddress(), nil
}

// debugOnly logs every protoactor record at debug level. protoactor reports routine events at
// error level (a client that disconnects is "EndpointWriter lost connection"), which would bury
// kstore's own errors; kstore reports what matters to its users itself.
type debugOnly struct{ slog.Handler }

func (h debugOnly) Enabled(ctx context.Context, _ slog.Level) bool {
	return h.Handler.Enabled(ctx, slog.LevelDebug)
}

func (h debugOnly) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return h.Handler.Handle(ctx, r)
}

func (h debugOnly) WithAttrs(as []slog.Attr) slog.Handler { return debugOnly{h.Handler.WithAttrs(as)} }
func (h debugOnly) WithGroup(g string) slog.Handler       { return debugOnly{h.Handler.WithGroup(g)} }
