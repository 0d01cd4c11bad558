package catalogactor

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
)

// Raft snapshots of the catalog, as plain functions for the actor to call: exportSnapshot reads
// the catalog at one Raft index into chunks; a snapshotInstaller writes chunks into a fresh
// staging directory; installStaged swaps the staged catalog for the live one, and recoverInstall,
// at start, finishes or undoes a swap that a crash interrupted.
//
// What a snapshot at index ts carries. Its floor F is the compacted revision (below). It holds
// what the catalog's reads at every revision in [F, ts] see, and nothing that depends on how
// the source happened to batch its entries or how far Badger's compactions got:
//   - of every key, each version above F (puts and deletes, at their own version, so that a
//     read between two versions sees what it sees on the source), and the newest version at or
//     below F unless it is a delete: a read at r in [F, ts] sees the newest version at or below
//     r, which is one of these. Older versions, which Badger discards when it gets to them, are
//     left out.
//   - the change log from F on only: it is read from the compacted revision on (readChanges),
//     and the records below it are deleted at the index of the compaction that dropped them,
//     which depends on batch boundaries.
//   - the meta keys as one version each, at ts: applied = ts (ts may fall inside a batch, whose
//     applied key says the batch's end) and compacted = F.
//
// F is the larger of the compacted revision as of ts and the newest one: after ts the catalog
// may have compacted further and let Badger discard versions below the newer revision, so only
// from there on is the history complete. The receiver's catalog then starts with compacted F.
//
// Two catalogs that applied the same log carry the same records for the same ts and F, whatever
// their batches: every object version is written at its entry's index.

// The chunk format, version snapshotFormat; integers are uvarints:
//
//	chunk  = format (1 byte) | ts | floor | seq | record...     seq counts chunks from 0
//	record = kind (1 byte) | version | len(key) | len(value) | key | value
//	end    = recEnd (1 byte) | records | sha256 (32 bytes)       the last record of the last chunk
//
// kind is recPut or recDelete (a delete has no value). The end record's sha256 is Digest's: over
// the format byte, then every put and delete record's bytes in order. Every chunk names its
// snapshot (ts and floor) and its place (seq), so a receiver refuses a chunk of another snapshot,
// a chunk out of order, and (by the end record) a snapshot that lost or changed a record.
const (
	snapshotFormat = 1

	recPut    = 1
	recDelete = 2
	recEnd    = 3

	// snapshotPendingCommits bounds the installer's WriteBatch commits in flight (Badger's
	// default is 16, up to 16 x 15% of a memtable of records held in memory).
	snapshotPendingCommits = 2

	// recordHeaderMax bounds a record's header: a kind byte and three uvarints.
	recordHeaderMax = 1 + 3*binary.MaxVarintLen64
)

var (
	// errSnapshotMismatch: a chunk of another snapshot (another ts or floor) than the first one.
	errSnapshotMismatch = errors.New("catalogactor: snapshot chunk belongs to another snapshot")
	// errSnapshotDamaged: a chunk that does not decode, out of order, or a snapshot whose records
	// do not match its end record.
	errSnapshotDamaged = errors.New("catalogactor: snapshot is damaged")
	// errSnapshotIncomplete: finish before the end record.
	errSnapshotIncomplete = errors.New("catalogactor: snapshot is incomplete")
	// errSnapshotCompacted: the catalog compacted past the snapshot's index.
	errSnapshotCompacted = errors.New("catalogactor: snapshot index is compacted")
)

// exportSnapshot reads the catalog at Raft index ts (at most its applied index) in one read
// transaction and hands it to emit in chunks of at most about maxChunk bytes: a record bigger
// than maxChunk goes alone in its chunk (stored values are at most partSize, so a chunk stays
// below maxChunk + partSize). emit owns each chunk it is given; exportSnapshot holds no more than
// the chunk it is filling. It reads Badger only, so a reader goroutine may run it beside the
// actor's writes: the iterator pins the tables it reads, whatever the catalog compacts meanwhile.
func exportSnapshot(db *badger.DB, ts uint64, maxChunk int, emit func(chunk []byte) error) error {
	if maxChunk <= 0 {
		return fmt.Errorf("catalogactor: snapshot chunk size %d: give a positive size", maxChunk)
	}
	w := &chunkWriter{ts: ts, max: maxChunk, emit: emit, h: newDigestHash()}
	if err := walkSnapshot(db, ts, 0, w.begin, w.record); err != nil {
		return err
	}
	return w.end()
}

