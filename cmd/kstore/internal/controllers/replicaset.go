package controllers

import (
	"cmp"
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/messages"
)

// maxWritesPerReconcile bounds the creates or deletes of one reconcile of a ReplicaSet. A
// ReplicaSet scaled by thousands is worked through in slices, each ending with a requeue
// (continueAfter), so a worker returns within a few commits' time, a stop is prompt, and the
// other ReplicaSets get their turn at the workers.
const maxWritesPerReconcile = 16

// continueAfter is when the next slice of a ReplicaSet's work starts: at once, all but the
// timer's round trip.
const continueAfter = time.Millisecond

// replicaSets keeps spec.replicas Pods for each ReplicaSet. A key is a ReplicaSet's.
type replicaSets struct {
	client      *actors.Client
	logger      *zap.Logger
	replicaSets *actors.Informer
	pods        *actors.Informer
}

var _ reconciler = (*replicaSets)(nil)

func (r *replicaSets) waitForSync(ctx context.Context) bool {
	return r.replicaSets.WaitForSync(ctx) && r.pods.WaitForSync(ctx)
}

func (r *replicaSets) watermark() uint64 { return r.pods.LastSyncResourceVersion() }

func (r *replicaSets) keys() []objectKey {
	var ks []objectKey
	for _, o := range r.replicaSets.List() {
		ks = append(ks, keyOf(o))
	}
	return ks
}

// ownersOf is the key of o's controlling ReplicaSet, the key an event of Pod o dirties.
func ownersOf(o *actors.Object) []objectKey {
	p, err := decodePod(o)
	if err != nil {
		return nil
	}
	ref, ok := p.controllerOf()
	if !ok {
		return nil
	}
	return []objectKey{{namespace: o.Key.GetNamespace(), name: ref.Name}}
}

// owned is a Pod of the ReplicaSet being reconciled.
type owned struct {
	obj     *actors.Object
	index   int
	indexed bool // the name is podName(rs, index)
}

// reconcile compares the Pods the cache holds with controller references to the ReplicaSet
// (by uid: a Pod of an earlier ReplicaSet of the same name is not its) with spec.replicas, and
// creates or deletes the difference.
//
// Creates take the lowest indices no Pod in the cache holds, and meet AlreadyExists when the
// cache is behind (a create of an earlier reconcile, maybe one that timed out, has not reached
// it): that is done. Deletes take the highest indices first, with the cached resourceVersion as
// precondition: Conflict means the Pod changed after the cache saw it, and the key is retried
// once the informer has brought the change. The actor does not reconcile from a Pod cache
// behind this controller's own last write for the ReplicaSet (controller.wrote); one behind
// someone else's writes can make a reconcile create too few or delete a Pod already gone, and
// the informer's event for the change it missed dirties the key again and the next reconcile
// evens it out. A ReplicaSet the cache does not
// hold has nothing to do: its Pods are the garbage collector's.
func (r *replicaSets) reconcile(ctx context.Context, k objectKey) (outcome, error) {
	var out outcome
	obj, ok := r.replicaSets.Get(k.namespace, k.name)
	if !ok {
		return out, nil
	}
	rs, err := decodeReplicaSet(obj)
	if err != nil {
		return out, err
	}
	if rs.Metadata.UID == "" {
		return out, messages.Errorf(messages.StatusReason_INVALID, "ReplicaSet %s has no metadata.uid for its Pods' ownerReferences; the store stamps one on create: recreate it", k)
	}
	want := int64(1)
	if rs.Spec.Replicas != nil {
		want = *rs.Spec.Replicas
	}
	if want < 0 {
		return out, messages.Errorf(messages.StatusReason_INVALID, "ReplicaSet %s asks for %d replicas: give 0 or more", k, want)
	}

	used := map[int]bool{} // indices any Pod in the namespace holds, of this ReplicaSet or not
	var mine []owned
	for _, o := range r.pods.List() {
		if o.Key.GetNamespace() != k.namespace {
			continue
		}
		i, indexed := podIndex(k.name, o.Key.GetName())
		if indexed {
			used[i] = true
		}
		p, err := decodePod(o)
		if err != nil {
			continue // not a Pod this controller made
		}
		if ref, ok := p.controllerOf(); ok && ref.Name == k.name && ref.UID == rs.Metadata.UID {
			mine = append(mine, owned{obj: o, index: i, indexed: indexed})
		}
	}

	writes := 0
	switch have := int64(len(mine)); {
	case have < want:
		for i := 0; have < want; i++ {
			if used[i] {
				continue
			}
			if writes == maxWritesPerReconcile {
				out.retryAfter = continueAfter
				return out, nil
			}
			writes++
			body, err := newPod(rs, i)
			if err != nil {
				return out, err
			}
			res, err := r.client.Create(ctx, body, messages.Reason_CONTROLLER)
			switch {
			case err == nil:
				out.wrote = res.GetResourceVersion()
				r.logger.Info("created Pod", zap.Stringer("replicaSet", k), zap.String("pod", podName(k.name, i)), zap.Uint64("resourceVersion", out.wrote))
			case !messages.IsAlreadyExists(err):
				return out, err
			}
			have++
		}
	case have > want:
		// Pods with other names first (not this controller's making), then the highest index.
		slices.SortFunc(mine, func(a, b owned) int {
			if a.indexed != b.indexed {
				if a.indexed {
					return 1
				}
				return -1
			}
			return cmp.Or(cmp.Compare(b.index, a.index), cmp.Compare(a.obj.Key.GetName(), b.obj.Key.GetName()))
		})
		for _, p := range mine[:have-want] {
			if writes == maxWritesPerReconcile {
				out.retryAfter = continueAfter
				return out, nil
			}
			writes++
			res, err := r.client.Delete(ctx, p.obj.Key, p.obj.ResourceVersion, messages.Reason_CONTROLLER)
			switch {
			case err == nil && res.GetOp() == messages.ResourceOp_DELETED:
				out.wrote = res.GetResourceVersion()
				r.logger.Info("deleted Pod", zap.Stringer("replicaSet", k), zap.String("pod", p.obj.Key.GetName()), zap.Uint64("resourceVersion", out.wrote))
			case err != nil && !messages.IsNotFound(err):
				return out, err
			}
		}
	}
	return out, nil
}
