package catalogactor

import "github.com/dgraph-io/badger/v4"

// Faults injects failures into the catalog's writes, for tests: Config.Faults. Nil in
// production. Commit is called from the applier goroutine.
type Faults interface {
	// Commit is called before each commit of a batch to Badger on the apply path (a batch of
	// applied entries, a compaction); a non-nil error is returned instead of committing it.
	Commit() error
}

// commit flushes wb to Badger, unless c.faults fails the commit first.
func (c *catalog) commit(wb *badger.WriteBatch) error {
	if c.faults != nil {
		if err := c.faults.Commit(); err != nil {
			return err
		}
	}
	return wb.Flush()
}
