package driver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/messages"
)

// kstoreStore is a kstore cluster of `kstore serve` processes, driven through the typed client
// over protoactor remote from this process, as other actors reach it.
type kstoreStore struct {
	target Target
	nodes  []*Node
	sys    *actors.System
	conns  []*kstoreConn // one per member, each starting at its own member
}

// requestTimeout bounds one request of the loader; kstore's client retries within it.
const requestTimeout = 10 * time.Second

func startKstore(t Target, o Options) (Store, error) {
	nodes, err := StartNodes(o.Kstore, o.Dir, t.Members, o.KstoreArgs)
	if err != nil {
		return nil, err
	}
	s := &kstoreStore{target: t, nodes: nodes}
	if s.sys, err = actors.NewSystem("127.0.0.1:0", nil); err != nil {
		StopNodes(nodes)
		return nil, err
	}
	var eps []string
	for _, n := range nodes {
		eps = append(eps, n.Addr)
	}
	for i := range eps {
		rotated := append(slices.Clone(eps[i:]), eps[:i]...)
		c := actors.NewClient(s.sys.ActorSystem, rotated, requestTimeout)
		s.conns = append(s.conns, &kstoreConn{c: c})
		if err := WaitLeader(c, 30*time.Second); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *kstoreStore) Target() Target { return s.target }

func (s *kstoreStore) PIDs() []int {
	var pids []int
	for _, n := range s.nodes {
		pids = append(pids, n.PID)
	}
	return pids
}

func (s *kstoreStore) DataDir() string { return s.nodes[0].DataDir() }

func (s *kstoreStore) Conn(i int) Conn { return s.conns[i%len(s.conns)] }

func (s *kstoreStore) Close() error {
	for _, c := range s.conns {
		c.c.Close()
	}
	s.sys.Close()
	StopNodes(s.nodes)
	return nil
}

type kstoreConn struct{ c *actors.Client }

func podKey(namespace, name string) *messages.ResourceKey {
	return &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: namespace, Name: name}
}

func (k *kstoreConn) Put(ctx context.Context, d Doc) error {
	_, err := k.c.Put(ctx, d.JSON(""), messages.Reason_OPERATOR)
	return err
}

func (k *kstoreConn) Update(ctx context.Context, d Doc) error {
	cur, err := k.c.Get(ctx, podKey(d.Namespace, d.Name), 0)
	if err != nil {
		return err
	}
	_, err = k.c.Update(ctx, d.JSON(strconv.FormatUint(cur.GetResourceVersion(), 10)), messages.Reason_CONTROLLER)
	if messages.IsConflict(err) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

func (k *kstoreConn) Patch(ctx context.Context, namespace, name string, seq int) error {
	patch := []byte(`{"spec":{"seq":` + strconv.Itoa(seq) + `}}`)
	_, err := k.c.Patch(ctx, podKey(namespace, name), messages.PatchType_MERGE_PATCH, patch, 0, messages.Reason_CONTROLLER)
	return err
}

func (k *kstoreConn) Get(ctx context.Context, namespace, name string, serializable bool) error {
	req := &messages.GetRequest{Key: podKey(namespace, name)}
	if serializable {
		req.Consistency = messages.Consistency_SERIALIZABLE
	}
	_, err := k.c.Read(ctx, req)
	return err
}

func (k *kstoreConn) List(ctx context.Context, namespace string, pageSize int, selector string) (int, error) {
	req := &messages.ListRequest{Version: "v1", Kind: "Pod", Namespace: namespace, LabelSelector: selector, Limit: int64(pageSize)}
	n := 0
	for {
		res, err := k.c.List(ctx, req)
		if err != nil {
			return n, err
		}
		n += len(res.GetItems())
		if res.GetContinue() == "" {
			return n, nil
		}
		req.Continue = res.GetContinue()
	}
}

func (k *kstoreConn) Revision(ctx context.Context) (int64, error) {
	st, err := k.c.Status(ctx)
	if err != nil {
		return 0, err
	}
	return int64(st.GetApplied()), nil
}

func (k *kstoreConn) Watch(ctx context.Context, namespace string, rev int64, fn func(Event)) func() error {
	// Runs of events, as clientv3 hands the etcd driver a WatchResponse of events at a time.
	w := k.c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod", Namespace: namespace, ResourceVersion: uint64(rev)}, actors.WatchOptions{Batches: true})
	done := make(chan struct{})
	// The watch ends, and closes Batches, when ctx ends (the client cancels the node's watcher
	// then), so the goroutine only ranges over its events, as the etcd driver ranges over
	// clientv3's channel: a select on ctx.Done() besides would lock that one channel, shared by
	// every watcher of the round, at each receive.
	go func() {
		defer close(done)
		for run := range w.Batches() {
			for _, ev := range run {
				switch ev.GetType() {
				case messages.EventType_EVENT_ADDED, messages.EventType_EVENT_MODIFIED, messages.EventType_EVENT_DELETED:
					key := ev.GetKey()
					fn(Event{Namespace: key.GetNamespace(), Name: key.GetName(), Deleted: ev.GetType() == messages.EventType_EVENT_DELETED})
				}
			}
		}
	}()
	return func() error {
		<-done
		if ctx.Err() != nil {
			return nil
		}
		return w.Err()
	}
}

func (k *kstoreConn) Reason(err error) string {
	if errors.Is(err, ErrConflict) {
		return "Conflict"
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "Timeout"
	}
	return messages.ReasonName(messages.ReasonOf(err))
}
