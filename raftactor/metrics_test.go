package raftactor

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func histogramCount(t *testing.T, o prometheus.Observer) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// TestWriteLatencyEndsAtApply: a write's latency is observed once the catalog has applied its
// index, not at commit, and each write once.
func TestWriteLatencyEndsAtApply(t *testing.T) {
	writes := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "w"})
	m, err := NewMetrics(prometheus.NewRegistry(), writes)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	m.proposalCommitted(5, t0)
	m.proposalCommitted(6, t0.Add(time.Second))
	m.appliedTo(4, t0.Add(2*time.Second))
	if n, _ := histogramCount(t, writes); n != 0 {
		t.Fatalf("observed %d writes before their apply, want 0", n)
	}
	m.appliedTo(5, t0.Add(3*time.Second))
	if n, sum := histogramCount(t, writes); n != 1 || sum != 3 {
		t.Fatalf("after applying 5: %d writes, %vs in all; want 1 of 3s", n, sum)
	}
	m.appliedTo(9, t0.Add(4*time.Second))
	m.appliedTo(9, t0.Add(5*time.Second))
	if n, sum := histogramCount(t, writes); n != 2 || sum != 6 {
		t.Fatalf("after applying 9 twice: %d writes, %vs in all; want 2 of 6s", n, sum)
	}
	var g dto.Metric
	if err := m.applied.Write(&g); err != nil {
		t.Fatal(err)
	}
	if got := g.GetGauge().GetValue(); got != 9 {
		t.Errorf("etcd_server_proposals_applied_total = %v, want the applied index 9", got)
	}
}

// TestPeerRTT: a heartbeat's round trip runs from the oldest unanswered heartbeat to the
// answer; one unanswered for longer than maxRTT counts as lost, so a peer that comes back after
// an outage does not report the outage as its round trip.
func TestPeerRTT(t *testing.T) {
	tests := []struct {
		name    string
		sent    []time.Duration // heartbeats sent at these offsets
		answer  time.Duration   // the answer's offset
		wantRTT float64
	}{
		{"one heartbeat", []time.Duration{0}, 30 * time.Millisecond, 0.03},
		{"answered after the next was sent", []time.Duration{0, 100 * time.Millisecond}, 150 * time.Millisecond, 0.15},
		{"an old one taken as lost", []time.Duration{0, 5 * time.Second}, 5*time.Second + 20*time.Millisecond, 0.02},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMetrics(prometheus.NewRegistry(), nil)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Unix(1000, 0)
			for _, d := range tt.sent {
				m.heartbeatSent(2, t0.Add(d), time.Second)
			}
			m.heartbeatAnswered(2, t0.Add(tt.answer))
			m.heartbeatAnswered(2, t0.Add(tt.answer+time.Second)) // a second answer has no heartbeat left
			n, sum := histogramCount(t, m.rttTo[2])
			if n != 1 || sum < tt.wantRTT-1e-9 || sum > tt.wantRTT+1e-9 {
				t.Fatalf("observed %d round trips of %vs in all, want one of %vs", n, sum, tt.wantRTT)
			}
		})
	}
}

// TestMetricsOff: a nil *Metrics takes every call.
func TestMetricsOff(t *testing.T) {
	m, err := NewMetrics(nil, nil)
	if m != nil || err != nil {
		t.Fatalf("NewMetrics(nil) = %v, %v; want nil, nil", m, err)
	}
	if m.WALSync() != nil {
		t.Error("WALSync of nil metrics is not a nil interface")
	}
	m.started(1, 1, 1)
	m.commit(1)
	m.proposals(1)
	m.proposalFailed()
	m.proposalCommitted(1, time.Now())
	m.appliedTo(1, time.Now())
	m.forgetWrites()
	m.heartbeatSent(1, time.Now(), time.Second)
	m.heartbeatAnswered(1, time.Now())
}
