package catalogactor

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kstore/kstore/messages"
)

// saveClient is a client's receiver of a save: it hands every chunk and the result to the test.
// An acking one answers each chunk; a silent one, as a client that vanished, never does.
type saveClient struct {
	pid    *actor.PID
	chunks chan *messages.SnapshotChunk
	result chan *messages.SnapshotSaveResult
}

func (h *harness) saveClient(ack bool) *saveClient {
	c := &saveClient{chunks: make(chan *messages.SnapshotChunk, 1024), result: make(chan *messages.SnapshotSaveResult, 1)}
	c.pid = h.sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *messages.SnapshotChunk:
			c.chunks <- m
			if ack {
				ctx.Respond(&messages.SnapshotAck{Index: m.GetIndex(), Seq: m.GetSeq()})
			}
		case *messages.SnapshotSaveResult:
			c.result <- m
		}
	}))
	return c
}

func (h *harness) save(c *saveClient) {
	h.sys.Root.RequestWithCustomSender(h.pid, &messages.SnapshotSaveRequest{}, c.pid)
}

// done returns the save's result once every goroutine of the bubble is idle; nil while none.
func (c *saveClient) done() *messages.SnapshotSaveResult {
	synctest.Wait()
	select {
	case r := <-c.result:
		return r
	default:
		return nil
	}
}

// TestActorSavesSnapshot: a save streams the catalog at its applied index to the requester, in
// chunks that make a backup file of the catalog's objects at that index; the result closes it.
func TestActorSavesSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startCatalog(t, Config{NodeID: 7})
		defer h.stop()
		big := `{"s":"` + strings.Repeat("x", 1<<20) + `"}` // three of them make several chunks
		h.commit(podPut(t, 2, "a", ""), podPut(t, 3, "b", big), podPut(t, 4, "c", ""),
			entry(t, 5, deleteCmd(podKey("default", "c"))), podPut(t, 6, "a", `{"v":"2"}`),
			podPut(t, 7, "d", big), podPut(t, 8, "e", big))
		c := h.saveClient(true)
		h.save(c)
		res := c.done()
		if res == nil || res.GetStatus() != nil || res.GetResourceVersion() != 8 || res.GetNodeId() != 7 || res.GetChunks() < 3 {
			t.Fatalf("save result %v: want success at resourceVersion 8 from node 7, in three chunks or more", res)
		}
		f, err := os.Create(filepath.Join(t.TempDir(), "b.snap"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w, err := NewBackupWriter(f)
		if err != nil {
			t.Fatal(err)
		}
		for range res.GetChunks() {
			m := <-c.chunks
			if m.GetIndex() != 8 || m.GetFrom() != 7 || len(m.GetRaftMessage()) > 0 {
				t.Fatalf("chunk %d: index %d from %d with a raft message of %d bytes", m.GetSeq(), m.GetIndex(), m.GetFrom(), len(m.GetRaftMessage()))
			}
			if err := w.Write(m.GetData()); err != nil {
				t.Fatal(err)
			}
		}
		hd, err := w.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if hd.ResourceVersion != 8 || hd.Objects != 4 {
			t.Fatalf("header %+v: want resourceVersion 8 and 4 objects (a, b, d, e; c was deleted)", hd)
		}
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyBackup(bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	})
}

// TestActorSaveOfVanishedClient: saves whose requester never acknowledges hold their pinned read
// only until the chunk's timeout; meanwhile saves beyond maxSaves are refused, after it one runs.
func TestActorSaveOfVanishedClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startCatalog(t, Config{NodeID: 1})
		defer h.stop()
		h.commit(podPut(t, 2, "a", ""))
		var silent []*saveClient
		for range maxSaves {
			c := h.saveClient(false)
			h.save(c)
			silent = append(silent, c)
		}
		extra := h.saveClient(true)
		h.save(extra)
		if r := extra.done(); !messages.IsUnavailable(r.GetStatus().Err()) || !strings.Contains(r.GetStatus().GetMessage(), "saves are running") {
			t.Fatalf("a save beyond %d: %v, want Unavailable (saves are running)", maxSaves, r)
		}
		for i, c := range silent {
			if r := c.done(); r != nil {
				t.Fatalf("silent save %d ended before the chunk timeout: %v", i, r)
			}
		}
		time.Sleep(snapshotChunkTimeout + time.Second) // the fake clock
		for i, c := range silent {
			if r := c.done(); r == nil || r.GetStatus() == nil {
				t.Fatalf("silent save %d after the chunk timeout: %v, want a failure", i, r)
			}
		}
		h.commit(podPut(t, 3, "b", ""))
		again := h.saveClient(true)
		h.save(again)
		if r := again.done(); r.GetStatus() != nil || r.GetResourceVersion() != 3 {
			t.Fatalf("a save once the vanished ones timed out: %v, want success at 3", r)
		}
	})
}
