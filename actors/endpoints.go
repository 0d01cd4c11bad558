package actors

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// An endpoint is protoactor remote's connection to one other actor system: an endpoint writer
// actor holding a gRPC ClientConn and one stream, and an endpoint watcher. A node has one for
// every client process it has replied to, because replies travel over a connection the node
// dials back to the client's own listener. The options below make sure a node drops the
// endpoint of a client that is gone instead of redialling it for as long as the node runs.
//
// What leaked without them (protoactor-go v0.0.0-20240822202345, remote/endpoint_writer.go):
// when a client dies, its endpoint's stream fails and protoactor removes the endpoint; but the
// node's watchers of that client then stop, and each notifies its own watchers (the client's
// subscribers), which sends to the dead address again and makes a new endpoint. Its writer
// tries to connect MaxRetryCount (5) times, 2 s apart (initialize). Each try calls grpc.Dial,
// which connects lazily and so succeeds, then fails opening the stream, and returns without
// closing the ClientConn; the next try overwrites state.conn (initializeInternal). The writer
// closes only the last one when it stops: four ClientConns per dead client stay behind, each
// redialling the closed port with backoff forever (4 goroutines each: addrConn.resetTransport
// and three callback serializers).

// endpointConnectTimeout bounds one connection attempt to another actor system, TCP and HTTP/2
// handshake included: far more than a connection on a LAN takes, and short enough that a peer
// that accepts connections but does not answer (a frozen process) fails an attempt in seconds.
const endpointConnectTimeout = 5 * time.Second

// endpointKeepalive is how long a connection may carry nothing from its peer before it is
// pinged, and how long the answer may take before the connection counts as lost. It is what
// notices a peer that vanished without closing its connections (a machine powered off or cut
// off; a killed process is noticed at once, by its kernel closing the sockets): the stream
// then fails and protoactor drops the endpoint. gRPC servers refuse pings more often than
// every 5 minutes by default (keepalive.EnforcementPolicy.MinTime) and close the connection
// of a client that sends them, which would cut off a live, idle client of an older build: the
// interval stays a minute above that.
var endpointKeepalive = keepalive.ClientParameters{Time: 6 * time.Minute, Timeout: 20 * time.Second}

// endpointDialOptions are the gRPC dial options every kstore actor system adds to its remote's
// (remote.WithDialOptions replaces protoactor's defaults, credentials included).
//
// A blocking dial that fails on a refused port returns an error instead of a ClientConn, and
// gRPC closes the connection it was making itself: protoactor's writer then has nothing to
// leak, and after its retries it reports the endpoint terminated and is dropped, about 10 s
// (MaxRetryCount tries, 2 s apart) after the send to the dead address that made it. gRPC
// discourages blocking dials because they hide the connection's later life; protoactor dials
// that way in effect anyway, as it opens its stream at once and gives up the connection when
// that fails.
func endpointDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithBlock(),
		grpc.FailOnNonTempDialError(true), // connection refused is final for this attempt
		//lint:ignore SA1019 protoactor calls grpc.Dial, without a context; supported throughout gRPC 1.x.
		grpc.WithTimeout(endpointConnectTimeout),
		grpc.WithKeepaliveParams(endpointKeepalive),
	}
}
