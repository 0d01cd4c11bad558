package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// etcdStore is an etcd cluster of members that are this benchmark's own executable run as
// etcd's server main (RunEtcdServerIfAsked), started with the flags etcdbench's run.sh gives
// the etcd binary and etcd's defaults otherwise (fsync on every commit), so that figures stay
// comparable with etcdbench's. The loader drives it with clientv3 over gRPC connections shared
// by the clients, as etcdbench's load and watch commands do.
type etcdStore struct {
	target    Target
	members   []*etcdMember
	clients   []*clientv3.Client
	conns     []*etcdConn
	closeOnce sync.Once
	closeErr  error
}

const (
	// etcdStartTimeout bounds a cluster's start up to every member serving and agreeing on a
	// leader; a fresh cluster on loopback takes about a second.
	etcdStartTimeout = 30 * time.Second
	// etcdStopGrace is how long a member may take to stop after SIGTERM before it is killed.
	etcdStopGrace = 10 * time.Second
	// defaultEtcdConns is etcdbench's --conns default.
	defaultEtcdConns = 8
	// etcdStartAttempts: free ports are found by binding and releasing them, so another process
	// may take one before a member binds it; a start that failed on that alone is retried.
	etcdStartAttempts = 3
)

func startEtcd(t Target, o Options) (Store, error) {
	if t.Members < 1 {
		return nil, fmt.Errorf("etcd: %d members: give 1 or 3", t.Members)
	}
	if o.Self == "" {
		return nil, errors.New("etcd: Options.Self is empty: set it to os.Executable() of a program that calls driver.RunEtcdServerIfAsked first")
	}
	var err error
	for range etcdStartAttempts {
		var s *etcdStore
		s, err = startEtcdOnce(t, o)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortTaken) {
			return nil, err
		}
	}
	return nil, err
}

// errPortTaken marks a start that failed because a member could not bind its port.
var errPortTaken = errors.New("a port was taken by another process")

func startEtcdOnce(t Target, o Options) (*etcdStore, error) {
	ports, err := freeLoopbackPorts(2 * t.Members)
	if err != nil {
		return nil, fmt.Errorf("etcd: find free loopback ports: %w", err)
	}
	s := &etcdStore{target: t}
	var initial []string
	for i := range t.Members {
		m := &etcdMember{
			name:      fmt.Sprintf("m%d", i+1),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		s.members = append(s.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	for _, m := range s.members {
		if err := m.start(o.Self, o.Dir, strings.Join(initial, ",")); err != nil {
			s.stop()
			return nil, err
		}
	}
	if err := s.waitHealthy(etcdStartTimeout); err != nil {
		s.stop()
		return nil, err
	}

	n := o.Conns
	if n <= 0 {
		n = defaultEtcdConns
	}
	var eps []string
	for _, m := range s.members {
		eps = append(eps, m.clientURL)
	}
	for i := range n {
		// clientv3 balances calls over all its endpoints; rotating them makes the connections
		// start at different members, as kstore's do.
		j := i % len(eps)
		rotated := append(slices.Clone(eps[j:]), eps[:j]...)
		// The loader counts and names every failure itself; clientv3's own warnings (a retry of
		// a call whose context ended with the measurement) would only bury the progress lines.
		c, err := clientv3.New(clientv3.Config{Endpoints: rotated, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("etcd: client of %v: %w", rotated, err)
		}
		s.clients = append(s.clients, c)
		s.conns = append(s.conns, &etcdConn{c: c})
	}
	return s, nil
}

// freeLoopbackPorts finds n distinct ports free on 127.0.0.1, holding them all until all are
// found so that none is handed out twice.
func freeLoopbackPorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitHealthy waits until every member answers a Status and all name the same leader, failing
// early with a member's log when one exits.
func (s *etcdStore) waitHealthy(timeout time.Duration) error {
	// The loader's clients are made after, so they start without the backoff of connections
	// refused while the members start.
	probe, err := s.newProbe()
	if err != nil {
		return err
	}
	defer probe.Close()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, m := range s.members {
			if err := m.exitedErr(); err != nil {
				return err
			}
		}
		err := s.healthy(probe)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			var tails strings.Builder
			for _, m := range s.members {
				fmt.Fprintf(&tails, "\n--- %s:\n%s", m.logPath(), m.logTail())
			}
			return fmt.Errorf("etcd: not healthy %v after start (%v); the members' logs end:%s", timeout, err, tails.String())
		}
		<-tick.C // polling a condition with a deadline
	}
}

func (s *etcdStore) healthy(probe *clientv3.Client) error {
	var leader uint64
	for _, m := range s.members {
		st, err := m.status(probe)
		switch {
		case err != nil:
			return err
		case st.Leader == 0:
			return fmt.Errorf("member %s knows no leader yet", m.name)
		case leader != 0 && st.Leader != leader:
			return fmt.Errorf("members disagree on the leader (%x, %x)", leader, st.Leader)
		}
		leader = st.Leader
	}
	return nil
}

// newProbe is a client for asking members their Status: Status dials each endpoint by itself,
// so this client never connects, and its log would only repeat the refused connections of
// members not up yet.
func (s *etcdStore) newProbe() (*clientv3.Client, error) {
	var eps []string
	for _, m := range s.members {
		eps = append(eps, m.clientURL)
	}
	probe, err := clientv3.New(clientv3.Config{Endpoints: eps, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd: probe client: %w", err)
	}
	return probe, nil
}

func (s *etcdStore) Target() Target { return s.target }

func (s *etcdStore) PIDs() []int {
	var pids []int
	for _, m := range s.members {
		pids = append(pids, m.cmd.Process.Pid)
	}
	return pids
}

func (s *etcdStore) DataDir() string { return s.members[0].dataDir() }

func (s *etcdStore) Conn(i int) Conn { return s.conns[i%len(s.conns)] }

// Close closes the clients first, so that none retries against members going away, then stops
// the members and removes their folders.
func (s *etcdStore) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for _, c := range s.clients {
			// A client ending its open watches reports their cancellation; that is no failure.
			if err := c.Close(); err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("etcd: close client: %w", err))
			}
		}
		// A leader told to stop first hands its leadership to a follower; told with the
		// followers, it waits out etcd's request timeout (7 s) for a transfer that cannot
		// happen. So the followers stop first, and the leader, alone, stops at once.
		first, last := s.members, []*etcdMember(nil)
		if i := s.leader(); i >= 0 && len(s.members) > 1 {
			first = slices.Delete(slices.Clone(s.members), i, i+1)
			last = s.members[i : i+1]
		}
		s.closeErr = errors.Join(append(errs, stopMembers(first), stopMembers(last))...)
	})
	return s.closeErr
}

