package catalogactor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/zap"
)

// TestOpenStoreAfterEmptyMemtable: a memtable log of zero bytes, as a power loss right after
// Badger rotated to a new memtable leaves it (the directory entry on disk, the file's size
// not), no longer keeps the catalog from opening; what was written before is still there.
func TestOpenStoreAfterEmptyMemtable(t *testing.T) {
	dir := t.TempDir()
	o := StoreOptions{Dir: dir, Logger: zap.NewNop()}
	db, err := OpenStore(o)
	if err != nil {
		t.Fatal(err)
	}
	wb := db.NewWriteBatchAt(5)
	if err := wb.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "99999.mem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err = OpenStore(o)
	if err != nil {
		t.Fatalf("OpenStore with an empty memtable log: %v", err)
	}
	defer db.Close()
	err = db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte("k"))
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if string(v) != "v" {
			t.Errorf("k = %q, want v", v)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOpenStoreReadsSnappyTables: a catalog written when its tables were Snappy-compressed
// (before 15e5567) opens and reads under today's options, uncompressed, beside the tables
// written since: Badger keeps each table's compression in its manifest.
func TestOpenStoreReadsSnappyTables(t *testing.T) {
	dir := t.TempDir()
	value := func(i int) []byte { return []byte(strings.Repeat(fmt.Sprintf(`{"n":%d}`, i), 40)) }
	write := func(db *badger.DB, from, to int, ts uint64) {
		t.Helper()
		wb := db.NewWriteBatchAt(ts)
		for i := from; i < to; i++ {
			if err := wb.Set([]byte(fmt.Sprintf("k%05d", i)), value(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := wb.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(db *badger.DB, n int) {
		t.Helper()
		txn := db.NewTransactionAt(10, false)
		defer txn.Discard()
		for i := range n {
			b, err := get(txn, []byte(fmt.Sprintf("k%05d", i)))
			if err != nil || !bytes.Equal(b, value(i)) {
				t.Fatalf("k%05d = %.20q, %v; want %.20q", i, b, err, value(i))
			}
		}
	}
	old, err := badger.OpenManaged(BadgerOptions(dir).WithCompression(options.Snappy).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	write(old, 0, 2000, 5)
	if err := old.Close(); err != nil { // writes the memtable out as a table
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	var size int64
	for _, f := range ssts {
		if fi, err := os.Stat(f); err == nil {
			size += fi.Size()
		}
	}
	if raw := int64(2000 * len(value(0))); len(ssts) == 0 || size >= raw {
		t.Fatalf("the Snappy catalog left %d tables of %d bytes in all for %d bytes of values: not compressed tables to read", len(ssts), size, raw)
	}
	o := StoreOptions{Dir: dir, Logger: zap.NewNop()}
	db, err := OpenStore(o)
	if err != nil {
		t.Fatal(err)
	}
	check(db, 2000)
	write(db, 2000, 4000, 6)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = OpenStore(o); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db, 4000)
}
