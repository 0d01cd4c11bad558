// Package cluster makes kstore nodes members of a protoactor cluster, and other processes its
// clients, so that actors reach the store by cluster kind and identity (Kind, Identity) instead of
// by a node's address.
//
// Membership in the actor cluster is only about finding nodes: the cluster provider (automanaged
// by default, Consul, etcd or Kubernetes) tells each process which members are alive, and
// protoactor's identity lookup places the store's identity on one of them. Who votes and who
// leads stays Raft's. The store identity is a forwarder (store.go): it hands every kstore request
// to the node actor of the member it lives on, which serves it or forwards it to the leader, and
// the reply goes straight back to the caller.
//
// The package owns no state of its own beyond the protoactor cluster it starts; the cluster's
// actors and goroutines are stopped by the leave function Start returns.
package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/consul"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/k8s"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/extensions"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The store's cluster kind and identity: cluster.Request(Identity, Kind, msg) reaches a kstore
// member's node actor.
const (
	Kind     = "kstore"
	Identity = "store"
)

// DefaultName is the cluster name (--cluster-name) when none is given.
const DefaultName = "kstore"

// Providers a member or client may use (--cluster-provider).
const (
	// Automanaged needs nothing outside the members: each member serves a small HTTP health
	// endpoint (HealthAddress) and polls every other member's.
	Automanaged = "automanaged"
	Consul      = "consul"     // a Consul agent (Config.Endpoints: its address; default Consul's)
	Etcd        = "etcd"       // an etcd cluster (Config.Endpoints: its client URLs)
	Kubernetes  = "kubernetes" // the Kubernetes API, from inside a pod (in-cluster config)
)

// Providers lists the provider names, the default first.
var Providers = []string{Automanaged, Consul, Etcd, Kubernetes}

// HealthPortOffset is how far above a member's --listen port its automanaged health endpoint
// listens, on the same host. A fixed offset lets every member and client work out every other
// member's health address from the Raft members' addresses alone: the automanaged provider is
// given the full list when it starts and polls it from then on.
const HealthPortOffset = 1000

// neverExpires is a gossip heartbeat expiration no pause reaches (about 146 years).
const neverExpires = time.Duration(1 << 62)

// gossipInterval is how often a member gossips its state to others (protoactor's default is
// 300 ms). kstore reads nothing from gossip: membership comes from the provider, and heartbeat
// expiry is off; a slower gossip costs an idle member less.
const gossipInterval = 2 * time.Second

// refreshInterval is how often the automanaged provider polls the members' health endpoints:
// a member that died is out of the topology, and the store identity moves off it, within about
// this time (plus the poll's connect time).
const refreshInterval = time.Second

// Config of a process in the actor cluster. Zero fields take the defaults.
type Config struct {
	// Name is the cluster's name; members and clients of one cluster share it. Default
	// DefaultName.
	Name string
	// Provider is one of Providers. Default Automanaged.
	Provider string
	// Endpoints: for Automanaged, the health addresses (HealthAddress) of the members; for Consul
	// the agent's address (host:port; empty: Consul's default); for Etcd the client URLs; unused
	// for Kubernetes.
	Endpoints []string
	// NodeActor is the id of the node actor: on a member, the local one the store identity
	// forwards to; on a client with Seeds, the one asked at each seed.
	NodeActor string
	// Seeds (clients only), when set, are kstore members' --listen addresses: the client asks
	// them in turn, once its remote runs, for the cluster's name, provider and endpoints
	// (messages.ClusterInfoRequest), which take the place of Name, Provider and Endpoints.
	Seeds []string
}

// HealthAddress is the automanaged health endpoint of the member listening on listen: the same
// host, the port HealthPortOffset higher. A listen port of 0 gives port 0 (any free port).
func HealthAddress(listen string) (string, error) {
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("cluster: listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return "", fmt.Errorf("cluster: listen address %q: port is not a number", listen)
	}
	if port == 0 {
		return net.JoinHostPort(host, "0"), nil
	}
	if port+HealthPortOffset > 65535 {
		return "", fmt.Errorf("cluster: the automanaged health endpoint of %s would be port %d, above 65535: listen on a port below %d, or choose another --cluster-provider",
			listen, port+HealthPortOffset, 65536-HealthPortOffset)
	}
	return net.JoinHostPort(host, strconv.Itoa(port+HealthPortOffset)), nil
}

// Starter starts a system's remote with rc as a cluster member or client; Close of the system
// calls leave before it stops remote. When it fails after remote started, it returns remote
// and leave with the error, for the caller to stop both.
type Starter func(sys *actor.ActorSystem, rc *remote.Config) (r *remote.Remote, leave func(), err error)

// Member returns the Starter of a cluster member that hosts the store kind. peers are the
// listen addresses of the other Raft members: with Automanaged and no Endpoints, their health
// addresses and this member's own are the provider's.
func Member(cfg Config, peers []string) Starter {
	return func(sys *actor.ActorSystem, rc *remote.Config) (*remote.Remote, func(), error) {
		return start(sys, rc, cfg, append([]string{selfAddress(rc)}, peers...), true)
	}
}

