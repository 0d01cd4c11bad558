package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/messages"
)

// scheduler binds each Pod without spec.nodeName to a Node, round robin over the Nodes' names
// in sorted order. A key is a Pod's.
type scheduler struct {
	client *actors.Client
	logger *zap.Logger
	pods   *actors.Informer
	nodes  *actors.Informer
	// next counts bind attempts: attempt n goes to node n mod the number of nodes. Workers
	// take turns with Add, so concurrent binds go to distinct nodes; an attempt that fails
	// (Conflict) uses up its turn, so round robin is over attempts, not over bound Pods.
	next atomic.Uint64
}

var _ reconciler = (*scheduler)(nil)

func (s *scheduler) waitForSync(ctx context.Context) bool {
	return s.pods.WaitForSync(ctx) && s.nodes.WaitForSync(ctx)
}

func (s *scheduler) watermark() uint64 { return s.pods.LastSyncResourceVersion() }

func (s *scheduler) keys() []objectKey { return s.unscheduled() }

// unscheduled lists the keys of the cached Pods without spec.nodeName: what a Node's arrival
// dirties.
func (s *scheduler) unscheduled() []objectKey {
	var ks []objectKey
	for _, o := range s.pods.List() {
		if p, err := decodePod(o); err == nil && p.Spec.NodeName == "" {
			ks = append(ks, keyOf(o))
		}
	}
	return ks
}

// reconcile binds Pod k, if it has no node yet, to the next Node in turn, by a merge patch of
// spec.nodeName with the Pod's cached resourceVersion as precondition: a Pod that changed since
// the cache saw it (bound by an earlier attempt whose answer was lost, say) is not bound twice.
// Conflict is retried once the cache has the change, and the retry then finds the Pod bound.
// With no Node there is nothing to do: a Node's arrival dirties every unscheduled Pod.
func (s *scheduler) reconcile(ctx context.Context, k objectKey) (outcome, error) {
	var out outcome
	obj, ok := s.pods.Get(k.namespace, k.name)
	if !ok {
		return out, nil
	}
	p, err := decodePod(obj)
	if err != nil || p.Spec.NodeName != "" {
		return out, err
	}
	nodes := s.nodes.List() // sorted by name; Nodes are cluster-scoped
	if len(nodes) == 0 {
		return out, nil
	}
	node := nodes[(s.next.Add(1)-1)%uint64(len(nodes))].Key.GetName()
	patch, err := json.Marshal(map[string]any{"spec": map[string]string{"nodeName": node}})
	if err != nil {
		return out, fmt.Errorf("controllers: encode binding of %s: %w", k, err)
	}
	res, err := s.client.Patch(ctx, obj.Key, messages.PatchType_MERGE_PATCH, patch, obj.ResourceVersion, messages.Reason_SCHEDULER)
	switch {
	case err == nil && res.GetOp() == messages.ResourceOp_PATCHED:
		out.wrote = res.GetResourceVersion()
		s.logger.Info("bound Pod", zap.Stringer("pod", k), zap.String("node", node), zap.Uint64("resourceVersion", out.wrote))
	case messages.IsNotFound(err):
		err = nil
	}
	return out, err
}
