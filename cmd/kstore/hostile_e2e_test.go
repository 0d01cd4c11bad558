package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/messages"
)

// TestHostileClients is what any process that reaches a node's port can send: a Go program over
// protoactor remote, against a `kstore serve` with a proposal table of one. After each case the
// node must still serve (its status answers and a write succeeds), and at the end it must stop
// cleanly on SIGTERM and restart with every acknowledged write.
func TestHostileClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kstore binary")
	}
	bin := kstoreBinary(t)
	dir, addr := t.TempDir(), freeAddr(t)
	srv := startServer(t, bin, dir, addr, "--max-inflight-proposals", "1")
	k := &cli{t: t, bin: bin, endpoints: addr}
	k.waitLeader()

	sys, err := actors.NewSystem("127.0.0.1:0", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	root := sys.Root
	node := actor.NewPID(addr, actors.DefaultName)
	raft := actor.NewPID(addr, actors.DefaultName+"/raft")
	client := actors.NewClientPIDs(sys.ActorSystem, []*actor.PID{node}, 10*time.Second)
	defer client.Close()

	cm := func(name string) []byte {
		return []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `","namespace":"hostile"},"data":{"a":"b"}}`)
	}
	put := func(name string) *messages.Command {
		return &messages.Command{Kind: messages.CommandKind_PUT, Reason: messages.Reason_OPERATOR, Value: cm(name),
			Key: &messages.ResourceKey{Version: "v1", Kind: "ConfigMap", Namespace: "hostile", Name: name}}
	}
	entry := func(data []byte) *raftpb.Entry {
		return &raftpb.Entry{Index: proto.Uint64(1000), Term: proto.Uint64(2), Type: raftpb.EntryType_EntryNormal.Enum(), Data: data}
	}
	confChange := func() *raftpb.Entry {
		cc, _ := proto.Marshal(&raftpb.ConfChange{Type: raftpb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: proto.Uint64(2)})
		e := entry(cc)
		e.Type = raftpb.EntryType_EntryConfChange.Enum()
		return e
	}
	garbage, _ := messages.EncodeEntry(messages.ProposalID{Node: 9, Epoch: 1, Seq: 7}, put("garbage"))
	garbage = append(garbage[:25], 0xff, 0xfe, 0x00, 0x01)

	acked := map[string]uint64{} // name -> resourceVersion of its acknowledged put
	serving := func(t *testing.T, name string) {
		t.Helper()
		select {
		case <-srv.exited:
			t.Fatalf("the node exited (%v):\n%s", srv.waitErr, srv.log)
		default:
		}
		res, err := client.Put(context.Background(), cm(name), messages.Reason_OPERATOR)
		if err != nil {
			t.Fatalf("the node no longer takes writes: %v\n%s", err, srv.log)
		}
		acked[name] = res.GetResourceVersion()
		if st := k.status(); st.Leader != 1 || st.Applied < res.GetResourceVersion() {
			t.Fatalf("status after the case: %+v", st)
		}
	}

	tests := []struct {
		name string
		send func(t *testing.T)
	}{
		{"commands, gets, lists, watches and status without a sender, over a full table", func(t *testing.T) {
			for i := range 200 {
				root.Send(node, put(fmt.Sprintf("no-sender-%d", i%5)))
				root.Send(node, &messages.GetRequest{Key: put("x").GetKey()})
				root.Send(node, &messages.ListRequest{Version: "v1", Kind: "ConfigMap"})
				root.Send(node, &messages.WatchRequest{WatchId: fmt.Sprint(i + 1), Credits: 10})
				root.Send(node, &messages.StatusRequest{})
			}
		}},
		{"a proposal of garbage to the raft actor", func(t *testing.T) {
			root.Send(raft, &raftpb.Message{Type: raftpb.MessageType_MsgProp.Enum(), To: proto.Uint64(1), From: proto.Uint64(1),
				Entries: []*raftpb.Entry{entry(garbage), entry([]byte("not an entry at all"))}})
		}},
		{"a configuration change adding node 2", func(t *testing.T) {
			root.Send(raft, &raftpb.Message{Type: raftpb.MessageType_MsgProp.Enum(), To: proto.Uint64(1), From: proto.Uint64(1),
				Entries: []*raftpb.Entry{confChange()}})
			root.Send(raft, &raftpb.Message{Type: raftpb.MessageType_MsgApp.Enum(), To: proto.Uint64(1), From: proto.Uint64(2),
				Term: proto.Uint64(99), Index: proto.Uint64(5), LogTerm: proto.Uint64(2), Commit: proto.Uint64(1000),
				Entries: []*raftpb.Entry{confChange()}})
		}},
		{"a heartbeat with term 2^64-1", func(t *testing.T) {
			for _, from := range []uint64{1, 2, 0} {
				root.Send(raft, &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: proto.Uint64(1), From: proto.Uint64(from),
					Term: proto.Uint64(^uint64(0))})
				root.Send(raft, &raftpb.Message{Type: raftpb.MessageType_MsgVote.Enum(), To: proto.Uint64(1), From: proto.Uint64(from),
					Term: proto.Uint64(^uint64(0)), Index: proto.Uint64(^uint64(0)), LogTerm: proto.Uint64(^uint64(0))})
			}
			root.Send(raft, &raftpb.Message{Type: raftpb.MessageType_MsgHup.Enum(), To: proto.Uint64(1), From: proto.Uint64(0)})
		}},
		{"Stop and Poison to the internal actors and the node actor", func(t *testing.T) {
			for _, id := range []string{"kstore/raft", "kstore/catalog", "kstore/watch", "kstore"} {
				pid := actor.NewPID(addr, id)
				root.Send(pid, &actor.PoisonPill{})
				root.Send(pid, &actor.Stop{})
			}
		}},
		{"reads sent straight to the catalog", func(t *testing.T) {
			catalog := actor.NewPID(addr, "kstore/catalog")
			root.Send(catalog, &messages.GetRequest{Key: put("x").GetKey()})
			root.RequestWithCustomSender(catalog, &messages.ListRequest{Version: "v1", Kind: "ConfigMap"}, node)
		}},
		{"a 70 MB request_id", func(t *testing.T) {
			cmd := put("big-request-id")
			cmd.RequestId = strings.Repeat("r", 70<<20)
			res, err := root.RequestFuture(node, cmd, 30*time.Second).Result()
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			r, ok := res.(*messages.CommandResult)
			if !ok || !messages.IsInvalid(r.GetStatus().Err()) || len(r.GetRequestId()) > messages.MaxRequestIDBytes {
				t.Fatalf("got %T with status %v and a request_id of %d bytes, want Invalid and no echo of it", res, r.GetStatus(), len(r.GetRequestId()))
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.send(t)
			serving(t, fmt.Sprintf("after-%d", i))
		})
	}
	if size := dirSize(t, filepath.Join(dir, "raft")); size > 256<<20 {
		t.Errorf("the Raft log holds %d MiB after the hostile cases: something oversized was stored", size>>20)
	}

	// Commands without a sender still in flight when the node stops: its stop answers the
	// proposals it holds, and must not trip over the ones with nobody to answer.
	for i := range 50 {
		root.Send(node, put(fmt.Sprintf("at-stop-%d", i)))
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("kstore serve exited %d on SIGTERM:\n%s", code, srv.log)
	}
	srv = startServer(t, bin, dir, addr, "--max-inflight-proposals", "1")
	k.waitLeader()
	for name, rv := range acked {
		o := parseObj(t, k.ok("", "get", "ConfigMap.v1/"+name, "-n", "hostile"))
		if o.meta("resourceVersion") != fmt.Sprint(rv) {
			t.Errorf("%s after the restart: resourceVersion %s, want %d", name, o.meta("resourceVersion"), rv)
		}
	}
	serving(t, "after-restart")
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.wait(t, 20*time.Second)
	if log := srv.log.String(); hasKstoreRace(log) || strings.Contains(log, "panic") {
		t.Errorf("the node reported a race or a panic:\n%s", log)
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
