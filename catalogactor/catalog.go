package catalogactor

import (
	"cmp"
	"encoding/binary"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/kstore/kstore/messages"
)

// catalog is the state the actor owns, without the actor: the Badger database, how far it has
// applied the log and how much history it keeps. Tests drive it directly.
type catalog struct {
	db        *badger.DB
	log       *zap.Logger
	applied   uint64       // last applied Raft index; every read at or below it sees complete state
	compacted uint64       // oldest readable revision: reads below it are Gone
	retain    uint64       // revisions of history kept behind applied
	audit     *zap.Logger  // Config.Audit; nil: none
	faults    Faults       // Config.Faults; nil: none
	latest    *latestCache // the newest bytes of recently written objects; nil: none
}

// EventType is the kind of a change, as a watch event names it.
type EventType byte

const (
	Added EventType = iota + 1
	Modified
	Deleted
)

func (t EventType) String() string {
	switch t {
	case Added:
		return "ADDED"
	case Modified:
		return "MODIFIED"
	case Deleted:
		return "DELETED"
	}
	return fmt.Sprintf("EventType(%d)", byte(t))
}

func eventType(op messages.ResourceOp) EventType {
	switch op {
	case messages.ResourceOp_CREATED:
		return Added
	case messages.ResourceOp_REPLACED, messages.ResourceOp_PATCHED:
		return Modified
	case messages.ResourceOp_DELETED:
		return Deleted
	}
	return 0
}

// Change is one revision of the catalog: what a watcher is told.
type Change struct {
	Type            EventType
	Key             *messages.ResourceKey
	ResourceVersion uint64
	// Object is the stored object after the change; for Deleted, the last stored object.
	Object []byte
	// Prev is the object before the change; nil for Added.
	Prev []byte
}

// outcome is the result of one applied command entry, for the caller waiting on it.
type outcome struct {
	index  uint64
	result *messages.CommandResult
}

func openCatalog(db *badger.DB, log *zap.Logger, retain uint64) (*catalog, error) {
	applied, compacted, err := loadMeta(db)
	if err != nil {
		return nil, fmt.Errorf("catalogactor: read applied index: %w", err)
	}
	// The Raft log starts with a bootstrap snapshot at index 1 that holds no objects (see
	// raftactor.OpenLog): an empty catalog has applied it.
	applied = max(applied, 1)
	durable, err := openDurable(db, applied, log)
	if err != nil {
		return nil, err
	}
	if applied > durable {
		// What Badger holds past the durable point may have survived a power loss only in
		// part (a newer memtable's log on disk, an older one's lost), so it is applied again
		// from the Raft log, which still holds it: replaying an entry writes the same bytes at
		// the same timestamp.
		log.Info("catalog replays the entries after its durable point", zap.Uint64("durable", durable), zap.Uint64("applied", applied))
		applied = durable
	}
	compacted = min(compacted, durable)
	db.SetDiscardTs(compacted)
	return &catalog{db: db, log: log, applied: applied, compacted: compacted, retain: retain,
		latest: newLatestCache(defaultLatestBytes)}, nil
}

// apply applies committed entries in log order in one Badger batch and returns the outcome of
// every command entry, the changes made, and the newest stored bytes of every key written (nil
// for a deletion). Entries at or below the applied index (replayed
// after a restart) are skipped. An error is a storage failure: the catalog can no longer be
// trusted and the node must stop.
func (c *catalog) apply(entries []*raftpb.Entry) ([]outcome, []Change, map[string][]byte, error) {
	var outcomes []outcome
	var changes []Change
	first := true
	var txn *badger.Txn
	var wb *badger.WriteBatch
	// overlay holds this batch's writes: a later entry on the same key reads them, since the
	// batch is not in Badger yet. A nil value is a deletion.
	overlay := map[string][]byte{}
	last := c.applied
	for _, e := range entries {
		idx := e.GetIndex()
		if idx <= c.applied {
			continue
		}
		if idx != last+1 {
			return nil, nil, nil, fmt.Errorf("catalogactor: entry %d follows applied index %d: the log has a gap", idx, last)
		}
		last = idx
		if e.GetType() != raftpb.EntryType_EntryNormal || len(e.GetData()) == 0 {
			continue
		}
		cmd, err := messages.DecodeEntry(e.GetData())
		if err != nil {
			// The same bytes are in every replica's log, so every replica refuses them alike:
			// the index is consumed and nothing changes. Stopping instead would stop at every
			// restart, on every node, since the entry stays in the log.
			c.log.Warn("committed entry is not a kstore command: skipped", zap.Uint64("index", idx),
				zap.Int("bytes", len(e.GetData())), zap.Error(err))
			outcomes = append(outcomes, outcome{idx, &messages.CommandResult{Status: messages.StatusOf(err)}})
			continue
		}
		if first {
			txn = c.db.NewTransactionAt(c.applied, false)
			defer txn.Discard()
			wb = c.db.NewManagedWriteBatch()
			defer wb.Cancel()
			first = false
		}
		key := objectKey(cmd.GetKey())
		prev, ok := overlay[string(key)]
		if !ok {
			prev, ok = c.latest.get(string(key))
		}
		if !ok {
			if prev, err = get(txn, key); err != nil {
				return nil, nil, nil, fmt.Errorf("catalogactor: read %q: %w", key, err)
			}
		}
		res, err := Apply(prev, cmd, idx)
		if c.audit != nil {
			auditLine(c.audit, zap.InfoLevel, cmd, idx, res, err)
		}
		auditLine(c.log, zap.DebugLevel, cmd, idx, res, err)
		result := &messages.CommandResult{}
		if len(cmd.GetRequestId()) <= messages.MaxRequestIDBytes {
			result.RequestId = cmd.GetRequestId()
		}
		if err != nil {
			result.Status = messages.StatusOf(err)
			outcomes = append(outcomes, outcome{idx, result})
			continue
		}
		result.Op, result.ResourceVersion, result.Object = res.Op, res.ResourceVersion, res.Object
		outcomes = append(outcomes, outcome{idx, result})
		typ := eventType(res.Op)
		if typ == 0 {
			continue
		}
		if typ == Deleted {
			overlay[string(key)] = nil
			err = deleteObject(wb, key, len(prev), idx)
		} else {
			overlay[string(key)] = res.Object
			err = putObject(wb, key, res.Object, len(prev), idx)
		}
		if err == nil {
			err = wb.SetEntryAt(badger.NewEntry(changeKey(idx), append([]byte{byte(typ)}, key...)), idx)
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("catalogactor: write entry %d: %w", idx, err)
		}
		changes = append(changes, Change{Type: typ, Key: cmd.GetKey(), ResourceVersion: idx, Object: res.Object, Prev: prev})
	}
	if last == c.applied {
		return nil, nil, nil, nil
	}
	if wb == nil {
		wb = c.db.NewManagedWriteBatch()
		defer wb.Cancel()
	}
	if err := wb.SetEntryAt(badger.NewEntry(keyApplied, u64(last)), last); err != nil {
		return nil, nil, nil, fmt.Errorf("catalogactor: write applied index %d: %w", last, err)
	}
	if err := c.commit(wb); err != nil {
		return nil, nil, nil, fmt.Errorf("catalogactor: write entries %d-%d to the catalog in %s: %w; the node stops: fix the disk (kernel log, free space), then start the node again: the catalog applies these entries again from the Raft log",
			c.applied+1, last, cmp.Or(c.db.Opts().Dir, "memory"), err)
	}
	c.applied = last
	for k, v := range overlay {
		c.latest.put(k, v)
	}
	return outcomes, changes, overlay, nil
}

