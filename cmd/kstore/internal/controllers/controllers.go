// Package controllers runs three small controllers on kstore, each an actor fed by informers:
// a ReplicaSet controller, a garbage collector of Pods whose ReplicaSet is gone, and a
// scheduler that binds Pods to Nodes. Run owns everything the package starts: three informers
// (ReplicaSet.v1.apps, Pod.v1, Node.v1), the three actors, and their worker goroutines.
//
// How each controller works (actor.go): informer handlers only hand the keys an event dirties
// to the controller's actor (through its inbox: a set of keys and a wake message); the actor
// keeps a workqueue (queue.go) of dirty keys and hands each to a worker goroutine it owns (at
// most maxWorkers at once, at most one per key); the worker reads the informers' caches,
// writes through the client and sends the outcome back. Every write is a create (with a name
// that makes a retry meet AlreadyExists) or carries the resourceVersion it was computed from,
// so a stale cache costs a Conflict and a retry, never a wrong write.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/kstore/kstore/actors"
)

// Config of Run.
type Config struct {
	// Client is how the controllers read and write the store. Required.
	Client *actors.Client
	// System is the actor system the controllers' actors run in: the Client's. Required.
	System *actor.ActorSystem
	// Logger, nil for none.
	Logger *zap.Logger
	// Namespace restricts the ReplicaSets and Pods the controllers see; "" is all namespaces.
	// Nodes are cluster-scoped and always all seen.
	Namespace string
}

var errNoClient = errors.New("controllers: Config.Client and Config.System are required")

// Run starts the informers and the three controller actors and blocks until ctx ends; it then
// stops every actor, informer and goroutine it started, and returns nil. It returns an error
// when cfg is incomplete, or when an informer fails for good (an unknown type, say), after
// stopping everything the same way. Reconciles start once the informers a controller reads have
// synced.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Client == nil || cfg.System == nil {
		return errNoClient
	}
	logger := cfg.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	rsInf := actors.NewInformer(cfg.Client, replicaSetType, cfg.Namespace, actors.Selectors{})
	podInf := actors.NewInformer(cfg.Client, podType, cfg.Namespace, actors.Selectors{})
	nodeInf := actors.NewInformer(cfg.Client, nodeType, "", actors.Selectors{})

	named := func(name string) *zap.Logger { return logger.With(zap.String("controller", name)) }
	rsc := &replicaSets{client: cfg.Client, logger: named("replicaset"), replicaSets: rsInf, pods: podInf}
	gc := &garbageCollector{client: cfg.Client, logger: named("garbagecollector"), replicaSets: rsInf, pods: podInf}
	sched := &scheduler{client: cfg.Client, logger: named("scheduler"), pods: podInf, nodes: nodeInf}

	root := cfg.System.Root
	type running struct {
		pid     *actor.PID
		inbox   *inbox
		stopped chan struct{}
	}
	spawn := func(name string, rec reconciler) running {
		r := running{inbox: newInbox(root), stopped: make(chan struct{})}
		props := actor.PropsFromProducer(func() actor.Actor {
			return newController(runCtx, rec, r.inbox, r.stopped, named(name))
		})
		r.pid = root.SpawnPrefix(props, "kstore-controllers-"+name)
		r.inbox.pid = r.pid // before any handler can run: the informers start below
		return r
	}
	rsCtl := spawn("replicaset", rsc)
	gcCtl := spawn("garbagecollector", gc)
	schedCtl := spawn("scheduler", sched)

	// The handlers only hand keys to the actors (through their inboxes, which never block).
	toRS, toGC, toSched := rsCtl.inbox.add, gcCtl.inbox.add, schedCtl.inbox.add
	rsInf.AddHandler(actors.HandlerFuncs{
		AddFunc:    func(o *actors.Object) { toRS(keyOf(o)) },
		UpdateFunc: func(_, o *actors.Object) { toRS(keyOf(o)) },
		DeleteFunc: func(o *actors.Object) {
			toRS(keyOf(o))
			toGC(gc.dependents(o)...) // the Pods do not change: the owner's deletion dirties them
		},
	})
	podInf.AddHandler(actors.HandlerFuncs{
		AddFunc: func(o *actors.Object) {
			toRS(ownersOf(o)...)
			toGC(keyOf(o))
			toSched(keyOf(o))
		},
		UpdateFunc: func(old, o *actors.Object) {
			toRS(append(ownersOf(old), ownersOf(o)...)...)
			toGC(keyOf(o))
			toSched(keyOf(o))
		},
		DeleteFunc: func(o *actors.Object) {
			toRS(ownersOf(o)...)
			// Nothing left to do for the Pod, but its key lets the actors drop what they hold
			// for it (controller.wrote).
			toGC(keyOf(o))
			toSched(keyOf(o))
		},
	})
	nodeInf.AddHandler(actors.HandlerFuncs{
		AddFunc: func(*actors.Object) { toSched(sched.unscheduled()...) },
	})

	var informers sync.WaitGroup
	for name, inf := range map[string]*actors.Informer{"ReplicaSet": rsInf, "Pod": podInf, "Node": nodeInf} {
		informers.Go(func() {
			err := inf.Run(runCtx)
			if runCtx.Err() == nil {
				if err == nil {
					err = errors.New("stopped by itself")
				}
				cancel(fmt.Errorf("controllers: the %s informer failed: %w", name, err))
			}
		})
	}

	<-runCtx.Done()
	// Informers first, so that no handler sends to an actor that is gone; then the actors,
	// each of which waits for its workers (their context, runCtx, is cancelled already).
	informers.Wait()
	for _, r := range []running{rsCtl, gcCtl, schedCtl} {
		root.Stop(r.pid)
		// Not StopFuture's fixed wait: a worker may be in a client call for up to the client's
		// timeout, and Run returns only once every goroutine it started has.
		<-r.stopped
	}
	if ctx.Err() != nil {
		return nil
	}
	return context.Cause(runCtx)
}
