package raftactor

import (
	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
)

// The raft actor's side of applying: what it sends the actor that applies committed entries
// (Config.Applier, the catalog in a kstore node) and what it expects back. raftactor declares
// them so that it depends on no applier.

// Committed carries committed Raft entries, in log order, from the raft actor to the applier.
// ReplyTo maps the index of an entry proposed on this node to the caller waiting for its
// CommandResult. The applier answers every Committed with Applied to the sender; it skips the
// entries at or below what it applied already (after a restart, or a snapshot install that
// brought it ahead of the log).
type Committed struct {
	Entries []*raftpb.Entry
	ReplyTo map[uint64]*actor.PID
}

// Applied tells the raft actor how far the applier has applied the log, and the oldest revision
// it still serves.
type Applied struct {
	Index     uint64
	Compacted uint64
}

// Durable tells the raft actor that the applier holds every entry up to Index on disk, so the
// Raft log may drop them.
type Durable struct{ Index uint64 }

// Leader tells the raft actor's parent who leads, whenever that changes: ID 0 when no leader is
// known. Self is set when this node leads.
type Leader struct {
	ID, Term uint64
	Self     bool
}

// InstallSnapshot is the snapshot message (MsgSnap) of a snapshot the applier installed, for
// raft to step: the only way a snapshot reaches raft, which refuses MsgSnap from the network
// (its data travels between appliers). Sender: the raft actor's parent, from the applier.
type InstallSnapshot struct{ Message *raftpb.Message }

// SendSnapshot asks the applier to send a member that needs one a snapshot: its state at
// Message's snapshot index, in chunks to the applier at Address, and then Message itself (a
// MsgSnap, with no data: the applier's chunks are the data) for that member's raft to step.
// Sender: the raft actor, when raft wants to send a snapshot. The applier answers SnapshotSent.
type SendSnapshot struct {
	To      uint64
	Address string
	Message *raftpb.Message
}

// SnapshotSent reports how a SendSnapshot ended: Err nil once the member installed it.
type SnapshotSent struct {
	To  uint64
	Err error
}
