package catalogactor

import (
	"bytes"
	"cmp"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/dgraph-io/badger/v4"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/raftactor"
)

// The actor tests run in a synctest bubble: the actor system, Badger and the actor's ticker
// live on a fake clock, so a test waits for ReadWait without waiting, and "not answered yet" is
// checked once every goroutine is idle (synctest.Wait) instead of after a sleep.

// replyTimeout bounds every request; on the fake clock it costs nothing.
const replyTimeout = time.Minute

type harness struct {
	t   *testing.T
	sys *actor.ActorSystem
	pid *actor.PID
	db  *badger.DB // the actor's; tests only read it
}

// startCatalog spawns a catalog actor on cfg.DB, or on a fresh in-memory database. Call it
// inside the bubble and defer stop.
func startCatalog(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.DB == nil {
		cfg.DB = openTestDB(t, false) // the actor closes it when it stops
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	pid, err := sys.Root.SpawnNamed(New(cfg), "catalog")
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, sys: sys, pid: pid, db: cfg.DB}
}

func (h *harness) stop() {
	if err := h.sys.Root.PoisonFuture(h.pid).Wait(); err != nil {
		h.t.Errorf("stop the catalog: %v", err)
	}
	h.sys.Shutdown()
}

// request sends msg and waits (on the fake clock) for the reply.
func (h *harness) request(msg any) any {
	h.t.Helper()
	res, err := h.sys.Root.RequestFuture(h.pid, msg, replyTimeout).Result()
	if err != nil {
		h.t.Fatalf("%T: no reply within %v: %v", msg, replyTimeout, err)
	}
	return res
}

// commit hands entries to the catalog as the raft actor does and returns its Applied.
func (h *harness) commit(entries ...*raftpb.Entry) *raftactor.Applied {
	h.t.Helper()
	return h.commitTo(nil, entries...)
}

func (h *harness) commitTo(replyTo map[uint64]*actor.PID, entries ...*raftpb.Entry) *raftactor.Applied {
	h.t.Helper()
	res := h.request(&raftactor.Committed{Entries: entries, ReplyTo: replyTo})
	a, ok := res.(*raftactor.Applied)
	if !ok {
		h.t.Fatalf("Committed answered %T %v, want *raftactor.Applied", res, res)
	}
	return a
}

func (h *harness) get(key *messages.ResourceKey, rv uint64) *messages.GetResult {
	h.t.Helper()
	res, ok := h.request(&messages.GetRequest{Key: key, ResourceVersion: rv}).(*messages.GetResult)
	if !ok {
		h.t.Fatalf("GetRequest answered %T", res)
	}
	return res
}

func (h *harness) list(req *messages.ListRequest) *messages.ListResult {
	h.t.Helper()
	res, ok := h.request(req).(*messages.ListResult)
	if !ok {
		h.t.Fatalf("ListRequest answered %T", res)
	}
	return res
}

// pending is a request whose reply a test checks for later. One goroutine waits on the future:
// protoactor's Future wakes a single waiter (sync.Cond.Signal), so a second one would wait
// forever.
type pending struct {
	done chan struct{}
	res  any
	err  error
}

func await(f *actor.Future) *pending {
	p := &pending{done: make(chan struct{})}
	go func() {
		p.res, p.err = f.Result()
		close(p.done)
	}()
	return p
}

// answered reports whether the reply has come, once every goroutine of the bubble is idle.
func (p *pending) answered() bool {
	synctest.Wait()
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *pending) result() (any, error) {
	<-p.done
	return p.res, p.err
}

// rvOf is the resourceVersion of a GetResult's object, or the reason it failed.
func rvOf(t *testing.T, r *messages.GetResult) string {
	t.Helper()
	if r.GetStatus() != nil {
		return messages.ReasonName(r.GetStatus().GetReason())
	}
	o, err := object.Decode(r.GetObject())
	if err != nil {
		t.Fatal(err)
	}
	if want := o.ResourceVersion(); strconv.FormatUint(r.GetResourceVersion(), 10) != want {
		t.Fatalf("GetResult.resource_version %d, but its object's metadata.resourceVersion is %q", r.GetResourceVersion(), want)
	}
	return o.ResourceVersion()
}

