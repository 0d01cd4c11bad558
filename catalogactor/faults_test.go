package catalogactor

import (
	"errors"
	"slices"
	"syscall"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// failCommits fails every commit while err is set.
type failCommits struct{ err error }

func (f *failCommits) Commit() error { return f.err }

// TestCatalogCommitFault: a commit that fails writes nothing and leaves the applied index where
// it was, so the same entries apply again once the fault is gone (as they do after a restart,
// from the Raft log).
func TestCatalogCommitFault(t *testing.T) {
	c := newTestCatalog(t, 1000)
	f := &failCommits{}
	c.faults = f
	a := podKey("default", "a")
	mustApply(t, c, entry(t, 2, putCmd(a, podValue("default", "a", "", `{"n":1}`))))
	before := allVersions(t, c.db, nil)

	f.err = syscall.EIO
	e3 := entry(t, 3, mergePatchCmd(a, `{"spec":{"n":2}}`))
	if out, _, _, err := c.apply([]*raftpb.Entry{e3}); !errors.Is(err, syscall.EIO) || out != nil {
		t.Fatalf("apply with a failing commit: %v, %v; want an error wrapping EIO and no outcome", out, err)
	}
	if c.applied != 2 {
		t.Fatalf("applied %d after a failed commit, want 2", c.applied)
	}
	if after := allVersions(t, c.db, nil); !slices.Equal(before, after) {
		t.Fatalf("a failed commit wrote:\n%s", diffVersions(before, after))
	}

	f.err = nil
	if out, _ := mustApply(t, c, e3); len(out) != 1 || out[0].result.GetResourceVersion() != 3 {
		t.Fatalf("apply once the fault is gone: %v", out)
	}
}