// leader is the index of the member that is the leader, or -1 when none says it is.
func (s *etcdStore) leader() int {
	probe, err := s.newProbe()
	if err != nil {
		return -1
	}
	defer probe.Close()
	for i, m := range s.members {
		if st, err := m.status(probe); err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	return -1
}

// stop stops every started member, as a failed start leaves them.
func (s *etcdStore) stop() error { return stopMembers(s.members) }

// stopMembers stops members at once, killing those still running etcdStopGrace after SIGTERM,
// and removes their folders.
func stopMembers(members []*etcdMember) error {
	for _, m := range members {
		m.signal(syscall.SIGTERM)
	}
	var errs []error
	deadline := time.Now().Add(etcdStopGrace)
	for _, m := range members {
		errs = append(errs, m.wait(time.Until(deadline)))
	}
	return errors.Join(errs...)
}

// etcdMember is one etcd server process with its folder: data/ (its --data-dir) and etcd.log.
type etcdMember struct {
	name, clientURL, peerURL string
	dir                      string
	cmd                      *exec.Cmd
	// exited is closed once the process has exited and been reaped (by the goroutine start
	// spawns, which lives exactly as long as the process).
	exited chan struct{}
}

func (m *etcdMember) dataDir() string { return filepath.Join(m.dir, "data") }
func (m *etcdMember) logPath() string { return filepath.Join(m.dir, "etcd.log") }

func (m *etcdMember) start(self, parent, initialCluster string) error {
	dir, err := os.MkdirTemp(parent, "etcd-bench")
	if err != nil {
		return fmt.Errorf("etcd: make the member's folder under %q: %w", parent, err)
	}
	m.dir = dir
	logf, err := os.Create(m.logPath())
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	// The flags of etcdbench's run.sh, so that both measure the same server configuration.
	m.cmd = exec.Command(self, EtcdServerArg,
		"--name", m.name,
		"--data-dir", m.dataDir(),
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", initialCluster, "--initial-cluster-state", "new",
		"--log-level", "error")
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = memberAttr()
	err = m.cmd.Start()
	logf.Close() // the member writes to its own copy of the descriptor
	if err != nil {
		return fmt.Errorf("etcd: start member %s as %s %s: %w (Options.Self must be the benchmark's own executable)", m.name, self, EtcdServerArg, err)
	}
	m.exited = make(chan struct{})
	go func() {
		_ = m.cmd.Wait() // how it exited is in ProcessState
		close(m.exited)
	}()
	return nil
}

// status asks the member its Status.
func (m *etcdMember) status(probe *clientv3.Client) (*clientv3.StatusResponse, error) {
	// A member not listening yet would hold a Status for its whole timeout (clientv3 waits
	// for the connection); a refused connection says so at once.
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(m.clientURL, "http://"), time.Second)
	if err != nil {
		return nil, fmt.Errorf("member %s not listening yet: %w", m.name, err)
	}
	conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := probe.Status(ctx, m.clientURL)
	if err != nil {
		return nil, fmt.Errorf("member %s at %s: %w", m.name, m.clientURL, err)
	}
	return st, nil
}