func podPut(t *testing.T, index uint64, name, spec string) *raftpb.Entry {
	return entry(t, index, putCmd(podKey("default", name), podValue("default", name, "", spec)))
}

func TestActorAppliesAndAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startCatalog(t, Config{})
		defer h.stop()
		// The callers waiting on entries proposed on this node get their results.
		created, refused := actor.NewFuture(h.sys, replyTimeout), actor.NewFuture(h.sys, replyTimeout)
		create := putCmd(podKey("default", "a"), podValue("default", "a", "", ""))
		create.Kind, create.RequestId = messages.CommandKind_CREATE, "req-1"
		applied := h.commitTo(map[uint64]*actor.PID{2: created.PID(), 4: refused.PID()},
			entry(t, 2, create), emptyEntry(3), entry(t, 4, create))
		if applied.Index != 4 || applied.Compacted != 0 {
			t.Errorf("Applied %+v, want index 4, compacted 0", applied)
		}
		res, err := created.Result()
		if r, ok := res.(*messages.CommandResult); err != nil || !ok || r.GetOp() != messages.ResourceOp_CREATED || r.GetResourceVersion() != 2 || r.GetRequestId() != "req-1" {
			t.Errorf("entry 2's caller got %v %v, want Created at 2 for req-1", res, err)
		}
		res, err = refused.Result()
		if r, ok := res.(*messages.CommandResult); err != nil || !ok || !messages.IsAlreadyExists(r.GetStatus().Err()) {
			t.Errorf("entry 4's caller got %v %v, want AlreadyExists", res, err)
		}
		if got := rvOf(t, h.get(podKey("default", "a"), 0)); got != "2" {
			t.Errorf("get a = %s, want resourceVersion 2", got)
		}
	})
}

// TestActorHistoricalReads: a read at a resourceVersion sees the state of that revision, a
// deleted object is NotFound at the latest revision and readable before its deletion.
func TestActorHistoricalReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startCatalog(t, Config{})
		defer h.stop()
		a := podKey("default", "a")
		h.commit(podPut(t, 2, "a", `{"n":1}`), entry(t, 3, mergePatchCmd(a, `{"spec":{"n":2}}`)))
		h.commit(entry(t, 4, deleteCmd(a)), podPut(t, 5, "b", ""))
		for _, tt := range []struct {
			rv   uint64
			want string
		}{{0, "NotFound"}, {1, "NotFound"}, {2, "2"}, {3, "3"}, {4, "NotFound"}, {5, "NotFound"}} {
			if got := rvOf(t, h.get(a, tt.rv)); got != tt.want {
				t.Errorf("get a at %d = %s, want %s", tt.rv, got, tt.want)
			}
		}
		for _, tt := range []struct {
			rv     uint64
			want   []string
			wantRV uint64
		}{{0, []string{"default/b@5"}, 5}, {3, []string{"default/a@3"}, 3}, {4, nil, 4}, {5, []string{"default/b@5"}, 5}} {
			res := h.list(&messages.ListRequest{Version: "v1", Kind: "Pod", ResourceVersion: tt.rv})
			if got := names(t, res.GetItems()); res.GetStatus() != nil || !slices.Equal(got, tt.want) || res.GetResourceVersion() != tt.wantRV {
				t.Errorf("list at %d = %q at %d (%v), want %q at %d", tt.rv, got, res.GetResourceVersion(), res.GetStatus(), tt.want, tt.wantRV)
			}
		}
		// Invalid list requests are refused before any read.
		if res := h.list(&messages.ListRequest{Version: "v1", Kind: "Pod", Continue: "garbage"}); !messages.IsInvalid(res.GetStatus().Err()) {
			t.Errorf("list with a damaged token: %v, want Invalid", res.GetStatus())
		}
	})
}

