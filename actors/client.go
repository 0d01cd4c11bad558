package actors

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

// DefaultTimeout bounds one request of a Client unless its context ends sooner.
const DefaultTimeout = 5 * time.Second

// Client is the typed client of kstore nodes, for Go programs and for actors. It sends requests
// to a node actor and turns replies into results and *messages.Error values. It holds no
// connection of its own: replies come back through the actor system it is given, which must
// have remote started when the nodes are in other processes (see NewSystem). A client whose
// system has no remote and whose endpoints are all in other actor systems fails every call at
// once with Unavailable, sending nothing.
//
// Objects go in and come out as JSON bytes (Put, Get, ListAll) or as *Unstructured (PutObject,
// GetObject, ListObjects). A call whose context ends returns ctx's error: context.Canceled, or a
// Timeout *messages.Error that says the caller's deadline passed and matches
// context.DeadlineExceeded; a write whose outcome is then unknown says so.
//
// A Client is safe for concurrent use.
type Client struct {
	root      *actor.RootContext
	endpoints []*actor.PID
	store     *storeIdentity // instead of endpoints, for a client of the actor cluster (NewClusterClient)
	timeout   time.Duration
	current   atomic.Int64 // the endpoint that answered last

	muxOnce sync.Once
	mux     *actor.PID // the watch mux, spawned with the first watch
}

// watchMux returns the client's watch mux, spawning it on first use.
func (c *Client) watchMux() *actor.PID {
	c.muxOnce.Do(func() {
		c.mux = c.root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &mux{} }))
	})
	return c.mux
}

// Close stops what the client started in its actor system for watches. Stop the client's
// watches first.
func (c *Client) Close() {
	c.muxOnce.Do(func() {}) // no mux from here on
	if c.mux != nil {
		_ = c.root.StopFuture(c.mux).Wait()
	}
}

// NewClient returns a client of the nodes at endpoints ("host:port", the node actor named
// DefaultName). A timeout of 0 means DefaultTimeout.
func NewClient(system *actor.ActorSystem, endpoints []string, timeout time.Duration) *Client {
	pids := make([]*actor.PID, len(endpoints))
	for i, e := range endpoints {
		pids[i] = actor.NewPID(e, DefaultName)
	}
	return NewClientPIDs(system, pids, timeout)
}

// NewClientPIDs returns a client of the node actors at pids, such as Node.PID() for a node in
// the same actor system.
func NewClientPIDs(system *actor.ActorSystem, pids []*actor.PID, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{root: system.Root, endpoints: pids, timeout: timeout}
}

// Future sends msg to the current endpoint and returns the future of its reply, for an actor
// to await without blocking its Receive (ctx.ReenterAfter or Future.PipeTo). Turn the reply into
// a result with Reply. A cluster client sends to the store identity's cached activation; when
// none is cached the future fails at once with a dead letter (Unavailable through Reply), and
// the client's blocking methods, which look the identity up, are the way to go on.
func (c *Client) Future(msg proto.Message) *actor.Future {
	if c.store != nil {
		pid := c.store.cached()
		if pid == nil {
			pid = actor.NewPID(c.root.ActorSystem().Address(), "kstore-store-identity-not-cached")
		}
		return c.root.RequestFuture(pid, msg, c.timeout)
	}
	return c.root.RequestFuture(c.endpoints[int(c.current.Load())%len(c.endpoints)], msg, c.timeout)
}

// attempts is how many attempts make one round: one per endpoint, or clusterAttempts.
func (c *Client) attempts() int {
	if c.store != nil {
		return clusterAttempts
	}
	return len(c.endpoints)
}

// target is where attempt i goes: endpoint i, or the store identity's activation, looked up
// within wait.
func (c *Client) target(i int, wait time.Duration) (*actor.PID, error) {
	if c.store != nil {
		return c.store.resolve(wait)
	}
	pid := c.endpoints[i%len(c.endpoints)]
	if sys := c.root.ActorSystem(); !hasRemote(sys) && !inSystem(sys, pid) {
		return nil, c.noRemote(pid.GetAddress())
	}
	return pid, nil
}