// selfAddress is the address rc's system is reached at: the one it advertises, when it
// listens on every interface or under another name, else the one it listens on.
func selfAddress(rc *remote.Config) string {
	if rc.AdvertisedHost != "" {
		return rc.AdvertisedHost
	}
	return net.JoinHostPort(rc.Host, strconv.Itoa(rc.Port))
}

// Client returns the Starter of a cluster client: it finds the members and reaches kinds, and
// hosts none.
func Client(cfg Config) Starter {
	return func(sys *actor.ActorSystem, rc *remote.Config) (*remote.Remote, func(), error) {
		return start(sys, rc, cfg, nil, false)
	}
}

// Of returns the cluster a Starter started on sys, nil when there is none.
func Of(sys *actor.ActorSystem) (c *protocluster.Cluster) {
	defer func() {
		if recover() != nil {
			c = nil // no cluster extension registered
		}
	}()
	return protocluster.GetCluster(sys)
}

func start(sys *actor.ActorSystem, rc *remote.Config, cfg Config, members []string, member bool) (r *remote.Remote, leave func(), err error) {
	cfg.Name = cmp.Or(cfg.Name, DefaultName)
	cfg.Provider = cmp.Or(cfg.Provider, Automanaged)
	self := selfAddress(rc)
	var provider protocluster.ClusterProvider
	stopProvider := func() {}
	if !member && len(cfg.Seeds) > 0 {
		provider = &seeded{cfg: cfg, sys: sys}
	} else if provider, stopProvider, err = newProvider(sys, cfg, self, members, member); err != nil {
		return nil, nil, err
	}
	var opts []protocluster.ConfigOption
	if member {
		node := actor.NewPID(self, cfg.NodeActor)
		opts = append(opts, protocluster.WithKinds(protocluster.NewKind(Kind,
			actor.PropsFromProducer(func() actor.Actor { return &store{node: node} }))))
	}
	// No member is blocked for a late heartbeat: protoactor never lets a blocked member back
	// into the topology, and a process paused or cut off for a while is not gone. Members leave
	// the topology when the provider finds them gone (automanaged.go).
	opts = append(opts, protocluster.WithHeartbeatExpiration(neverExpires))
	started := &signaled{ClusterProvider: provider, ready: make(chan error, 1)}
	pcfg := protocluster.Configure(cfg.Name, started, disthash.New(), rc, opts...)
	pcfg.GossipInterval = gossipInterval
	c := protocluster.New(sys, pcfg)
	(&topology{}).track(sys)
	// StartMember ends with a sleep of a second, after it started the provider: the member
	// serves from the provider's start on, and the sleep runs out on a goroutine leave waits
	// for. protoactor panics where it cannot start (a port taken, a provider that fails).
	startDone := make(chan struct{})
	go func() {
		defer close(startDone)
		defer func() {
			if p := recover(); p != nil {
				started.fail(fmt.Errorf("cluster: cannot start the cluster %s with provider %s: %v", cfg.Name, cfg.Provider, p))
			}
		}()
		if member {
			c.StartMember()
		} else {
			c.StartClient()
		}
	}()
	if err := <-started.ready; err != nil {
		<-startDone
		stopProvider()
		if c.Remote == nil || c.IdentityLookup == nil {
			return nil, nil, err // it failed before remote started
		}
		return c.Remote, func() { c.IdentityLookup.Shutdown(); c.Gossip.Shutdown() }, err
	}
	leave = func() {
		<-startDone
		if member {
			c.Gossip.SetState(protocluster.GracefullyLeftKey, &emptypb.Empty{})
		}
		_ = provider.Shutdown(true)
		stopProvider()
		c.IdentityLookup.Shutdown()
		c.Gossip.Shutdown()
	}
	if s, ok := provider.(*seeded); ok && s.err != nil {
		return c.Remote, leave, s.err // remote runs: the caller closes it with leave
	}
	return c.Remote, leave, nil
}

// signaled tells start when protoactor has started the provider: the last step of the
// cluster's start but a sleep.
type signaled struct {
	protocluster.ClusterProvider
	ready chan error // one value: the provider's start's error, or nil
}

func (s *signaled) StartMember(c *protocluster.Cluster) error {
	err := s.ClusterProvider.StartMember(c)
	s.fail(err)
	return err
}

func (s *signaled) StartClient(c *protocluster.Cluster) error {
	err := s.ClusterProvider.StartClient(c)
	s.fail(err)
	return err
}

// fail reports err (nil: started) unless something was reported already.
func (s *signaled) fail(err error) {
	select {
	case s.ready <- err:
	default:
	}
}