// TestActorGetsMatchTheStore: after random puts, patches, deletes and re-creations in batches,
// a get at any readable resourceVersion, and at none, answers what Badger holds at that
// revision, whether the actor's cache of newest objects answers it or a reader does.
func TestActorGetsMatchTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startCatalog(t, Config{})
		defer h.stop()
		rng := rand.New(rand.NewPCG(1, 2))
		keys := []string{"a", "b", "c"}
		index, applied := uint64(2), uint64(0)
		for batch := 0; batch < 30; batch++ {
			var entries []*raftpb.Entry
			for n := 1 + rng.IntN(4); n > 0; n-- {
				name := keys[rng.IntN(len(keys))]
				var cmd *messages.Command
				switch rng.IntN(3) {
				case 0:
					cmd = putCmd(podKey("default", name), podValue("default", name, "", `{"n":`+itoa(index)+`}`))
				case 1:
					cmd = mergePatchCmd(podKey("default", name), `{"spec":{"m":`+itoa(index)+`}}`)
				default:
					cmd = deleteCmd(podKey("default", name))
				}
				entries = append(entries, entry(t, index, cmd))
				index++
			}
			applied = h.commit(entries...).Index
			for _, name := range keys {
				key := podKey("default", name)
				for rv := uint64(0); rv <= applied; rv++ {
					ts := cmp.Or(rv, applied)
					want, got := readAt(t, h.db, key, ts), h.get(key, rv)
					if want == nil {
						if !messages.IsNotFound(got.GetStatus().Err()) {
							t.Fatalf("get %s at %d after %d: %v %s, want NotFound", name, rv, applied, got.GetStatus(), got.GetObject())
						}
						continue
					}
					if got.GetStatus() != nil || !bytes.Equal(got.GetObject(), want) || rvOf(t, got) != strconv.FormatUint(got.GetResourceVersion(), 10) {
						t.Fatalf("get %s at %d after %d = %v %s, want %s", name, rv, applied, got.GetStatus(), got.GetObject(), want)
					}
				}
			}
		}
	})
}

