package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/messages"
)

// Saving a snapshot of a node's catalog (kstore snapshot save, as etcdctl snapshot save): the
// client spawns a receiver actor and sends a SnapshotSaveRequest from it; the node reads its
// catalog at one resourceVersion and sends it in SnapshotChunk messages, one at a time, each
// acknowledged (SnapshotAck) by the client once it is written; a SnapshotSaveResult ends the
// save. The chunks go into a backup file (catalogactor/backup.go), which says the
// resourceVersion, the object count and the checksum in its header.

// SnapshotInfo describes a saved snapshot: what its file's header says.
type SnapshotInfo struct {
	ResourceVersion uint64 // the revision the catalog was read at
	Compacted       uint64 // the revision the snapshot's history starts at
	Objects         uint64 // objects live at ResourceVersion
	Size            int64  // bytes of the file, header included
	SHA256          string // hex, of the file's body
	NodeID          uint64 // the member that sent it; 0 when read from a file
}

// InfoOf is the SnapshotInfo of a backup file's header.
func InfoOf(h catalogactor.BackupHeader) SnapshotInfo {
	return SnapshotInfo{ResourceVersion: h.ResourceVersion, Compacted: h.Compacted, Objects: h.Objects, Size: h.Size(), SHA256: h.Checksum()}
}

// SnapshotProgress is how far a save has come.
type SnapshotProgress struct {
	Chunks, Objects, Bytes uint64
}

// SaveOptions tune SaveSnapshotWith.
type SaveOptions struct {
	// Consistency LINEARIZABLE (the default) saves a state that holds every write acknowledged
	// before the save began (a read barrier, which needs a quorum); SERIALIZABLE saves the
	// member's own applied state at once.
	Consistency messages.Consistency
	// Progress, when set, is called after each chunk is written, on the caller's goroutine.
	Progress func(SnapshotProgress)
}

// saveIdleTimeout bounds the wait for each chunk after the first: the node sends the next one
// as soon as the last is acknowledged, and reading 1 MiB of its catalog takes milliseconds. A
// node silent this long has stopped, or lost the connection.
const saveIdleTimeout = 30 * time.Second

// saveInboxSize bounds what a save's receiver holds: the node sends a chunk only once the one
// before was acknowledged, then the result; a chunk whose acknowledgement came too late and the
// result may both be there.
const saveInboxSize = 4

// SaveSnapshot writes a snapshot of a node's catalog to w as a backup file (see
// catalogactor/backup.go): linearizable, without progress reports. See SaveSnapshotWith.
func (c *Client) SaveSnapshot(ctx context.Context, w io.WriteSeeker) (SnapshotInfo, error) {
	return c.SaveSnapshotWith(ctx, w, SaveOptions{})
}

// SaveSnapshotWith writes a snapshot of one node's catalog, at one resourceVersion, to w as a
// backup file, starting at w's offset. A node that refuses before sending anything
// (Unavailable: starting, no quorum, too many saves) is tried again on the next endpoint within
// the client's timeout; once chunks come, the save ends with the first error. The caller
// makes w durable; what SaveSnapshotWith wrote to w after an error is no backup (its header is
// zero). The client's timeout bounds the wait for the node's first answer; each later chunk
// gets saveIdleTimeout; ctx bounds the whole.
func (c *Client) SaveSnapshotWith(ctx context.Context, w io.WriteSeeker, o SaveOptions) (SnapshotInfo, error) {
	if err := c.unreachable(); err != nil {
		return SnapshotInfo{}, err
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var info SnapshotInfo
	err := c.rotate(ctx, deadline, false, "snapshot request", func(pid *actor.PID, _ bool, left time.Duration) (attempt, error) {
		s := c.startSave(pid, o.Consistency)
		got, started, err := s.run(ctx, w, o, min(left, c.attemptTimeout()))
		s.stop()
		switch {
		case err == nil:
			info = got
			return attemptServed, nil
		case started || !retryableSave(err):
			info = got
			return attemptEnded, err // once chunks came, the save ends with its first error
		}
		c.unreached(pid)
		return attemptFailed, err
	})
	return info, err
}

// retryableSave: the node took no action (refused, or never answered), so another may serve.
func retryableSave(err error) bool {
	return messages.IsUnavailable(err) || messages.IsTimeout(err)
}

// save is one attempt: a receiver actor and what it got.
type save struct {
	c        *Client
	node     *actor.PID
	receiver *actor.PID
	inbox    chan saveMsg
	overflow *atomic.Bool // the node sent more than the protocol allows
	pending  *actor.PID   // the sender of the chunk not acknowledged yet
}

type saveMsg struct {
	msg    any
	sender *actor.PID
}

// startSave spawns the attempt's receiver and sends the request from it.
func (c *Client) startSave(node *actor.PID, consistency messages.Consistency) *save {
	s := &save{c: c, node: node, inbox: make(chan saveMsg, saveInboxSize), overflow: &atomic.Bool{}}
	inbox, overflow := s.inbox, s.overflow
	s.receiver = c.root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *messages.SnapshotChunk, *messages.SnapshotSaveResult:
			select {
			case inbox <- saveMsg{msg: m, sender: ctx.Sender()}:
			default:
				overflow.Store(true)
			}
		}
	}))
	c.root.RequestWithCustomSender(node, &messages.SnapshotSaveRequest{Consistency: consistency}, s.receiver)
	return s
}