// localAddress is the address of a protoactor system without remote (protoactor's own
// unexported actor.localAddress): a PID there is in the system that holds it.
const localAddress = "nonhost"

// hasRemote reports whether sys has protoactor remote started: only then does it deliver to a
// PID of another actor system (without it protoactor hands such a message to its dead letters).
// Remote.Start registers the address resolver this looks for; a Remote that was made but not
// started registers only its extension, and reaches nobody.
func hasRemote(sys *actor.ActorSystem) bool { return len(sys.ProcessRegistry.RemoteHandlers) > 0 }

// inSystem reports whether pid is an actor of sys itself.
func inSystem(sys *actor.ActorSystem, pid *actor.PID) bool {
	a := pid.GetAddress()
	return a == localAddress || a == sys.Address()
}

// unreachable is the error of every request of a client that can reach none of its endpoints:
// its actor system has no remote, and every endpoint is in another actor system. nil otherwise.
// protoactor would hand each request to its dead letters, and the client would go round its
// endpoints until the timeout, blaming nodes that may be up. A cluster client's system has
// remote: the cluster runs on it.
func (c *Client) unreachable() error {
	sys := c.root.ActorSystem()
	if c.store != nil || hasRemote(sys) {
		return nil
	}
	for _, pid := range c.endpoints {
		if inSystem(sys, pid) {
			return nil
		}
	}
	return c.noRemote(c.where())
}

func (c *Client) noRemote(at string) error {
	return messages.Errorf(messages.StatusReason_UNAVAILABLE,
		"the client's actor system has no protoactor remote, so it cannot reach the kstore node at %s: start the client's system with actors.NewSystem(listen, logger) (listen \"127.0.0.1:0\" picks a free port), or, for a node in this process, give the client the node's system and PID (NewClientPIDs); nothing was sent", at)
}

// unreached notes that pid did not answer (dead letter, silence, a port that refuses): a
// cluster client looks the identity up again next time.
func (c *Client) unreached(pid *actor.PID) {
	if c.store != nil {
		c.store.forget(pid)
	}
}

// where names what the client talks to, for messages.
func (c *Client) where() string {
	if c.store != nil {
		return c.store.String()
	}
	return endpointList(c.endpoints)
}

// Reply turns what a future delivered into the typed reply and an error: the reply's status as
// an *messages.Error, or a transport failure as Timeout or Unavailable.
func Reply[T interface {
	proto.Message
	GetStatus() *messages.Status
}](res any, err error) (T, error) {
	var zero T
	if err != nil {
		_, write := any(zero).(*messages.CommandResult)
		return zero, transportError(err, "", write)
	}
	r, ok := res.(T)
	if !ok {
		return zero, messages.Errorf(messages.StatusReason_INTERNAL, "unexpected reply %T", res)
	}
	if err := r.GetStatus().Err(); err != nil {
		return r, err
	}
	return r, nil
}

func transportError(err error, endpoint string, write bool) error {
	at := ""
	if endpoint != "" {
		at = " at " + endpoint
	}
	switch {
	case errors.Is(err, actor.ErrTimeout) && write:
		return messages.Errorf(messages.StatusReason_TIMEOUT,
			"no answer from the kstore node%s in time: the write's outcome is unknown; read the object to find out, or retry with a longer --timeout", at)
	case errors.Is(err, actor.ErrTimeout):
		return messages.Errorf(messages.StatusReason_TIMEOUT,
			"no answer from the kstore node%s in time: is it up and reachable? retry, or with a longer --timeout", at)
	case errors.Is(err, actor.ErrDeadLetter):
		return messages.Errorf(messages.StatusReason_UNAVAILABLE,
			"no kstore node answers%s: is `kstore serve` running there? check --endpoints", at)
	}
	return messages.Errorf(messages.StatusReason_UNAVAILABLE, "request%s failed: %v", at, err)
}

