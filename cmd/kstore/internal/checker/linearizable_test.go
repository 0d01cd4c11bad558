package checker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLinearizable(t *testing.T) {
	tests := []struct {
		name string
		give string
		want error // nil: linearizable
	}{
		{
			name: "every kind and outcome in sequence",
			give: `
				0   0  10 create a v1 -> CREATED@3
				0  20  30 get a -> v1@3
				0  40  50 put a v2 -> REPLACED@5
				0  60  70 put a v2 -> NO_OP@5
				0  80  90 update a v3 if=5 -> REPLACED@8
				0 100 110 update a v4 if=5 -> Conflict
				0 120 130 update b v5 -> NotFound
				0 140 150 create a v6 -> AlreadyExists
				0 160 170 update a v3 -> NO_OP@8
				0 180 190 put b v7 -> CREATED@9
				0 200 210 list -> @12 b=v7@9 a=v3@8
				0 220 230 delete b if=3 -> Conflict
				0 240 250 delete b if=9 -> DELETED@13
				0 260 270 delete b -> NO_OP@15
				0 280 290 get b -> NotFound
				0 300 310 get b -> absent
				0 320 330 put c v8 -> refused
				0 340   - put c v9 -> unknown  # never seen
				1 345   - get a -> unknown
				0 400 410 get c -> NotFound
				0 420 430 update a v10 -> REPLACED@20
				0 440 450 list -> @20 a=v10@20`,
		},
		{
			name: "concurrent puts, the first called committed first",
			give: `
				0 10 30 put a v1 -> CREATED@5
				1 15 35 put a v2 -> REPLACED@7
				2 40 50 get a -> v2@7`,
		},
		{
			name: "concurrent puts, the first called committed last",
			give: `
				0 10 30 put a v1 -> REPLACED@7
				1 15 35 put a v2 -> CREATED@5
				2 40 50 get a -> v1@7`,
		},
		{
			name: "reads concurrent with a write see the old or the new value",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20 60 put a v2 -> REPLACED@7
				1 25 30 get a -> v2@7
				2 30 40 get a -> v1@5  # called as the other get returned: may be first
				3 50 70 list -> @7 a=v2@7`,
		},
		{
			name: "an unknown put seen later, committed after writes called after it",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - put a v2 -> unknown
				0 30 40 put b w1 -> CREATED@9
				1 50 60 get a -> v2@12
				1 70 80 list -> @14 a=v2@12 b=w1@9`,
		},
		{
			name: "an unknown put not yet seen, then seen",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - put a v2 -> unknown
				1 30 40 get a -> v1@5
				1 50 60 get a -> v2@8`,
		},
		{
			name: "an unknown put never seen",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - put a v2 -> unknown
				1 30 40 get a -> v1@5
				1 50 60 put a v3 -> REPLACED@9
				1 70 80 list -> @9 a=v3@9`,
		},
		{
			name: "unknown puts of two keys seen in the other order",
			give: `
				0 20 - put a v1 -> unknown
				1 25 - put b w1 -> unknown
				2 50 60 list -> @12 a=v1@12 b=w1@10`,
		},
		{
			name: "an unknown create, then AlreadyExists",
			give: `
				0  0  - create a v1 -> unknown
				1 10 20 create a v2 -> AlreadyExists
				1 30 40 update a v3 -> REPLACED@9`,
		},
		{
			name: "an unknown delete, then NotFound",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - delete a -> unknown
				1 30 40 get a -> v1@5
				1 50 60 get a -> NotFound
				1 70 80 put a v2 -> CREATED@9`,
		},
		{
			name: "an unknown update whose precondition matched, seen by a list",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - update a v2 if=5 -> unknown
				1 30 40 list -> @11 a=v2@11`,
		},
		{
			name: "a conflict against an object whose rv nobody saw",
			give: `
				0  0  - put a v1 -> unknown
				1 10 20 update a v2 if=4 -> Conflict
				1 30 40 get a -> v1@6`,
		},

		{
			name: "a stale get after a newer write completed",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20 30 put a v2 -> REPLACED@7
				1 40 50 get a -> v1@5`,
			want: ErrNotLinearizable,
		},
		{
			name: "a get of a deleted key succeeds",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20 30 delete a -> DELETED@7
				1 40 50 get a -> v1@5`,
			want: ErrNotLinearizable,
		},
		{
			name: "a list misses a completed write",
			give: `
				0  0 10 put a v1 -> CREATED@5
				1  0 10 put b w1 -> CREATED@7
				2 20 30 list -> @9 a=v1@5`,
			want: ErrNotLinearizable,
		},
		{
			name: "a list below a completed write",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20 30 delete a -> DELETED@9
				1 40 50 list -> @7`,
			want: ErrNotLinearizable,
		},
		{
			name: "a write at or below a list before it",
			give: `
				0  0 10 list -> @10
				1 20 30 put a v1 -> CREATED@8`,
			want: ErrNotLinearizable,
		},
		{
			name: "a write's rv below one that completed before its call",
			give: `
				0  0 10 put a v1 -> CREATED@7
				1 20 30 put b w1 -> CREATED@5`,
			want: ErrNotLinearizable,
		},
		{
			name: "a NO_OP delete's rv below one that completed before its call",
			give: `
				0  0 10 put a v1 -> CREATED@7
				1 20 30 delete b -> NO_OP@5`,
			want: ErrNotLinearizable,
		},
		{
			name: "a create succeeds twice with no delete between",
			give: `
				0  0 10 create a v1 -> CREATED@5
				1 20 30 create a v2 -> CREATED@7`,
			want: ErrNotLinearizable,
		},
		{
			name: "a conflict when the precondition matched the only possible state",
			give: `
				0  0 10 put a v1 -> CREATED@5
				1 20 30 update a v2 if=5 -> Conflict`,
			want: ErrNotLinearizable,
		},
		{
			name: "an update succeeds with a precondition that matched nothing",
			give: `
				0  0 10 put a v1 -> CREATED@5
				1 20 30 update a v2 if=4 -> REPLACED@7`,
			want: ErrNotLinearizable,
		},
		{
			name: "an unknown put seen with an rv below one completed before its call",
			give: `
				0  0 10 put a v1 -> CREATED@5
				1 20 30 put b w1 -> CREATED@9
				0 40  - put a v2 -> unknown
				1 50 60 get a -> v2@7`,
			want: ErrNotLinearizable,
		},
		{
			name: "an unknown put that must precede a write seen with an rv above it",
			give: `
				0  0  - put a v1 -> unknown
				1 10 20 create a v2 -> AlreadyExists  # so the put took effect before 20
				1 30 40 put b w1 -> CREATED@10
				1 50 60 get a -> v1@11`,
			want: ErrNotLinearizable,
		},
		{
			name: "two unknown puts seen out of their real-time order",
			give: `
				0  0  - put a v1 -> unknown
				1 10 20 get a -> v1@6
				1 30  - put b w1 -> unknown
				1 40 50 get b -> w1@5`,
			want: ErrNotLinearizable,
		},
		// A retry writes the same value again, so a read of it does not tell which write made
		// the change: the model bounds the rv of each instead (floor and ceil).
		{
			name: "a retried put seen with an rv below one completed before its first call",
			give: `
				0  0 10 put a v1 -> CREATED@5
				1 20 30 put b w1 -> CREATED@9
				0 40  - put a v2 -> unknown
				0 45  - put a v2 -> unknown
				1 50 60 get a -> v2@7`,
			want: ErrNotLinearizable,
		},
		{
			name: "a retried put that must precede a write seen with an rv above it",
			give: `
				0  0  - put a v1 -> unknown
				0  5  - put a v1 -> unknown
				1 10 20 create a v2 -> AlreadyExists  # so a put took effect before 20
				1 30 40 put b w1 -> CREATED@10
				1 50 60 get a -> v1@11`,
			want: ErrNotLinearizable,
		},
		{
			name: "retried puts of two keys, the later seen below the earlier",
			give: `
				0  0  - put a v1 -> unknown
				0  1  - put a v1 -> unknown
				1 10 20 create a v9 -> AlreadyExists
				1 30  - put b w1 -> unknown
				1 31  - put b w1 -> unknown
				1 40 50 create b w9 -> AlreadyExists
				2 60 70 list -> @12 a=v1@11 b=w1@10`,
			want: ErrNotLinearizable,
		},
		{
			name: "retried puts of two keys, the earlier seen above the later",
			give: `
				0  0  - put b w1 -> unknown
				0  1  - put b w1 -> unknown
				1 10 20 create b w9 -> AlreadyExists
				1 30  - put a v1 -> unknown
				1 31  - put a v1 -> unknown
				1 40 50 create a v9 -> AlreadyExists
				2 60 70 list -> @12 a=v1@10 b=w1@11`,
			want: ErrNotLinearizable,
		},
		{
			name: "retried puts of two keys seen in the order they were called",
			give: `
				0  0  - put b w1 -> unknown
				0  1  - put b w1 -> unknown
				1 10 20 create b w9 -> AlreadyExists
				1 30  - put a v1 -> unknown
				1 31  - put a v1 -> unknown
				1 40 50 create a v9 -> AlreadyExists
				2 60 70 list -> @12 a=v1@11 b=w1@10`,
		},
		{
			name: "a retried put seen at an rv that leaves no room for a write after it",
			give: `
				0  0  - put a v1 -> unknown
				0  1  - put a v1 -> unknown
				1 10 20 create a v9 -> AlreadyExists  # a put took effect before 20
				1 30  - put b w1 -> unknown
				1 40 50 create b w9 -> AlreadyExists  # then b's, before 50
				1 60 70 put c x1 -> CREATED@10        # then c's at 10
				1 80 90 get a -> v1@9                 # so b's rv is above 9 and below 10`,
			want: ErrNotLinearizable,
		},
		{
			name: "a conflict against an unseen rv that can only be the precondition",
			give: `
				0  0 10 put b w1 -> CREATED@5
				1 20  - put a v1 -> unknown
				2 25 30 create a v2 -> AlreadyExists  # so it took effect before 30, after rv 5
				2 40 50 put c x1 -> CREATED@7         # and before rv 7: at rv 6
				2 60 70 update a v3 if=6 -> Conflict`,
			want: ErrNotLinearizable,
		},
		{
			name: "a conflict against an unseen rv that may differ from the precondition",
			give: `
				0  0 10 put b w1 -> CREATED@5
				1 20  - put a v1 -> unknown
				2 25 30 create a v2 -> AlreadyExists
				2 40 50 put c x1 -> CREATED@8
				2 60 70 update a v3 if=6 -> Conflict`,
		},
		{
			name: "a put of another value is a NO_OP",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20 30 put a v2 -> NO_OP@5`,
			want: ErrNotLinearizable,
		},
		{
			name: "a delete of a stored key is a NO_OP",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20 30 delete a -> NO_OP@7`,
			want: ErrNotLinearizable,
		},
		{
			name: "a delete of an absent key is DELETED",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20 30 delete a -> DELETED@7
				0 40 50 delete a -> DELETED@9`,
			want: ErrNotLinearizable,
		},
		{
			name: "a NO_OP with another rv than the stored one",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20 30 put a v1 -> NO_OP@4`,
			want: ErrNotLinearizable,
		},
		{
			name: "a delete succeeds with a precondition that matched nothing",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20 30 delete a if=4 -> DELETED@7`,
			want: ErrNotLinearizable,
		},
		{
			name: "an unknown delete with a precondition that matched nothing took effect",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - delete a if=4 -> unknown
				1 30 40 get a -> NotFound`,
			want: ErrNotLinearizable,
		},
		{
			name: "an unknown update of an absent key took effect",
			give: `
				0  0  - update a v1 -> unknown
				1 10 20 get a -> v1@5`,
			want: ErrNotLinearizable,
		},
		{
			name: "a retried unknown update of an absent key took effect",
			give: `
				0  0  - update a v1 -> unknown
				0  5  - update a v1 -> unknown
				1 10 20 get a -> v1@5`,
			want: ErrNotLinearizable,
		},
		{
			name: "an update fails AlreadyExists",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20 30 update a v2 -> AlreadyExists`,
			want: ErrNotLinearizable,
		},
		{
			name: "a put fails NotFound",
			give: `
				0 0 10 put a v1 -> NotFound`,
			want: ErrNotLinearizable,
		},
		{
			name: "a read of a value nobody wrote",
			give: `
				0  0 10 put a v1 -> CREATED@5
				1 20 30 get a -> v0@5`,
			want: ErrNotLinearizable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Linearizable(history(t, tt.give), 10*time.Second, "")
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Linearizable = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestLinearizableNamesTheOpItCouldNotPlace(t *testing.T) {
	ops := history(t, `
		0  0 10 put a v1 -> CREATED@5
		0 20 30 put a v2 -> REPLACED@7
		1 40 50 get a -> v1@5
		1 60 70 get a -> v2@7`)
	err := Linearizable(ops, 10*time.Second, "")
	if !errors.Is(err, ErrNotLinearizable) || !strings.Contains(err.Error(), "client 1's get(a) → v1@5") {
		t.Fatalf("Linearizable = %v, want ErrNotLinearizable naming client 1's get(a) → v1@5", err)
	}
}

func TestLinearizableWritesTheVisualization(t *testing.T) {
	ops := history(t, `
		0  0 10 put a v1 -> CREATED@5
		0 20 30 delete a -> DELETED@7
		1 40 50 get a -> v1@5`)
	path := filepath.Join(t.TempDir(), "history.html")
	if err := Linearizable(ops, 10*time.Second, path); !errors.Is(err, ErrNotLinearizable) {
		t.Fatalf("Linearizable = %v, want ErrNotLinearizable", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no visualization: %v", err)
	}
	if !strings.Contains(string(b), "<html") || !strings.Contains(string(b), "get(a) → v1@5") {
		t.Errorf("the visualization (%d bytes) is not HTML naming the operations", len(b))
	}

	// A linearizable history writes none.
	path = filepath.Join(t.TempDir(), "ok.html")
	if err := Linearizable(ops[:2], 10*time.Second, path); err != nil {
		t.Fatalf("Linearizable = %v, want nil", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a linearizable history wrote a visualization (stat: %v)", err)
	}
}

func TestLinearizableTimesOut(t *testing.T) {
	// Many writes with unknown outcomes pending to the end, then a read no order explains:
	// porcupine must try them in every combination before it can say so.
	var ops []Op
	for i := range 40 {
		ops = append(ops, Op{Client: i, Kind: Put, Key: "k" + string(rune('a'+i%20)), Value: "v" + string(rune('a'+i)), Call: int64(i), Outcome: Unknown})
	}
	ops = append(ops, Op{Client: 40, Kind: Get, Key: "ka", GotValue: "nobody", RV: 99, Call: 100, Return: 110, Outcome: OK})
	path := filepath.Join(t.TempDir(), "timeout.html")
	err := Linearizable(ops, 100*time.Millisecond, path)
	if !errors.Is(err, ErrCheckTimedOut) {
		t.Fatalf("Linearizable = %v, want ErrCheckTimedOut", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("no visualization after a timeout: %v", err)
	}
}

func TestLinearizableRefusesInvalidHistories(t *testing.T) {
	tests := []struct {
		name string
		give Op
	}{
		{"unknown kind", Op{Kind: "patch", Key: "a", Outcome: OK, Result: ResultReplaced, RV: 5, Return: 1}},
		{"unknown outcome", Op{Kind: Put, Key: "a", Outcome: "maybe", Return: 1}},
		{"unknown reason", Op{Kind: Put, Key: "a", Outcome: Failed, Reason: "Invalid", Return: 1}},
		{"unknown result", Op{Kind: Put, Key: "a", Outcome: OK, Result: "PATCHED", RV: 5, Return: 1}},
		{"ok write with no rv", Op{Kind: Put, Key: "a", Outcome: OK, Result: ResultCreated, Return: 1}},
		{"return before call", Op{Kind: Get, Key: "a", Outcome: OK, GotValue: "v", RV: 5, Call: 2, Return: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Linearizable([]Op{tt.give}, time.Second, ""); !errors.Is(err, ErrInvalidHistory) {
				t.Fatalf("Linearizable = %v, want ErrInvalidHistory", err)
			}
		})
	}
}

func TestLinearizableSettlesWritesAReadSaw(t *testing.T) {
	ops := history(t, `
		0  0 10 put a v1 -> CREATED@5
		0 20  - put a v2 -> unknown  # seen by the get: applied at 12, after b's put was called
		1 30 40 put b w1 -> CREATED@9
		1 50 60 get a -> v2@12
		2 20  - put c x1 -> unknown  # seen, but so is its retry: which made the change is not known
		2 25  - put c x1 -> unknown
		2 50 60 get c -> x1@10
		3 20  - create d y1 -> unknown  # not seen`)
	history, err := operations(ops)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range history {
		got = append(got, fmt.Sprintf("%d-%d %s", h.Call, h.Return, h.Input.(*Op)))
	}
	want := []string{
		"0-10 put(a, v1) → CREATED@5",
		"30-60 put(a, v2) → unknown, seen at rv 12",
		"30-40 put(b, w1) → CREATED@9",
		"50-60 get(a) → v2@12",
		"20-61 put(c, x1) → unknown",
		"25-61 put(c, x1) → unknown",
		"50-60 get(c) → x1@10",
		"20-61 create(d, y1) → unknown",
	}
	if !slices.Equal(got, want) {
		t.Errorf("operations =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
