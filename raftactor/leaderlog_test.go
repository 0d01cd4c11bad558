package raftactor

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestLogLeaderChange: the first leader known since start is an info line; every change after
// it, losing the leader included, is a warning naming the old and new leader and the term.
func TestLogLeaderChange(t *testing.T) {
	type change struct{ old, lead uint64 }
	type line struct {
		level    zapcore.Level
		msg      string
		old, new uint64
	}
	tests := []struct {
		name    string
		changes []change
		want    []line
	}{
		{"the first election", []change{{0, 1}}, []line{{zapcore.InfoLevel, "leader elected", 0, 1}}},
		{"no leader yet, still none", []change{{0, 0}}, nil},
		{"lost, then a new one", []change{{0, 1}, {1, 0}, {0, 2}}, []line{
			{zapcore.InfoLevel, "leader elected", 0, 1},
			{zapcore.WarnLevel, "leader lost: no leader known (an election is under way, or this member is cut off from the quorum)", 1, 0},
			{zapcore.WarnLevel, "leader changed", 0, 2},
		}},
		{"a direct change", []change{{0, 1}, {1, 3}}, []line{
			{zapcore.InfoLevel, "leader elected", 0, 1},
			{zapcore.WarnLevel, "leader changed", 1, 3},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, 1, 2, 3)
			core, logs := observer.New(zapcore.InfoLevel)
			a := &Actor{log: zap.New(core), n: c.nodes[1]}
			for _, ch := range tt.changes {
				a.logLeaderChange(ch.old, ch.lead)
			}
			got := logs.All()
			if len(got) != len(tt.want) {
				t.Fatalf("logged %d lines, want %d: %v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				f := got[i].ContextMap()
				if got[i].Level != w.level || got[i].Message != w.msg || f["old-leader"] != w.old || f["new-leader"] != w.new || f["term"] == nil {
					t.Errorf("line %d = %v %q %v, want %v %q old-leader %d new-leader %d and the term", i, got[i].Level, got[i].Message, f, w.level, w.msg, w.old, w.new)
				}
			}
		})
	}
}
