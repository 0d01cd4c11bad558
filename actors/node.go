package actors

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/cluster"
	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/raftactor"
	"github.com/kstore/kstore/raftactor/wal"
	"github.com/kstore/kstore/watcheractor"
)

// Config of a node. Zero fields take the defaults.
type Config struct {
	// DataDir holds the Raft log (raft/) and the catalog (catalog/). Default ./kstore-data.
	DataDir string
	// Listen is the address the node's actor system listens on (Start only; see NewSystem), such
	// as DefaultListen. A wildcard (0.0.0.0:7450) needs Advertise. Empty: no listener, no
	// port: the node runs in an actor system without remote, reachable only from its own
	// process (NewClientPIDs(node.System(), []*actor.PID{node.PID()}, timeout)); InitialCluster,
	// Join and Cluster need a listener and are refused with it.
	Listen string
	// Advertise is the host:port clients and peers reach the node at (Start only): the address
	// its PIDs name, its member address in InitialCluster. Default: the address Listen got (a
	// name resolved to the IP it listens on). Its port must be Listen's, and its host an
	// address of this machine that Listen covers, or a name resolving only to such addresses:
	// Start refuses an address that would not reach the node. See address.go.
	Advertise string
	// NodeID is this node's Raft id, non-zero. Default 1.
	NodeID uint64
	// InitialCluster names the members of a new cluster: every member's node id, this node's
	// included, with the address its node listens on. It is used when the data dir is new;
	// empty makes a cluster of this node alone.
	InitialCluster map[uint64]string
	// Join, instead, names running members of a cluster this node joins: the cluster must list
	// it already (kstore member add). Used when the data dir is new.
	Join []string
	// Name is the node actor's name; clients address it as (address, Name). Default "kstore".
	Name   string
	Logger *zap.Logger
	// HistoryRevisions is how many revisions stay readable behind the newest (default
	// catalogactor.DefaultHistoryRevisions).
	HistoryRevisions uint64
	// Watch configures watches (buffer limits, bookmarks); zero fields take defaults.
	Watch watcheractor.Config
	// LogCompaction tunes when the Raft log drops what the catalog holds on disk; zero fields
	// take the defaults. Tests make it small to exercise compaction.
	LogCompaction LogCompaction
	// MaxInflightProposals bounds the writes waiting to commit; beyond it a write gets
	// Unavailable at once (default raftactor.DefaultMaxInflightProposals).
	MaxInflightProposals int
	// MemTableSize is the size of Badger's memtables (default catalogactor.DefaultMemTableSize);
	// tests make it small so that memtables rotate and flush often.
	MemTableSize int64
	// DiskReserve is the free space, in bytes, the data dir's file system must keep: writes are
	// refused below it and the node does not start below it. 0 takes DefaultDiskReserve;
	// negative turns the reserve off.
	DiskReserve int64
	// Cluster, when set, makes the node a member of a protoactor cluster (Start only): other
	// processes reach it as cluster.Identity of kind cluster.Kind (see package cluster), and a
	// ClusterInfoRequest tells a client how to join. Cluster.NodeActor is set to Name.
	Cluster *cluster.Config
	// Audit, when set, gets one info line per command the node applies (catalogactor.Config.Audit).
	Audit *zap.Logger
	// Metrics, when set, gets the node's Prometheus collectors (README, "Metrics and health");
	// nil: no metrics, at no cost. Never the global default registry: each node in a process
	// needs one of its own. They are unregistered when the node stops.
	Metrics prometheus.Registerer

	// TLS, when set, serves and dials with mutual TLS (Start only; see tls.go and peer.go):
	// clients and peers are told apart by their certificates. Without it, peer traffic is
	// taken only from the members' IPs.
	TLS *TLS
	// membersAt tells the guard of the node's own system the members' addresses (peer.go);
	// set by Start, nil in a system of the caller's.
	membersAt func(map[uint64]string)

	// faults are the failures a test build arms (ArmFailpoints); nil in production.
	faults *Faults
}

// LogCompaction: the catalog syncs Badger every SyncEvery applied entries; once CompactAfter
// synced entries are in the Raft log, it drops all but the last KeepEntries of them.
type LogCompaction struct {
	SyncEvery, CompactAfter, KeepEntries uint64
}

