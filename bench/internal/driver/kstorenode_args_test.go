package driver

import (
	"slices"
	"testing"
)

func TestMemberArgs(t *testing.T) {
	cases := []struct {
		args []string
		i    int
		want []string
	}{
		{[]string{"--pprof-listen", "127.0.0.1:6061"}, 0, []string{"--pprof-listen", "127.0.0.1:6061"}},
		{[]string{"--x", "--pprof-listen", "127.0.0.1:6061"}, 2, []string{"--x", "--pprof-listen", "127.0.0.1:6063"}},
		{[]string{"--pprof-listen=127.0.0.1:6061", "--x"}, 1, []string{"--pprof-listen=127.0.0.1:6062", "--x"}},
		{[]string{"--pprof-listen", "127.0.0.1:0"}, 1, []string{"--pprof-listen", "127.0.0.1:0"}},
		{[]string{"--pprof-listen"}, 1, []string{"--pprof-listen"}},
		{[]string{"--listen-metrics", "127.0.0.1:9101", "--pprof-listen=127.0.0.1:6061"}, 2, []string{"--listen-metrics", "127.0.0.1:9103", "--pprof-listen=127.0.0.1:6063"}},
		{[]string{"--listen-metrics=127.0.0.1:9101"}, 1, []string{"--listen-metrics=127.0.0.1:9102"}},
		{[]string{"--log-level", "info"}, 1, []string{"--log-level", "info"}},
		{nil, 1, nil},
	}
	for _, c := range cases {
		in := slices.Clone(c.args)
		if got := memberArgs(c.args, c.i); !slices.Equal(got, c.want) {
			t.Errorf("memberArgs(%q, %d) = %q, want %q", c.args, c.i, got, c.want)
		}
		if !slices.Equal(c.args, in) {
			t.Errorf("memberArgs changed its argument: %q", c.args)
		}
	}
}
