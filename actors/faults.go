package actors

import (
	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/raftactor/wal"
)

// Faults are the failures a test build injects into a node: a binary built with -tags
// failpoints registers them with ArmFailpoints, and every node it starts takes them. Other
// builds have no ArmFailpoints, so nothing can arm them there (armedFaults returns nil).
type Faults struct {
	// Armed names the failpoints, for the warning the node logs when it starts.
	Armed string
	// WAL fails the Raft log's writes or syncs (wal.Options.Faults).
	WAL wal.Faults
	// Catalog fails the catalog's commits to Badger (catalogactor.Config.Faults).
	Catalog catalogactor.Faults
	// StaleReads makes the node a deliberately broken one: it serves linearizable gets and
	// lists at once from what it has applied, without Raft's read barrier, so a member cut off
	// or behind answers with stale state. Tests use it to show that a linearizability checker
	// catches such a node.
	StaleReads bool
}