// run applies a job's entries, then its compaction: what the applier goroutine does.
func (c *catalog) run(j applyJob) applyResult {
	outcomes, changes, written, err := c.apply(j.entries)
	if err == nil && j.compactTo > c.compacted {
		err = c.compactTo(j.compactTo, j.discardTs)
		if err != nil {
			err = fmt.Errorf("catalogactor: compact to %d: %w", j.compactTo, err)
		}
	}
	return applyResult{job: j, outcomes: outcomes, changes: changes, written: written, applied: c.applied, err: err}
}

// compactTarget is the compacted revision that applied allows, when it is due: the window's
// start, moved in steps of a hundredth of the window, so that the compacted revision lags the
// window by at most that and a batch of writes does not pay for a compaction every time.
func compactTarget(applied, compacted, retain uint64) (uint64, bool) {
	if applied <= retain {
		return 0, false
	}
	to := applied - retain
	if to < compacted+max(retain/100, 1) {
		return 0, false
	}
	return to, true
}

// compactTo moves the compacted revision up to to: it removes the change log below it and lets
// Badger discard object versions below discardTs (at most to).
func (c *catalog) compactTo(to, discardTs uint64) error {
	wb := c.db.NewManagedWriteBatch()
	defer wb.Cancel()
	// Change log records are single-version keys, so Badger's discard alone never drops them.
	for i := max(c.compacted, 1); i < to; i++ {
		if err := wb.DeleteAt(changeKey(i), c.applied); err != nil {
			return err
		}
	}
	if err := wb.SetEntryAt(badger.NewEntry(keyCompacted, u64(to)), c.applied); err != nil {
		return err
	}
	if err := c.commit(wb); err != nil {
		return err
	}
	c.compacted = to
	c.db.SetDiscardTs(min(to, discardTs))
	return nil
}

// readChanges reads the change log after revision from, none past upTo, at most limit changes
// and no more once their objects pass maxBytes (0: no byte bound), each with its object and
// previous object: the history a watcher resumes from. more says changes remain before upTo.
// The caller makes sure from >= the compacted revision. It reads Badger only, so a reader
// goroutine may run it.
func readChanges(db *badger.DB, from, upTo uint64, limit, maxBytes int) (out []Change, more bool, err error) {
	txn := db.NewTransactionAt(upTo, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixChange}, PrefetchValues: false})
	defer it.Close()
	bytes := 0
	for it.Seek(changeKey(from + 1)); it.Valid(); it.Next() {
		item := it.Item()
		idx := binary.BigEndian.Uint64(item.Key()[1:])
		if idx > upTo {
			break
		}
		if len(out) == limit || (maxBytes > 0 && bytes >= maxBytes) {
			return out, true, nil
		}
		rec, err := item.ValueCopy(nil)
		if err != nil {
			return nil, false, err
		}
		key, err := parseObjectKey(rec[1:])
		if err != nil {
			return nil, false, err
		}
		ch := Change{Type: EventType(rec[0]), Key: key, ResourceVersion: idx}
		at := db.NewTransactionAt(idx, false)
		ch.Object, err = get(at, rec[1:])
		at.Discard()
		if err != nil {
			return nil, false, err
		}
		before := db.NewTransactionAt(idx-1, false)
		ch.Prev, err = get(before, rec[1:])
		before.Discard()
		if err != nil {
			return nil, false, err
		}
		if ch.Type == Deleted {
			ch.Object = ch.Prev
		}
		bytes += len(ch.Object) + len(ch.Prev)
		out = append(out, ch)
	}
	return out, false, nil
}
