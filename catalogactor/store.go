package catalogactor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/zap"

	"github.com/kstore/kstore/messages"
)

// The catalog's Badger layout. Badger runs in managed mode: the commit timestamp of every write
// is the Raft index of the entry that made it, so "the state at resourceVersion N" is simply a
// read at timestamp N, and compaction is Badger's own discard of versions below a timestamp.
//
//	o\0group\0version\0kind\0namespace\0name  the object (canonical JSON), one version per change
//	c + index (8 bytes, big endian)           the change log: event type + object key, one per
//	                                          change, for watch resume and catch-up
//	p\0group\0version\0kind\0namespace\0name\0 + part number (1 byte)
//	                                          the parts of an object over partSize, whose o key
//	                                          then holds a header (partsMark, the part count)
//	m\0applied                                the last applied index, written with every batch
//	m\0compacted                              the oldest readable revision
//
// The applied index is written in the same batch as the changes. A batch Badger split and half
// wrote before a crash is harmless: replaying an entry reads its key at index-1 and writes the
// same bytes at the same timestamp again.
var (
	keyApplied   = []byte("m\x00applied")
	keyCompacted = []byte("m\x00compacted")
)

const (
	prefixObject = 'o'
	prefixChange = 'c'
	prefixPart   = 'p'
)

// Objects over partSize are stored in parts of at most partSize, all at the object's revision.
// Badger keeps a value at or over its value threshold (1 MiB) in its value log, whose files only
// value-log GC reclaims, and GC finds a file worth rewriting only from the discard counts that
// LSM compactions of the values' pointers leave: with large objects those pointers are few and
// small, the memtable holding them rarely fills, and the value log grew by every write (1.2 MiB
// objects overwritten 20 times a second: 6.5 GiB in 5 minutes with a history of 1,000
// revisions). In parts every byte stays in the LSM tree, whose compactions drop old versions as
// they go.
const (
	partSize  = 512 << 10
	partsMark = 0x01 // the first byte of a header; an object's canonical JSON starts with '{'
)

// partKey is the key of part i of the object at key.
func partKey(key []byte, i int) []byte {
	b := make([]byte, 0, len(key)+2)
	b = append(append(b, prefixPart), key[1:]...)
	return append(b, 0, byte(i))
}

// partsOf is how many parts an object of n bytes is stored in (0: whole).
func partsOf(n int) int {
	if n <= partSize {
		return 0
	}
	return (n + partSize - 1) / partSize
}

// putObject writes obj at key and revision ts, in parts when it is large, and deletes the parts
// of the previous version (prevLen bytes) that the new one does not overwrite.
func putObject(wb *badger.WriteBatch, key, obj []byte, prevLen int, ts uint64) error {
	n := partsOf(len(obj))
	if n == 0 {
		if err := wb.SetEntryAt(badger.NewEntry(key, obj), ts); err != nil {
			return err
		}
	} else {
		if err := wb.SetEntryAt(badger.NewEntry(key, []byte{partsMark, byte(n)}), ts); err != nil {
			return err
		}
		for i := range n {
			part := obj[i*partSize : min(len(obj), (i+1)*partSize)]
			if err := wb.SetEntryAt(badger.NewEntry(partKey(key, i), part), ts); err != nil {
				return err
			}
		}
	}
	return deleteParts(wb, key, n, partsOf(prevLen), ts)
}

// deleteObject deletes the object at key (prevLen bytes) at revision ts, with its parts.
func deleteObject(wb *badger.WriteBatch, key []byte, prevLen int, ts uint64) error {
	if err := wb.DeleteAt(key, ts); err != nil {
		return err
	}
	return deleteParts(wb, key, 0, partsOf(prevLen), ts)
}

func deleteParts(wb *badger.WriteBatch, key []byte, from, to int, ts uint64) error {
	for i := from; i < to; i++ {
		if err := wb.DeleteAt(partKey(key, i), ts); err != nil {
			return err
		}
	}
	return nil
}

