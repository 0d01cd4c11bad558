package load

import (
	"testing"

	"github.com/kstore/kstore/bench/internal/driver"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		give     string
		phase    byte
		round, i int
		run      string
		ok       bool
	}{
		{give: objectName('s', 3, 12345, "k2x9a"), phase: 's', round: 3, i: 12345, run: "k2x9a", ok: true},
		{give: objectName('m', 0, 0, "0"), phase: 'm', round: 0, i: 0, run: "0", ok: true},
		{give: "s3-12-", ok: false},
		{give: "s3-12", ok: false},
		{give: "s-12-ab", ok: false},
		{give: "s3-12x-ab", ok: false},
		{give: "p000001", ok: false},
	}
	for _, tt := range tests {
		phase, round, i, run, ok := parseName(tt.give)
		if ok != tt.ok || ok && (phase != tt.phase || round != tt.round || i != tt.i || run != tt.run) {
			t.Errorf("parseName(%q) = %c %d %d %q %v, want %c %d %d %q %v", tt.give, phase, round, i, run, ok, tt.phase, tt.round, tt.i, tt.run, tt.ok)
		}
	}
}

func TestDocSize(t *testing.T) {
	for _, size := range []int{256, 1024, 4096} {
		d := driver.Doc{Namespace: "ws9999", Name: objectName('s', 1, 123456, "k2x9a"), Seq: 123456, Size: size, Group: 7}
		if got := len(d.JSON("")); got != size {
			t.Errorf("a Doc of size %d encodes to %d bytes", size, got)
		}
	}
}
