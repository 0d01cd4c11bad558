package wal

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

var benchModes = []struct {
	name string
	mode allocMode
}{
	{"fallocate", allocFallocate}, // what Open uses
	{"none", allocNone},
	{"zerofill", allocZeroFill},
}

// benchmarkSave measures one Save of perSave entries of 1 KiB plus a
// HardState, fdatasynced: the raw cost of making one Ready durable. Segment
// rolls happen inside the timed loop when the data outgrows a segment.
func benchmarkSave(b *testing.B, perSave int) {
	data := []byte(strings.Repeat("v", 1024))
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) {
			w, _, err := open(b.TempDir(), Options{}, m.mode)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			batch := make([]*raftpb.Entry, perSave)
			next := uint64(1)
			lat := make([]time.Duration, 0, b.N)
			b.SetBytes(int64(perSave * len(data)))
			b.ReportAllocs()
			for b.Loop() {
				for k := range batch {
					batch[k] = ent(next, 1, "")
					batch[k].Data = data
					next++
				}
				start := time.Now()
				if err := w.Save(hardState(1, 1, next-1), batch, true); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			// The mean hides segment rolls; the tail shows them.
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
			b.ReportMetric(float64(len(w.segs)-1), "rolls")
		})
	}
}

// BenchmarkSaveSync: one entry of 1 KiB per Save (one op = one Save).
func BenchmarkSaveSync(b *testing.B) { benchmarkSave(b, 1) }

// BenchmarkSaveSync64: 64 entries of 1 KiB per Save.
func BenchmarkSaveSync64(b *testing.B) { benchmarkSave(b, 64) }

// BenchmarkOpen measures replaying a log of 20000 1 KiB entries.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	w, _ := mustOpen(b, dir, Options{})
	data := strings.Repeat("v", 1024)
	for i := uint64(1); i <= 20000; i += 100 {
		var es []*raftpb.Entry
		for j := i; j < i+100; j++ {
			es = append(es, ent(j, 1, data))
		}
		if err := w.Save(hardState(1, 1, i), es, false); err != nil {
			b.Fatal(err)
		}
	}
	mustClose(b, w)
	for b.Loop() {
		w, st := mustOpen(b, dir, Options{})
		if len(st.Entries) != 20000 {
			b.Fatalf("%d entries", len(st.Entries))
		}
		mustClose(b, w)
	}
}
