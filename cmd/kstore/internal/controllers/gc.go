package controllers

import (
	"context"

	"go.uber.org/zap"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/messages"
)

// garbageCollector deletes Pods whose ReplicaSet owners are all gone. A key is a Pod's.
//
// It considers only Pods whose ownerReferences are all ReplicaSets (apps/v1): an owner of
// another kind it cannot tell is gone, so such a Pod is left alone, as is a Pod with no owner.
type garbageCollector struct {
	client      *actors.Client
	logger      *zap.Logger
	replicaSets *actors.Informer
	pods        *actors.Informer
}

var _ reconciler = (*garbageCollector)(nil)

func (g *garbageCollector) waitForSync(ctx context.Context) bool {
	return g.replicaSets.WaitForSync(ctx) && g.pods.WaitForSync(ctx)
}

func (g *garbageCollector) watermark() uint64 { return g.pods.LastSyncResourceVersion() }

func (g *garbageCollector) keys() []objectKey {
	var ks []objectKey
	for _, o := range g.pods.List() {
		ks = append(ks, keyOf(o))
	}
	return ks
}

// dependents are the keys of the cached Pods that name the ReplicaSet rs as an owner: what a
// ReplicaSet's deletion dirties, since the Pods themselves do not change.
func (g *garbageCollector) dependents(rs *actors.Object) []objectKey {
	var ks []objectKey
	for _, o := range g.pods.List() {
		if o.Key.GetNamespace() != rs.Key.GetNamespace() {
			continue
		}
		p, err := decodePod(o)
		if err != nil {
			continue
		}
		for _, ref := range p.Metadata.OwnerReferences {
			if ref.isReplicaSet() && ref.Name == rs.Key.GetName() {
				ks = append(ks, keyOf(o))
				break
			}
		}
	}
	return ks
}

// reconcile deletes Pod k if every owner it names is gone. The Pod and ReplicaSet informers are
// separate streams, so a ReplicaSet missing from the cache may only not have arrived yet: an
// owner counts as gone only when a linearizable read of it finds none, or one with another uid
// (a new ReplicaSet of the same name). An owner the cache holds with the same uid is alive;
// should it be deleted after all, its deletion's event dirties this Pod again. The delete
// carries the Pod's cached resourceVersion, so a Pod that changed since (adopted by a new
// owner, say) is not deleted on stale grounds: Conflict, and the key is retried once the cache
// has the change.
func (g *garbageCollector) reconcile(ctx context.Context, k objectKey) (outcome, error) {
	var out outcome
	obj, ok := g.pods.Get(k.namespace, k.name)
	if !ok {
		return out, nil
	}
	p, err := decodePod(obj)
	if err != nil {
		return out, err
	}
	refs := p.Metadata.OwnerReferences
	if len(refs) == 0 {
		return out, nil
	}
	for _, ref := range refs {
		if !ref.isReplicaSet() {
			return out, nil
		}
	}
	for _, ref := range refs {
		alive, err := g.alive(ctx, k.namespace, ref)
		if err != nil || alive {
			return out, err
		}
	}
	res, err := g.client.Delete(ctx, obj.Key, obj.ResourceVersion, messages.Reason_GARBAGE_COLLECTOR)
	switch {
	case err == nil && res.GetOp() == messages.ResourceOp_DELETED:
		out.wrote = res.GetResourceVersion()
		g.logger.Info("deleted Pod whose owners are gone", zap.Stringer("pod", k), zap.Uint64("resourceVersion", out.wrote))
	case messages.IsNotFound(err):
		err = nil
	}
	return out, err
}

// alive reports whether the ReplicaSet ref names (in namespace) exists with ref's uid (with any
// uid when ref has none; one whose metadata does not decode counts as alive): from the cache
// when it holds it so, else from a linearizable read.
func (g *garbageCollector) alive(ctx context.Context, namespace string, ref ownerReference) (bool, error) {
	// Only the uid is read: an owner whose spec does not decode is alive all the same.
	sameUID := func(o *actors.Object) bool {
		var m struct {
			Metadata struct {
				UID string `json:"uid"`
			} `json:"metadata"`
		}
		return ref.UID == "" || decode("ReplicaSet", o, &m) != nil || m.Metadata.UID == ref.UID
	}
	if o, ok := g.replicaSets.Get(namespace, ref.Name); ok {
		if sameUID(o) {
			return true, nil
		}
	}
	key := resourceKey(replicaSetType, objectKey{namespace: namespace, name: ref.Name})
	res, err := g.client.Read(ctx, &messages.GetRequest{Key: key, Consistency: messages.Consistency_LINEARIZABLE})
	if messages.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return sameUID(&actors.Object{Key: key, ResourceVersion: res.GetResourceVersion(), JSON: res.GetObject()}), nil
}
