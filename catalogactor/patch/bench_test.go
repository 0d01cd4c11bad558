package patch

// Measured 2026-12-01 on the 2-core AMD EPYC VM kstore is developed on, shared with other work
// (load average 1.3 to 1.7), so figures move by ±30% from run to run. "before" is json-patch
// v5.9.11 as catalogactor/apply.go calls it, "after" this package.
//
//	go test ./catalogactor/patch/ -run '^$' -bench 'MergeLabels100k|JSONPatchAdds30k|MergeNested9990|WorstCase' -benchtime 3x -benchmem
//
//	MergeLabels100k/before            10.80 s     87.8 MB  1,901,299 allocs
//	MergeLabels100k/after             10.5 ms     20.1 MB         15 allocs
//	JSONPatchAdds30k/before           0.996 s     17.6 MB    540,394 allocs
//	JSONPatchAdds30k/after            0.46 ms      2.0 MB         12 allocs   refused: over MaxOps
//	JSONPatchAdds30k/after-10k         8.1 ms      8.5 MB     10,302 allocs
//	JSONPatchAdds30k/after-3x10k      26.4 ms     29.2 MB     30,871 allocs
//	MergeNested9990/before             1.94 s    934.5 MB    163,868 allocs
//	MergeNested9990/before-1000       19.5 ms      6.9 MB     13,050 allocs
//	MergeNested9990/after-CheckMerge  0.11 ms      0.4 MB          9 allocs   refused: over MaxDepth
//	MergeNested9990/after             0.11 ms      0.4 MB         11 allocs   refused: over MaxDepth
//	MergeNested9990/after-1000        0.13 ms      0.1 MB         24 allocs
//
// The worst cases (BenchmarkWorstCase, "after" only; json-patch has no bound on most of them):
//
//	front-inserts      50.2 ms  refused by MaxWork at operation 114
//	deeper-moves       37.0 ms  refused by MaxWork at operation 1596
//	deep-walks         21.3 ms  1.5 million units: the patch's size bounds it
//	deep-array-walks   24.1 ms
//	copy-bomb           4.7 ms  refused by MaxCopied at operation 10
//	largest-merge      59.4 ms  1.5 MiB into 1.5 MiB, keys out of order: size-bound
//	number-tests       25.3 ms  393,200 numbers compared by value
//	small-copies       47.0 ms  refused by MaxCopied (half a million containers copied)
//	front-inserts-1k   10.3 ms  7.3 million units: fits
//	labels-100k-merge  16.8 ms
//
// The best of 8 runs, measured apart (wall time), was lower: largest-merge 50 ms,
// front-inserts 41, deeper-moves 34, small-copies 25, number-tests 22, deep-walks 17.

import (
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/kstore/kstore/messages"
)

func BenchmarkMergeLabels100k(b *testing.B) {
	doc, patch := labelsDoc(100_000, "v"), labelsMerge(100_000, "w")
	b.Run("before", func(b *testing.B) {
		for b.Loop() {
			if _, err := jsonpatch.MergePatch(doc, patch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("after", func(b *testing.B) {
		for b.Loop() {
			if _, err := Merge(doc, patch); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkJSONPatchAdds30k(b *testing.B) {
	doc := labelsDoc(0, "")
	adds30k := labelAdds(0, 30_000, 1)
	b.Run("before", func(b *testing.B) {
		p, err := jsonpatch.DecodePatch(adds30k)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := p.ApplyWithOptions(doc, v5Options()); err != nil {
				b.Fatal(err)
			}
		}
	})
	// 30,000 operations are over MaxOps: refused as TooLarge before anything applies.
	b.Run("after", func(b *testing.B) {
		for b.Loop() {
			if _, err := JSON(doc, adds30k); !messages.IsTooLarge(err) {
				b.Fatal(err)
			}
		}
	})
	b.Run("after-10k", func(b *testing.B) {
		adds10k := labelAdds(0, 10_000, 1)
		for b.Loop() {
			if _, err := JSON(doc, adds10k); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same 30,000 adds as three patches of 10,000, each on the result of the one before:
	// what a client split at MaxOps sends.
	b.Run("after-3x10k", func(b *testing.B) {
		parts := [][]byte{labelAdds(0, 10_000, 1), labelAdds(10_000, 10_000, 2), labelAdds(20_000, 10_000, 3)}
		for b.Loop() {
			d := doc
			for _, p := range parts {
				var err error
				if d, err = JSON(d, p); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

func BenchmarkMergeNested9990(b *testing.B) {
	doc := []byte(`{"metadata":{"name":"x"}}`)
	deep := []byte(nested(9990, `{"a":`, `}`, `1`))
	atMax := []byte(nested(MaxDepth, `{"a":`, `}`, `1`))
	b.Run("before", func(b *testing.B) {
		for b.Loop() {
			if _, err := jsonpatch.MergePatch(doc, deep); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("before-1000", func(b *testing.B) {
		for b.Loop() {
			if _, err := jsonpatch.MergePatch(doc, atMax); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Deeper than MaxDepth: refused by CheckMerge, at admission, and by Merge alike.
	b.Run("after-CheckMerge", func(b *testing.B) {
		for b.Loop() {
			if err := CheckMerge(deep); !messages.IsInvalid(err) {
				b.Fatal(err)
			}
		}
	})
	b.Run("after", func(b *testing.B) {
		for b.Loop() {
			if _, err := Merge(doc, deep); !messages.IsInvalid(err) {
				b.Fatal(err)
			}
		}
	})
	b.Run("after-1000", func(b *testing.B) {
		for b.Loop() {
			if _, err := Merge(doc, atMax); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWorstCase runs the inputs crafted to cost the most, each to its refusal (by MaxWork,
// MaxCopied or MaxDepth) or, for those the bounds let through, to its result. These are the
// figures that back MaxWork's comment.
func BenchmarkWorstCase(b *testing.B) {
	tests := []struct {
		name string
		give func() ([]byte, []byte)
	}{
		{"front-inserts", frontInserts},
		{"deeper-moves", deeperMoves},
		{"deep-walks", deepWalks},
		{"deep-array-walks", deepArrayWalks},
		{"copy-bomb", copyBomb},
		{"largest-merge", maxMerge},
		{"number-tests", numberTests},
		{"small-copies", smallCopies},
		{"front-inserts-1k", frontInserts1k},
		{"labels-100k-merge", func() ([]byte, []byte) { return labelsDoc(100_000, "v"), labelsMerge(100_000, "w") }},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			doc, patch := tt.give()
			apply := JSON
			if patch[0] == '{' {
				apply = Merge
			}
			for b.Loop() {
				_, _ = apply(doc, patch)
			}
		})
	}
}
