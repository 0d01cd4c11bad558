package catalogactor

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestLatestCacheStaysInItsBound puts, replaces and deletes random keys and checks after each
// step that the cache holds no more than its bound, that its byte count is what it holds, and
// that what it holds is each key's newest value (an evicted key is simply absent).
func TestLatestCacheStaysInItsBound(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes int
		maxValue int
	}{
		{"small values", 1024, 64},
		{"values near the bound", 1024, 900},
		{"some values over the bound", 512, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			l := newLatestCache(tc.maxBytes)
			newest := map[string][]byte{}
			evicted := 0
			for step := range 5000 {
				key := fmt.Sprintf("key-%d", r.IntN(40))
				var v []byte
				if r.IntN(5) > 0 {
					v = bytes.Repeat([]byte{byte(step)}, 1+r.IntN(tc.maxValue))
				}
				l.put(key, v)
				newest[key] = v
				if got, ok := l.get(key); ok != (v != nil && len(key)+len(v) <= tc.maxBytes) || ok && !bytes.Equal(got, v) {
					t.Fatalf("step %d: get(%s) right after put = %d bytes, %v; put %d bytes", step, key, len(got), ok, len(v))
				}
				sum := 0
				for k, got := range l.objects {
					sum += len(k) + len(got)
					if !bytes.Equal(got, newest[k]) {
						t.Fatalf("step %d: %s holds %d bytes that are not its newest value", step, k, len(got))
					}
				}
				if sum != l.bytes || l.bytes > tc.maxBytes {
					t.Fatalf("step %d: holds %d bytes, counts %d, bound %d", step, sum, l.bytes, tc.maxBytes)
				}
				live := 0
				for _, v := range newest {
					if v != nil {
						live++
					}
				}
				evicted += live - len(l.objects)
			}
			if evicted == 0 {
				t.Fatalf("no key was ever evicted: the case does not test the bound")
			}
		})
	}
	var none *latestCache // a catalog without a cache reads Badger every time
	none.put("k", []byte("v"))
	if _, ok := none.get("k"); ok {
		t.Fatal("a nil cache returned a value")
	}
}