const (
	DefaultDataDir = "kstore-data"
	DefaultListen  = "127.0.0.1:7450"
	DefaultName    = "kstore"
	// startTimeout bounds how long Start waits for raft and the catalog to load their state.
	startTimeout = 30 * time.Second
)

func (c *Config) withDefaults() {
	c.DataDir = cmp.Or(c.DataDir, DefaultDataDir)
	c.NodeID = cmp.Or(c.NodeID, 1)
	c.Name = cmp.Or(c.Name, DefaultName)
	c.DiskReserve = cmp.Or(c.DiskReserve, DefaultDiskReserve)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Node is a running kstore node: a node actor (the intake clients talk to, and the supervisor
// of the raft and catalog actors) and the data dir it holds locked.
type Node struct {
	cfg    Config
	system *actor.ActorSystem
	own    *System // the system Start made; nil when spawned into the caller's
	pid    *actor.PID
	lock   *dirLock

	failed   chan error    // a child failed: the supervisor's decider reports it here
	done     chan struct{} // closed when the node has stopped
	stopOnce sync.Once
	err      error
	wg       sync.WaitGroup // the goroutine that stops the node on a child failure
	metrics  *nodeMetrics   // nil: metrics off
	// The goroutines of the node, raft, catalog and watch hub actors' mailboxes; closed once
	// the actors have stopped.
	dispatch dispatchers
}

// Start runs a node in an actor system of its own, listening on cfg.Listen, or with no
// listener when cfg.Listen is empty. A start that fails before the node's actors ran leaves no
// data dir it created behind; one that existed before stays as it was.
func Start(cfg Config) (*Node, error) {
	cfg.withDefaults()
	if cfg.Listen == "" {
		if err := checkInProcess(cfg); err != nil {
			return nil, err
		}
	}
	var err error
	if cfg.faults, err = armedFaults(); err != nil {
		return nil, err
	}
	// Lock first: a second node on the same data dir must fail before it touches the port.
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	var start cluster.Starter
	if cfg.Cluster != nil {
		cc := *cfg.Cluster
		cc.NodeActor = cfg.Name
		peers, err := knownPeers(cfg)
		if err != nil {
			lock.discard()
			return nil, err
		}
		start = cluster.Member(cc, peers)
	}
	var setup *tlsSetup
	if cfg.TLS.enabled() {
		if cfg.Listen == "" {
			lock.discard()
			return nil, errors.New("kstore: TLS is for the node's listener, and a node without a listen address has none; give it a listen address, or leave TLS out")
		}
		if setup, err = cfg.TLS.load(true); err != nil {
			lock.discard()
			return nil, err
		}
	}
	sys, err := newSystemTLS(cfg.Listen, cfg.Advertise, cfg.Logger, start, setup)
	if err != nil {
		lock.discard()
		return nil, err
	}
	// The node's own actors take nothing from outside but raft's messages from peers; clients
	// talk to the node actor, and to the watchers it starts for them.
	sys.Protect(cfg.Name+"/raft", "raftpb.Message")
	sys.Protect(cfg.Name+"/catalog", "kstore.v1.SnapshotChunk") // from the leader's catalog
	sys.Protect(cfg.Name + "/watch")
	// Peer traffic only a member's connection may carry (peer.go): a client must not step raft
	// or change the membership.
	sys.PeerOnly(cfg.Name + "/raft")
	sys.PeerOnly(cfg.Name + "/catalog")
	sys.PeerOnly(cfg.Name, "kstore.v1.Forwarded", "kstore.v1.Hello", "kstore.v1.HelloAck", "kstore.v1.MemberRefused", "kstore.v1.MemberRequest")
	// And these types to any actor: the actor cluster's store identity passes kstore messages on
	// to the node actor with the client as their sender, past the rules above.
	sys.PeerOnlyTypes("raftpb.Message", "kstore.v1.SnapshotChunk", "kstore.v1.Forwarded", "kstore.v1.Hello",
		"kstore.v1.HelloAck", "kstore.v1.MemberRefused", "kstore.v1.MemberRequest")
	cfg.membersAt = sys.guard.membersAt
	n, err := spawn(sys.ActorSystem, cfg, lock)
	if err != nil {
		sys.Close()
		return nil, err
	}
	n.own = sys
	return n, nil
}

// knownPeers are the addresses of the other members this node knows of before its actor system
// starts: its data dir's peers (peers.json), or, for a new one, --initial-cluster or --join.
// The cluster provider of a member polls these; a member added later is found by the others
// when they next start (the store identity forwards to its own member, so members that
// disagree on the topology still each serve).
func knownPeers(cfg Config) ([]string, error) {
	book, err := loadPeers(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	removed := map[uint64]bool{}
	for _, id := range book.Removed {
		removed[id] = true
	}
	addrs := map[string]bool{}
	for id, p := range book.Peers {
		if !removed[id] && id != cfg.NodeID {
			addrs[p.Address] = true
		}
	}
	for id, a := range cfg.InitialCluster {
		if !removed[id] && id != cfg.NodeID {
			addrs[a] = true
		}
	}
	for _, a := range cfg.Join {
		addrs[a] = true
	}
	delete(addrs, cfg.Listen)
	delete(addrs, cfg.Advertise)
	return slices.Sorted(maps.Keys(addrs)), nil
}

// checkInProcess refuses what a node without a listener cannot do.
func checkInProcess(cfg Config) error {
	switch {
	case len(cfg.InitialCluster) > 0:
		return errors.New("kstore: a node without a listen address runs alone in its process: peers could not reach it, so it cannot be in an initial cluster; give it a listen address, or leave InitialCluster out")
	case len(cfg.Join) > 0:
		return errors.New("kstore: a node without a listen address runs alone in its process: it cannot join a cluster, whose members could not reach it; give it a listen address")
	case cfg.Cluster != nil:
		return errors.New("kstore: a node without a listen address cannot be in an actor cluster, which runs on protoactor remote; give it a listen address, or leave Cluster out")
	case cfg.Advertise != "":
		return errors.New("kstore: a node without a listen address has no address to advertise; give it a listen address, or leave Advertise out")
	}
	return nil
}

// Spawn runs a node inside an existing actor system: a library user's own system, with or
// without remote. A system made with NewSystem should Protect the node's internal actors
// (name/raft, name/catalog, name/watch) as Start does; another system's remote, if it has one,
// lets any peer reach them. Stop stops the node's actors and releases its data dir; the system is the
// caller's to shut down.
func Spawn(system *actor.ActorSystem, cfg Config) (*Node, error) {
	cfg.withDefaults()
	var err error
	if cfg.faults, err = armedFaults(); err != nil {
		return nil, err
	}
	if len(system.ProcessRegistry.RemoteHandlers) == 0 { // no remote started (client.go, hasRemote)
		if err := checkInProcess(Config{InitialCluster: cfg.InitialCluster, Join: cfg.Join}); err != nil {
			return nil, err
		}
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return spawn(system, cfg, lock)
}

// spawn starts the node's actors in system. When it fails before the node actor runs, it
// discards the data dir lock (unlocked, the dir removed if this start created it): no raft
// ran in it, so it holds no vote and acknowledged nothing. After, it only unlocks.
func spawn(system *actor.ActorSystem, cfg Config, lock *dirLock) (n *Node, err error) {
	spawned := false
	defer func() {
		switch {
		case err == nil:
		case spawned:
			lock.unlock()
		default:
			lock.discard()
		}
	}()
	log := cfg.Logger.With(zap.Uint64("node", cfg.NodeID))
	nm, err := newNodeMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			nm.unregister() // a Start that failed leaves the registry as it found it
		}
	}()
	cfg.Watch.Metrics = nm.watchMetrics()
	// Check every setting before a file is touched: a bad one fails here with its name.
	rcfg := raftactor.Config{NodeID: cfg.NodeID, Logger: log, MaxInflightProposals: cfg.MaxInflightProposals,
		CompactAfter: cfg.LogCompaction.CompactAfter, KeepEntries: cfg.LogCompaction.KeepEntries, Metrics: nm.raftMetrics()}
	if err := rcfg.Check(); err != nil {
		return nil, fmt.Errorf("kstore: %w", err)
	}
	reserve := uint64(max(cfg.DiskReserve, 0))
	if err := checkStartSpace(cfg.DataDir, reserve); err != nil {
		return nil, err
	}
	ms, members, err := loadMembership(system, cfg)
	if err != nil {
		return nil, err
	}
	rcfg.Members, rcfg.ClusterID = members, ms.self.ClusterID
	// A new data dir of a new cluster's member starts its log with the initial configuration;
	// one that joins a running cluster starts it empty, and gets it from the leader.
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if !ms.fresh && dirEmpty(raftDir) {
		// It would start a new log and forget its votes, with the identity its peers trust.
		return nil, fmt.Errorf("kstore: the data dir %s belongs to node %d, but its Raft log (%s) is gone: it forgot its votes and its log, so it cannot serve under its old id. Remove it (kstore member remove %d), delete the data dir, and add it again (kstore member add, then kstore serve --join)",
			cfg.DataDir, cfg.NodeID, raftDir, cfg.NodeID)
	}
	walOpts := wal.Options{Logger: log, SyncDuration: nm.raftMetrics().WALSync()}
	var catalogFaults catalogactor.Faults
	if f := cfg.faults; f != nil {
		log.Warn("failpoints armed: this node fails on purpose (a test build, -tags failpoints)", zap.String("failpoints", f.Armed))
		walOpts.Faults, catalogFaults = f.WAL, f.Catalog
	}
	rlog, err := raftactor.OpenLogWith(raftDir, slices.Sorted(maps.Keys(ms.self.InitialCluster)), walOpts)
	if err != nil {
		return nil, fmt.Errorf("kstore: open raft log in %s: %w", cfg.DataDir, err)
	}
	if ms.fresh {
		if err := saveIdentity(cfg.DataDir, ms.self); err != nil {
			rlog.WAL.Close()
			return nil, err
		}
	}
	store := catalogactor.StoreOptions{Dir: filepath.Join(cfg.DataDir, "catalog"), Logger: log, MemTableSize: cfg.MemTableSize}
	if err := catalogactor.RecoverInstall(store.Dir, rlog.State.Snapshot.GetIndex(), log); err != nil {
		rlog.WAL.Close()
		return nil, fmt.Errorf("kstore: recover the catalog in %s: %w", cfg.DataDir, err)
	}
	db, err := catalogactor.OpenStore(store)
	if err != nil {
		rlog.WAL.Close()
		return nil, fmt.Errorf("kstore: open catalog in %s: %w", cfg.DataDir, err)
	}
	n = &Node{cfg: cfg, system: system, lock: lock, failed: make(chan error, 1), done: make(chan struct{})}
	n.metrics = nm
	fail := func(err error) {
		select {
		case n.failed <- err:
		default: // the first failure is the one reported
		}
	}
	props := actor.PropsFromProducer(func() actor.Actor {
		return &nodeActor{
			id:      cfg.NodeID,
			name:    cfg.Name,
			members: maps.Clone(members),
			ms:      ms,
			cluster: cfg.Cluster,
			log:     log,
			fail:    fail,
			guard:   cfg.membersAt,
			disk:    &diskSpace{dir: cfg.DataDir, reserve: reserve},
			stale:   cfg.faults != nil && cfg.faults.StaleReads,
			barrier: nm.readIndexTimer(),
			watch:   watcheractor.NewHub(cfg.Watch).Configure(n.dispatch.own()),
			catalog: func(watch *actor.PID) *actor.Props {
				return catalogactor.New(catalogactor.Config{DB: db, Watchers: watch, Logger: log, HistoryRevisions: cfg.HistoryRevisions,
					SyncEvery: cfg.LogCompaction.SyncEvery, NodeID: cfg.NodeID, Store: store, Audit: cfg.Audit, Faults: catalogFaults,
					Metrics: nm.catalogMetrics()}).Configure(n.dispatch.own())
			},
			raft: func(catalog *actor.PID) *actor.Props {
				c := rcfg
				c.Log, c.Applier = rlog, catalog
				props, err := raftactor.New(c)
				if err != nil {
					panic(err) // unreachable: rcfg passed Check above
				}
				return props.Configure(n.dispatch.own())
			},
		}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		// A raft or catalog actor that failed has lost track of its state; restarting it empty
		// under callers' pending requests would be worse than stopping the node.
		fail(fmt.Errorf("kstore: node %d failed: %v", cfg.NodeID, reason))
		return actor.StopDirective
	})), n.dispatch.own())
	pid, err := system.Root.SpawnNamed(props, cfg.Name)
	spawned = err == nil
	if err != nil {
		// Nothing owns the stores yet.
		n.dispatch.close()
		db.Close()
		rlog.WAL.Close()
		return nil, fmt.Errorf("kstore: spawn node actor %q: %w", cfg.Name, err)
	}
	n.pid = pid
	n.wg.Add(1)
	go n.watchFailure()
	// Wait until raft and the catalog have loaded their state and caught up: a caller's first
	// write then finds a leader, and its first read every write acknowledged before. Only a
	// node that is its own quorum can count on that; a member of a larger cluster may be the
	// first of its members to start, and serves (refusing requests with Unavailable until it
	// has caught up) as soon as its actors run.
	if len(members) == 1 {
		err = waitReady(system.Root, pid)
	} else {
		err = waitStarted(system.Root, pid)
	}
	if err != nil {
		select {
		case ferr := <-n.failed: // the reason it did not answer
			n.stop(ferr)
		default:
			n.stop(nil)
		}
		n.wg.Wait()
		if ferr := n.Err(); ferr != nil {
			return nil, ferr
		}
		return nil, fmt.Errorf("kstore: node did not start: %w", err)
	}
	return n, nil
}