// stop stops the receiver: whatever the node sends this attempt from now on is a dead letter,
// and a chunk left unacknowledged is refused, so that the node releases its read at once.
func (s *save) stop() {
	s.refusePending("the client stopped the save")
	_ = s.c.root.StopFuture(s.receiver).Wait()
}

func (s *save) refusePending(why string) {
	if s.pending != nil {
		s.c.root.Send(s.pending, &messages.SnapshotAck{Status: &messages.Status{Reason: messages.StatusReason_UNAVAILABLE, Message: why}})
		s.pending = nil
	}
}

// next waits for the receiver's next message, for at most wait.
func (s *save) next(ctx context.Context, wait time.Duration) (saveMsg, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case m := <-s.inbox:
		if s.overflow.Load() {
			return m, messages.Errorf(messages.StatusReason_INTERNAL,
				"the kstore node at %s sent snapshot chunks without waiting for their acknowledgements: save again", s.node.GetAddress())
		}
		return m, nil
	case <-ctx.Done():
		return saveMsg{}, callEnded(ctx.Err(), s.node.GetAddress(), false)
	case <-t.C:
		return saveMsg{}, messages.Errorf(messages.StatusReason_TIMEOUT,
			"no snapshot data from the kstore node at %s within %v: is it up and reachable? save again", s.node.GetAddress(), wait)
	}
}

// run receives the snapshot into w. started says whether any chunk came (then nothing is retried).
func (s *save) run(ctx context.Context, w io.WriteSeeker, o SaveOptions, firstWait time.Duration) (SnapshotInfo, bool, error) {
	var (
		bw          *catalogactor.BackupWriter
		index, from uint64
		seq         uint64 // the next chunk's
		last        bool
	)
	wait := firstWait
	for {
		m, err := s.next(ctx, wait)
		if err != nil {
			return SnapshotInfo{}, bw != nil, err
		}
		wait = saveIdleTimeout
		switch r := m.msg.(type) {
		case *messages.SnapshotSaveResult:
			if err := r.GetStatus().Err(); err != nil {
				return SnapshotInfo{}, bw != nil, err
			}
			if bw == nil || !last || r.GetChunks() != seq || r.GetResourceVersion() != index {
				return SnapshotInfo{}, bw != nil, messages.Errorf(messages.StatusReason_INTERNAL,
					"the kstore node at %s ended the save of resourceVersion %d after %d chunks; %d came, the last one %v: save again",
					s.node.GetAddress(), r.GetResourceVersion(), r.GetChunks(), seq, last)
			}
			h, err := bw.Finish()
			if err != nil {
				return SnapshotInfo{}, true, err
			}
			info := InfoOf(h)
			info.NodeID = r.GetNodeId()
			return info, true, nil
		case *messages.SnapshotChunk:
			if bw == nil {
				if bw, err = catalogactor.NewBackupWriter(w); err != nil {
					return SnapshotInfo{}, true, messages.Errorf(messages.StatusReason_INTERNAL, "%v", err)
				}
				index, from = r.GetIndex(), r.GetFrom()
			}
			s.pending = m.sender
			switch {
			case r.GetIndex() != index || r.GetFrom() != from || r.GetSeq() != seq || last:
				err = fmt.Errorf("chunk %d of resourceVersion %d from node %d came where chunk %d of %d from node %d was due",
					r.GetSeq(), r.GetIndex(), r.GetFrom(), seq, index, from)
			default:
				err = bw.Write(r.GetData())
			}
			if err != nil {
				s.refusePending(err.Error())
				var e *messages.Error
				if !errors.As(err, &e) {
					err = messages.Errorf(messages.StatusReason_INTERNAL, "%v: save again", err)
				}
				return SnapshotInfo{}, true, err
			}
			seq++
			last = r.GetLast()
			s.c.root.Send(s.pending, &messages.SnapshotAck{Index: index, Seq: r.GetSeq()})
			s.pending = nil
			if o.Progress != nil {
				objects, bytes := bw.Progress()
				o.Progress(SnapshotProgress{Chunks: seq, Objects: objects, Bytes: bytes})
			}
		}
	}
}