// exitedErr is nil while the member runs, and says how it ended, with its log, once it has.
func (m *etcdMember) exitedErr() error {
	select {
	case <-m.exited:
	default:
		return nil
	}
	tail := m.logTail()
	err := fmt.Errorf("etcd: member %s exited during start (%v); %s ends:\n%s", m.name, m.cmd.ProcessState, m.logPath(), tail)
	if strings.Contains(tail, "address already in use") {
		err = fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
}

// logTail is the end of the member's log, for an error to show why it failed.
func (m *etcdMember) logTail() string {
	f, err := os.Open(m.logPath())
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	const max = 4 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func (m *etcdMember) signal(sig os.Signal) {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Signal(sig)
	}
}

// wait waits for the member to exit, killing it after grace, and removes its folder.
func (m *etcdMember) wait(grace time.Duration) error {
	var err error
	if m.exited != nil {
		t := time.NewTimer(grace)
		select {
		case <-m.exited:
		case <-t.C:
			_ = m.cmd.Process.Kill()
			<-m.exited
			err = fmt.Errorf("etcd: member %s did not stop within %v of SIGTERM and was killed; see why in %s before it is removed next time", m.name, etcdStopGrace, m.logPath())
		}
		t.Stop()
	}
	if m.dir != "" {
		if rerr := os.RemoveAll(m.dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("etcd: remove member folder: %w", rerr))
		}
	}
	return err
}

// etcdConn drives etcd as the Kubernetes API server does: a Doc's JSON as the value at its
// registry key, updates as a compare of the mod revision, lists as paged range reads.
type etcdConn struct{ c *clientv3.Client }

// withTimeout bounds one request as kstore's client bounds its requests (requestTimeout), so a
// stuck cluster shows as Timeout errors on both rather than as a hung loader.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, requestTimeout)
}

func (e *etcdConn) Put(ctx context.Context, d Doc) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := e.c.Put(ctx, EtcdKey(d.Namespace, d.Name), string(d.JSON("")))
	return err
}

func (e *etcdConn) Update(ctx context.Context, d Doc) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	key := EtcdKey(d.Namespace, d.Name)
	resp, err := e.c.Get(ctx, key)
	if err != nil {
		return err
	}
	var rev int64 // a missing key's: the compare then creates it
	if len(resp.Kvs) > 0 {
		rev = resp.Kvs[0].ModRevision
	}
	return e.updateAt(ctx, key, d.JSON(""), rev)
}

// updateAt writes val at key if the key's mod revision is still rev.
func (e *etcdConn) updateAt(ctx context.Context, key string, val []byte, rev int64) error {
	resp, err := e.c.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(val))).
		Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s changed after its revision %d was read", ErrConflict, key, rev)
	}
	return nil
}

func (e *etcdConn) Patch(context.Context, string, string, int) error { return ErrUnsupported }

func (e *etcdConn) Get(ctx context.Context, namespace, name string, serializable bool) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var opts []clientv3.OpOption
	if serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	_, err := e.c.Get(ctx, EtcdKey(namespace, name), opts...)
	return err
}

// List pages as the Kubernetes API server does: a range read limited to pageSize, every page
// after the first at the first's revision so the pages form one snapshot, each starting just
// after the last key of the one before.
func (e *etcdConn) List(ctx context.Context, namespace string, pageSize int, selector string) (int, error) {
	if selector != "" {
		return 0, ErrUnsupported
	}
	prefix := EtcdPrefix(namespace)
	end := clientv3.GetPrefixRangeEnd(prefix)
	key := prefix
	var rev int64
	n := 0
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(int64(max(pageSize, 0)))}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		pctx, cancel := withTimeout(ctx)
		resp, err := e.c.Get(pctx, key, opts...)
		cancel()
		if err != nil {
			return n, err
		}
		n += len(resp.Kvs)
		if rev == 0 {
			rev = resp.Header.Revision
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return n, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

func (e *etcdConn) Revision(ctx context.Context) (int64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	// A linearizable read's header holds a revision at least that of every write acknowledged
	// before it, which a member's Status does not promise.
	resp, err := e.c.Get(ctx, EtcdPrefix(""), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// Watch returns once etcd has created the watcher (clientv3's Watch waits for that), so a write
// issued after it returns is seen, as etcdbench's watch waited for each watcher's creation
// before writing. rev 0 watches from now.
func (e *etcdConn) Watch(ctx context.Context, namespace string, rev int64, fn func(Event)) func() error {
	// A context of its own per watch, as etcdbench's watch gives each watcher: clientv3 shares
	// one gRPC stream among watches whose contexts carry the same metadata, and each watch is a
	// server-side watcher of its own on it. Requiring a leader makes a member that lost its
	// leader cancel the watch instead of leaving it silent.
	wctx := clientv3.WithRequireLeader(ctx)
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev+1))
	}
	ch := e.c.Watch(wctx, EtcdPrefix(namespace), opts...)
	done := make(chan struct{})
	var werr error
	// The goroutine ends when clientv3 closes ch: when ctx ends, the watch fails, or the client
	// is closed.
	go func() {
		defer close(done)
		for resp := range ch {
			if werr != nil {
				continue // drain to the close, so clientv3's stream goroutines can end
			}
			if err := resp.Err(); err != nil {
				werr = err
				continue
			}
			for _, ev := range resp.Events {
				ns, name, _ := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), EtcdPrefix("")), "/")
				fn(Event{Namespace: ns, Name: name, Deleted: ev.Type == clientv3.EventTypeDelete})
			}
		}
		switch {
		case ctx.Err() != nil:
			werr = nil
		case werr == nil:
			werr = errors.New("etcd: watch channel closed while its context was live (client closed?)")
		}
	}()
	return func() error {
		<-done
		return werr
	}
}