// minAttemptTimeout is the least a read waits for one endpoint before trying the next: a node
// that answers at all answers a read far sooner, and a shorter slice would give up on a node
// that is merely busy.
const minAttemptTimeout = time.Second

// Backoff between full rounds of endpoints that all refused: the first wait, and the most.
const (
	firstRoundBackoff = 10 * time.Millisecond
	maxRoundBackoff   = 500 * time.Millisecond
)

// call sends msg and waits for its reply, until ctx ends or the client's timeout passes. It
// starts at the endpoint that answered last and moves round robin through the others:
//
//   - a refusal (Unavailable) or a request that reached nobody (dead letter, connection
//     refused) took no effect anywhere: it goes to the next endpoint, reads and writes alike;
//     after each full round of endpoints the client waits a backoff before the next;
//   - no answer in time: a read is safe to send again, so each read attempt gets a slice of the
//     time (the budget over len(endpoints), at least minAttemptTimeout) and a silent endpoint
//     costs one slice; a write may have taken effect, so it gets all the time left and is never sent
//     again: it ends in Timeout, its outcome unknown;
//   - any other answer, success or error, is the result, and its endpoint is where the next call
//     starts;
//   - when ctx ends first, the result is ctx's error (see callEnded), and a write sent but not
//     answered says its outcome is unknown.
//
// A client that can reach none of its endpoints (unreachable) fails at once, sending nothing.
func call[T interface {
	proto.Message
	GetStatus() *messages.Status
}](ctx context.Context, c *Client, msg proto.Message) (T, error) {
	var zero T
	if err := c.unreachable(); err != nil {
		return zero, err
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_, write := msg.(*messages.Command)
	if _, change := msg.(*messages.MemberRequest); change {
		write = true // not sent again after a timeout: its outcome is unknown
	}
	slice := max(time.Until(deadline)/time.Duration(c.attempts()), minAttemptTimeout)
	var result T
	err := c.rotate(ctx, deadline, write, "request", func(pid *actor.PID, retry bool, left time.Duration) (attempt, error) {
		if retry && !listening(pid.GetAddress(), min(left, probeTimeout)) {
			// After a failure, an endpoint whose port refuses connections (its process died)
			// gets nothing: protoactor would hold the request while it redials, past the
			// deadline, and a write would end with an unknown outcome though nothing was sent.
			c.unreached(pid)
			return attemptFailed, messages.Errorf(messages.StatusReason_UNAVAILABLE, "no kstore node listens at %s: nothing was sent there", pid.GetAddress())
		}
		wait := left
		if !write {
			wait = min(left, slice)
		}
		res, err := request(ctx, c.root, pid, msg, wait)
		if err == errCancelled || errors.Is(err, actor.ErrTimeout) {
			// A future bounded by the caller's deadline may time out a moment before ctx's own
			// timer fires: the caller's deadline passed either way, not the node's time.
			if cerr := ctxEnded(ctx); cerr != nil {
				return attemptEnded, callEnded(cerr, pid.GetAddress(), write)
			}
		}
		if err == nil {
			r, err := Reply[T](res, nil)
			if messages.IsUnavailable(err) {
				return attemptFailed, err // refused: the next call need not start here either
			}
			result = r
			return attemptServed, err
		}
		err = transportError(err, pid.GetAddress(), write)
		c.unreached(pid)
		if errors.Is(err, actor.ErrTimeout) && write {
			return attemptFinal, err // sent and not answered: never sent again
		}
		return attemptFailed, err // reached nobody, or a read not answered in time
	})
	return result, err
}

// attempt is what one try at an endpoint came to (rotate).
type attempt uint8

const (
	attemptServed attempt = iota // the endpoint answered: its answer is the result, and the next call starts there
	attemptFailed                // refused, or reached nobody: the next endpoint is tried
	attemptFinal                 // the result, though the endpoint did not serve: the next call starts past it
	attemptEnded                 // the result, the next call starting where this one did (the caller's context ended, or the error is final for the request)
)

// rotate tries the client's endpoints with try, from the one that served last, round robin,
// with a backoff after each full round (an election, a restart), until an attempt is served,
// final or ended, the deadline passes or ctx ends. It keeps c.current on the endpoint that
// served and moves it past one that failed. When every attempt failed, the last attempt's
// error says most; it matches ctx's error too when ctx ended the retries. what names the
// request in the error of a deadline that passed before anything was sent.
func (c *Client) rotate(ctx context.Context, deadline time.Time, write bool, what string, try func(pid *actor.PID, retry bool, left time.Duration) (attempt, error)) error {
	n := c.attempts()
	first := int(c.current.Load()) % n
	backoff := firstRoundBackoff
	var lastErr error
	for t := 0; ; t++ {
		if t > 0 && t%n == 0 {
			if !sleepCtx(ctx, min(backoff, time.Until(deadline))) {
				break
			}
			backoff = min(2*backoff, maxRoundBackoff)
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			break
		}
		i := (first + t) % n
		pid, err := c.target(i, left)
		if err != nil {
			lastErr = err // nothing was sent
			continue
		}
		out, err := try(pid, t > 0, left)
		switch out {
		case attemptServed:
			c.current.Store(int64(i))
			return err
		case attemptEnded:
			return err
		}
		c.current.CompareAndSwap(int64(i), int64((i+1)%n))
		if out == attemptFinal {
			return err
		}
		lastErr = err
	}
	cerr := ctxEnded(ctx)
	if lastErr != nil {
		if cerr != nil {
			return fmt.Errorf("%w: %w", exhausted(lastErr, c, write), cerr)
		}
		return exhausted(lastErr, c, write)
	}
	if cerr != nil {
		return callEnded(cerr, "", false)
	}
	return messages.Errorf(messages.StatusReason_TIMEOUT, "the deadline passed before the %s was sent to kstore: nothing was sent", what)
}

// ctxEnded is ctx's error once it has ended, counting a deadline that has passed though ctx's
// own timer has not fired yet; nil while ctx is live.
func ctxEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// callEnded is the error of a request whose caller's context ended (cerr, ctx's error) before
// its answer. at is where it was sent, "" when it was not. A cancelled read is cerr itself, as
// Go's context convention has it; a deadline is a Timeout that says it was the caller's deadline
// (the client's own timeout, and so any node's silence, is not what ended it); a write sent and
// not answered is a Timeout whose outcome is unknown. Each matches cerr with errors.Is.
func callEnded(cerr error, at string, write bool) error {
	what := "was cancelled"
	if errors.Is(cerr, context.DeadlineExceeded) {
		what = "deadline passed"
	}
	var e *messages.Error
	switch {
	case at != "" && write:
		e = messages.Errorf(messages.StatusReason_TIMEOUT,
			"the write was sent to %s and the caller's context %s before its answer: its outcome is unknown; read the object to find out", at, what)
	case errors.Is(cerr, context.Canceled):
		return cerr
	case at != "":
		e = messages.Errorf(messages.StatusReason_TIMEOUT,
			"the caller's context deadline passed before kstore at %s answered (the client's own timeout had not): retry with a later deadline", at)
	default:
		e = messages.Errorf(messages.StatusReason_TIMEOUT, "the caller's context deadline passed before the request was sent to kstore: nothing was sent")
	}
	return fmt.Errorf("%w: %w", e, cerr)
}

// errCancelled is request's error when the caller's context ended first.
var errCancelled = errors.New("actors: cancelled")

// probeTimeout bounds the TCP connect that checks, before a retry, that an endpoint listens.
const probeTimeout = 500 * time.Millisecond

// listening reports whether something accepts TCP connections at addr. An address that is not
// host:port (a PID in this process) counts as listening.
func listening(addr string, timeout time.Duration) bool {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return true
	}
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// exhausted is the error of a request no endpoint served before the deadline: the last
// attempt's reason and message, and the endpoints tried. A write ends here only when every
// attempt was refused or reached nobody (one not answered in time ends the call at once), so it
// did not take effect.
func exhausted(last error, c *Client, write bool) error {
	var e *messages.Error
	if c.attempts() == 1 || !errors.As(last, &e) {
		return last
	}
	msg := fmt.Sprintf("no kstore node at %s served the request before the deadline; the last attempt: %s", c.where(), e.Message)
	if write {
		msg += " (the write did not take effect: retry it)"
	}
	return &messages.Error{Reason: e.Reason, ResourceVersion: e.ResourceVersion, Message: msg}
}

// attemptTimeout is how long one attempt of a request that is safe to repeat (a read, a watch's
// first answer) waits before the next endpoint is tried: a slice of the timeout, so a silent
// endpoint costs one slice of the budget, not all of it.
func (c *Client) attemptTimeout() time.Duration {
	return min(c.timeout, max(c.timeout/time.Duration(c.attempts()), minAttemptTimeout))
}

// sleepCtx waits for d or until ctx ends, and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	return ctx.Err() == nil
}

