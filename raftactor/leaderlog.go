package raftactor

import (
	"go.etcd.io/raft/v3"
	"go.uber.org/zap"
)

// logLeaderChange logs a change of leader seen in a Ready: at info level the first leader known
// since the node started (an election at start is routine), at warning level every change after
// it, the loss of the leader included. Leader changes under steady load point at a slow disk, a
// slow network or an overloaded member: etcd warns about them for the same reason.
func (a *Actor) logLeaderChange(old, lead uint64) {
	st := a.n.rn.BasicStatus()
	fields := []zap.Field{zap.Uint64("old-leader", old), zap.Uint64("new-leader", lead),
		zap.Uint64("term", st.GetTerm()), zap.Uint64("commit", st.GetCommit())}
	switch {
	case !a.hadLeader && lead != raft.None:
		a.hadLeader = true
		a.log.Info("leader elected", fields...)
	case !a.hadLeader:
		// No leader before and none now: nothing changed that a reader of the log needs.
	case lead == raft.None:
		a.log.Warn("leader lost: no leader known (an election is under way, or this member is cut off from the quorum)", fields...)
	default:
		a.log.Warn("leader changed", fields...)
	}
}