// etcdErrorNames names the errors etcd's server returns by their rpctypes names (without
// ErrGRPC), keyed by their messages, which is what survives the trip to the client. The
// server's own request timeout is ServerTimeout (as Kubernetes names it) to tell it apart from
// the loader's deadline, which is Timeout.
var etcdErrorNames = func() map[string]string {
	names := map[error]string{
		rpctypes.ErrGRPCNoLeader:                   "NoLeader",
		rpctypes.ErrGRPCNotLeader:                  "NotLeader",
		rpctypes.ErrGRPCLeaderChanged:              "LeaderChanged",
		rpctypes.ErrGRPCStopped:                    "Stopped",
		rpctypes.ErrGRPCTimeout:                    "ServerTimeout",
		rpctypes.ErrGRPCTimeoutDueToLeaderFail:     "TimeoutDueToLeaderFail",
		rpctypes.ErrGRPCTimeoutDueToConnectionLost: "TimeoutDueToConnectionLost",
		rpctypes.ErrGRPCTimeoutWaitAppliedIndex:    "TimeoutWaitAppliedIndex",
		rpctypes.ErrGRPCUnhealthy:                  "Unhealthy",
		rpctypes.ErrGRPCCorrupt:                    "Corrupt",
		rpctypes.ErrGRPCNotCapable:                 "NotCapable",
		rpctypes.ErrGRPCNotSupportedForLearner:     "NotSupportedForLearner",
		rpctypes.ErrGRPCCompacted:                  "Compacted",
		rpctypes.ErrGRPCFutureRev:                  "FutureRev",
		rpctypes.ErrGRPCNoSpace:                    "NoSpace",
		rpctypes.ErrGRPCRequestTooLarge:            "RequestTooLarge",
		rpctypes.ErrGRPCRequestTooManyRequests:     "TooManyRequests",
		rpctypes.ErrGRPCTooManyOps:                 "TooManyOps",
		rpctypes.ErrGRPCDuplicateKey:               "DuplicateKey",
		rpctypes.ErrGRPCKeyNotFound:                "KeyNotFound",
		rpctypes.ErrGRPCEmptyKey:                   "EmptyKey",
		rpctypes.ErrGRPCWatchCanceled:              "WatchCanceled",
		rpctypes.ErrGRPCPermissionDenied:           "PermissionDenied",
		rpctypes.ErrGRPCInvalidAuthToken:           "InvalidAuthToken",
		rpctypes.ErrGRPCAuthOldRevision:            "AuthOldRevision",
		rpctypes.ErrGRPCCanceled:                   "Timeout",
		rpctypes.ErrGRPCDeadlineExceeded:           "Timeout",
	}
	m := make(map[string]string, len(names))
	for err, name := range names {
		m[rpctypes.ErrorDesc(err)] = name
	}
	return m
}()

func (e *etcdConn) Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrConflict):
		return "Conflict"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "Timeout"
	}
	// clientv3 turns the server's known errors into rpctypes.EtcdError; the rest stay gRPC
	// statuses, perhaps wrapped.
	var desc string
	code := codes.Unknown
	var ee rpctypes.EtcdError
	var se interface{ GRPCStatus() *status.Status }
	switch {
	case errors.As(err, &ee):
		desc, code = ee.Error(), ee.Code()
	case errors.As(err, &se):
		desc, code = se.GRPCStatus().Message(), se.GRPCStatus().Code()
	}
	if name, ok := etcdErrorNames[desc]; ok {
		return name
	}
	if code == codes.DeadlineExceeded || code == codes.Canceled {
		return "Timeout"
	}
	return code.String()
}