// waitReady waits until the node actor serves: raft has caught up (raftactor.CaughtUp), which
// for a node that is its own quorum means it leads and has applied every entry it committed,
// also those it acknowledged before a crash and its catalog applies again from its durable
// point.
func waitReady(root *actor.RootContext, pid *actor.PID) error {
	deadline := time.Now().Add(startTimeout)
	for {
		res, err := root.RequestFuture(pid, servingQuery{}, time.Until(deadline)).Result()
		if err != nil {
			return err
		}
		if serving, _ := res.(bool); serving {
			return nil
		}
		if time.Now().After(deadline) {
			res, _ := root.RequestFuture(pid, &messages.StatusRequest{}, time.Second).Result()
			st, _ := res.(*messages.NodeStatus)
			return fmt.Errorf("no leader, or the log not applied, within %v (leader %d, commit %d, applied %d)",
				startTimeout, st.GetLeader(), st.GetCommit(), st.GetApplied())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline: an election, a replay
	}
}

// dirEmpty reports whether dir is missing or holds no file.
func dirEmpty(dir string) bool {
	ents, err := os.ReadDir(dir)
	return err != nil && errors.Is(err, fs.ErrNotExist) || err == nil && len(ents) == 0
}

// waitStarted waits until the node actor answers, which it does once its children started.
func waitStarted(root *actor.RootContext, pid *actor.PID) error {
	_, err := root.RequestFuture(pid, servingQuery{}, startTimeout).Result()
	return err
}

// loadMembership reads or makes the data dir's identity and what it knows of its peers, and
// returns the members' addresses. A new data dir that joins asks the running members in
// cfg.Join for the membership, which must list this node already.
func loadMembership(system *actor.ActorSystem, cfg Config) (*membership, map[uint64]string, error) {
	addr := system.Address()
	initial, err := initialMembers(cfg, addr)
	if err != nil {
		return nil, nil, err
	}
	cluster := clusterID(initial)
	_, statErr := os.Stat(filepath.Join(cfg.DataDir, memberFile))
	isNew := errors.Is(statErr, fs.ErrNotExist)
	var joined map[uint64]string
	if len(cfg.Join) > 0 {
		if len(cfg.InitialCluster) > 0 {
			return nil, nil, errors.New("kstore: give --initial-cluster (a new cluster) or --join (a running one), not both")
		}
		if isNew {
			if joined, cluster, err = askMembership(system.Root, cfg, addr); err != nil {
				return nil, nil, err
			}
			initial = nil // the log starts empty: the leader sends the configuration
		}
	}
	id, fresh, err := loadIdentity(cfg.DataDir, cfg.NodeID, cfg.InitialCluster, initial, cluster)
	if err != nil {
		return nil, nil, err
	}
	book, err := loadPeers(cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	ms := &membership{dir: cfg.DataDir, self: id, fresh: fresh, book: book, removed: map[uint64]bool{}, checked: map[uint64]bool{},
		acked: map[uint64]bool{}, watched: map[uint64]string{}}
	for _, r := range book.Removed {
		ms.removed[r] = true
	}
	for pid, paddr := range id.InitialCluster {
		if _, ok := ms.book.Peers[pid]; !ok && pid != cfg.NodeID && !ms.removed[pid] {
			ms.book.Peers[pid] = peerRecord{Address: paddr}
		}
	}
	for pid, paddr := range joined {
		if pid != cfg.NodeID {
			ms.book.Peers[pid] = peerRecord{Address: paddr}
		}
	}
	if err := ms.save(); err != nil {
		return nil, nil, err
	}
	return ms, ms.addresses(addr), nil
}

// askMembership asks the running members at cfg.Join for the cluster's members and id, and
// checks that they list this node at addr.
func askMembership(root *actor.RootContext, cfg Config, addr string) (map[uint64]string, string, error) {
	var errs []error
	for _, j := range cfg.Join {
		res, err := root.RequestFuture(actor.NewPID(j, cfg.Name), &messages.StatusRequest{}, 5*time.Second).Result()
		st, ok := res.(*messages.NodeStatus)
		if err == nil && ok && st.GetStatus() != nil {
			err = st.GetStatus().Err()
		}
		if err != nil || !ok || st.GetClusterId() == "" {
			errs = append(errs, fmt.Errorf("%s: %v", j, cmp.Or(err, errors.New("no membership in its answer"))))
			continue
		}
		members := map[uint64]string{}
		var self *messages.Member
		for _, m := range st.GetMembers() {
			members[m.GetId()] = m.GetAddress()
			if m.GetId() == cfg.NodeID {
				self = m
			}
		}
		switch {
		case self == nil:
			return nil, "", fmt.Errorf("kstore: the cluster at %s has no member %d: add it first, on a running member: kstore member add %d %s", j, cfg.NodeID, cfg.NodeID, addr)
		case self.GetAddress() != addr:
			return nil, "", fmt.Errorf("kstore: the cluster knows member %d at %s, but this node listens on %s: listen there, or remove the member and add it at this address", cfg.NodeID, self.GetAddress(), addr)
		}
		return members, st.GetClusterId(), nil
	}
	return nil, "", fmt.Errorf("kstore: no member at %v answered, so this node cannot join: check --join (the addresses of running members): %w", cfg.Join, errors.Join(errs...))
}

// initialMembers checks cfg.InitialCluster and returns the members the log is bootstrapped
// with: InitialCluster, or this node alone at addr.
func initialMembers(cfg Config, addr string) (map[uint64]string, error) {
	if len(cfg.InitialCluster) == 0 {
		return map[uint64]string{cfg.NodeID: addr}, nil
	}
	own, ok := cfg.InitialCluster[cfg.NodeID]
	if !ok {
		return nil, fmt.Errorf("kstore: the initial cluster %v has no member %d, this node's id: add %d=%s to it, or give this node the id of one of its members", cfg.InitialCluster, cfg.NodeID, cfg.NodeID, addr)
	}
	if own != addr && !strings.HasSuffix(cfg.Listen, ":0") {
		return nil, fmt.Errorf("kstore: the initial cluster gives node %d the address %s, but it listens on %s: peers would send to the wrong place; make them the same", cfg.NodeID, own, addr)
	}
	for id := range cfg.InitialCluster {
		if id == 0 {
			return nil, errors.New("kstore: the initial cluster has a member with id 0: ids must be non-zero")
		}
	}
	return maps.Clone(cfg.InitialCluster), nil
}

func (n *Node) watchFailure() {
	defer n.wg.Done()
	select {
	case err := <-n.failed:
		n.cfg.Logger.Error("stopping node after a failure", zap.Error(err))
		n.stop(err)
	case <-n.done:
	}
}

// System is the actor system the node runs in.
func (n *Node) System() *actor.ActorSystem { return n.system }

// PID is the node actor's: the address clients send commands and reads to.
func (n *Node) PID() *actor.PID { return n.pid }

// Address is what clients and peers reach the node's actor system at: the address it
// advertises (Config.Advertise, else the one it listens on); "nonhost" when it has no remote.
func (n *Node) Address() string { return n.system.Address() }

// Done is closed when the node has stopped, by Stop or after a failure.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is why the node stopped: nil after Stop, the failure otherwise.
func (n *Node) Err() error {
	select {
	case <-n.done:
		return n.err
	default:
		return nil
	}
}

// Stop shuts the node down in order: intake, catalog, raft, the node actor, remote (when the
// node made its system), and last the data-dir lock. It waits for each; every goroutine and port
// of the node is released when it returns.
func (n *Node) Stop() error {
	n.stop(nil)
	n.wg.Wait()
	return nil
}

func (n *Node) stop(cause error) {
	n.stopOnce.Do(func() {
		root := n.system.Root
		// The node actor refuses new work from here on and names its children, which stop in
		// order: the watches, the catalog (so no read or apply is cut short by raft going
		// away), then raft.
		res, err := root.RequestFuture(n.pid, stopIntake{}, stopTimeout).Result()
		if kids, ok := res.(children); err == nil && ok {
			for _, pid := range []*actor.PID{kids.watch, kids.catalog, kids.raft} {
				if pid == nil {
					continue
				}
				if err := root.StopFuture(pid).Wait(); err != nil {
					n.cfg.Logger.Warn("actor did not stop", zap.Stringer("pid", pid), zap.Error(err))
				}
			}
		} else {
			n.cfg.Logger.Warn("node actor did not answer the stop", zap.Error(err))
		}
		if err := root.StopFuture(n.pid).Wait(); err != nil {
			n.cfg.Logger.Warn("node actor did not stop", zap.Error(err))
		}
		n.awaitGone()
		n.dispatch.close()
		if n.own != nil {
			n.own.Close()
		}
		n.lock.unlock()
		n.metrics.unregister()
		n.err = cause
		close(n.done)
	})
}

// awaitGone waits until the node actor has left the process registry, which protoactor does
// after its children (the catalog, which closes Badger, and raft, which closes the log) have
// stopped and it has itself. StopFuture alone does not say so when the actor was already
// stopping (stopped from outside, a failure): protoactor then answers the watch at once, and
// the data dir was unlocked, and the test's temporary dir removed, while Badger was still
// closing (seen once: "unlinkat …/catalog: directory not empty").
func (n *Node) awaitGone() {
	deadline := time.Now().Add(stopTimeout)
	for {
		if _, ok := n.system.ProcessRegistry.GetLocal(n.pid.GetId()); !ok {
			return
		}
		if time.Now().After(deadline) {
			n.cfg.Logger.Warn("node actor still registered after its stop", zap.Duration("waited", stopTimeout))
			return
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// dirLock is a node's exclusive lock on its data dir, held for the node's lifetime.
type dirLock struct {
	f       *os.File
	created string // the outermost directory lockDataDir created for the data dir; "" if none
	file    string // the LOCK file, when lockDataDir created it in a data dir that existed
	once    sync.Once
}

// lockDataDir creates dir (and its missing parents) and takes an exclusive lock on dir/LOCK.
func lockDataDir(dir string) (*dirLock, error) {
	created := outermostMissing(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("kstore: create data dir: %w", err)
	}
	l := &dirLock{created: created}
	path := filepath.Join(dir, "LOCK")
	if _, err := os.Lstat(path); created == "" && errors.Is(err, fs.ErrNotExist) {
		l.file = path
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		l.discard()
		return nil, fmt.Errorf("kstore: open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("kstore: data dir %s is in use by another kstore node: stop it, or give this one another --data-dir", dir)
		}
		l.discard()
		return nil, fmt.Errorf("kstore: lock %s: %w", path, err)
	}
	l.f = f
	return l, nil
}

// outermostMissing is the outermost of dir and its parents that does not exist: what
// MkdirAll(dir) creates. "" when dir exists (or cannot be examined).
func outermostMissing(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	missing := ""
	for p := abs; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			return missing
		}
		missing = p
		if filepath.Dir(p) == p {
			return missing
		}
	}
}

// unlock releases the lock; once, however often it is called.
func (l *dirLock) unlock() {
	l.once.Do(func() {
		if l.f != nil {
			_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
			l.f.Close()
		}
	})
}

// discard removes what lockDataDir created (the data dir and its missing parents, or the LOCK
// file in a data dir that existed), then releases the lock: a node that never ran leaves no new
// data dir behind, and one that existed as it was. The lock is held while they go, so that
// another node starting on the same dir meanwhile fails (in use) rather than lose its files.
func (l *dirLock) discard() {
	switch {
	case l.created != "":
		_ = os.RemoveAll(l.created)
	case l.file != "" && l.f != nil:
		_ = os.Remove(l.file)
	}
	l.unlock()
}
