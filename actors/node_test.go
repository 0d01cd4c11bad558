package actors

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/raftactor"
)

// leakOptions ignores protoactor's dead-letter log throttle: a timer goroutine it starts on a
// dead letter, which ends by itself within the throttle interval (1 s).
var leakOptions = []goleak.Option{goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1")}

// quietSystem is a local actor system whose protoactor logs go nowhere.
func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

func pod(name string) []byte {
	return []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"` + name + `","namespace":"default"}}`)
}

// TestNodeStartStopLeaksNothing starts a node with its own actor system and remote, writes
// through a client, stops the node, and checks that no goroutine is left and that the data dir
// and port are free again.
//
// Tests keep to one protoactor remote per process: remote.Start sets gRPC's global logger, which
// races with a gRPC server already running in the process. Tests that cross processes start
// the kstore binary (cmd/kstore).
func TestNodeStartStopLeaksNothing(t *testing.T) {
	if inOwnProcess(t) {
		return
	}
	defer goleak.VerifyNone(t, leakOptions...)
	dir := t.TempDir()
	n, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := n.Address()
	c := NewClientPIDs(n.System(), []*actor.PID{n.PID()}, 0)
	res, err := c.Put(context.Background(), pod("a"), messages.Reason_OPERATOR)
	if err != nil || res.GetOp() != messages.ResourceOp_CREATED {
		t.Fatalf("put: %v %v", res, err)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	// The same dir and port can be taken again at once.
	n2, err := Start(Config{DataDir: dir, Listen: addr})
	if err != nil {
		t.Fatalf("restart on the same dir and port: %v", err)
	}
	n2.Stop()
}

func TestSecondNodeOnSameDataDirFails(t *testing.T) {
	if inOwnProcess(t) {
		return
	}
	dir := t.TempDir()
	n, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	_, err = Start(Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "in use by another kstore node") {
		t.Fatalf("second node on %s: err = %v, want a data-dir-in-use error", dir, err)
	}
}

func TestPortInUseFails(t *testing.T) {
	if inOwnProcess(t) {
		return
	}
	n, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	_, err = Start(Config{DataDir: t.TempDir(), Listen: n.Address()})
	if err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("second node on %s: err = %v, want a cannot-listen error", n.Address(), err)
	}
}

// TestRaftLogCompactsAndRestarts writes past several Raft log compactions (made small here),
// restarts the node on its data dir, and finds every object and the log shorter than the writes.
func TestRaftLogCompactsAndRestarts(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, LogCompaction: LogCompaction{SyncEvery: 20, CompactAfter: 50, KeepEntries: 10}}
	system := quietSystem()
	defer system.Shutdown()
	n, err := Spawn(system, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClientPIDs(system, []*actor.PID{n.PID()}, 0)
	ctx := context.Background()
	const writes = 300
	for i := range writes {
		if _, err := c.Put(ctx, pod(fmt.Sprintf("p%d", i)), messages.Reason_OPERATOR); err != nil {
			t.Fatal(err)
		}
	}
	n.Stop()
	log, err := raftactor.OpenLog(filepath.Join(dir, "raft"), []uint64{1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap, entries := log.State.Snapshot.GetIndex(), len(log.State.Entries)
	log.WAL.Close()
	t.Logf("after %d writes the Raft log starts after %d and holds %d entries", writes, snap, entries)
	if snap < 100 || entries > 150 {
		t.Fatalf("after %d writes the Raft log starts after %d and holds %d entries: it was not compacted", writes, snap, entries)
	}
	n, err = Spawn(system, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	c = NewClientPIDs(system, []*actor.PID{n.PID()}, 0)
	l, err := c.List(ctx, &messages.ListRequest{Version: "v1", Kind: "Pod"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.GetItems()) != writes {
		t.Fatalf("%d pods after the restart, want %d", len(l.GetItems()), writes)
	}
	if _, err := c.Put(ctx, pod("after"), messages.Reason_OPERATOR); err != nil {
		t.Fatalf("a write after the restart: %v", err)
	}
}
