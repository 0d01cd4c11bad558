package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/messages"
)

// kstore snapshot save | status | restore: backup and restore, as etcdctl snapshot save and
// etcdutl snapshot status | restore. The work is in actors (snapshot.go, restore.go) and the
// file format in catalogactor/backup.go; these commands parse flags and print.

// progressEvery is how often a save reports its progress on stderr.
const progressEvery = time.Second

func newSnapshotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save, inspect and restore snapshots of the catalog (backup and restore)",
		Long: `Back up a running cluster and restore the backup into a new cluster, as etcdctl snapshot
save and etcdutl snapshot status | restore do.

A snapshot is the catalog at one resourceVersion. restore makes the data dir of a member of a NEW
cluster (a new cluster id): restore the same file with the same --initial-cluster once per
member, then start each with kstore serve and the same --initial-cluster. The restored cluster
serves every object at the resourceVersion it had, and the next write gets a higher one.`,
		Example: `  kstore snapshot save backup.snap                  # from a running member
  kstore snapshot status backup.snap                # what the file holds; checks its checksum
  kstore snapshot restore backup.snap --data-dir d1 --node-id 1 \
      --initial-cluster 1=127.0.0.1:7451,2=127.0.0.1:7452,3=127.0.0.1:7453`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newSnapshotSaveCmd(g), newSnapshotStatusCmd(g), newSnapshotRestoreCmd(g))
	return cmd
}

// snapshotOutput is the JSON line save and status -o json print.
type snapshotOutput struct {
	ResourceVersion uint64 `json:"resource_version"`
	Compacted       uint64 `json:"compacted"`
	Objects         uint64 `json:"objects"`
	Size            int64  `json:"size"`
	SHA256          string `json:"sha256"`
	NodeID          uint64 `json:"node_id,omitempty"`
}

func outputOf(i actors.SnapshotInfo) snapshotOutput {
	return snapshotOutput{ResourceVersion: i.ResourceVersion, Compacted: i.Compacted, Objects: i.Objects, Size: i.Size, SHA256: i.SHA256, NodeID: i.NodeID}
}

func newSnapshotSaveCmd(g *globals) *cobra.Command {
	var (
		co          clientOptions
		consistency consistencyFlag
	)
	cmd := &cobra.Command{
		Use:   "save FILE",
		Short: "Save a snapshot of a running member's catalog to FILE",
		Long: `Save the catalog of the first member in --endpoints that answers, at one resourceVersion, to
FILE. The member reads its catalog in one read transaction and streams it in chunks, each
written and acknowledged before the next; the save writes FILE.part, syncs it and renames it to
FILE, so a save that fails leaves no FILE (an older FILE is replaced only by a complete one).

With --consistency linearizable (the default) the snapshot holds every write acknowledged
before the save began (the member confirms with the leader first, which needs a quorum);
serializable saves the member's own state, possibly stale, without a quorum.

Progress (bytes and objects so far) goes to stderr every second of a long save. At the end one
JSON line goes to stdout:
  {"resource_version":420,"compacted":1,"objects":1000,"size":812345,"sha256":"9f86d0...","node_id":1}`,
		Example: `  kstore snapshot save backup.snap --endpoints 127.0.0.1:7451`,
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			cons, err := consistency.parse()
			if err != nil {
				return err
			}
			c, err := co.connect(cmd, g)
			if err != nil {
				return err
			}
			defer c.Close()
			began := time.Now()
			last := began
			progress := func(p actors.SnapshotProgress) {
				if now := time.Now(); now.Sub(last) >= progressEvery {
					last = now
					fmt.Fprintf(g.errw, "saving: %d objects, %d bytes, %d chunks, %v\n", p.Objects, p.Bytes, p.Chunks, now.Sub(began).Round(time.Second))
				}
			}
			info, err := saveFile(args[0], func(f *os.File) (actors.SnapshotInfo, error) {
				return c.client.SaveSnapshotWith(cmd.Context(), f, actors.SaveOptions{Consistency: cons, Progress: progress})
			})
			if err != nil {
				return err
			}
			g.line(marshalJSON(outputOf(info)))
			return nil
		}),
	}
	consistency.add(cmd)
	addClientFlags(cmd, &co, false)
	return cmd
}

