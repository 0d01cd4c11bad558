package wal

import (
	"fmt"
	"strings"
	"testing"
)

// runTracker applies steps to a tracker, each an entry "e<index>@<term>" or
// a snapshot "s<index>@<term>", and describes the result.
func runTracker(base uint64, steps string) (string, error) {
	t := newTracker(base, true)
	for _, s := range strings.Fields(steps) {
		var i, term uint64
		if _, err := fmt.Sscanf(s[1:], "%d@%d", &i, &term); err != nil {
			return "", fmt.Errorf("bad step %q", s)
		}
		switch s[0] {
		case 'e':
			if err := t.addEntry(ent(i, term, "")); err != nil {
				return "", err
			}
		case 's':
			t.applySnapshot(i, term)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "base=%d last=%d", t.base, t.last)
	if t.hasSnap {
		fmt.Fprintf(&b, " snap=%d@%d", t.snapIdx, t.snapTerm)
	}
	b.WriteString(" ents=")
	for _, e := range t.ents {
		fmt.Fprintf(&b, "%d@%d,", e.GetIndex(), e.GetTerm())
	}
	b.WriteString(" runs=")
	for _, r := range t.runs {
		fmt.Fprintf(&b, "%d@%d,", r.first, r.term)
	}
	return b.String(), nil
}

func TestTracker(t *testing.T) {
	tests := []struct {
		name    string
		base    uint64
		give    string
		want    string
		wantErr string
	}{
		{"append", 0, "e1@1 e2@1 e3@2", "base=0 last=3 ents=1@1,2@1,3@2, runs=1@1,3@2,", ""},
		{"overwrite suffix", 0, "e1@1 e2@1 e3@1 e4@1 e2@3", "base=0 last=2 ents=1@1,2@3, runs=1@1,2@3,", ""},
		{"overwrite at a run start", 0, "e1@1 e2@2 e3@2 e2@4", "base=0 last=2 ents=1@1,2@4, runs=1@1,2@4,", ""},
		{"gap", 0, "e1@1 e3@1", "", "leaves a gap after the last index 1"},
		{"index zero", 0, "e0@1", "", "index 0"},
		{"compaction keeps the suffix", 0, "e1@1 e2@1 e3@2 e4@2 s3@2", "base=3 last=4 snap=3@2 ents=4@2, runs=4@2,", ""},
		{"compaction of everything", 0, "e1@1 e2@1 s2@1", "base=2 last=2 snap=2@1 ents= runs=", ""},
		{"term mismatch drops all", 0, "e1@1 e2@1 e3@1 s2@2", "base=2 last=2 snap=2@2 ents= runs=", ""},
		{"snapshot beyond the log", 0, "e1@1 s9@3 e10@3", "base=9 last=10 snap=9@3 ents=10@3, runs=10@3,", ""},
		{"older snapshot ignored", 0, "e1@1 e2@1 e3@1 s2@1 s1@1", "base=2 last=3 snap=2@1 ents=3@1, runs=3@1,", ""},
		{"same snapshot again", 0, "e1@1 e2@1 e3@1 s2@1 s2@1", "base=2 last=3 snap=2@1 ents=3@1, runs=3@1,", ""},
		{"entries below the snapshot dropped", 0, "s5@2 e4@2 e5@2 e6@2", "base=5 last=6 snap=5@2 ents=6@2, runs=6@2,", ""},
		// Replay of a first segment whose predecessors were released.
		{"old header snapshot keeps the entries", 10, "s4@1 e11@1 e12@1", "base=10 last=12 snap=4@1 ents=11@1,12@1, runs=11@1,", ""},
		{"overwrite below a released base", 10, "s4@1 e11@1 e12@1 e8@2", "base=7 last=8 snap=4@1 ents=8@2, runs=8@2,", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runTracker(tt.base, tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("\n got  %s\n want %s", got, tt.want)
			}
		})
	}
}
