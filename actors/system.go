package actors

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/kstore/kstore/cluster"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	// Every message a node or a client may receive must be in the protobuf registry.
	_ "github.com/kstore/kstore/messages"
	_ "go.etcd.io/raft/v3/raftpb"
)

// maxMessageBytes bounds one gRPC message between actor systems. protoactor batches up to 1,000
// messages into one by count, not size, and a batch over the limit is refused and its connection
// dropped, with every message queued behind it. kstore bounds its own large messages (an object
// 1.5 MiB, a list page 16 MiB, a WatchStream 1 MiB); the limit leaves room for a batch of many.
const maxMessageBytes = 512 << 20

// System is an actor system with protoactor remote started on a TCP address: what a node runs
// on, and what a client process needs to talk to nodes (replies come back over the client's
// own listener).
type System struct {
	*actor.ActorSystem
	Remote *remote.Remote
	guard  *guard // filters what other processes send (guard.go); Protect adds to it
	leave  func() // leaves the actor cluster, when the system is in one (NewSystemWith)
}

// NewSystem starts an actor system listening on listen ("host:port"; port 0 picks a free one).
// Its protoactor logs go to logger at warn and above.
func NewSystem(listen string, logger *zap.Logger) (*System, error) {
	return NewSystemWith(listen, logger, nil)
}

// NewSystemWith is NewSystem with remote started by start (cluster.Member or cluster.Client,
// which start it as part of a protoactor cluster) instead of on its own; nil is NewSystem.
func NewSystemWith(listen string, logger *zap.Logger, start cluster.Starter) (*System, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("actors: listen address %q: %w (give host:port, e.g. 127.0.0.1:7450)", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("actors: listen address %q: port is not a number", listen)
	}
	// protoactor's remote panics when it cannot listen; find out first, with an error to show.
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("actors: cannot listen on %s: %w (is another kstore running? pick another --listen)", listen, err)
	}
	if port == 0 {
		port = l.Addr().(*net.TCPAddr).Port
	}
	l.Close()

	if logger == nil {
		logger = zap.NewNop()
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(debugOnly{zapslog.NewHandler(logger.Core(), zapslog.WithName("protoactor"))})
	}))
	g := newGuard(sys, logger)
	rc := remote.Configure(host, port,
		remote.WithServerOptions(grpc.MaxRecvMsgSize(maxMessageBytes),
			grpc.ChainStreamInterceptor(g.stream), grpc.ChainUnaryInterceptor(g.unary)),
		remote.WithDialOptions(append([]grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)),
		}, endpointDialOptions()...)...),
	)
	if start != nil {
		r, leave, err := start(sys, rc)
		if err != nil {
			if r != nil {
				(&System{ActorSystem: sys, Remote: r, guard: g, leave: leave}).Close()
			} else {
				sys.Shutdown()
			}
			return nil, err
		}
		return &System{ActorSystem: sys, Remote: r, guard: g, leave: leave}, nil
	}
	r := remote.NewRemote(sys, rc)
	if err := startRemote(r); err != nil {
		sys.Shutdown()
		return nil, fmt.Errorf("actors: cannot listen on %s: %w", listen, err)
	}
	return &System{ActorSystem: sys, Remote: r, guard: g}, nil
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

// Address is the host:port other systems reach this one at.
func (s *System) Address() string { return s.ActorSystem.Address() }

// Close leaves the actor cluster, if the system is in one, stops remote (releasing the port and
// every connection) and the actor system. Stop your actors first: shutting a system down stops
// none of them.
//
// It does not call protoactor's graceful Remote.Shutdown: that one clears the endpoint manager's
// connection table while connection-loss events may still be reading it (a data race, and a nil
// dereference when it loses the race). Instead it stops the gRPC server first, so that no
// incoming message can open a connection any more (one arriving after the endpoint actors are
// gone panics inside protoactor), then the endpoint actors, which close the outgoing connections.
func (s *System) Close() {
	if s.leave != nil {
		s.leave()
	}
	s.Remote.Shutdown(false)
	root := s.ActorSystem.Root
	for _, name := range []string{"EndpointSupervisor", "activator"} {
		if err := root.StopFuture(actor.NewPID(s.Address(), name)).Wait(); err != nil {
			s.ActorSystem.Logger().Debug("stop remote actor", slog.String("name", name), slog.Any("error", err))
		}
	}
	s.ActorSystem.Shutdown()
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