// TestActorInstallEmptiesTheGetCache: a Raft snapshot that replaces the catalog replaces what
// gets answer too, though the actor's cache held the key from before.
func TestActorInstallEmptiesTheGetCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "catalog")
	h := startCatalog(t, Config{DB: openTestStore(t, dir), Store: StoreOptions{Dir: dir, Logger: zap.NewNop(), MemTableSize: 8 << 20}})
	defer h.stop()
	a := podKey("default", "a")
	h.commit(podPut(t, 2, "a", `{"n":2}`))
	if got := rvOf(t, h.get(a, 0)); got != "2" {
		t.Fatalf("get a before the snapshot: %s, want 2", got)
	}
	src := newTestCatalog(t, 1000)
	mustApply(t, src, podPut(t, 2, "x", ""), podPut(t, 3, "y", ""), podPut(t, 4, "a", `{"n":4}`))
	rm, err := proto.Marshal(&raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(4), Term: proto.Uint64(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	chunks := exportChunks(t, src.db, 4, 1024)
	for seq, data := range chunks {
		m := &messages.SnapshotChunk{From: 2, Index: 4, Seq: uint64(seq), Data: data, Last: seq == len(chunks)-1}
		if m.Last {
			m.RaftMessage = rm
		}
		if ack, ok := h.request(m).(*messages.SnapshotAck); !ok || ack.GetStatus() != nil {
			t.Fatalf("chunk %d: %v", seq, ack)
		}
	}
	if got := rvOf(t, h.get(a, 0)); got != "4" {
		t.Errorf("get a after installing a snapshot at 4: %s, want 4", got)
	}
	if got := rvOf(t, h.get(podKey("default", "x"), 0)); got != "2" {
		t.Errorf("get x after installing a snapshot at 4: %s, want 2", got)
	}
}

// TestActorGone: with a small history, reads below the compacted revision are Gone and name it;
// the compacted revision itself is readable; a continue token past the history is Gone.
func TestActorGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const history = 5
		h := startCatalog(t, Config{HistoryRevisions: history})
		defer h.stop()
		h.commit(podPut(t, 2, "a", `{"n":2}`), podPut(t, 3, "b", ""), podPut(t, 4, "c", ""))
		first := h.list(&messages.ListRequest{Version: "v1", Kind: "Pod", Limit: 1})
		if first.GetContinue() == "" || first.GetResourceVersion() != 4 {
			t.Fatalf("first page: %v", first)
		}
		var applied *raftactor.Applied
		for i := uint64(5); i <= 21; i += 3 {
			var batch []*raftpb.Entry
			for j := i; j < i+3 && j <= 21; j++ {
				batch = append(batch, podPut(t, j, "a", `{"n":`+itoa(j)+`}`))
			}
			applied = h.commit(batch...)
		}
		if applied.Index != 21 || applied.Compacted != 21-history {
			t.Fatalf("Applied %+v, want index 21 compacted %d", applied, 21-history)
		}
		compacted := applied.Compacted
		a := podKey("default", "a")
		gone := h.get(a, compacted-1)
		if !messages.IsGone(gone.GetStatus().Err()) || gone.GetStatus().GetResourceVersion() != compacted ||
			!strings.Contains(gone.GetStatus().GetMessage(), "resourceVersion "+itoa(compacted-1)) || !strings.Contains(gone.GetStatus().GetMessage(), itoa(compacted)) {
			t.Errorf("get below the compacted revision: %v, want Gone naming %d and %d, resourceVersion %d", gone.GetStatus(), compacted-1, compacted, compacted)
		}
		if got := rvOf(t, h.get(a, compacted)); got != itoa(compacted) {
			t.Errorf("get at the compacted revision %d = %s", compacted, got)
		}
		if got := rvOf(t, h.get(a, 1)); got != "Gone" {
			t.Errorf("get at 1 = %s, want Gone", got)
		}
		if res := h.list(&messages.ListRequest{Version: "v1", Kind: "Pod", ResourceVersion: compacted - 1}); !messages.IsGone(res.GetStatus().Err()) {
			t.Errorf("list below the compacted revision: %v, want Gone", res.GetStatus())
		}
		next := h.list(&messages.ListRequest{Version: "v1", Kind: "Pod", Limit: 1, Continue: first.GetContinue()})
		if !messages.IsGone(next.GetStatus().Err()) || next.GetStatus().GetResourceVersion() != compacted {
			t.Errorf("continue token at 4 after compaction to %d: %v, want Gone", compacted, next.GetStatus())
		}
	})
}

// TestActorListPagesAtOneRevision: every page of a list is read at the first page's
// resourceVersion, whatever was applied between the pages.
func TestActorListPagesAtOneRevision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startCatalog(t, Config{})
		defer h.stop()
		h.commit(podPut(t, 2, "a", ""), podPut(t, 3, "b", ""), podPut(t, 4, "c", ""))
		req := &messages.ListRequest{Version: "v1", Kind: "Pod", Limit: 2}
		first := h.list(req)
		if got := names(t, first.GetItems()); !slices.Equal(got, []string{"default/a@2", "default/b@3"}) || first.GetContinue() == "" {
			t.Fatalf("first page %q continue %q", got, first.GetContinue())
		}
		h.commit(entry(t, 5, deleteCmd(podKey("default", "c"))), podPut(t, 6, "d", ""))
		req.Continue = first.GetContinue()
		second := h.list(req)
		if got := names(t, second.GetItems()); !slices.Equal(got, []string{"default/c@4"}) || second.GetContinue() != "" || second.GetResourceVersion() != 4 {
			t.Errorf("second page %q at %d continue %q, want [default/c@4] at 4 and no continue", got, second.GetResourceVersion(), second.GetContinue())
		}
	})
}