// Digest is the hex SHA-256 of what a snapshot of the catalog db at Raft index ts carries (see
// exportSnapshot): every key, version, delete flag and value, in order. Two catalogs with the
// same digest at ts answer every read at revisions from their compacted revision to ts alike; a
// snapshot's receiver has the digest of its source. Replicas compact at indices that depend on
// their batches: to compare replicas, use DigestFrom with a revision no replica compacted past.
func Digest(db *badger.DB, ts uint64) (string, error) {
	return DigestFrom(db, 0, ts)
}

// DigestFrom is Digest of the reads at revisions [from, ts] only, as if the catalog had compacted
// to from; from below the catalog's compacted revision takes that (0: the catalog's own), and
// from above ts is refused.
func DigestFrom(db *badger.DB, from, ts uint64) (string, error) {
	if from > ts {
		return "", fmt.Errorf("catalogactor: digest of revisions %d to %d: give from <= ts", from, ts)
	}
	h := newDigestHash()
	var hdr [recordHeaderMax]byte
	err := walkSnapshot(db, ts, from, nil, func(kind byte, version uint64, key, value []byte) error {
		h.Write(appendRecordHeader(hdr[:0], kind, version, len(key), len(value)))
		h.Write(key)
		h.Write(value)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func newDigestHash() hash.Hash {
	h := sha256.New()
	h.Write([]byte{snapshotFormat})
	return h
}

// walkSnapshot calls record for every record a snapshot of db at ts carries, in order, after
// begin (when set) with the snapshot's floor: the larger of the catalog's compacted revision as
// of ts, its newest one, and minFloor. value is valid only during the call.
func walkSnapshot(db *badger.DB, ts, minFloor uint64, begin func(floor uint64) error,
	record func(kind byte, version uint64, key, value []byte) error) error {
	if ts == 0 {
		return errors.New("catalogactor: snapshot at index 0: give an applied index")
	}
	txn := db.NewTransactionAt(ts, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{AllVersions: true})
	defer it.Close()
	// The newest meta is read once the iterator holds its tables. Badger's discard timestamp is
	// never above the compacted revision written before it was set (compactTo, openCatalog), so
	// everything the iterator reads above the newest compacted revision is complete.
	applied, newest, err := loadMeta(db)
	if err != nil {
		return fmt.Errorf("catalogactor: snapshot at %d: %w", ts, err)
	}
	if max(applied, 1) < ts {
		return fmt.Errorf("catalogactor: snapshot at %d: the catalog has applied only up to %d", ts, applied)
	}
	b, err := get(txn, keyCompacted)
	if err != nil {
		return fmt.Errorf("catalogactor: snapshot at %d: %w", ts, err)
	}
	floor := max(newest, minFloor)
	if len(b) == 8 {
		floor = max(floor, binary.BigEndian.Uint64(b))
	}
	if floor > ts {
		return fmt.Errorf("%w: the catalog's history starts at revision %d, after index %d; take the snapshot at a newer index", errSnapshotCompacted, floor, ts)
	}
	if begin != nil {
		if err := begin(floor); err != nil {
			return err
		}
	}

	// The meta keys, written as one version at ts, in their place in key order.
	meta := []struct {
		key []byte
		v   uint64
	}{{keyApplied, ts}, {keyCompacted, floor}}
	var (
		cur     []byte // the key whose versions are being read
		last    uint64 // the version of cur read last
		done    bool   // cur's newest version at or below the floor was read
		skipped bool   // cur is left out whole
	)
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		key := item.Key()
		for len(meta) > 0 && bytes.Compare(meta[0].key, key) <= 0 {
			if err := record(recPut, ts, meta[0].key, u64(meta[0].v)); err != nil {
				return err
			}
			meta = meta[1:]
		}
		v := item.Version()
		if !bytes.Equal(key, cur) {
			cur, last, done = append(cur[:0], key...), 0, false
			skipped = bytes.Equal(key, keyApplied) || bytes.Equal(key, keyCompacted) ||
				(len(key) == 9 && key[0] == prefixChange && binary.BigEndian.Uint64(key[1:]) < floor)
		} else if v >= last {
			continue // the same version again; the merge of Badger's levels should not give it
		}
		last = v
		if skipped || done {
			continue
		}
		if v <= floor {
			done = true
		}
		if item.IsDeletedOrExpired() {
			if v > floor {
				if err := record(recDelete, v, key, nil); err != nil {
					return err
				}
			}
			continue
		}
		err := item.Value(func(val []byte) error { return record(recPut, v, key, val) })
		if err != nil {
			return fmt.Errorf("catalogactor: snapshot at %d: read %q@%d: %w", ts, key, v, err)
		}
	}
	for _, m := range meta {
		if err := record(recPut, ts, m.key, u64(m.v)); err != nil {
			return err
		}
	}
	return nil
}

func appendRecordHeader(b []byte, kind byte, version uint64, klen, vlen int) []byte {
	b = append(b, kind)
	b = binary.AppendUvarint(b, version)
	b = binary.AppendUvarint(b, uint64(klen))
	return binary.AppendUvarint(b, uint64(vlen))
}

// chunkWriter cuts records into chunks.
type chunkWriter struct {
	ts, floor uint64
	seq       uint64 // of the chunk being filled
	count     uint64 // records so far
	max       int
	buf       []byte // the chunk being filled
	hdr       int    // bytes of buf's chunk header
	h         hash.Hash
	emit      func([]byte) error
}

func (w *chunkWriter) begin(floor uint64) error {
	w.floor = floor
	w.start()
	return nil
}

func (w *chunkWriter) start() {
	w.buf = make([]byte, 0, min(w.max, 256<<10)+recordHeaderMax)
	w.buf = append(w.buf, snapshotFormat)
	w.buf = binary.AppendUvarint(w.buf, w.ts)
	w.buf = binary.AppendUvarint(w.buf, w.floor)
	w.buf = binary.AppendUvarint(w.buf, w.seq)
	w.hdr = len(w.buf)
}

// room makes room for n more bytes: a chunk that has records and would pass max goes out first.
func (w *chunkWriter) room(n int) error {
	if len(w.buf) == w.hdr || len(w.buf)+n <= w.max {
		return nil
	}
	chunk := w.buf
	w.buf = nil
	w.seq++
	if err := w.emit(chunk); err != nil {
		return err
	}
	w.start()
	return nil
}

func (w *chunkWriter) record(kind byte, version uint64, key, value []byte) error {
	var scratch [recordHeaderMax]byte
	hdr := appendRecordHeader(scratch[:0], kind, version, len(key), len(value))
	if err := w.room(len(hdr) + len(key) + len(value)); err != nil {
		return err
	}
	from := len(w.buf)
	w.buf = append(append(append(w.buf, hdr...), key...), value...)
	w.h.Write(w.buf[from:])
	w.count++
	return nil
}

func (w *chunkWriter) end() error {
	rec := binary.AppendUvarint([]byte{recEnd}, w.count)
	rec = w.h.Sum(rec)
	if err := w.room(len(rec)); err != nil {
		return err
	}
	chunk := append(w.buf, rec...)
	w.buf = nil
	return w.emit(chunk)
}

// snapChunk is a decoded chunk; its records' slices point into the chunk.
type snapChunk struct {
	ts, floor, seq uint64
	records        []snapRecord
	end            *snapEnd // set in the last chunk
}

type snapRecord struct {
	kind       byte
	version    uint64
	key, value []byte
	raw        []byte // the record's bytes, as the digest hashes them
}

type snapEnd struct {
	count uint64
	sum   []byte
}

// parseChunk decodes a chunk; it checks the encoding only.
func parseChunk(b []byte) (snapChunk, error) {
	var c snapChunk
	d := chunkDecoder{b: b}
	if f := d.u8(); d.err == nil && f != snapshotFormat {
		return c, fmt.Errorf("%w: chunk format %d, this kstore reads %d", errSnapshotDamaged, f, snapshotFormat)
	}
	c.ts, c.floor, c.seq = d.uvarint(), d.uvarint(), d.uvarint()
	for d.err == nil && d.off < len(b) {
		if c.end != nil {
			d.fail("bytes after the end record")
			break
		}
		from := d.off
		switch kind := d.u8(); kind {
		case recPut, recDelete:
			r := snapRecord{kind: kind, version: d.uvarint()}
			klen, vlen := d.uvarint(), d.uvarint()
			r.key, r.value = d.next(klen), d.next(vlen)
			r.raw = b[from:d.off]
			switch {
			case d.err != nil:
			case r.version == 0 || r.version > c.ts:
				d.fail(fmt.Sprintf("a record at version %d, outside [1, %d]", r.version, c.ts))
			case len(r.key) == 0:
				d.fail("a record without a key")
			case kind == recDelete && len(r.value) > 0:
				d.fail("a delete with a value")
			}
			c.records = append(c.records, r)
		case recEnd:
			c.end = &snapEnd{count: d.uvarint(), sum: d.next(sha256.Size)}
		default:
			if d.err == nil {
				d.fail(fmt.Sprintf("record kind %d", kind))
			}
		}
	}
	if d.err != nil {
		return snapChunk{}, fmt.Errorf("%w: chunk %d of the snapshot at %d: %s", errSnapshotDamaged, c.seq, c.ts, d.err)
	}
	return c, nil
}

type chunkDecoder struct {
	b   []byte
	off int
	err error
}

func (d *chunkDecoder) fail(why string) {
	if d.err == nil {
		d.err = errors.New(why)
	}
}

func (d *chunkDecoder) u8() byte {
	if d.err != nil || d.off >= len(d.b) {
		d.fail("truncated")
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *chunkDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("truncated or overlong integer")
		return 0
	}
	d.off += n
	return v
}

func (d *chunkDecoder) next(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("truncated")
		return nil
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

// snapshotInstaller writes a snapshot's chunks into a new catalog in a staging directory. It is
// used by one goroutine. After any error, and after finish, it refuses everything but abort.
type snapshotInstaller struct {
	dir       string
	db        *badger.DB // nil once closed
	wb        *badger.WriteBatch
	ts, floor uint64 // of the snapshot, from its first chunk
	seq       uint64 // the next chunk's
	count     uint64 // records written
	h         hash.Hash
	ended     bool // the end record was read and matched
	err       error
}

// newSnapshotInstaller opens a new catalog in o.Dir, the staging directory, which must be
// missing or empty (abort a previous installer, or remove the directory). The staging directory
// belongs beside the catalog directory (stagingDirOf) for installStaged to swap it in.
func newSnapshotInstaller(o StoreOptions) (*snapshotInstaller, error) {
	if o.InMemory || o.Dir == "" {
		return nil, errors.New("catalogactor: a snapshot is staged in a directory: give StoreOptions.Dir")
	}
	dir := filepath.Clean(o.Dir)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("catalogactor: staging directory: %w", err)
	}
	if len(ents) > 0 {
		return nil, fmt.Errorf("catalogactor: staging directory %s is not empty: abort the snapshot that staged it, or remove it", dir)
	}
	// A durable-point file left beside it would say the new catalog is complete.
	if err := removeFile(durableFileOf(dir)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("catalogactor: staging directory: %w", err)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	o.Dir = dir
	db, err := OpenStore(o)
	if err != nil {
		return nil, fmt.Errorf("catalogactor: open staging catalog in %s: %w", dir, err)
	}
	wb := db.NewManagedWriteBatch()
	// Each pending commit of the batch holds up to 15% of a memtable; a few keep Badger busy.
	wb.SetMaxPendingTxns(snapshotPendingCommits)
	return &snapshotInstaller{dir: dir, db: db, wb: wb, h: newDigestHash()}, nil
}

// write writes one chunk's records at their versions. Chunks come in order (seq 0, 1, ...), all
// of one snapshot. The WriteBatch is not atomic, which does not matter here: nothing reads the
// staging catalog before finish, and a crash leaves it without its durable point, incomplete.
// write keeps no reference to chunk.
func (i *snapshotInstaller) write(chunk []byte) error {
	if i.err != nil {
		return i.err
	}
	if err := i.writeChunk(bytes.Clone(chunk)); err != nil {
		i.err = err
		return err
	}
	return nil
}

func (i *snapshotInstaller) writeChunk(b []byte) error {
	if i.ended {
		return fmt.Errorf("%w: a chunk after the end of the snapshot at %d", errSnapshotDamaged, i.ts)
	}
	c, err := parseChunk(b)
	if err != nil {
		return err
	}
	if i.seq == 0 {
		if c.ts == 0 || c.floor > c.ts {
			return fmt.Errorf("%w: a snapshot at %d with history from %d", errSnapshotDamaged, c.ts, c.floor)
		}
		i.ts, i.floor = c.ts, c.floor
	} else if c.ts != i.ts || c.floor != i.floor {
		return fmt.Errorf("%w: chunk %d is of the snapshot at %d (history from %d), this one is at %d (from %d)",
			errSnapshotMismatch, c.seq, c.ts, c.floor, i.ts, i.floor)
	}
	if c.seq != i.seq {
		return fmt.Errorf("%w: chunk %d of the snapshot at %d where chunk %d was due", errSnapshotDamaged, c.seq, i.ts, i.seq)
	}
	i.seq++
	for _, r := range c.records {
		i.h.Write(r.raw)
		i.count++
		if r.kind == recDelete {
			err = i.wb.DeleteAt(r.key, r.version)
		} else {
			err = i.wb.SetEntryAt(badger.NewEntry(r.key, r.value), r.version)
		}
		if err != nil {
			return fmt.Errorf("catalogactor: write snapshot record %q@%d: %w", r.key, r.version, err)
		}
	}
	if c.end != nil {
		if c.end.count != i.count || !bytes.Equal(c.end.sum, i.h.Sum(nil)) {
			return fmt.Errorf("%w: the snapshot at %d ends saying %d records with digest %x; %d came, with digest %x",
				errSnapshotDamaged, i.ts, c.end.count, c.end.sum, i.count, i.h.Sum(nil))
		}
		i.ended = true
	}
	return nil
}

// finish makes the staged catalog complete and durable, closes it, and says the applied index
// and compacted revision it starts with. Its durable-point file, beside its directory, is
// written last: a staged catalog without one is incomplete. On error, abort.
func (i *snapshotInstaller) finish() (applied, compacted uint64, err error) {
	if i.err != nil {
		return 0, 0, i.err
	}
	defer func() {
		if err != nil {
			i.err = err
		}
	}()
	if !i.ended {
		return 0, 0, fmt.Errorf("%w: %d chunks of the snapshot at %d came, without its end", errSnapshotIncomplete, i.seq, i.ts)
	}
	err = i.wb.Flush()
	i.wb = nil
	if err != nil {
		return 0, 0, fmt.Errorf("catalogactor: write staged snapshot: %w", err)
	}
	applied, compacted, err = loadMeta(i.db)
	if err != nil {
		return 0, 0, err
	}
	if applied != i.ts || compacted != i.floor {
		return 0, 0, fmt.Errorf("%w: the staged catalog says applied %d, compacted %d; the snapshot was at %d from %d",
			errSnapshotDamaged, applied, compacted, i.ts, i.floor)
	}
	i.db.SetDiscardTs(compacted) // as openCatalog does
	err = i.db.Close()
	i.db = nil
	if err != nil {
		return 0, 0, fmt.Errorf("catalogactor: close staged catalog: %w", err)
	}
	// Close wrote the memtables into tables. Every file and the directory are made durable,
	// then the durable point says so.
	if err := syncDir(i.dir); err != nil {
		return 0, 0, err
	}
	if err := writeDurable(durableFileOf(i.dir), applied); err != nil {
		return 0, 0, err
	}
	i.err = fmt.Errorf("catalogactor: the staged catalog in %s is finished", i.dir)
	return applied, compacted, nil
}

// abort closes the staged catalog, finished or not, and removes it.
func (i *snapshotInstaller) abort() error {
	var errs []error
	if i.wb != nil {
		i.wb.Cancel()
		i.wb = nil
	}
	if i.db != nil {
		errs = append(errs, i.db.Close())
		i.db = nil
	}
	i.err = errors.New("catalogactor: snapshot installer aborted")
	return errors.Join(append(errs, removeStaged(i.dir))...)
}

// The swap of a staged catalog S for the catalog C, in C's parent directory:
//
//	C.install   the marker: S's name, while a swap is under way
//	C.old       the replaced catalog (and C.old.durable), until the swap is over
//	C.staging   where a snapshot is staged (stagingDirOf), and S.durable its durable point
//
// Once the marker is durable, the swap is finished whatever happens: recoverInstall redoes the
// remaining steps, each of which checks whether it is done. Before the marker, the old catalog
// stays. Every rename is followed by an fsync of the parent directory, so the steps reach the
// disk in order.

// stagingDirOf is the directory where a snapshot for the catalog in catalogDir is staged.
func stagingDirOf(catalogDir string) string { return filepath.Clean(catalogDir) + ".staging" }

// durableFileOf is the durable-point file of the catalog in dir (durablePath for an open one).
func durableFileOf(dir string) string { return filepath.Clean(dir) + ".durable" }

type swapPaths struct {
	parent, cat, staged, old, marker string
}

func newSwapPaths(catalogDir, stagingDir string) (swapPaths, error) {
	c := filepath.Clean(catalogDir)
	p := swapPaths{parent: filepath.Dir(c), cat: c, staged: filepath.Clean(stagingDir), old: c + ".old", marker: c + ".install"}
	if filepath.Dir(p.staged) != p.parent || p.staged == p.cat || p.staged == p.old {
		return p, fmt.Errorf("catalogactor: staged catalog %s must be beside the catalog %s (use %s)", p.staged, c, stagingDirOf(c))
	}
	return p, nil
}

// forward is the swap after the marker; each step is done once, and again after a crash (then
// it checks whether it is done).
func (p swapPaths) forward() []func() error {
	return []func() error{
		func() error { // the old catalog's durable point aside, while the old catalog is in place
			if ok, err := exists(p.staged); !ok || err != nil {
				return err
			}
			return renameIfExists(durableFileOf(p.cat), durableFileOf(p.old))
		},
		func() error { // the old catalog aside
			if ok, err := exists(p.staged); !ok || err != nil {
				return err
			}
			return renameIfExists(p.cat, p.old)
		},
		func() error { return renameIfExists(p.staged, p.cat) },
		func() error { return renameIfExists(durableFileOf(p.staged), durableFileOf(p.cat)) },
		func() error { return removeFile(p.marker) },
		func() error {
			return errors.Join(os.RemoveAll(p.old), removeFile(durableFileOf(p.old)))
		},
	}
}

func (p swapPaths) run(steps []func() error) error {
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("catalogactor: install snapshot into %s: %w", p.cat, err)
		}
		if err := syncFile(p.parent); err != nil {
			return err
		}
	}
	return nil
}

// installStaged replaces the catalog in catalogDir, with its durable-point file, by the complete
// staged catalog in stagingDir (finish returned), beside it; a crash at any point leaves the
// whole old catalog or the whole new one once recoverInstall has run. The caller closes the
// catalog's database before and opens it again after.
func installStaged(catalogDir, stagingDir string) error {
	p, err := newSwapPaths(catalogDir, stagingDir)
	if err != nil {
		return err
	}
	if _, ok, err := readDurableFile(durableFileOf(p.staged)); err != nil || !ok {
		return errors.Join(fmt.Errorf("catalogactor: staged catalog %s is incomplete (no durable point): finish it first", p.staged), err)
	}
	if ok, err := exists(p.staged); !ok || err != nil {
		return errors.Join(fmt.Errorf("catalogactor: staged catalog %s is missing", p.staged), err)
	}
	if ok, err := exists(p.marker); ok || err != nil {
		return errors.Join(fmt.Errorf("catalogactor: an install into %s is under way (%s): call recoverInstall first", p.cat, p.marker), err)
	}
	// Without a marker, C.old is what a finished swap left.
	if err := errors.Join(os.RemoveAll(p.old), removeFile(durableFileOf(p.old))); err != nil {
		return err
	}
	if err := writeFileDurably(p.marker, []byte(filepath.Base(p.staged))); err != nil {
		return err
	}
	return p.run(p.forward())
}

// recoverInstall, at start before OpenStore, finishes a swap of catalogs that a crash
// interrupted (installStaged had made its marker durable), or leaves the old catalog when it had
// not. It removes what a finished swap left and an incomplete staged catalog (a snapshot whose
// transfer a crash cut short). A complete staged catalog that no swap took is kept: staged is its
// applied index (0: none), for the caller to install it with installStaged, if the Raft log
// recorded the snapshot, or to drop it with removeStaged.
func recoverInstall(catalogDir string) (staged uint64, err error) {
	c := filepath.Clean(catalogDir)
	marker := c + ".install"
	if err := removeFile(marker + ".tmp"); err != nil {
		return 0, err
	}
	name, err := os.ReadFile(marker)
	if errors.Is(err, fs.ErrNotExist) {
		p, _ := newSwapPaths(c, stagingDirOf(c))
		if err := errors.Join(os.RemoveAll(p.old), removeFile(durableFileOf(p.old))); err != nil {
			return 0, err
		}
		idx, ok, err := readDurableFile(durableFileOf(p.staged))
		if err != nil {
			return 0, err
		}
		there, err := exists(p.staged)
		if err != nil {
			return 0, err
		}
		if ok && there {
			return idx, nil
		}
		return 0, removeStaged(p.staged)
	}
	if err != nil {
		return 0, fmt.Errorf("catalogactor: read %s: %w", marker, err)
	}
	if n := string(name); n == "" || n != filepath.Base(n) || n == "." || n == ".." {
		return 0, fmt.Errorf("catalogactor: %s names %q, not a staged catalog: the data dir is damaged", marker, name)
	}
	p, err := newSwapPaths(c, filepath.Join(filepath.Dir(c), string(name)))
	if err != nil {
		return 0, err
	}
	stagedThere, err1 := exists(p.staged)
	_, stagedDone, err2 := readDurableFile(durableFileOf(p.staged))
	catThere, err3 := exists(p.cat)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, err
	}
	if (stagedThere && stagedDone) || (!stagedThere && catThere) {
		return 0, p.run(p.forward())
	}
	// installStaged writes no marker for an incomplete staged catalog, so this is not a crash of
	// the swap; still, the old catalog is the one to keep.
	return 0, p.run([]func() error{
		func() error {
			if catThere {
				return nil
			}
			if ok, err := exists(p.old); !ok || err != nil {
				return errors.Join(fmt.Errorf("%s names the staged catalog %s, which is incomplete, and neither the catalog nor %s is there: the data dir is damaged", p.marker, p.staged, p.old), err)
			}
			return os.Rename(p.old, p.cat)
		},
		func() error {
			if ok, err := exists(durableFileOf(p.cat)); ok || err != nil {
				return err
			}
			return renameIfExists(durableFileOf(p.old), durableFileOf(p.cat))
		},
		func() error { return removeStaged(p.staged) },
		func() error { return removeFile(p.marker) },
	})
}

// removeStaged removes a staged catalog and its durable point.
func removeStaged(dir string) error {
	d := durableFileOf(dir)
	return errors.Join(removeFile(d), removeFile(d+".tmp"), os.RemoveAll(dir), syncFile(filepath.Dir(filepath.Clean(dir))))
}

// readDurableFile reads a durable-point file; ok is false when there is none.
func readDurableFile(path string) (index uint64, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("catalogactor: read %s: %w", path, err)
	}
	if len(b) != 8 {
		return 0, false, fmt.Errorf("catalogactor: %s holds %d bytes, not a durable point", path, len(b))
	}
	return binary.BigEndian.Uint64(b), true, nil
}

// writeFileDurably writes path atomically and durably: a temporary file, fsynced, renamed, the
// directory fsynced.
func writeFileDurably(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("catalogactor: write %s: %w", tmp, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncFile(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("catalogactor: write %s: %w", path, err)
	}
	return nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func renameIfExists(from, to string) error {
	err := os.Rename(from, to)
	if errors.Is(err, fs.ErrNotExist) {
		if ok, serr := exists(from); !ok && serr == nil {
			return nil
		}
	}
	return err
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