// Do sends a command and waits for its result.
func (c *Client) Do(ctx context.Context, cmd *messages.Command) (*messages.CommandResult, error) {
	return call[*messages.CommandResult](ctx, c, cmd)
}

func (c *Client) write(ctx context.Context, kind messages.CommandKind, obj []byte, reason messages.Reason) (*messages.CommandResult, error) {
	key, err := object.KeyOf(obj)
	if err != nil {
		return nil, err
	}
	return c.Do(ctx, &messages.Command{Kind: kind, Key: key, Value: obj, Reason: reason})
}

// Put creates or replaces the object (JSON or YAML), keyed by its apiVersion, kind, namespace
// and name.
func (c *Client) Put(ctx context.Context, obj []byte, reason messages.Reason) (*messages.CommandResult, error) {
	return c.write(ctx, messages.CommandKind_PUT, obj, reason)
}

// Create creates the object; AlreadyExists when its key exists.
func (c *Client) Create(ctx context.Context, obj []byte, reason messages.Reason) (*messages.CommandResult, error) {
	return c.write(ctx, messages.CommandKind_CREATE, obj, reason)
}

// Update replaces an existing object; Conflict when it carries a metadata.resourceVersion other
// than the stored one.
func (c *Client) Update(ctx context.Context, obj []byte, reason messages.Reason) (*messages.CommandResult, error) {
	return c.write(ctx, messages.CommandKind_UPDATE, obj, reason)
}

