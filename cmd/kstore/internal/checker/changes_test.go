package checker

import (
	"slices"
	"testing"
)

var changeFindings = []error{ErrReferenceOrder, ErrReferenceReplay, ErrWriteNotInReference, ErrUnwrittenChange, ErrSharedRV}

func TestChanges(t *testing.T) {
	ops := `
		0   0  10 put a v1 -> CREATED@5
		1   0  10 create b w1 -> CREATED@6
		0  20  30 update a v2 if=5 -> REPLACED@8
		1  20  30 delete b -> DELETED@9
		0  40   - put a v3 -> unknown     # made MODIFIED a=v3@12
		1  40  50 delete c -> NO_OP@10
		1  60   - put d x1 -> unknown     # made nothing
		2  60  70 create a v9 -> AlreadyExists
		2  80  90 get a -> v3@12
		2 100 110 put a v3 -> NO_OP@12
		2 100   - delete a -> unknown     # made DELETED a=v3@14
		3 100 110 list -> @14`
	reference := "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8 DELETED:b=w1@9 MODIFIED:a=v3@12 DELETED:a=v3@14"
	tests := []struct {
		name      string
		ops       string // added to ops
		reference string // instead of reference, when not empty
		want      []error
	}{
		{name: "consistent"},
		{
			name:      "rvs out of order",
			reference: "ADDED:a=v1@5 MODIFIED:a=v2@8 ADDED:b=w1@6 DELETED:b=w1@9 MODIFIED:a=v3@12 DELETED:a=v3@14",
			want:      []error{ErrReferenceOrder},
		},
		{
			name:      "an rv twice",
			reference: "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8 DELETED:b=w1@8 MODIFIED:a=v3@12 DELETED:a=v3@14",
			want:      []error{ErrReferenceOrder, ErrWriteNotInReference, ErrUnwrittenChange},
		},
		{
			name:      "a key modified before it was added",
			reference: "MODIFIED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8 DELETED:b=w1@9 MODIFIED:a=v3@12 DELETED:a=v3@14",
			want:      []error{ErrReferenceReplay, ErrWriteNotInReference},
		},
		{
			name:      "a key added twice",
			reference: "ADDED:a=v1@5 ADDED:b=w1@6 ADDED:a=v2@8 DELETED:b=w1@9 MODIFIED:a=v3@12 DELETED:a=v3@14",
			want:      []error{ErrReferenceReplay, ErrWriteNotInReference},
		},
		{
			name:      "a deletion of another value than the stored one",
			reference: "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8 DELETED:b=w0@9 MODIFIED:a=v3@12 DELETED:a=v3@14",
			want:      []error{ErrReferenceReplay},
		},
		{
			name:      "a bookmark",
			reference: "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8 DELETED:b=w1@9 BOOKMARK@10 MODIFIED:a=v3@12 DELETED:a=v3@14",
			want:      []error{ErrReferenceReplay, ErrSharedRV}, // and the NO_OP delete's rv
		},
		{
			name: "an ok write missing",
			ops:  "3 120 130 put e y1 -> CREATED@15",
			want: []error{ErrWriteNotInReference},
		},
		{
			name:      "an ok write with another value at its rv",
			reference: "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v0@8 DELETED:b=w1@9 MODIFIED:a=v3@12 DELETED:a=v3@14",
			want:      []error{ErrWriteNotInReference, ErrUnwrittenChange},
		},
		{
			name:      "a value nobody wrote",
			reference: "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8 DELETED:b=w1@9 MODIFIED:a=v3@12 DELETED:a=v3@14 ADDED:z=z1@15",
			want:      []error{ErrUnwrittenChange},
		},
		{
			name:      "a value only a failed write wrote",
			reference: "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8 DELETED:b=w1@9 MODIFIED:a=v3@12 MODIFIED:a=v9@13 DELETED:a=v9@14",
			want:      []error{ErrUnwrittenChange},
		},
		{
			name:      "a value written once, changed twice",
			reference: "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8 DELETED:b=w1@9 MODIFIED:a=v3@12 DELETED:a=v3@14 ADDED:b=w1@15",
			want:      []error{ErrUnwrittenChange},
		},
		{
			name:      "a deletion nobody made",
			reference: "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8 DELETED:b=w1@9 MODIFIED:a=v3@12 DELETED:a=v3@14 ADDED:d=x1@15 DELETED:d=x1@16",
			want:      []error{ErrUnwrittenChange},
		},
		{
			name:      "a change at a NO_OP delete's rv",
			reference: "ADDED:a=v1@5 ADDED:b=w1@6 MODIFIED:a=v2@8 DELETED:b=w1@9 ADDED:d=x1@10 MODIFIED:a=v3@12 DELETED:a=v3@14",
			want:      []error{ErrSharedRV},
		},
		{
			name: "two ok writes at one rv",
			ops:  "3 120 130 put e y1 -> CREATED@9",
			want: []error{ErrWriteNotInReference, ErrSharedRV},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := reference
			if tt.reference != "" {
				ref = tt.reference
			}
			errs := Changes(history(t, ops+"\n"+tt.ops), events(t, ref))
			if got := broken(errs, changeFindings...); !slices.Equal(got, tt.want) {
				t.Fatalf("Changes found %v (%v), want %v", got, errs, tt.want)
			}
		})
	}
}
