package actors

import (
	"fmt"
	"time"

	"github.com/kstore/kstore/messages"
)

// What the health checks of an operator's HTTP endpoint ask a node (cmd/kstore serves them as
// /health and /readyz). They are asked from outside the node's actors and wait on futures, never
// inside a Receive; each question is one message to the node actor, bounded by a timeout.

// maxReadyLag is how far the catalog may be behind the commit index for a node to count as
// ready: a busy node applies a batch or so behind its commit at any instant, and a readiness
// check that flapped under load would take it out of a load balancer for nothing. A thousand
// entries is well under a second of applying at the benchmark's rates.
const maxReadyLag = 1000

// healthProbeKey is the key /health reads linearizably: a kind no client stores, so the read is
// a NotFound that costs the catalog one Badger lookup.
var healthProbeKey = &messages.ResourceKey{Group: "health.kstore.io", Version: "v1", Kind: "HealthProbe", Name: "probe"}

// CheckHealth answers etcd's /health question: does this member have a leader, and does it serve
// a linearizable read (a quorum confirms the leader's commit index and this member applies up
// to it) within timeout? nil when it does; otherwise an error saying what fails.
func (n *Node) CheckHealth(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	st, err := n.status(timeout)
	if err != nil {
		return err
	}
	if st.GetLeader() == 0 {
		return fmt.Errorf("no leader: this member knows none (an election is under way, or it is cut off from the quorum) at term %d", st.GetTerm())
	}
	res, err := n.system.Root.RequestFuture(n.pid, &messages.GetRequest{Key: healthProbeKey}, time.Until(deadline)).Result()
	if err != nil {
		return fmt.Errorf("a linearizable read did not complete within %v (no quorum confirmed the leader, or this member does not apply): %v", timeout, err)
	}
	r, ok := res.(*messages.GetResult)
	if !ok {
		return fmt.Errorf("a linearizable read got an unexpected answer %T", res)
	}
	if s := r.GetStatus(); s != nil && s.GetReason() != messages.StatusReason_NOT_FOUND {
		return fmt.Errorf("a linearizable read failed: %s: %s", messages.ReasonName(s.GetReason()), s.GetMessage())
	}
	// As etcd's NOSPACE alarm makes its /health false: a member that refuses every write for its
	// disk is not healthy, though it reads.
	res, err = n.system.Root.RequestFuture(n.pid, reserveQuery{}, time.Until(deadline)).Result()
	if err != nil {
		return fmt.Errorf("the node actor did not answer within %v: %v", timeout, err)
	}
	if a, ok := res.(reserveAnswer); ok && a.err != nil {
		return fmt.Errorf("writes are refused: %v", messages.StatusOf(a.err).GetMessage())
	}
	return nil
}

// CheckReady answers the readiness question: has the node started (loaded its state and caught
// up with the log once), does it know a leader now, and has its catalog applied up to its
// commit index (within maxReadyLag)? nil when so; otherwise an error saying what is missing.
func (n *Node) CheckReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	res, err := n.system.Root.RequestFuture(n.pid, servingQuery{}, timeout).Result()
	if err != nil {
		return n.stoppedOr(fmt.Errorf("the node actor did not answer within %v: %v", timeout, err))
	}
	if serving, _ := res.(bool); !serving {
		return fmt.Errorf("the node is starting: it has not caught up with the log yet")
	}
	st, err := n.status(time.Until(deadline))
	switch {
	case err != nil:
		return err
	case st.GetLeader() == 0:
		return fmt.Errorf("no leader: this member knows none at term %d", st.GetTerm())
	case st.GetApplied()+maxReadyLag < st.GetCommit():
		return fmt.Errorf("the catalog lags the log: applied %d of %d committed entries", st.GetApplied(), st.GetCommit())
	}
	return nil
}

// status asks the node for its raft status.
func (n *Node) status(timeout time.Duration) (*messages.NodeStatus, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("no time left to ask the node")
	}
	res, err := n.system.Root.RequestFuture(n.pid, &messages.StatusRequest{}, timeout).Result()
	if err != nil {
		return nil, n.stoppedOr(fmt.Errorf("the node did not answer a status request within %v: %v", timeout, err))
	}
	st, ok := res.(*messages.NodeStatus)
	if !ok {
		return nil, fmt.Errorf("a status request got an unexpected answer %T", res)
	}
	if s := st.GetStatus(); s != nil {
		return nil, fmt.Errorf("%s: %s", messages.ReasonName(s.GetReason()), s.GetMessage())
	}
	return st, nil
}

// stoppedOr is why the node stopped, when it has, else err.
func (n *Node) stoppedOr(err error) error {
	select {
	case <-n.done:
		if n.err != nil {
			return fmt.Errorf("the node stopped: %v", n.err)
		}
		return fmt.Errorf("the node stopped")
	default:
		return err
	}
}
