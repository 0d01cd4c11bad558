package cluster

import (
	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
)

// kstorePackage is the protobuf package of kstore's messages: the only ones the store identity
// passes on.
const kstorePackage = "kstore.v1"

// store is the activation of the store identity on a member: it forwards each kstore request to
// the member's node actor with the caller as the sender, so the node actor (which serves it, or
// forwards a write to the leader) answers the caller directly and this actor holds nothing. One
// member hosts the identity at a time; when it dies the cluster activates it on another.
type store struct {
	node *actor.PID
}

func (s *store) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(proto.Message)
	if !ok || m.ProtoReflect().Descriptor().ParentFile().Package() != kstorePackage {
		return // the cluster's own messages (ClusterInit) and lifecycle: nothing to pass on
	}
	ctx.Forward(s.node)
}