// TestActorReadAheadWaits: a read at a resourceVersion the node has not applied waits, and is
// served as soon as a Committed reaches it, not at the next tick.
func TestActorReadAheadWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startCatalog(t, Config{ReadWait: 5 * time.Second})
		defer h.stop()
		a := podKey("default", "a")
		h.commit(podPut(t, 2, "a", `{"n":1}`))
		get := await(h.sys.Root.RequestFuture(h.pid, &messages.GetRequest{Key: a, ResourceVersion: 4}, replyTimeout))
		lst := await(h.sys.Root.RequestFuture(h.pid, &messages.ListRequest{Version: "v1", Kind: "Pod", ResourceVersion: 4}, replyTimeout))
		if get.answered() || lst.answered() {
			t.Fatal("reads at 4 were answered while the node had applied 2")
		}
		h.commit(entry(t, 3, mergePatchCmd(a, `{"spec":{"n":3}}`)))
		if get.answered() || lst.answered() {
			t.Fatal("reads at 4 were answered while the node had applied 3")
		}
		start := time.Now()
		h.commit(entry(t, 4, mergePatchCmd(a, `{"spec":{"n":4}}`)), podPut(t, 5, "b", ""))
		res, err := get.result()
		if g, ok := res.(*messages.GetResult); err != nil || !ok || rvOf(t, g) != "4" {
			t.Fatalf("get at 4: %v %v, want the object at 4", res, err)
		}
		res, err = lst.result()
		if l, ok := res.(*messages.ListResult); err != nil || !ok || l.GetResourceVersion() != 4 || !slices.Equal(names(t, l.GetItems()), []string{"default/a@4"}) {
			t.Fatalf("list at 4: %v %v, want [default/a@4] at 4", res, err)
		}
		if waited := time.Since(start); waited >= tickInterval {
			t.Errorf("the reads were served %v after the Committed that reached them, want at once", waited)
		}
	})
}

// TestActorReadAheadTimesOut: a read ahead of the node fails with Timeout after ReadWait (give
// or take a tick), naming both resourceVersions; the node's later progress does not answer it
// twice.
func TestActorReadAheadTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const wait = 2 * time.Second
		h := startCatalog(t, Config{ReadWait: wait})
		defer h.stop()
		h.commit(podPut(t, 2, "a", ""))
		start := time.Now()
		lst := h.sys.Root.RequestFuture(h.pid, &messages.ListRequest{Version: "v1", Kind: "Pod", ResourceVersion: 10}, replyTimeout)
		res := h.get(podKey("default", "a"), 10)
		waited := time.Since(start)
		s := res.GetStatus()
		if !messages.IsTimeout(s.Err()) {
			t.Fatalf("get at 10 with 2 applied: %v, want Timeout", res)
		}
		if waited < wait || waited > wait+tickInterval {
			t.Errorf("Timeout after %v, want after ReadWait %v (within a tick, %v)", waited, wait, tickInterval)
		}
		if !strings.Contains(s.GetMessage(), "resourceVersion 10") || !strings.Contains(s.GetMessage(), "applied resourceVersion 2") {
			t.Errorf("Timeout message %q does not name resourceVersion 10 and the applied 2", s.GetMessage())
		}
		if s.GetResourceVersion() != 2 {
			t.Errorf("Timeout carries resourceVersion %d, want the applied 2", s.GetResourceVersion())
		}
		lr, err := lst.Result()
		if l, ok := lr.(*messages.ListResult); err != nil || !ok || !messages.IsTimeout(l.GetStatus().Err()) {
			t.Errorf("list at 10: %v %v, want Timeout", lr, err)
		}
		// Reaching 10 later serves new reads and answers nobody twice.
		var batch []*raftpb.Entry
		for i := uint64(3); i <= 10; i++ {
			batch = append(batch, podPut(t, i, "a", `{"n":`+itoa(i)+`}`))
		}
		h.commit(batch...)
		if got := rvOf(t, h.get(podKey("default", "a"), 10)); got != "10" {
			t.Errorf("get at 10 after applying it = %s", got)
		}
	})
}