// resolve turns the value stored at key into the object: a header's parts are read at txn's
// timestamp, which is the header's revision or a later one with the same parts.
func resolve(txn *badger.Txn, key, v []byte) ([]byte, error) {
	if len(v) != 2 || v[0] != partsMark {
		return v, nil
	}
	out := make([]byte, 0, int(v[1])*partSize)
	for i := range int(v[1]) {
		item, err := txn.Get(partKey(key, i))
		if err != nil {
			return nil, fmt.Errorf("catalogactor: part %d of %q: %w", i, key, err)
		}
		if err := item.Value(func(part []byte) error { out = append(out, part...); return nil }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// typePrefix is the key prefix of every object of one type, or of one type in one namespace
// when namespaced.
func typePrefix(group, version, kind string, namespace *string) []byte {
	n := 5 + len(group) + len(version) + len(kind)
	if namespace != nil {
		n += len(*namespace) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, prefixObject, 0)
	b = append(append(b, group...), 0)
	b = append(append(b, version...), 0)
	b = append(append(b, kind...), 0)
	if namespace != nil {
		b = append(append(b, *namespace...), 0)
	}
	return b
}

func objectKey(k *messages.ResourceKey) []byte {
	ns := k.GetNamespace()
	return append(typePrefix(k.GetGroup(), k.GetVersion(), k.GetKind(), &ns), k.GetName()...)
}

// parseObjectKey is the inverse of objectKey.
func parseObjectKey(b []byte) (*messages.ResourceKey, error) {
	parts := bytes.Split(b, []byte{0})
	if len(parts) != 6 || len(parts[0]) != 1 || parts[0][0] != prefixObject {
		return nil, fmt.Errorf("catalogactor: %q is not an object key", b)
	}
	return &messages.ResourceKey{Group: string(parts[1]), Version: string(parts[2]), Kind: string(parts[3]),
		Namespace: string(parts[4]), Name: string(parts[5])}, nil
}

func changeKey(index uint64) []byte {
	b := make([]byte, 9)
	b[0] = prefixChange
	binary.BigEndian.PutUint64(b[1:], index)
	return b
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// Options for opening the catalog's Badger database.
type StoreOptions struct {
	Dir    string
	Logger *zap.Logger
	// MemTableSize is the size of Badger's memtables; 0 takes DefaultMemTableSize. Below 8 MiB
	// the value threshold shrinks with it, as Badger requires.
	MemTableSize int64
	// InMemory keeps everything in memory (tests only).
	InMemory bool
}

// DefaultMemTableSize is Badger's own default: a transaction may hold about 15% of it, which
// leaves room for the largest object (1.5 MiB) in a batch of others.
const DefaultMemTableSize = 64 << 20

// BadgerOptions are the options the catalog opens Badger with, before its logger, memtable
// size and in-memory choice: the benchmark's Badger ceiling (bench/internal/limits) measures
// with them, changing only the syncing.
func BadgerOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		// The Raft log is the durable record; Badger is synced when the Raft log is compacted.
		WithSyncWrites(false).
		// The catalog is Badger's only writer, applying entries one after another.
		WithDetectConflicts(false).
		WithNumVersionsToKeep(1).
		WithBlockCacheSize(32 << 20).
		WithIndexCacheSize(16 << 20).
		WithNumCompactors(2).
		WithValueLogFileSize(64 << 20).
		// Uncompressed tables, as etcd's bbolt keeps its pages: with Snappy, a read of an
		// object's newest version decompressed a block that, under a retained history, is
		// mostly its older versions (10% of the node's CPU under gets, 16% under lists), and
		// every put reads the object it replaces. Off: 17% more puts/s, 12% more gets/s and
		// 29% more lists/s in two pairs of harness runs here, for twice the catalog's disk
		// (README, Performance). Tables written compressed stay readable: each table's
		// compression is in the manifest.
		WithCompression(options.None).
		WithMetricsEnabled(false)
}

// OpenStore opens (creating when missing) the catalog's Badger database in managed mode. Badger
// takes a lock on the directory: a second process opening it fails.
func OpenStore(o StoreOptions) (*badger.DB, error) {
	if !o.InMemory {
		if err := removeEmptyMemtables(o.Dir, o.Logger); err != nil {
			return nil, err
		}
	}
	opts := BadgerOptions(o.Dir).
		WithLogger(badgerLogger{o.Logger.Sugar()}).
		WithInMemory(o.InMemory)
	if o.MemTableSize > 0 {
		// Badger refuses a value threshold above its largest batch, 15% of the memtable.
		opts = opts.WithMemTableSize(o.MemTableSize).
			WithValueThreshold(min(opts.ValueThreshold, o.MemTableSize*15/100/2))
	}
	if o.InMemory {
		opts = opts.WithDir("").WithValueDir("")
	}
	return badger.OpenManaged(opts)
}

// get reads the object at key as of txn's timestamp; nil when absent.
func get(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return resolve(txn, key, v)
}

// loadMeta reads the applied index and the compacted revision.
func loadMeta(db *badger.DB) (applied, compacted uint64, err error) {
	txn := db.NewTransactionAt(^uint64(0), false)
	defer txn.Discard()
	for _, m := range []struct {
		key []byte
		v   *uint64
	}{{keyApplied, &applied}, {keyCompacted, &compacted}} {
		b, err := get(txn, m.key)
		if err != nil {
			return 0, 0, err
		}
		if len(b) == 8 {
			*m.v = binary.BigEndian.Uint64(b)
		}
	}
	return applied, compacted, nil
}

type badgerLogger struct{ s *zap.SugaredLogger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.s.Errorf("badger: "+f, a...) }
func (l badgerLogger) Warningf(f string, a ...any) { l.s.Warnf("badger: "+f, a...) }
func (l badgerLogger) Infof(f string, a ...any)    { l.s.Debugf("badger: "+f, a...) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.s.Debugf("badger: "+f, a...) }

// syncStore makes everything Badger has written so far durable, then records index, the last
// entry applied before it began, as the durable point. DB.Sync alone does not make it durable:
// it syncs the active memtable's write-ahead log and the value log, but a memtable Badger
// rotated out (up to MemTableSize of writes, tens of thousands of entries) stays in the page
// cache until it is flushed to a table, and a power loss then loses it. Once the Raft log is
// compacted behind Durable, those entries exist nowhere else. So after DB.Sync, every file in
// Badger's directories is fsynced (an fsync of a file that has nothing dirty costs one system
// call), then the directories themselves, for files created since the last sync. A file that
// vanishes meanwhile was a memtable's log flushed to a table, which Badger syncs before it
// deletes the log.
func syncStore(db *badger.DB, index uint64) error {
	if err := db.Sync(); err != nil {
		return err
	}
	o := db.Opts()
	if o.InMemory {
		return nil
	}
	dirs := []string{o.Dir}
	if o.ValueDir != o.Dir {
		dirs = append(dirs, o.ValueDir)
	}
	for _, dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return writeDurable(durablePath(db), index)
}

// syncDir fsyncs every regular file in dir, then dir.
func syncDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := syncFile(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return syncFile(dir)
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("catalogactor: fsync %s: %w", path, err)
	}
	return nil
}

// The durable point is the index up to which everything the catalog applied is on disk: syncStore
// returned after it. It is kept outside Badger, in a file beside its directory (catalog.durable),
// written after the sync and atomically (a temporary file, fsynced, renamed, the directory
// fsynced), and only then is the raft actor told Durable, so the Raft log never drops an entry
// that a power loss could take from the catalog. Badger's own applied index cannot serve: after
// a power loss what it recovers is not a prefix of what was written (the newest memtable's log
// may be on disk while an older one's is not), so its applied index may be ahead of what it
// holds. At start the catalog applies again every entry after the durable point.

// durablePath is the durable-point file of a Badger database, "" for an in-memory one.
func durablePath(db *badger.DB) string {
	o := db.Opts()
	if o.InMemory {
		return ""
	}
	return filepath.Clean(o.Dir) + ".durable"
}

// openDurable reads the durable point. A catalog without the file is either new (applied 1),
// which starts its file, or was written by a kstore that trusted Badger's applied index, which
// is taken as it was trusted then.
func openDurable(db *badger.DB, applied uint64, log *zap.Logger) (uint64, error) {
	path := durablePath(db)
	if path == "" {
		return applied, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if applied > 1 {
			log.Warn("the catalog has no durable-point file (written by an older kstore): its applied index is taken as durable", zap.String("file", path), zap.Uint64("applied", applied))
		}
		return applied, writeDurable(path, applied)
	}
	if err != nil {
		return 0, fmt.Errorf("catalogactor: read %s: %w", path, err)
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("catalogactor: %s holds %d bytes, not a durable point: the catalog's directory is damaged", path, len(b))
	}
	d := binary.BigEndian.Uint64(b)
	if d > applied {
		return 0, fmt.Errorf("catalogactor: the catalog says it applied up to index %d, but its durable point (%s) is %d: Badger lost writes it had synced; the data dir is damaged", applied, path, d)
	}
	return d, nil
}

// writeDurable replaces the durable-point file, durably.
func writeDurable(path string, index uint64) error {
	if err := writeFileDurably(path, u64(index)); err != nil {
		return fmt.Errorf("catalogactor: durable point %d: %w", index, err)
	}
	return nil
}

// gcValueLog rewrites value-log files of which at least half is garbage, until none is left or
// stop is closed, and reports how many it rewrote. In managed mode Badger keeps every version
// at or above the discard timestamp (the compacted revision), so GC never takes history a read
// may still ask for.
func gcValueLog(db *badger.DB, stop <-chan struct{}) (int, error) {
	const discardRatio = 0.5 // rewrite a file once half of it is garbage, as Badger's docs advise
	for n := 0; ; n++ {
		select {
		case <-stop:
			return n, nil
		default:
		}
		err := db.RunValueLogGC(discardRatio)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// removeEmptyMemtables removes the memtable logs (*.mem) of zero bytes in dir. Badger creates a
// memtable's log when it rotates to it and sizes it in a second step; a power loss between the
// two can leave the file's directory entry on disk with no content. Badger (v4.9.6,
// openMemTables) then fails to open at every start ("while opening fid: N err: Create a new
// file"). Such a log holds no entry, and whatever the catalog wrote after its durable point is
// applied again from the Raft log anyway.
func removeEmptyMemtables(dir string, log *zap.Logger) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("catalogactor: read %s: %w", dir, err)
	}
	removed := false
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".mem") {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() != 0 {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("catalogactor: remove the empty memtable log %s: %w", path, err)
		}
		if log != nil {
			log.Warn("removed an empty memtable log a power loss left behind", zap.String("file", path))
		}
		removed = true
	}
	if removed {
		return syncFile(dir)
	}
	return nil
}
