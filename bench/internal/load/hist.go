package load

import (
	"math/bits"
	"time"
)

// histogram counts durations in log-linear buckets of microseconds: exact below 64 µs, and
// within 1/64 (1.6%) above, up to about 2^37 µs (38 hours; longer lags land in the last bucket).
// It has a fixed size, so one per watcher costs the same whatever the run's length, and adding
// to it allocates nothing. Not safe for concurrent use: each consumer owns one.
type histogram struct {
	counts [histBuckets]uint32
	n      uint64
	max    time.Duration
}

const (
	histSubBits = 6 // 64 buckets per power of two
	histBuckets = 32 << histSubBits
)

func (h *histogram) add(d time.Duration) { h.addN(d, 1) }

// addN counts d n times.
func (h *histogram) addN(d time.Duration, n uint32) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d/time.Microsecond))] += n
	h.n += uint64(n)
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the middle of the bucket holding the q-th smallest duration (0 < q ≤ 1), or
// 0 when the histogram is empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			low, width := bucketBounds(i)
			return min(time.Duration(low)*time.Microsecond+time.Duration(width)*time.Microsecond/2, h.max)
		}
	}
	return h.max
}

// bucketOf maps v (µs) to its bucket: v itself below 2^histSubBits, then histSubBits
// significant bits per power of two.
func bucketOf(v uint64) int {
	const sub = 1 << histSubBits
	if v < sub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1 // v>>shift is in [sub, 2*sub)
	return min((shift+1)<<histSubBits+int(v>>shift)-sub, histBuckets-1)
}

// bucketBounds is the inverse of bucketOf: the bucket's lowest value and its width, in µs.
func bucketBounds(i int) (low, width uint64) {
	const sub = 1 << histSubBits
	if i < sub {
		return uint64(i), 1
	}
	shift := i>>histSubBits - 1
	mant := uint64(i&(sub-1) + sub)
	return mant << shift, 1 << shift
}
