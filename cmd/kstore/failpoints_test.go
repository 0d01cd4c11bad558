//go:build failpoints

package main

import (
	"strings"
	"testing"
	"time"
)

// TestParseFailpoints: what $KSTORE_FAILPOINTS arms, and the lists serve refuses to start
// with. make test runs it with -tags failpoints, the only build that has the parser.
func TestParseFailpoints(t *testing.T) {
	cases := []struct {
		give    string
		armed   string // Faults.Armed; "" for none
		wal     *walFaults
		catalog int64
		stale   bool
		wantErr string
	}{
		{give: "", armed: ""},
		{give: "  ", armed: ""},
		{give: "wal-fsync-error:3", armed: "wal-fsync-error:3", wal: &walFaults{fsyncAt: 3}},
		{give: "wal-short-write:1, wal-enospc:7", armed: "wal-short-write:1,wal-enospc:7", wal: &walFaults{shortAt: 1, enospcAt: 7}},
		{give: "wal-fsync-delay:2ms", armed: "wal-fsync-delay:2ms", wal: &walFaults{delay: 2 * time.Millisecond}},
		{give: "catalog-commit-error:2,stale-reads", armed: "catalog-commit-error:2,stale-reads", catalog: 2, stale: true},
		{give: "wal-fsync-delay:0s", wantErr: "needs a duration above 0"},
		{give: "wal-fsync-delay", wantErr: "needs a duration above 0"},
		{give: "wal-fsync-delay:fast", wantErr: "needs a duration above 0"},
		{give: "wal-fsync-error:0", wantErr: "needs a count N >= 1"},
		{give: "wal-enospc", wantErr: "needs a count N >= 1"},
		{give: "stale-reads:1", wantErr: "takes no argument"},
		{give: "wal-enospc:1,wal-enospc:2", wantErr: "names wal-enospc twice"},
		{give: "disk-on-fire:1", wantErr: "is not a failpoint"},
	}
	for _, c := range cases {
		t.Run(c.give, func(t *testing.T) {
			f, err := parseFailpoints(c.give)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("parseFailpoints(%q) = %v, want an error containing %q", c.give, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.armed == "" {
				if f != nil {
					t.Fatalf("parseFailpoints(%q) armed %q, want nothing", c.give, f.Armed)
				}
				return
			}
			if f.Armed != c.armed || f.StaleReads != c.stale {
				t.Errorf("armed %q stale-reads %v, want %q %v", f.Armed, f.StaleReads, c.armed, c.stale)
			}
			w, _ := f.WAL.(*walFaults)
			switch {
			case c.wal == nil && w != nil:
				t.Errorf("WAL faults armed: %+v", w)
			case c.wal != nil && (w == nil || w.fsyncAt != c.wal.fsyncAt || w.shortAt != c.wal.shortAt || w.enospcAt != c.wal.enospcAt || w.delay != c.wal.delay):
				t.Errorf("WAL faults %+v, want %+v", w, c.wal)
			}
			var at int64
			if cf, ok := f.Catalog.(*catalogFaults); ok {
				at = cf.at
			}
			if at != c.catalog {
				t.Errorf("catalog-commit-error at %d, want %d", at, c.catalog)
			}
		})
	}
}
