package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/messages"
)

// endpointsEnv names the nodes when --endpoints is not given.
const endpointsEnv = "KSTORE_ENDPOINTS"

// clientOptions are the flags of every command that talks to a node.
type clientOptions struct {
	endpoints string
	timeout   time.Duration
	listen    string // --client-listen; empty: clientListenAddr picks one
	// --cacert, --cert, --key (etcdctl's names): mutual TLS with the nodes; all empty: none.
	cacert, cert, key string
}

// addClientFlags adds --endpoints, --timeout and --client-listen; writes says whether the
// command writes, for what --timeout's help says about a write that times out.
func addClientFlags(cmd *cobra.Command, o *clientOptions, writes bool) {
	f := cmd.Flags()
	f.StringVar(&o.endpoints, "endpoints", actors.DefaultListen,
		"nodes to talk to, host:port[,host:port]: the first that accepts a connection is used; $"+endpointsEnv+" when the flag is not given")
	timeout := "how long a request may take, retries while the node is unavailable included"
	if writes {
		timeout = "how long each request may take, retries while the node is unavailable included; a write that times out has an unknown outcome: read to find out"
	}
	f.DurationVar(&o.timeout, "timeout", actors.DefaultTimeout, timeout)
	f.StringVar(&o.listen, "client-listen", "",
		"host:port this command listens on for the node's replies (the node connects back to it); it must be reachable from the node; default: 127.0.0.1 for a node on loopback, else the local address of the route to the node, on a free port")
	f.StringVar(&o.cacert, "cacert", "",
		"TLS: the CA certificates (PEM, one file) that signed the nodes' certificates, both --cert-file (which the node serves with) and --peer-cert-file (which it connects back to this command with); with --cert and --key, this command talks to nodes that serve TLS")
	f.StringVar(&o.cert, "cert", "",
		"TLS: this command's certificate (PEM). It also serves TLS on this command's own listener, which the node connects back to: its SANs must name that IP (127.0.0.1 on loopback) and it needs the server and client key usages (kstore certs' client.crt). Membership changes need a peer certificate (OU "+actors.PeerOU+"), such as a node's")
	f.StringVar(&o.key, "key", "", "TLS: the private key (PEM) of --cert")
}

// tls is the TLS of --cacert, --cert and --key: nil when none is given.
func (o *clientOptions) tls() *actors.TLS {
	if o.cacert == "" && o.cert == "" && o.key == "" {
		return nil
	}
	return &actors.TLS{CertFile: o.cert, KeyFile: o.key, TrustedCAFile: o.cacert}
}

// endpointList is --endpoints, or $KSTORE_ENDPOINTS when the flag was not given, split and
// checked.
func (o *clientOptions) endpointList(cmd *cobra.Command, g *globals) ([]string, error) {
	raw, from := o.endpoints, "--endpoints"
	if env := g.getenv(endpointsEnv); env != "" && !cmd.Flags().Changed("endpoints") {
		raw, from = env, "$"+endpointsEnv
	}
	var eps []string
	for _, e := range strings.Split(raw, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		host, port, err := net.SplitHostPort(e)
		if err != nil || host == "" || port == "" {
			return nil, invalid("%s: endpoint %q is not host:port, such as 127.0.0.1:7450", from, e)
		}
		eps = append(eps, e)
	}
	if len(eps) == 0 {
		return nil, invalid("%s is empty: give host:port[,host:port], such as 127.0.0.1:7450", from)
	}
	return eps, nil
}

// conn is a client of the nodes, with the actor system its replies come back to.
type conn struct {
	sys    *actors.System
	client *actors.Client
}

// connect starts the client's actor system and returns a client of the endpoints. Close it.
func (o *clientOptions) connect(cmd *cobra.Command, g *globals) (*conn, error) {
	if o.timeout <= 0 {
		return nil, invalid("--timeout %v must be positive, such as 5s", o.timeout)
	}
	eps, err := o.endpointList(cmd, g)
	if err != nil {
		return nil, err
	}
	listen := o.listen
	if listen == "" {
		if listen, err = clientListenAddr(eps[0]); err != nil {
			return nil, err
		}
	}
	// The system starts before the probe: remote.Start sets gRPC's global logger, which the
	// probe's gRPC goroutines read (a data race if they ran first).
	sys, err := actors.NewSystemOptions(listen, actors.SystemOptions{Logger: g.clientLogger(), TLS: o.tls()})
	if err != nil {
		if o.tls() != nil && strings.Contains(err.Error(), "TLS") {
			return nil, invalid("%s", strings.TrimPrefix(err.Error(), "actors: "))
		}
		if o.listen != "" {
			return nil, invalid("--client-listen: %v", err)
		}
		return nil, messages.Errorf(messages.StatusReason_UNAVAILABLE, "cannot start the client's actor system: %v", err)
	}
	if eps, err = reachableFirst(sys, eps, min(o.timeout, maxProbe)); err != nil {
		sys.Close()
		return nil, err
	}
	return &conn{sys: sys, client: actors.NewClient(sys.ActorSystem, eps, o.timeout)}, nil
}

// Close stops the client's actor system and releases its port. It waits for protoactor's
// endpoints only briefly (actors.System.Close): one still dialling a node that went away ends
// with the process, which exits right after.
func (c *conn) Close() { c.sys.Close() }

