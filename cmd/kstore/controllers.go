package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/cmd/kstore/internal/controllers"
)

type controllersOptions struct {
	seeds     string
	listen    string
	namespace string
	timeout   time.Duration
}

func newControllersCmd(g *globals) *cobra.Command {
	var o controllersOptions
	cmd := &cobra.Command{
		Use:   "controllers",
		Short: "Run three demo controllers (ReplicaSet, garbage collector, scheduler) as actors of the cluster",
		Long: `Run three small controllers until SIGINT or SIGTERM, as a client of the kstore actor cluster.

The process joins the protoactor cluster the members at --cluster-seeds are in (it asks them
how: the cluster's name, provider and members) and from then on reaches the store only by
cluster kind and identity, never by a node's address: when the member it talks to dies, its
next request lands on a live one. Each controller is an actor on an informer (a list, then a
watch from the list's resourceVersion, a cache in memory):

  ReplicaSet (ReplicaSet.v1.apps)  keeps spec.replicas Pods per ReplicaSet, named NAME-0,
                                   NAME-1, ..., labelled from spec.selector.matchLabels and
                                   owned by it (ownerReferences); Reason controller
  garbage collector                deletes Pods whose owning ReplicaSet is gone; Reason
                                   garbage_collector
  scheduler                        binds each Pod without spec.nodeName to a Node.v1,
                                   round robin, by a merge patch; Reason scheduler

Every write carries a precondition (a create, or the object's resourceVersion) and is retried
on Conflict. The Reason of every write shows in the members' audit log
(kstore serve --audit-log-path).`,
		Example: `  make cluster
  kstore controllers --cluster-seeds 127.0.0.1:7451,127.0.0.1:7452 &
  kstore apply -f nodes.yaml -f replicaset.yaml
  kstore watch Pod.v1 -n default`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error { return o.run(cmd, g) }),
	}
	f := cmd.Flags()
	f.StringVar(&o.seeds, "cluster-seeds", actors.DefaultListen,
		"HOST:PORT[,HOST:PORT] of kstore members (their --listen addresses), used only to join their actor cluster")
	f.StringVar(&o.listen, "listen", "127.0.0.1:0",
		"host:port this process's actor system listens on (members connect back to it); port 0 picks a free one")
	f.StringVar(&o.namespace, "namespace", "", "the namespace whose ReplicaSets and Pods to manage; empty: all")
	f.DurationVar(&o.timeout, "timeout", actors.DefaultTimeout, "how long each request to the store may take")
	return cmd
}

func (o *controllersOptions) run(cmd *cobra.Command, g *globals) error {
	seeds := splitList(o.seeds)
	if len(seeds) == 0 {
		return invalid("--cluster-seeds is empty: give the --listen address of at least one kstore member")
	}
	level, err := g.level()
	if err != nil {
		return err
	}
	logger := serverLogger(g.errw, level)
	defer func() { _ = logger.Sync() }()
	sys, c, err := actors.JoinCluster(seeds, o.listen, logger)
	if err != nil {
		return err
	}
	defer sys.Close()
	client := actors.NewClusterClient(c, o.timeout)
	defer client.Close()
	fmt.Fprintf(g.errw, "kstore: controllers joined the actor cluster %s through %v; listening on %s\n", c.Config.Name, seeds, sys.Address())
	err = controllers.Run(cmd.Context(), controllers.Config{Client: client, System: sys.ActorSystem, Logger: logger, Namespace: o.namespace})
	g.stopSignals()
	return err
}
