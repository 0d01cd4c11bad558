package actors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/messages"
)

// listPods lists every pod of a node as name → resourceVersion and object.
func listPods(t *testing.T, c *Client, rv uint64) (map[string]string, uint64) {
	t.Helper()
	res, err := c.List(context.Background(), &messages.ListRequest{Version: "v1", Kind: "Pod", ResourceVersion: rv})
	if err != nil {
		t.Fatalf("list pods at %d: %v", rv, err)
	}
	out := map[string]string{}
	for _, b := range res.GetItems() {
		u, err := DecodeUnstructured(b)
		if err != nil {
			t.Fatal(err)
		}
		out[u.GetName()] = string(b)
	}
	return out, res.GetResourceVersion()
}

// TestSnapshotSaveRestore saves a node's catalog through the client, restores the file into a
// new data dir and starts a node there: it serves every object as it was at the snapshot's
// resourceVersion, is a new cluster, and its next write gets a higher resourceVersion.
func TestSnapshotSaveRestore(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions...)
	n, err := Start(Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := NewClientPIDs(n.System(), []*actor.PID{n.PID()}, 0)
	ctx := context.Background()
	for i := range 30 {
		if _, err := c.Put(ctx, pod(fmt.Sprintf("p%02d", i)), messages.Reason_OPERATOR); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Delete(ctx, &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "p03"}, 0, messages.Reason_OPERATOR); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "b.snap")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	var progress []SnapshotProgress
	info, err := c.SaveSnapshotWith(ctx, f, SaveOptions{Progress: func(p SnapshotProgress) { progress = append(progress, p) }})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	want, listRV := listPods(t, c, info.ResourceVersion)
	n.Stop()
	if len(want) != 29 || info.Objects != 29 || listRV != info.ResourceVersion || info.NodeID != 1 || len(progress) == 0 {
		t.Fatalf("saved %+v after %d progress reports; %d pods listed at %d: want 29 objects at the list's revision, from node 1", info, len(progress), len(want), listRV)
	}
	st, err := os.Stat(file)
	if err != nil || st.Size() != info.Size {
		t.Fatalf("the file is %v bytes (%v), the save says %d", st.Size(), err, info.Size)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	res, err := Restore(RestoreConfig{File: file, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.SnapshotInfo.ResourceVersion != info.ResourceVersion || res.SHA256 != info.SHA256 || len(res.Members) != 1 {
		t.Fatalf("restored %+v, saved %+v", res, info)
	}
	if _, err := os.Stat(dir + ".restore-tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the restore left its temporary dir: %v", err)
	}
	r, err := Start(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	rc := NewClientPIDs(r.System(), []*actor.PID{r.PID()}, 0)
	for _, rv := range []uint64{info.ResourceVersion, 0} {
		got, _ := listPods(t, rc, rv)
		if len(got) != len(want) {
			t.Fatalf("the restored node lists %d pods at %d, the source %d", len(got), rv, len(want))
		}
		for name, obj := range want {
			if got[name] != obj {
				t.Fatalf("pod %s at %d: restored %s, saved %s", name, rv, got[name], obj)
			}
		}
	}
	st2, err := rc.Status(ctx)
	if err != nil || st2.GetClusterId() == "" || st2.GetClusterId() != res.ClusterID {
		t.Fatalf("restored node's status %v %v: want cluster id %s", st2, err, res.ClusterID)
	}
	put, err := rc.Put(ctx, pod("new"), messages.Reason_OPERATOR)
	if err != nil || put.GetResourceVersion() <= info.ResourceVersion {
		t.Fatalf("a write to the restored node: %v %v, want a resourceVersion above %d", put, err, info.ResourceVersion)
	}
}

// TestRestoreRefuses: a restore into a data dir that holds files, of a file that is damaged, or
// for a node outside the initial cluster changes nothing on disk.
func TestRestoreRefuses(t *testing.T) {
	file := savedFile(t)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(b []byte) string {
		p := filepath.Join(t.TempDir(), "f.snap")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 1
	tests := []struct {
		name   string
		cfg    RestoreConfig
		reason messages.StatusReason
		want   string
	}{
		{"dir not empty", RestoreConfig{File: file, DataDir: full}, messages.StatusReason_ALREADY_EXISTS, "is not empty"},
		{"flipped byte", RestoreConfig{File: write(flipped)}, messages.StatusReason_INVALID, "body's sha256"},
		{"truncated", RestoreConfig{File: write(good[:len(good)-7])}, messages.StatusReason_INVALID, "truncated"},
		{"not a snapshot", RestoreConfig{File: write([]byte("hello, world: not a snapshot of anything at all, long enough for a header........"))},
			messages.StatusReason_INVALID, "not a kstore snapshot file"},
		{"node outside the cluster", RestoreConfig{File: file, NodeID: 4, InitialCluster: map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.1:2"}},
			messages.StatusReason_INVALID, "has no member 4"},
		{"no file", RestoreConfig{File: filepath.Join(t.TempDir(), "missing")}, messages.StatusReason_NOT_FOUND, "cannot open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.DataDir == "" {
				tt.cfg.DataDir = filepath.Join(t.TempDir(), "d")
			}
			_, err := Restore(tt.cfg)
			var e *messages.Error
			if !errors.As(err, &e) || e.Reason != tt.reason || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("Restore: %v; want %s saying %q", err, messages.ReasonName(tt.reason), tt.want)
			}
			if tt.cfg.DataDir == full {
				ents, _ := os.ReadDir(full)
				if len(ents) != 1 {
					t.Fatalf("the refused restore changed %s: %d entries", full, len(ents))
				}
			} else if _, err := os.Stat(tt.cfg.DataDir); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the refused restore made %s (%v)", tt.cfg.DataDir, err)
			}
			if _, err := os.Stat(tt.cfg.DataDir + ".restore-tmp"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the refused restore left %s.restore-tmp", tt.cfg.DataDir)
			}
		})
	}
	// Members restored from one file with one initial cluster share the cluster id, a new one.
	initial := map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3"}
	var ids []string
	for id := uint64(1); id <= 3; id++ {
		res, err := Restore(RestoreConfig{File: file, DataDir: filepath.Join(t.TempDir(), "m"), NodeID: id, InitialCluster: initial})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ClusterID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] || ids[0] == clusterID(initial) {
		t.Fatalf("cluster ids of three restored members %v: want one, not the id of a cluster started with the same members (%s)", ids, clusterID(initial))
	}
}

// savedFile saves a small node's catalog into a file, serializably.
func savedFile(t *testing.T) string {
	t.Helper()
	n, err := Start(Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	c := NewClientPIDs(n.System(), []*actor.PID{n.PID()}, 0)
	if _, err := c.Put(context.Background(), pod("a"), messages.Reason_OPERATOR); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "b.snap")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Serializable: the node's own state, without the read barrier the other test goes through.
	if _, err := c.SaveSnapshotWith(context.Background(), f, SaveOptions{Consistency: messages.Consistency_SERIALIZABLE}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	if _, err := catalogactor.VerifyBackup(strings.NewReader(string(b)), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	return file
}
