package checker

import (
	"fmt"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		name      string
		give      string
		reference string
		want      string
	}{
		{
			name: "a put seen, a put never made, a read",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - put a v2 -> unknown
				1 30 40 put b w1 -> CREATED@9
				1 50 60 get a -> v2@12
				2 55 70 list -> @14 a=v2@12 b=w1@9
				0 80  - put c x1 -> unknown
				1 80  - get a -> unknown`,
			reference: "ADDED:a=v1@5 ADDED:b=w1@9 MODIFIED:a=v2@12",
			want: `
				0  0 10 put a v1 -> CREATED@5
				0 30 60 put a v2 -> REPLACED@12  # after b's put was called, before the get returned
				1 30 40 put b w1 -> CREATED@9
				1 50 60 get a -> v2@12
				2 55 70 list -> @14 a=v2@12 b=w1@9`,
		},
		{
			name: "a create nobody saw returns after everything",
			give: `
				0  0 10 put a v1 -> CREATED@5
				1  5  - create b w1 -> unknown`,
			reference: "ADDED:a=v1@5 ADDED:b=w1@7",
			want: `
				0  0 10 put a v1 -> CREATED@5
				1  5 11 create b w1 -> CREATED@7`,
		},
		{
			name: "a change of the wrong type stays unknown",
			give: `
				0  0  - update a v1 -> unknown`,
			reference: "ADDED:a=v1@5",
			want: `
				0  0  - update a v1 -> unknown`,
		},
		{
			name: "the only delete that may have made a deletion made it",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - delete a -> unknown
				1 30 40 get a -> NotFound
				1 50 60 put a v2 -> CREATED@9`,
			reference: "ADDED:a=v1@5 DELETED:a=v1@7 ADDED:a=v2@9",
			want: `
				0  0 10 put a v1 -> CREATED@5
				0 20 60 delete a -> DELETED@7
				1 30 40 get a -> NotFound
				1 50 60 put a v2 -> CREATED@9`,
		},
		{
			name: "of two deletes that may have made a deletion, the first called stands for both",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - delete a -> unknown
				1 25  - delete a -> unknown`,
			reference: "ADDED:a=v1@5 DELETED:a=v1@7",
			want: `
				0  0 10 put a v1 -> CREATED@5
				0 20 26 delete a -> DELETED@7`,
		},
		{
			name: "three deletes, two deletions",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - delete a if=5 -> unknown
				1 25  - delete a -> unknown
				2 30 40 put a v2 -> CREATED@9
				3 50 60 get a -> v2@9
				2 70  - delete a if=9 -> unknown
				3 80 90 put a v3 -> CREATED@13`,
			reference: "ADDED:a=v1@5 DELETED:a=v1@7 ADDED:a=v2@9 DELETED:a=v2@11 ADDED:a=v3@13",
			want: `
				0  0 10 put a v1 -> CREATED@5
				0 20 40 delete a -> DELETED@7  # client 1's may have made it too, with no precondition
				1 30 90 delete a -> DELETED@11      # client 2's may have made it too; after v2 was put
				2 30 40 put a v2 -> CREATED@9
				3 50 60 get a -> v2@9
				3 80 90 put a v3 -> CREATED@13`,
		},
		{
			name: "a deletion no delete may have made leaves the key's deletes unknown",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20 30 put b w1 -> CREATED@9
				1 40  - delete a -> unknown`,
			reference: "ADDED:a=v1@5 DELETED:a=v1@7 ADDED:b=w1@9",
			want: `
				0  0 10 put a v1 -> CREATED@5
				0 20 30 put b w1 -> CREATED@9
				1 40  - delete a -> unknown`,
		},
		{
			name: "a delete called after the deletion was seen did not make it",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - delete a -> unknown
				1 30 40 put b w1 -> CREATED@9
				1 50  - delete a -> unknown`,
			reference: "ADDED:a=v1@5 DELETED:a=v1@7 ADDED:b=w1@9",
			want: `
				0  0 10 put a v1 -> CREATED@5
				0 20 40 delete a -> DELETED@7
				1 30 40 put b w1 -> CREATED@9`,
		},
		{
			name: "a delete whose precondition the object did not meet did not make it",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - delete a if=4 -> unknown
				1 25  - delete a if=5 -> unknown`,
			reference: "ADDED:a=v1@5 DELETED:a=v1@7",
			want: `
				0  0 10 put a v1 -> CREATED@5
				1 25 26 delete a if=5 -> DELETED@7  # nobody saw it: after everything`,
		},
		{
			name: "a delete with no deletion left made none",
			give: `
				0  0 10 put a v1 -> CREATED@5
				0 20  - delete a -> unknown
				1 20 30 delete a -> DELETED@7`,
			reference: "ADDED:a=v1@5 DELETED:a=v1@7",
			want: `
				0  0 10 put a v1 -> CREATED@5
				1 20 30 delete a -> DELETED@7`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resolve(history(t, tt.give), events(t, tt.reference))
			if g, w := describeAll(got), describeAll(history(t, tt.want)); g != w {
				t.Fatalf("Resolve =\n%s\nwant\n%s", g, w)
			}
		})
	}
}

func describeAll(ops []Op) string {
	var b strings.Builder
	for _, op := range ops {
		ret := fmt.Sprint(op.Return)
		if op.Outcome == Unknown {
			ret = "-"
		}
		fmt.Fprintf(&b, "%d %d %s %s\n", op.Client, op.Call, ret, &op)
	}
	return b.String()
}
