// Package raftactor replicates commands: one actor per node holds an etcd raft RawNode and drives
// it through the Ready contract — persist HardState and entries (fsync) before sending messages,
// hand committed entries to the catalog in log order, then Advance. A leader whose term and vote
// are on disk sends its appends while it persists them, as the contract allows (raft's doc.go,
// step 2; Raft thesis 10.2.1): its disk and its followers' work in parallel.
//
// The actor owns the RawNode, the in-memory log raft reads, the table of proposals waiting to
// commit, and the durable log (package wal) through a worker goroutine it starts and stops.
// Nothing else touches them. Bounds: the proposal table (full → Unavailable at once), the apply
// backlog (full → no new Ready, which slows the leader through raft's own flow control), and
// raft's MaxInflightMsgs / MaxSizePerMsg / MaxUncommittedEntriesSize.
package raftactor
