package catalogactor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
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