// Patch patches an existing object; resourceVersion, when non-zero, must be the stored one.
func (c *Client) Patch(ctx context.Context, key *messages.ResourceKey, typ messages.PatchType, patch []byte, resourceVersion uint64, reason messages.Reason) (*messages.CommandResult, error) {
	return c.Do(ctx, &messages.Command{Kind: messages.CommandKind_PATCH, Key: key, PatchType: typ, Patch: patch,
		ResourceVersion: resourceVersion, Reason: reason})
}

// Delete removes an object (NoOp when absent); resourceVersion, when non-zero, must be the
// stored one.
func (c *Client) Delete(ctx context.Context, key *messages.ResourceKey, resourceVersion uint64, reason messages.Reason) (*messages.CommandResult, error) {
	return c.Do(ctx, &messages.Command{Kind: messages.CommandKind_DELETE, Key: key, ResourceVersion: resourceVersion, Reason: reason})
}

// Get reads an object, as of resourceVersion when non-zero.
func (c *Client) Get(ctx context.Context, key *messages.ResourceKey, resourceVersion uint64) (*messages.GetResult, error) {
	return call[*messages.GetResult](ctx, c, &messages.GetRequest{Key: key, ResourceVersion: resourceVersion})
}

// Read reads an object as req says: at req.ResourceVersion when non-zero, else at the newest
// state, linearizably unless req.Consistency is SERIALIZABLE.
func (c *Client) Read(ctx context.Context, req *messages.GetRequest) (*messages.GetResult, error) {
	return call[*messages.GetResult](ctx, c, req)
}

