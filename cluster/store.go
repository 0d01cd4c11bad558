package cluster

import (
	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
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
	if !clientRequests[m.ProtoReflect().Descriptor().FullName()] {
		return // members' own traffic (greetings, forwarded writes, membership) is not a client's
	}
	ctx.Forward(s.node)
}

// clientRequests are the messages a client may send the store identity: the node actor's
// requests and a watch's flow control.
var clientRequests = map[protoreflect.FullName]bool{
	"kstore.v1.Command": true, "kstore.v1.GetRequest": true, "kstore.v1.ListRequest": true,
	"kstore.v1.WatchRequest": true, "kstore.v1.WatchCredit": true, "kstore.v1.WatchCancel": true,
	"kstore.v1.StatusRequest": true, "kstore.v1.HashKVRequest": true, "kstore.v1.ClusterInfoRequest": true,
	"kstore.v1.SnapshotSaveRequest": true,
}
