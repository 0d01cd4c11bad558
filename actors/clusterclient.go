package actors

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"go.uber.org/zap"

	"github.com/kstore/kstore/cluster"
	"github.com/kstore/kstore/messages"
)

// clusterAttempts is how many attempts of a cluster client's request make one round, as the
// endpoints of an address-based client do: a read gets a third of its time per attempt, and the
// client backs off after each round. Three rounds cover a member's death, the provider noticing
// it, and the identity's activation elsewhere.
const clusterAttempts = 3

// storeIdentity resolves the store identity (cluster.Identity of kind cluster.Kind) to the PID
// of its activation, for a client in a protoactor cluster. Many callers share one lookup at a
// time; the PID is cached by the cluster until it is forgotten or its member leaves.
type storeIdentity struct {
	c *protocluster.Cluster

	mu     sync.Mutex
	lookup chan struct{} // closed when the lookup in flight ends; nil when none is
	pid    *actor.PID    // its result
}

// NewClusterClient returns a client that reaches the store through the actor cluster c (a
// member's, or a client's made by JoinCluster): by kind and identity, never by a node's address.
// It has the methods and failure handling of NewClient's, with the store identity's current
// activation in place of a list of endpoints: when the member hosting it dies, the next attempt
// finds it on a live member. A timeout of 0 means DefaultTimeout.
func NewClusterClient(c *protocluster.Cluster, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{root: c.ActorSystem.Root, store: &storeIdentity{c: c}, timeout: timeout}
}

// cached is the activation's PID when the cluster has it, without asking anyone.
func (s *storeIdentity) cached() *actor.PID {
	pid, _ := s.c.PidCache.Get(cluster.Identity, cluster.Kind)
	return pid
}

// resolve returns the activation's PID, asking the member that owns the identity when it is not
// cached, within wait: the first of cluster.StoreOwners that accepts connections, since
// protoactor's lookup would wait 5 s on a dead owner, and the provider keeps a member that only
// stopped answering. It refuses (Unavailable: nothing was sent) when no member hosts the store
// yet or none accepts connections.
func (s *storeIdentity) resolve(wait time.Duration) (*actor.PID, error) {
	if pid := s.cached(); pid != nil {
		return pid, nil
	}
	owners := cluster.StoreOwners(s.c.ActorSystem)
	if len(owners) == 0 {
		return nil, messages.Errorf(messages.StatusReason_UNAVAILABLE,
			"no kstore member in the actor cluster %s yet: is kstore serve running, with the same --cluster-name?", s.c.Config.Name)
	}
	owner := ""
	deadline := time.Now().Add(wait)
	for _, o := range owners {
		if listening(o, min(time.Until(deadline), probeTimeout)) {
			owner = o
			break
		}
	}
	if owner == "" {
		return nil, messages.Errorf(messages.StatusReason_UNAVAILABLE,
			"no kstore member of the actor cluster accepts connections (%s): nothing was sent", strings.Join(owners, ", "))
	}
	wait = time.Until(deadline)
	s.mu.Lock()
	done := s.lookup
	if done == nil {
		done = make(chan struct{})
		s.lookup = done
		// The lookup is bounded (activationTimeout); callers stop waiting for it at their own
		// deadline, and the next caller after it ended starts a new one.
		go func() {
			pid := activate(s.c, owner)
			if pid != nil {
				s.c.PidCache.Set(cluster.Identity, cluster.Kind, pid)
			}
			s.mu.Lock()
			s.pid, s.lookup = pid, nil
			s.mu.Unlock()
			close(done)
		}()
	}
	s.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		return nil, messages.Errorf(messages.StatusReason_UNAVAILABLE,
			"the actor cluster did not place the store identity within %v (its owner %s is slow or gone): nothing was sent", wait, owner)
	}
	s.mu.Lock()
	pid := s.pid
	s.mu.Unlock()
	if pid == nil {
		return nil, messages.Errorf(messages.StatusReason_UNAVAILABLE,
			"the kstore member at %s did not activate the store identity: nothing was sent; retry", owner)
	}
	return pid, nil
}

// activate asks the placement actor of owner for the store identity's activation, as
// protoactor's disthash lookup does: not through it, since it reads its topology without a lock
// while the provider's goroutine replaces it (a data race).
func activate(c *protocluster.Cluster, owner string) *actor.PID {
	res, err := c.ActorSystem.Root.RequestFuture(actor.NewPID(owner, disthash.PartitionActivatorActorName),
		&protocluster.ActivationRequest{ClusterIdentity: protocluster.NewClusterIdentity(cluster.Identity, cluster.Kind)}, activationTimeout).Result()
	if err != nil {
		return nil
	}
	r, ok := res.(*protocluster.ActivationResponse)
	if !ok {
		return nil
	}
	return r.GetPid()
}

// activationTimeout bounds one activation request: protoactor's own lookup waits as long.
const activationTimeout = 5 * time.Second

// forget drops pid from the cache, so that the next attempt looks the identity up again: its
// member did not answer.
func (s *storeIdentity) forget(pid *actor.PID) {
	if pid != nil {
		s.c.PidCache.RemoveByValue(cluster.Identity, cluster.Kind, pid)
	}
}

func (s *storeIdentity) String() string {
	return fmt.Sprintf("the actor cluster %s (kind %s, identity %s)", s.c.Config.Name, cluster.Kind, cluster.Identity)
}

// JoinCluster starts an actor system listening on listen (host:port; port 0 picks one) as a
// client of the actor cluster the kstore members at seeds (their --listen addresses) are in: it
// asks the seeds, in turn, for the cluster's name, provider and endpoints, and from then on
// knows the members only through the cluster. Make its client with NewClusterClient. Close the
// system when done.
func JoinCluster(seeds []string, listen string, logger *zap.Logger) (*System, *protocluster.Cluster, error) {
	if len(seeds) == 0 {
		return nil, nil, errors.New("actors: no cluster seeds: give the --listen address of at least one kstore member")
	}
	sys, err := NewSystemWith(listen, logger, cluster.Client(cluster.Config{Seeds: seeds, NodeActor: DefaultName}))
	if err != nil {
		return nil, nil, fmt.Errorf("actors: joining the actor cluster of the kstore members at %v: %w", seeds, err)
	}
	return sys, cluster.Of(sys.ActorSystem), nil
}