// newProvider makes cfg's provider. stop releases what newProvider itself opened (the
// automanaged health listener) should the cluster never start, and is safe to call again.
func newProvider(sys *actor.ActorSystem, cfg Config, self string, members []string, member bool) (protocluster.ClusterProvider, func(), error) {
	noop := func() {}
	switch cfg.Provider {
	case Automanaged:
		hosts := slices.Clone(cfg.Endpoints)
		if len(hosts) == 0 {
			for _, m := range members {
				h, err := HealthAddress(m)
				if err != nil {
					return nil, nil, err
				}
				hosts = append(hosts, h)
			}
		}
		if !member {
			if len(hosts) == 0 {
				return nil, nil, errors.New("cluster: an automanaged cluster client needs the members' health addresses")
			}
			return newAutomanaged(hosts, nil), noop, nil
		}
		addr, err := HealthAddress(self)
		if err != nil {
			return nil, nil, err
		}
		// On the member's own host, never every interface.
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: the automanaged health endpoint cannot listen on %s (--listen port + %d): %w; free that port or choose another --listen",
				addr, HealthPortOffset, err)
		}
		p := newAutomanaged(hosts, l)
		return p, func() { _ = p.Shutdown(true) }, nil
	case Consul:
		conf := api.DefaultConfig()
		if len(cfg.Endpoints) > 0 {
			conf.Address = cfg.Endpoints[0]
		}
		p, err := consul.NewWithConfig(conf)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: consul provider: %w", err)
		}
		return p, noop, nil
	case Etcd:
		if len(cfg.Endpoints) == 0 {
			return nil, nil, errors.New("cluster: the etcd provider needs --cluster-provider-endpoints (etcd's client URLs)")
		}
		p, err := etcd.NewWithConfig("/protoactor", clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second})
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: etcd provider: %w", err)
		}
		return p, noop, nil
	case Kubernetes:
		p, err := k8s.New()
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: kubernetes provider (it runs only inside a pod): %w", err)
		}
		return p, noop, nil
	}
	return nil, nil, fmt.Errorf("cluster: unknown provider %q: use one of %v", cfg.Provider, Providers)
}

// topology keeps the members the cluster's event stream last reported, so that a client can tell
// where the store identity lives without asking: protoactor's MemberList hands out its member set
// without a lock.
type topology struct {
	mu      sync.Mutex
	members []string // the addresses of the members that host the store kind, sorted
}

var topologyID = extensions.NextExtensionID()

func (t *topology) ExtensionID() extensions.ExtensionID { return topologyID }

// track subscribes t to sys's topology events; start calls it before the provider reports the
// first topology.
func (t *topology) track(sys *actor.ActorSystem) {
	sys.Extensions.Register(t)
	sys.EventStream.Subscribe(func(evt any) {
		if lost, ok := evt.(*remote.EndpointTerminatedEvent); ok {
			// The connection to a member broke (its process died, most likely): a request to the
			// store identity cached there would wait out its whole timeout, and a write's
			// outcome would be unknown though nothing was sent. Look it up again instead.
			c := protocluster.GetCluster(sys)
			if pid, ok := c.PidCache.Get(Identity, Kind); ok && pid.GetAddress() == lost.Address {
				c.PidCache.RemoveByValue(Identity, Kind, pid)
			}
			return
		}
		if top, ok := evt.(*protocluster.ClusterTopology); ok {
			var members []string
			for _, m := range top.Members {
				if slices.Contains(m.Kinds, Kind) {
					members = append(members, m.Address())
				}
			}
			slices.Sort(members)
			t.mu.Lock()
			t.members = members
			t.mu.Unlock()
		}
	})
}

// StoreOwners are the members that host the store kind in the topology sys last heard of, in
// the order the rendezvous hash prefers them for the store identity: the first is where
// protoactor places it. A client may ask any of them to activate it (the placement actor of a
// member activates what it is asked to), and takes the next when one does not accept
// connections: the provider keeps a member that only stopped answering. Empty before the
// first topology, or when sys was not started by a Starter.
func StoreOwners(sys *actor.ActorSystem) []string {
	t, ok := sys.Extensions.Get(topologyID).(*topology)
	if !ok || t == nil {
		return nil
	}
	t.mu.Lock()
	members := slices.Clone(t.members)
	t.mu.Unlock()
	return preference(members)
}

// preference orders addrs by the rendezvous hash's preference for the store identity.
func preference(addrs []string) []string {
	var out []string
	for len(addrs) > 0 {
		first := OwnerOf(addrs)
		if first == "" {
			break
		}
		out = append(out, first)
		addrs = slices.DeleteFunc(addrs, func(a string) bool { return a == first })
	}
	return out
}

// Members are the addresses of the members hosting the store kind in the topology sys last
// heard of, sorted; nil when sys was not started by a Starter.
func Members(sys *actor.ActorSystem) []string {
	t, ok := sys.Extensions.Get(topologyID).(*topology)
	if !ok || t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.members)
}

// OwnerOf is the member, of the kstore members listening at addrs, that hosts the store
// identity while all of them are up and in the topology: the identity's place is a rendezvous
// hash of the members' addresses.
func OwnerOf(addrs []string) string {
	var ms protocluster.Members
	for _, a := range addrs {
		host, portText, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		port, _ := strconv.Atoi(portText)
		ms = append(ms, &protocluster.Member{Id: a, Host: host, Port: int32(port), Kinds: []string{Kind}})
	}
	rdv := protocluster.NewRendezvous()
	rdv.UpdateMembers(ms)
	return rdv.GetByClusterIdentity(protocluster.NewClusterIdentity(Identity, Kind))
}
