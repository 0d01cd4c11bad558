package messages

// Version is the kstore release. A build may set it with
// -ldflags "-X github.com/kstore/kstore/messages.Version=v1.2.3"; NodeStatus.version carries it.
var Version = "0.1.0-dev"

// ProtocolVersion is the version of this wire protocol, NodeStatus.protocol_version. It changes
// when a message changes in a way an older peer or client would misread; fields added for new
// features keep it, since protobuf ignores fields it does not know.
const ProtocolVersion = 1
