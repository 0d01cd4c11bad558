package main

import (
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
}

// addClientFlags adds --endpoints and --timeout; writes says whether the command writes, for
// what --timeout's help says about a write that times out.
func addClientFlags(cmd *cobra.Command, o *clientOptions, writes bool) {
	f := cmd.Flags()
	f.StringVar(&o.endpoints, "endpoints", actors.DefaultListen,
		"nodes to talk to, host:port[,host:port]: the first that accepts a connection is used; $"+endpointsEnv+" when the flag is not given")
	timeout := "how long a request may take, retries while the node is unavailable included"
	if writes {
		timeout = "how long each request may take, retries while the node is unavailable included; a write that times out has an unknown outcome: read to find out"
	}
	f.DurationVar(&o.timeout, "timeout", actors.DefaultTimeout, timeout)
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
	if eps, err = reachableFirst(eps, min(o.timeout, maxProbe)); err != nil {
		return nil, err
	}
	listen, err := clientListenAddr(eps[0])
	if err != nil {
		return nil, err
	}
	sys, err := actors.NewSystem(listen, g.clientLogger())
	if err != nil {
		return nil, messages.Errorf(messages.StatusReason_UNAVAILABLE, "cannot start the client's actor system: %v", err)
	}
	return &conn{sys: sys, client: actors.NewClient(sys.ActorSystem, eps, o.timeout)}, nil
}

// closeWait bounds how long Close waits for the actor system to stop. protoactor's endpoint
// writer keeps retrying a node that went away (5 tries, 2 s apart) and stopping the system
// waits for it; the process exits right after Close, which releases everything anyway.
const closeWait = time.Second

// Close stops the client's actor system and releases its port, waiting at most closeWait.
func (c *conn) Close() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.sys.Close()
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
	}
}

// maxProbe bounds the TCP connect that checks an endpoint before any request is sent.
const maxProbe = 2 * time.Second

// reachableFirst returns the endpoints with the first one that accepts a TCP connection moved to
// the front, or Unavailable when none does. A request to a closed port is otherwise not refused
// but lost: protoactor drops it and the caller waits out its whole timeout, for a Timeout that
// says a write's outcome is unknown when nothing was sent; and the client moves to the next
// endpoint only on a dead letter, which a closed port never produces.
func reachableFirst(eps []string, timeout time.Duration) ([]string, error) {
	var failed []string
	for i, e := range eps {
		c, err := net.DialTimeout("tcp", e, timeout)
		if err == nil {
			c.Close()
			out := append([]string{e}, eps[:i]...)
			return append(out, eps[i+1:]...), nil
		}
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		failed = append(failed, fmt.Sprintf("%s (%v)", e, err))
	}
	return nil, messages.Errorf(messages.StatusReason_UNAVAILABLE,
		"no kstore node listens at %s: is `kstore serve` running there? check --endpoints or $%s; nothing was sent",
		strings.Join(failed, ", "), endpointsEnv)
}

// clientListenAddr is where the client's actor system listens: the node sends replies there,
// so it must be an address the node can reach. Loopback when the node is on loopback; otherwise
// the local address the route to the node leaves from (a UDP "dial" picks it without sending a
// packet). Port 0: any free port.
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