// maxProbe bounds the probe of one endpoint before any request is sent: the connection, the
// HTTP/2 handshake and one call (actors.AdvertisedAddress). A node answers it in a
// millisecond on a LAN; a port that accepts and says nothing costs this much.
const maxProbe = 2 * time.Second

// reachableFirst probes the endpoints in turn (actors.AdvertisedAddress, at most timeout each)
// and returns them with the first kstore node that answered moved to the front, named by the
// address it advertises, or Unavailable when none answered. Without it a request to a closed
// port, or to a port where another server listens, is not refused but lost: protoactor drops
// it and the caller waits out its whole timeout, for a Timeout that says a write's outcome is
// unknown when nothing was sent; and the client moves to the next endpoint only on a dead
// letter, which neither produces.
//
// The advertised address replaces the endpoint so that every PID the client makes names the
// node as the node names itself, whatever the user typed (localhost, a host name, another of
// the node's addresses); unless the client cannot reach it (a node advertising a name this
// machine does not resolve), when the endpoint stays as given, which the node also accepts
// when it is one of its own addresses.
func reachableFirst(sys *actors.System, eps []string, timeout time.Duration) ([]string, error) {
	var failed []string
	for i, e := range eps {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		adv, err := sys.AdvertisedAddress(ctx, e)
		cancel()
		if err == nil {
			if adv != e && !accepts(adv, timeout) {
				adv = e
			}
			out := append([]string{adv}, eps[:i]...)
			return append(out, eps[i+1:]...), nil
		}
		failed = append(failed, fmt.Sprintf("%s (%s)", e, probeFailure(err, sys.TLS())))
	}
	return nil, messages.Errorf(messages.StatusReason_UNAVAILABLE,
		"no kstore node listens at %s: is `kstore serve` running there? check --endpoints or $%s; nothing was sent",
		strings.Join(failed, ", "), endpointsEnv)
}

// probeFailure says briefly why an endpoint failed the probe.
func probeFailure(err error, withTLS bool) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err.Error() // connection refused, no route to host, ...
	}
	switch msg := err.Error(); {
	case errors.Is(err, context.DeadlineExceeded):
		return "it accepts connections but did not answer as a kstore node in time"
	case withTLS && (strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:") || strings.Contains(msg, "handshake")):
		return "the TLS handshake failed: " + tlsFailure(msg) + "; check --cacert, --cert and --key"
	case withTLS:
		return "it does not answer as a kstore node over TLS (does it serve TLS? without --cert-file, leave --cacert, --cert and --key out)"
	}
	return "something else listens there: it does not answer as a kstore node (if it serves TLS, give --cacert, --cert and --key)"
}

// tlsFailure is the part of a gRPC handshake error that names the TLS reason.
func tlsFailure(msg string) string {
	for _, mark := range []string{"tls: ", "x509: "} {
		if i := strings.Index(msg, mark); i >= 0 {
			return strings.TrimSuffix(msg[i:], "\"")
		}
	}
	return msg
}

// accepts reports whether addr takes a TCP connection within timeout.
func accepts(addr string, timeout time.Duration) bool {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// clientListenAddr is where the client's actor system listens: the node sends replies there,
// so it must be an address the node can reach. Loopback when the node (the first endpoint) is
// on loopback; otherwise the local address the route to it leaves from (a UDP "dial" picks it
// without sending a packet). Port 0: any free port. --client-listen overrides it, for a node
// that reaches the client by another way.
func clientListenAddr(endpoint string) (string, error) {
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return "", invalid("endpoint %q is not host:port, such as 127.0.0.1:7450", endpoint)
	}
	if host == "localhost" {
		return "127.0.0.1:0", nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return net.JoinHostPort(ip.String(), "0"), nil
	}
	c, err := net.Dial("udp", endpoint)
	if err != nil {
		return "", messages.Errorf(messages.StatusReason_UNAVAILABLE,
			"no route to the node at %s: %v; check --endpoints", endpoint, err)
	}
	defer c.Close()
	local := c.LocalAddr().(*net.UDPAddr).IP
	return net.JoinHostPort(local.String(), "0"), nil
}

// clientLogger is silent unless --log-level is debug; then it logs in zap's console format, for
// a person chasing a problem.
func (g *globals) clientLogger() *zap.Logger {
	if lvl, _ := g.level(); lvl != zap.DebugLevel {
		return zap.NewNop()
	}
	enc := zap.NewDevelopmentEncoderConfig()
	w := zapcore.Lock(zapcore.AddSync(g.errw))
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), w, zap.DebugLevel), zap.ErrorOutput(w))
}

// consistencyFlag is --consistency of the commands that read.
type consistencyFlag struct{ value string }

func (f *consistencyFlag) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.value, "consistency", "linearizable",
		"linearizable: see every write acknowledged before the read, on any member (asks the leader, needs a quorum); serializable: read this member's own state, possibly stale, without a quorum")
}

func (f *consistencyFlag) parse() (messages.Consistency, error) {
	switch f.value {
	case "linearizable", "l":
		return messages.Consistency_LINEARIZABLE, nil
	case "serializable", "s":
		return messages.Consistency_SERIALIZABLE, nil
	}
	return 0, invalid("--consistency %q is not a consistency: give linearizable or serializable", f.value)
}
