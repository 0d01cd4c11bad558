package actors

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/raftactor/wal"
)

// Restoring a backup file into the data dir of a member of a new cluster (kstore snapshot
// restore, as etcdutl snapshot restore). What it makes, in DIR.restore-tmp, renamed to DIR at
// the end (a restore that fails leaves DIR as it was):
//
//	catalog/          the catalog at the file's resourceVersion, history from its compacted
//	                  revision, durable (catalog.durable beside it says so)
//	raft/             a Raft log whose snapshot is at the resourceVersion (term 1) with the
//	                  initial cluster's members as voters, and a HardState committing it
//	member.json       the node id, a new random identity, and a new cluster id: a digest of the
//	                  initial cluster and the file's checksum, not the old cluster's
//
// Every member restored from the same file with the same initial cluster gets the same log
// start and cluster id, so they form one cluster; raft's first election moves to term 2 and the
// first entry, the new leader's, goes at resourceVersion + 1: every object keeps its
// resourceVersion and the next write gets a higher one.

// RestoreConfig says what Restore makes.
type RestoreConfig struct {
	// File is the backup file (kstore snapshot save).
	File string
	// DataDir is the data dir to make: missing, or an empty directory.
	DataDir string
	// NodeID is the member's Raft id, non-zero; default 1.
	NodeID uint64
	// InitialCluster names the new cluster's members, NodeID among them, as serve's
	// InitialCluster; empty makes a cluster of this node alone.
	InitialCluster map[uint64]string
	Logger         *zap.Logger
}

// RestoreInfo is what Restore made.
type RestoreInfo struct {
	SnapshotInfo
	ClusterID string
	Members   []uint64
}

