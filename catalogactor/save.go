package catalogactor

import (
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/kstore/kstore/messages"
)

// Saves of the catalog to a client (kstore snapshot save), the actor's side; backup.go has the
// file the client writes. A save is a Raft snapshot's send (transfer.go) to a client instead of
// a member: one read transaction at the applied index, pinned in activeReads so that compaction
// keeps what it reads, its chunks sent one at a time, each acknowledged before the next. A
// client that vanishes leaves a chunk unacknowledged: the sender gives up after
// snapshotChunkTimeout and the read is released.

// maxSaves bounds the saves in flight on one node: each holds a goroutine, a chunk in memory
// and a pinned read (which also holds back the install of a Raft snapshot from the leader). A
// backup is an operator's occasional command; two at once leave room for a retry while a stuck
// one times out.
const maxSaves = 2

// saveDone: a save's sender goroutine ended.
type saveDone struct {
	ts     uint64
	cancel chan struct{} // closed by the actor once the save ended or was cancelled
}

// saveSnapshot starts sending the catalog at the applied index to the save's requester.
func (a *Actor) saveSnapshot(ctx actor.Context, m *messages.SnapshotSaveRequest) {
	to := ctx.Sender()
	if to == nil {
		return // nobody to send to
	}
	refuse := func(msg string) {
		ctx.Respond(&messages.SnapshotSaveResult{NodeId: a.cfg.NodeID,
			Status: &messages.Status{Reason: messages.StatusReason_UNAVAILABLE, Message: msg}})
	}
	switch {
	case to.GetId() == ctx.Self().GetId():
		// A member's catalog, named as the requester: the chunks would go over this member's
		// peer connection into that catalog as a Raft snapshot from the leader, and abandon or
		// restart its install. Saves go to clients only.
		ctx.Respond(&messages.SnapshotSaveResult{NodeId: a.cfg.NodeID,
			Status: &messages.Status{Reason: messages.StatusReason_INVALID, Message: "a snapshot save sends its chunks to the requester, which names a member's catalog: save from a client"}})
		return
	case a.closing:
		refuse("the node is shutting down: save the snapshot from another member")
		return
	case a.swap != nil:
		ctx.Respond(&messages.SnapshotSaveResult{NodeId: a.cfg.NodeID, Status: installingStatus})
		return
	case a.saves >= maxSaves:
		refuse(fmt.Sprintf("%d snapshot saves are running on this node: retry once one has ended, or on another member", a.saves))
		return
	case a.applied == 0:
		refuse("the node has applied nothing yet: retry shortly")
		return
	}
	ts := a.applied
	a.saves++
	a.activeReads[ts]++ // compaction keeps what the read at ts needs until the save ends
	// The save ends when the node stops or when a Raft snapshot waits to replace the catalog
	// (cancelSaves): halt closes on either.
	halt, cancel := make(chan struct{}), make(chan struct{})
	if a.saveCancels == nil {
		a.saveCancels = map[chan struct{}]bool{}
	}
	a.saveCancels[cancel] = true
	db, root, self, stop, from := a.cfg.DB, ctx.ActorSystem().Root, ctx.Self(), a.stop, a.cfg.NodeID
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(halt)
		select {
		case <-stop:
		case <-cancel:
		}
	}()
	log := a.log.With(zap.Uint64("resourceVersion", ts), zap.String("to", to.String()))
	log.Info("saving a snapshot for a client")
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		began := time.Now()
		chunks, bytes, err := sendChunks(root, db, ts, to, from, nil, halt)
		res := &messages.SnapshotSaveResult{ResourceVersion: ts, Chunks: uint64(chunks), Bytes: uint64(bytes), NodeId: from}
		if err != nil {
			log.Warn("snapshot save failed", zap.Int("chunks", chunks), zap.Error(err))
			res.Status = messages.StatusOf(err)
			if errors.Is(err, errStopping) {
				msg := "the node stopped during the save: save again, from another member or once it is back"
				select {
				case <-stop:
				default:
					msg = "this member is replacing its catalog with a Raft snapshot from the leader, which a save must not hold up: save again, from another member or in a moment"
				}
				res.Status = &messages.Status{Reason: messages.StatusReason_UNAVAILABLE, Message: msg}
			} else if res.Status.GetReason() == messages.StatusReason_INTERNAL {
				res.Status.Message = fmt.Sprintf("the save at resourceVersion %d failed after %d chunks: %s; save again", ts, chunks, res.Status.Message)
			}
		} else {
			log.Info("snapshot saved", zap.Int("chunks", chunks), zap.Int("bytes", bytes), zap.Duration("took", time.Since(began)))
		}
		root.Send(to, res)
		root.Send(self, saveDone{ts: ts, cancel: cancel})
	}()
}

// cancelSaves ends the saves in flight.
func (a *Actor) cancelSaves() {
	for c := range a.saveCancels {
		close(c)
	}
	clear(a.saveCancels)
}

func (a *Actor) saveEnded(ctx actor.Context, m saveDone) {
	if a.saveCancels[m.cancel] {
		delete(a.saveCancels, m.cancel)
		close(m.cancel) // ends the goroutine that waits on it
	}
	a.saves--
	if a.activeReads[m.ts]--; a.activeReads[m.ts] <= 0 {
		delete(a.activeReads, m.ts)
	}
	a.maybeSwap(ctx)
}