// saveFile runs save into path.part and, once it succeeded, syncs the file and renames it to
// path; on any failure it removes path.part.
func saveFile(path string, save func(*os.File) (actors.SnapshotInfo, error)) (actors.SnapshotInfo, error) {
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return actors.SnapshotInfo{}, invalid("cannot create %s: %v", part, err)
	}
	info, err := save(f)
	if err == nil {
		if err = f.Sync(); err != nil {
			err = messages.Errorf(messages.StatusReason_INTERNAL, "sync %s: %v", part, err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = messages.Errorf(messages.StatusReason_INTERNAL, "close %s: %v", part, cerr)
	}
	if err == nil {
		if rerr := os.Rename(part, path); rerr != nil {
			err = messages.Errorf(messages.StatusReason_INTERNAL, "rename %s to %s: %v", part, path, rerr)
		}
	}
	if err != nil {
		_ = os.Remove(part)
		return actors.SnapshotInfo{}, err
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		derr = d.Sync()
		d.Close()
		if derr != nil {
			return info, messages.Errorf(messages.StatusReason_INTERNAL, "sync the directory of %s: %v", path, derr)
		}
	}
	return info, nil
}

func newSnapshotStatusCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status FILE",
		Short: "Print what a snapshot file holds, and check it",
		Long: `Print a snapshot file's header (resourceVersion, compacted revision, objects, size and the
sha256 of its body) once the whole file has been checked: the header's own checksum, the
length, the body's sha256, and the chunks' digest of the catalog. A damaged or truncated file
is refused (exit status 1) with what is wrong. -o json prints one JSON line instead of the table:
  {"resource_version":420,"compacted":1,"objects":1000,"size":812345,"sha256":"9f86d0..."}`,
		Example: `  kstore snapshot status backup.snap
  kstore snapshot status backup.snap -o json`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if output != "" && output != outputJSON && output != "table" {
				return invalid("--output %q is not a format of snapshot status: give json, or leave -o out for a table", output)
			}
			info, err := verifyFile(args[0])
			if err != nil {
				return err
			}
			if output == outputJSON {
				g.line(marshalJSON(outputOf(info)))
				return nil
			}
			fmt.Fprintf(g.out, "%-16s %d\n%-16s %d\n%-16s %d\n%-16s %d\n%-16s %s\n",
				"resourceVersion", info.ResourceVersion, "compacted", info.Compacted, "objects", info.Objects,
				"size", info.Size, "sha256", info.SHA256)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "json: one JSON line; default: a table")
	return cmd
}

// verifyFile checks a whole snapshot file and returns its header.
func verifyFile(path string) (actors.SnapshotInfo, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return actors.SnapshotInfo{}, messages.Errorf(messages.StatusReason_NOT_FOUND, "no snapshot file %s", path)
	}
	if err != nil {
		return actors.SnapshotInfo{}, invalid("cannot open %s: %v", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return actors.SnapshotInfo{}, invalid("cannot read %s: %v", path, err)
	}
	h, err := catalogactor.VerifyBackup(f, st.Size())
	if err != nil {
		var e *messages.Error
		if errors.As(err, &e) {
			return actors.SnapshotInfo{}, &messages.Error{Reason: e.Reason, Message: path + ": " + e.Message}
		}
		return actors.SnapshotInfo{}, messages.Errorf(messages.StatusReason_INTERNAL, "%s: %v", path, err)
	}
	return actors.InfoOf(h), nil
}

func newSnapshotRestoreCmd(g *globals) *cobra.Command {
	var (
		cfg     actors.RestoreConfig
		initial string
	)
	cmd := &cobra.Command{
		Use:   "restore FILE --data-dir DIR",
		Short: "Make the data dir of a new cluster's member from a snapshot file",
		Long: `Make DIR, the data dir of member --node-id of a NEW cluster, from a snapshot file: the catalog
at the snapshot's resourceVersion, a Raft log that starts there with the --initial-cluster's
members (this node alone without it), and a new cluster identity (the old cluster's members
will not take the new ones for theirs). Restore the same file with the same --initial-cluster
once per member, then start each member with kstore serve --data-dir DIR --node-id N and the
same --initial-cluster.

DIR must not exist, or be empty. The whole file is checked first: a damaged or truncated file
is refused with what is wrong, and DIR is not created. The data dir is built in DIR.restore-tmp
and renamed to DIR at the end. One JSON line goes to stdout:
  {"data_dir":"d1","resource_version":420,"objects":1000,"cluster_id":"5e1f...","members":[1,2,3]}`,
		Example: `  kstore snapshot restore backup.snap --data-dir d1 --node-id 1 --initial-cluster 1=127.0.0.1:7451,2=127.0.0.1:7452,3=127.0.0.1:7453`,
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if cfg.DataDir == "" {
				return invalid("give --data-dir, the data dir to make (it must not exist, or be empty)")
			}
			if cfg.NodeID == 0 {
				return invalid("--node-id must be non-zero")
			}
			var err error
			if cfg.InitialCluster, err = parseInitialCluster(initial); err != nil {
				return err
			}
			cfg.File = args[0]
			if _, err := os.Stat(cfg.File); errors.Is(err, fs.ErrNotExist) {
				return messages.Errorf(messages.StatusReason_NOT_FOUND, "no snapshot file %s", cfg.File)
			}
			res, err := actors.Restore(cfg)
			if err != nil {
				return err
			}
			g.line(marshalJSON(struct {
				DataDir         string   `json:"data_dir"`
				ResourceVersion uint64   `json:"resource_version"`
				Compacted       uint64   `json:"compacted"`
				Objects         uint64   `json:"objects"`
				SHA256          string   `json:"sha256"`
				ClusterID       string   `json:"cluster_id"`
				Members         []uint64 `json:"members"`
			}{cfg.DataDir, res.ResourceVersion, res.Compacted, res.Objects, res.SHA256, res.ClusterID, res.Members}))
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "", "the data dir to make; it must not exist, or be empty")
	f.Uint64Var(&cfg.NodeID, "node-id", 1, "the Raft id of the member this data dir is for, non-zero")
	f.StringVar(&initial, "initial-cluster", "",
		"the new cluster's members, ID=HOST:PORT[,ID=HOST:PORT], --node-id among them, as serve takes it; empty: a cluster of this node alone")
	return cmd
}