// Restore makes cfg.DataDir from a backup file. It checks the whole file first (header, length,
// checksum, the chunks' own digest): a damaged file is refused with Invalid, naming what is
// wrong, and nothing is created. A DataDir that exists and is not empty is refused with
// AlreadyExists.
func Restore(cfg RestoreConfig) (RestoreInfo, error) {
	cfg.NodeID = cmp.Or(cfg.NodeID, 1)
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.DataDir == "" {
		return RestoreInfo{}, messages.Errorf(messages.StatusReason_INVALID, "give the data dir to restore into")
	}
	members := []uint64{cfg.NodeID}
	if len(cfg.InitialCluster) > 0 {
		if _, ok := cfg.InitialCluster[cfg.NodeID]; !ok {
			return RestoreInfo{}, messages.Errorf(messages.StatusReason_INVALID,
				"the initial cluster %s has no member %d, this node's id: give --node-id of one of its members", formatMembers(cfg.InitialCluster), cfg.NodeID)
		}
		if _, ok := cfg.InitialCluster[0]; ok {
			return RestoreInfo{}, messages.Errorf(messages.StatusReason_INVALID, "the initial cluster has a member with id 0: ids must be non-zero")
		}
		members = slices.Sorted(maps.Keys(cfg.InitialCluster))
	}
	dir := filepath.Clean(cfg.DataDir)
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return RestoreInfo{}, messages.Errorf(messages.StatusReason_ALREADY_EXISTS,
			"the data dir %s exists and is not empty: restore into a new directory (a restore makes a new cluster's data dir, it never merges)", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return RestoreInfo{}, messages.Errorf(messages.StatusReason_INVALID, "the data dir %s: %v", dir, err)
	}

	f, err := os.Open(cfg.File)
	if err != nil {
		return RestoreInfo{}, messages.Errorf(messages.StatusReason_NOT_FOUND, "cannot open the snapshot file: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return RestoreInfo{}, messages.Errorf(messages.StatusReason_INTERNAL, "cannot read the snapshot file: %v", err)
	}
	if _, err := catalogactor.VerifyBackup(f, st.Size()); err != nil {
		return RestoreInfo{}, fileError(cfg.File, err)
	}

	tmp := dir + ".restore-tmp"
	// A restore-tmp dir is what an interrupted restore left: never a data dir in use.
	if err := os.RemoveAll(tmp); err != nil {
		return RestoreInfo{}, messages.Errorf(messages.StatusReason_INTERNAL, "remove %s, left by an earlier restore: %v", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return RestoreInfo{}, messages.Errorf(messages.StatusReason_INTERNAL, "create %s: %v", tmp, err)
	}
	info, err := buildDataDir(cfg, f, st.Size(), tmp, members)
	if err == nil {
		err = rename(tmp, dir)
	}
	if err != nil {
		if rerr := os.RemoveAll(tmp); rerr != nil {
			cfg.Logger.Warn("remove the restore's temporary dir", zap.String("dir", tmp), zap.Error(rerr))
		}
		return RestoreInfo{}, err
	}
	return info, nil
}

// fileError names the file in a refusal of it; the damage's own message says what is wrong.
func fileError(path string, err error) error {
	var e *messages.Error
	if errors.As(err, &e) {
		return &messages.Error{Reason: e.Reason, Message: fmt.Sprintf("%s: %s", path, e.Message)}
	}
	return messages.Errorf(messages.StatusReason_INTERNAL, "%s: %v", path, err)
}

// buildDataDir makes the data dir's contents in tmp.
func buildDataDir(cfg RestoreConfig, f *os.File, size int64, tmp string, members []uint64) (RestoreInfo, error) {
	h, err := catalogactor.RestoreCatalog(f, size, filepath.Join(tmp, "catalog"), cfg.Logger)
	if err != nil {
		return RestoreInfo{}, fileError(cfg.File, err)
	}
	if err := writeRestoredLog(filepath.Join(tmp, "raft"), h.ResourceVersion, members, cfg.Logger); err != nil {
		return RestoreInfo{}, messages.Errorf(messages.StatusReason_INTERNAL, "write the Raft log: %v", err)
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails on Linux
	id := identity{NodeID: cfg.NodeID, Identity: hex.EncodeToString(raw[:]), ClusterID: restoredClusterID(cfg.NodeID, cfg.InitialCluster, h.Checksum())}
	if len(cfg.InitialCluster) > 0 {
		id.InitialCluster = maps.Clone(cfg.InitialCluster)
	}
	if err := saveIdentity(tmp, id); err != nil {
		return RestoreInfo{}, messages.Errorf(messages.StatusReason_INTERNAL, "%v", err)
	}
	return RestoreInfo{SnapshotInfo: InfoOf(h), ClusterID: id.ClusterID, Members: members}, nil
}

// restoredClusterID is the new cluster's id: the same for every member restored from one file
// with one initial cluster, and never the id of the cluster the file was saved from (etcdutl's
// rule: the restored cluster is a new one, which the old members must not take for theirs).
func restoredClusterID(nodeID uint64, initial map[uint64]string, checksum string) string {
	members := formatMembers(initial)
	if len(initial) == 0 {
		members = fmt.Sprintf("%d (alone)", nodeID)
	}
	sum := sha256.Sum256([]byte("kstore restore\x00" + members + "\x00" + checksum))
	return hex.EncodeToString(sum[:8])
}

// writeRestoredLog makes a Raft log that starts after index: its snapshot record at index,
// term 1, with members as voters, and a HardState that commits it (as OpenLog bootstraps a new
// log at index 1).
func writeRestoredLog(dir string, index uint64, members []uint64, log *zap.Logger) error {
	w, st, err := wal.Open(dir, wal.Options{Logger: log})
	if err != nil {
		return err
	}
	if st.Snapshot != nil || st.HardState != nil || len(st.Entries) > 0 {
		w.Close()
		return fmt.Errorf("the Raft log in %s is not empty", dir)
	}
	meta := &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(1), ConfState: &raftpb.ConfState{Voters: slices.Clone(members)}}
	err = w.SaveSnapshot(meta)
	if err == nil {
		err = w.Save(&raftpb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(index)}, nil, true)
	}
	return errors.Join(err, w.Close())
}

// rename moves the finished tmp to dir (an empty dir is replaced) durably.
func rename(tmp, dir string) error {
	for _, d := range []string{tmp, filepath.Join(tmp, "raft")} {
		if err := syncPath(d); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return messages.Errorf(messages.StatusReason_INTERNAL, "move the restored data dir into place: %v", err)
	}
	return syncPath(filepath.Dir(dir))
}

func syncPath(path string) error {
	d, err := os.Open(path)
	if err == nil {
		err = errors.Join(d.Sync(), d.Close())
	}
	if err != nil {
		return messages.Errorf(messages.StatusReason_INTERNAL, "sync %s: %v", path, err)
	}
	return nil
}
