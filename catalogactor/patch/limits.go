package patch

import (
	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

// The bounds below are part of the replicated state machine: Merge and JSON run on every replica
// for every patch in the log, and a bound decides whether a patch applies. Changing one changes
// the outcome of entries already in the log, so a change must reach every node before any node
// applies an entry under the new value (ship it behind a version gate, never in a rolling
// restart alone).
const (
	// MaxDepth is the deepest nesting of arrays and objects that a document, a patch or a patched
	// result may have ({} is 1 deep, {"a":[]} 2). Kubernetes objects nest about 10 to 30 levels
	// (a CRD's schema a little more), so 1000 leaves a wide margin, and it keeps every recursion
	// in this package (decode, merge, copy, compare, encode) to about 1000 frames. It is smaller
	// than encoding/json's 10000 on purpose: json-patch re-parses each level, which made a merge
	// patch 9,990 levels deep cost 3.8 s; nothing legitimate needs that depth. It is the
	// object's own limit, so whatever a patch can build the store can hold.
	MaxDepth = object.MaxDepth

	// MaxOps is the most operations a JSON patch may hold: 10,000, the limit of the Kubernetes
	// API server (maxJSONPatchOperations in k8s.io/apiserver/pkg/endpoints/handlers/patch.go,
	// refused there as RequestEntityTooLarge), so a patch Kubernetes takes, kstore takes.
	MaxOps = 10000

	// MaxCopied bounds what a JSON patch may materialise: the encoded bytes of every copy
	// operation's value plus every add and replace value, summed over the patch, may not exceed
	// object.MaxSize (1.5 MiB), the largest object the store holds. It plays the part of
	// json-patch's AccumulatedCopySizeLimit (which counted copies only): without it an 879-byte
	// patch of copies grew a document to 16 MiB.
	MaxCopied = object.MaxSize

	// MaxWork is the work budget of one Merge or JSON call, in units of about 3 to 4 ns on the
	// 2-core VM kstore is developed on (see work and the weights below): 10 million units, about
	// 40 ms. Decoding and encoding are not counted (they are linear in inputs checkSize bounds,
	// about 10 ms for 1.5 MiB each way at worst). The inputs crafted to cost the most
	// (BenchmarkWorstCase) took 50 ms at most, the largest merge, which its size bounds and not
	// the budget; the budget's own worst cases (inserts at the front of a 700,000-element array,
	// moves that measure a 100,000-member object) 41 and 34 ms. Large legitimate patches spend
	// a small part of it: 10,000 label adds 2.5%, a 100,000-label merge 2%, a merge of 1.5 MiB
	// 4% (TestWorkSpent).
	MaxWork = 10_000_000
)

// Weights, so that a unit of any kind costs about the same, 3 to 4 ns (measured with
// BenchmarkWorstCase). A walk step costs more, about 10 ns, but a patch's size bounds its steps
// (a token is at least two bytes, "/a") to about 1.5 million units.
const (
	// shiftsPerUnit is how many array elements an insert or a remove moves for one unit: moving a
	// 12-byte element is a plain memmove, about 0.4 ns when the array is larger than the caches
	// (less when it is not, which the count ignores).
	shiftsPerUnit = 8
	// scansPerUnit is how many members or elements the depth check of a move scans for one unit.
	scansPerUnit = 8
	// unitsPerContainer is what making an array or object in a copy costs beyond visiting it:
	// an allocation and a table entry, about ten times a scalar's copy.
	unitsPerContainer = 10
)

// work counts units of work against MaxWork. A unit is one of: an operation started; a token of
// a pointer walked, or a key compared in a lookup; a value visited, copied, compared, pruned or
// measured (a copied container costs unitsPerContainer more, a long number compared one more
// per 32 bytes); shiftsPerUnit array elements moved; scansPerUnit members scanned for depth.
// Counting is deterministic (it depends on the inputs only), so every replica runs out at the
// same operation and reports the same error.
type work struct {
	left int64
}

func newWork() *work { return &work{left: MaxWork} }

// spend takes n units and reports whether the budget still holds.
func (w *work) spend(n int) bool {
	w.left -= int64(n)
	return w.left >= 0
}

func (w *work) out() bool { return w.left < 0 }

// tooMuchWork is the error of a spent budget. It is TooLarge: like an oversized object, the
// patch is refused for what it would cost, and a smaller patch (or a replace) will do.
func tooMuchWork(what string) error {
	return messages.Errorf(messages.StatusReason_TOO_LARGE,
		"%s needs more than %d units of work (values visited, compared or copied, and array elements shifted): split it into smaller patches, or replace the object", what, MaxWork)
}

// checkSize refuses an input of n bytes over object.MaxSize. Callers already bound both the
// stored object and an admitted patch by it; checking here makes this package's time bound hold
// on its own.
func checkSize(what string, n int) error {
	if n > object.MaxSize {
		return messages.Errorf(messages.StatusReason_TOO_LARGE,
			"%s is %d bytes, over the limit of %d bytes (1.5 MiB)", what, n, object.MaxSize)
	}
	return nil
}

// sized is b, or nothing when b is over object.MaxSize: what goes into a tree, which an input
// checkSize will refuse need not be copied into.
func sized(b []byte) []byte {
	if len(b) > object.MaxSize {
		return nil
	}
	return b
}
