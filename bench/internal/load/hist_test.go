package load

import (
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	// Every value falls in the bucket whose bounds hold it, and the buckets are contiguous.
	prevLow := uint64(0)
	for v := uint64(0); v < 1<<20; v += 1 + v/200 {
		i := bucketOf(v)
		low, width := bucketBounds(i)
		if v < low || v >= low+width {
			t.Fatalf("bucketOf(%d) = %d, whose bounds are [%d, %d)", v, i, low, low+width)
		}
		if low < prevLow {
			t.Fatalf("bucket %d starts at %d, before the previous value's bucket (%d)", i, low, prevLow)
		}
		prevLow = low
		if v >= 64 && float64(width)/float64(low) > 1.0/64 {
			t.Fatalf("bucket %d of %d: width %d is more than 1/64 of %d", i, v, width, low)
		}
	}
	if got := bucketOf(1 << 62); got != histBuckets-1 {
		t.Errorf("bucketOf(2^62) = %d, want the last bucket %d", got, histBuckets-1)
	}
}

func TestQuantile(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.50, 500 * time.Millisecond},
		{0.99, 990 * time.Millisecond},
		{1, 1000 * time.Millisecond},
	}
	for _, tt := range tests {
		got := h.quantile(tt.q)
		if diff := float64(got-tt.want) / float64(tt.want); diff < -0.016 || diff > 0.016 {
			t.Errorf("quantile(%v) = %v, want %v within 1.6%%", tt.q, got, tt.want)
		}
	}
	if h.max != time.Second {
		t.Errorf("max = %v, want 1s", h.max)
	}
}