// TestActorBoundsWaitingReads: beyond MaxWaitingReads, a read ahead of the node is refused at
// once with Unavailable; a stopping catalog answers the reads still waiting.
func TestActorBoundsWaitingReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startCatalog(t, Config{MaxWaitingReads: 1, ReadWait: time.Hour})
		a := podKey("default", "a")
		waiting := h.sys.Root.RequestFuture(h.pid, &messages.GetRequest{Key: a, ResourceVersion: 9}, 2*time.Hour)
		start := time.Now()
		res := h.get(a, 9)
		if !messages.IsUnavailable(res.GetStatus().Err()) || time.Since(start) != 0 {
			t.Errorf("second waiting read: %v after %v, want Unavailable at once", res.GetStatus(), time.Since(start))
		}
		h.stop()
		got, err := waiting.Result()
		if g, ok := got.(*messages.GetResult); err != nil || !ok || !messages.IsUnavailable(g.GetStatus().Err()) || !strings.Contains(g.GetStatus().GetMessage(), "shutting down") {
			t.Errorf("waiting read when the catalog stops: %v %v, want Unavailable (shutting down)", got, err)
		}
	})
}

// TestReadsDoNotWaitForAnApply: a get sent while a long batch is being applied is answered
// from the last applied state before the batch is done, and the batch is applied in jobs of
// maxJobEntries, each told to raft as it is done. (Outside a synctest bubble: the point is what
// happens while the applier is busy, which synctest.Wait would wait out.)
func TestReadsDoNotWaitForAnApply(t *testing.T) {
	h := startCatalog(t, Config{})
	defer h.stop()
	a := podKey("default", "a")
	h.commit(entry(t, 2, putCmd(a, podValue("default", "a", "", ""))))

	// About 100 MB of puts: hundreds of milliseconds of applying.
	pad := `{"s":"` + strings.Repeat("x", 50<<10) + `"}`
	var batch []*raftpb.Entry
	var last *messages.ResourceKey
	for i := range 2000 {
		last = podKey("default", "big-"+strconv.Itoa(i))
		batch = append(batch, entry(t, uint64(3+i), putCmd(last, podValue("default", last.GetName(), "", pad))))
	}
	applied := await(h.sys.Root.RequestFuture(h.pid, &raftactor.Committed{Entries: batch}, replyTimeout))
	if got := h.get(a, 0); got.GetResourceVersion() != 2 {
		t.Fatalf("get during the apply: %v, want a at resourceVersion 2", got)
	}
	if got := h.get(last, 0); !messages.IsNotFound(got.GetStatus().Err()) {
		t.Fatalf("the get was answered only after the batch was applied: %v", got)
	}
	<-applied.done
	if res, ok := applied.res.(*raftactor.Applied); !ok || res.Index != 2+maxJobEntries {
		t.Fatalf("the batch's first job: %v %v, want Applied at %d", applied.res, applied.err, 2+maxJobEntries)
	}
	// The rest applies in later jobs: a read at 2002 waits for them (under -race, longer than
	// one read may wait).
	for deadline := time.Now().Add(time.Minute); ; {
		got := h.get(last, 2002)
		if !messages.IsTimeout(got.GetStatus().Err()) || time.Now().After(deadline) {
			if rv := rvOf(t, got); rv != "2002" {
				t.Errorf("the batch's last object after it applied: resourceVersion %s, want 2002", rv)
			}
			break
		}
	}
}