// List reads a page of objects of one type. Its ListResult carries the list's revision, the
// resourceVersion to watch from after the list; ListAll reads every page.
func (c *Client) List(ctx context.Context, req *messages.ListRequest) (*messages.ListResult, error) {
	return call[*messages.ListResult](ctx, c, req)
}

// DefaultListPageSize is the page ListAll asks for when req.Limit is 0: a page travels as one
// message between actor systems, and 500 objects of a few KiB keep it far below the 16 MiB a
// page may reach (catalogactor.MaxListBytes), while a list of 100,000 objects still takes only
// 200 round trips.
const DefaultListPageSize = 500

// ListAll reads every object req selects, page after page, and yields each as the store holds it
// (JSON, metadata.resourceVersion stamped in), in the store's order: by namespace, then name.
// Every page is read at the first page's revision (each next page through its continue token),
// so the whole is one consistent state, whatever is written meanwhile. A page holds req.Limit
// objects, DefaultListPageSize when 0. It stops at the first error, which it yields with nil
// bytes: pages already yielded stay valid, the rest are not read. Breaking out of the loop stops
// it between two objects; no request is left in flight. req is not modified.
//
// To watch from the end of a list, List the first page yourself: its ListResult carries the
// list's revision.
func (c *Client) ListAll(ctx context.Context, req *messages.ListRequest) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		req := proto.Clone(req).(*messages.ListRequest)
		if req.Limit == 0 {
			req.Limit = DefaultListPageSize
		}
		for {
			res, err := c.List(ctx, req)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, b := range res.GetItems() {
				if !yield(b, nil) {
					return
				}
			}
			if res.GetContinue() == "" {
				return
			}
			req.Continue = res.GetContinue()
		}
	}
}

// KeyOf returns the key an object (JSON or YAML) names: group and version from its apiVersion,
// its kind, metadata.namespace and metadata.name, as Put files it. It checks nothing else: the
// node validates what it is given (Invalid).
func KeyOf(obj []byte) (*messages.ResourceKey, error) { return object.KeyOf(obj) }

// HashKV asks the current endpoint for a digest of its catalog (see messages.HashKVRequest).
func (c *Client) HashKV(ctx context.Context, req *messages.HashKVRequest) (*messages.HashKVResult, error) {
	return call[*messages.HashKVResult](ctx, c, req)
}

// ChangeMembers changes the cluster's membership (see messages.MemberRequest). A change that
// timed out has an unknown outcome: list the members to find out.
func (c *Client) ChangeMembers(ctx context.Context, req *messages.MemberRequest) (*messages.MemberResult, error) {
	return call[*messages.MemberResult](ctx, c, req)
}

// ClusterInfo asks the current endpoint about the actor cluster it is a member of: NotFound when
// it is in none.
func (c *Client) ClusterInfo(ctx context.Context) (*messages.ClusterInfo, error) {
	return call[*messages.ClusterInfo](ctx, c, &messages.ClusterInfoRequest{})
}

// Status asks the current endpoint how it is.
func (c *Client) Status(ctx context.Context) (*messages.NodeStatus, error) {
	return call[*messages.NodeStatus](ctx, c, &messages.StatusRequest{})
}

func (c *Client) String() string {
	if c.store != nil {
		return "kstore client of " + c.store.String()
	}
	return fmt.Sprintf("kstore client of %v", c.endpoints)
}
