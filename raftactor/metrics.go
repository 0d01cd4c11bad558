package raftactor

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"

	"github.com/kstore/kstore/raftactor/wal"
)

// Metrics are the raft actor's collectors, under etcd's names where the meaning is etcd's. A nil
// *Metrics is metrics off: every method is then a no-op, and the actor pays one nil check.
//
// The gauges and counters are written by the raft actor alone (the WAL's fsync histogram by its
// worker); the fields below the collectors are the actor's own state, touched by no one else.
type Metrics struct {
	hasLeader, isLeader prometheus.Gauge
	leaderChanges       prometheus.Counter
	committed, applied  prometheus.Gauge
	pending, capacity   prometheus.Gauge
	inflight            prometheus.Gauge
	failed              prometheus.Counter
	walFsync            prometheus.Histogram
	peerRTT             *prometheus.HistogramVec
	writes              prometheus.Observer // nil: write latency not measured

	// The raft actor's: each peer's RTT observer, bound once; the send time of the oldest
	// heartbeat to each peer not answered yet.
	rttTo     map[uint64]prometheus.Observer
	heartbeat map[uint64]time.Time
	// writeStarts are this node's committed proposals not applied yet, in index order, with
	// the time the raft actor took them: a write's latency ends when the catalog has applied
	// it (and so answered its caller).
	writeStarts []writeStart
}

type writeStart struct {
	index uint64
	at    time.Time
}

// NewMetrics registers the raft actor's collectors in reg; nil reg gives nil (metrics off).
// writes, when set, observes each write's latency on this node, from the raft actor taking the
// proposal to the catalog having applied it (the node's kstore_request_duration_seconds
// {type="write"}).
func NewMetrics(reg prometheus.Registerer, writes prometheus.Observer) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &Metrics{
		hasLeader:     gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not."),
		isLeader:      gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise."),
		leaderChanges: counter("etcd_server_leader_changes_seen_total", "The number of leader changes seen."),
		// etcd's two "totals" are gauges of the commit and applied indexes; kept so, so that
		// dashboards written for etcd read them alike.
		committed: gauge("etcd_server_proposals_committed_total", "The total number of consensus proposals committed (the Raft commit index)."),
		applied:   gauge("etcd_server_proposals_applied_total", "The total number of consensus proposals applied (the catalog's applied index)."),
		pending:   gauge("etcd_server_proposals_pending", "The current number of pending proposals to commit."),
		failed:    counter("etcd_server_proposals_failed_total", "The total number of failed proposals seen: refused, timed out, overwritten or cut short by a stop."),
		inflight:  gauge("kstore_proposals_inflight", "Proposals of this node in its bounded table, waiting to commit (see kstore_proposals_capacity)."),
		capacity:  gauge("kstore_proposals_capacity", "Size of the table of in-flight proposals: beyond it writes are refused with Unavailable."),
		walFsync: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_disk_wal_fsync_duration_seconds",
			Help:    "The latency distributions of fsync called by WAL.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		peerRTT: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etcd_network_peer_round_trip_time_seconds",
			Help:    "Round-trip time of a leader's heartbeat to a follower and its answer, which includes the follower's handling of it.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"To"}),
		writes:    writes,
		rttTo:     map[uint64]prometheus.Observer{},
		heartbeat: map[uint64]time.Time{},
	}
	for _, c := range []prometheus.Collector{m.hasLeader, m.isLeader, m.leaderChanges, m.committed, m.applied,
		m.pending, m.failed, m.inflight, m.capacity, m.walFsync, m.peerRTT} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// WALSync is the observer of the WAL's syncs (wal.Options.SyncDuration); nil when metrics are off.
func (m *Metrics) WALSync() wal.Observer {
	if m == nil {
		return nil
	}
	return m.walFsync
}

func (m *Metrics) started(capacity int, commit, applied uint64) {
	if m == nil {
		return
	}
	m.capacity.Set(float64(capacity))
	m.committed.Set(float64(commit))
	m.applied.Set(float64(applied))
}

// softState records who leads, from a Ready's SoftState.
func (m *Metrics) softState(ss *raft.SoftState, prevLead uint64) {
	if m == nil {
		return
	}
	m.hasLeader.Set(boolGauge(ss.Lead != raft.None))
	m.isLeader.Set(boolGauge(ss.RaftState == raft.StateLeader))
	if ss.Lead != raft.None && ss.Lead != prevLead {
		m.leaderChanges.Inc() // as etcd: every new leader, the first one included
	}
}

func (m *Metrics) commit(index uint64) {
	if m != nil {
		m.committed.Set(float64(index))
	}
}

// proposals publishes the table's fill; called once per message the actor handles.
func (m *Metrics) proposals(waiting int) {
	if m != nil {
		m.pending.Set(float64(waiting))
		m.inflight.Set(float64(waiting))
	}
}

func (m *Metrics) proposalFailed() {
	if m != nil {
		m.failed.Inc()
	}
}

// proposalCommitted notes a write of this node committed at index, taken by the actor at start.
func (m *Metrics) proposalCommitted(index uint64, start time.Time) {
	if m == nil || m.writes == nil {
		return
	}
	m.writeStarts = append(m.writeStarts, writeStart{index: index, at: start})
}

// appliedTo observes the latency of the writes the catalog has applied up to index.
func (m *Metrics) appliedTo(index uint64, now time.Time) {
	if m == nil {
		return
	}
	m.applied.Set(float64(index))
	n := 0
	for n < len(m.writeStarts) && m.writeStarts[n].index <= index {
		m.writes.Observe(now.Sub(m.writeStarts[n].at).Seconds())
		n++
	}
	if n > 0 {
		// Shift rather than reslice, so the backing array is reused and never grows past
		// the committed-but-unapplied writes (bounded by the apply backlog).
		k := copy(m.writeStarts, m.writeStarts[n:])
		m.writeStarts = m.writeStarts[:k]
	}
}

// forgetWrites drops the writes waiting for their apply: at a stop, or when a snapshot replaced
// what they were in (their outcome is then unknown, and so is when they ended).
func (m *Metrics) forgetWrites() {
	if m != nil {
		m.writeStarts = m.writeStarts[:0]
	}
}

// heartbeatSent notes a heartbeat to a peer at now, unless one sent within maxRTT is still
// unanswered: the RTT is then measured from that one. An older one is taken as lost (a peer
// down, a message dropped), so that a peer coming back does not show its outage as a round trip.
func (m *Metrics) heartbeatSent(to uint64, now time.Time, maxRTT time.Duration) {
	if m == nil {
		return
	}
	if at, ok := m.heartbeat[to]; ok && now.Sub(at) < maxRTT {
		return
	}
	m.heartbeat[to] = now
}

// heartbeatAnswered observes the round trip of the heartbeat a peer answered.
func (m *Metrics) heartbeatAnswered(from uint64, now time.Time) {
	if m == nil {
		return
	}
	at, ok := m.heartbeat[from]
	if !ok {
		return
	}
	delete(m.heartbeat, from)
	o, ok := m.rttTo[from]
	if !ok {
		// Bound once per peer: the label value is formatted here only.
		o = m.peerRTT.WithLabelValues(strconv.FormatUint(from, 10))
		m.rttTo[from] = o
	}
	o.Observe(now.Sub(at).Seconds())
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
