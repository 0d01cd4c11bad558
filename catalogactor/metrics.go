package catalogactor

import (
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kstore/kstore/messages"
)

// Metrics are the catalog's collectors. A nil *Metrics is metrics off: every method is then a
// no-op. The catalog actor writes them; the command counters' cache below is its own, and the
// read observers are used by its reader goroutines too (prometheus observers are safe for that).
type Metrics struct {
	backendCommit prometheus.Histogram
	backendSync   prometheus.Histogram
	commands      *prometheus.CounterVec
	applied       prometheus.Gauge
	compacted     prometheus.Gauge
	size          prometheus.Gauge
	// reads observe the catalog's part of the node's kstore_request_duration_seconds, by
	// request type (nil: not measured).
	get, list, hashKV prometheus.Observer

	// byKind caches the bound counter of each (kind, op, reason, outcome) seen, so that
	// counting a command allocates nothing once its labels were seen. At most maxKinds kinds
	// get a label of their own: clients choose kinds, and a client writing random ones must not
	// grow the node's memory, or a scrape, without bound.
	byKind map[string]map[uint32]prometheus.Counter
	ticks  int         // the actor's ticks, counted on its goroutine
	sizing atomic.Bool // a readSize runs
}

const (
	// maxKinds bounds the kind label's values; beyond it commands count under kind="other".
	// A Kubernetes cluster has a few hundred resource types at most.
	maxKinds = 512
	// otherKind is the kind label of commands past maxKinds, and of those whose kind is unknown.
	otherKind = "other"
	// sizeEveryTicks: the catalog's size is read every 10 s (Badger updates its table sizes as
	// it flushes and compacts, not at every write).
	sizeEveryTicks = int(10 * time.Second / tickInterval)
)

// NewMetrics registers the catalog's collectors in reg; nil reg gives nil (metrics off). When
// requests is set, the catalog observes into it the time it takes to serve gets, lists and
// hashkv requests (labels type="get", "list", "hashkv").
func NewMetrics(reg prometheus.Registerer, requests *prometheus.HistogramVec) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &Metrics{
		backendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_disk_backend_commit_duration_seconds",
			Help:    "The latency distributions of commit called by backend: applying one batch of committed entries to Badger.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		backendSync: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kstore_catalog_sync_duration_seconds",
			Help:    "Time of a sync of the catalog's Badger to disk, after which the Raft log may be compacted behind it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kstore_commands_total",
			Help: "Commands applied by this member, by object kind, op (PUT, CREATE, UPDATE, PATCH, DELETE), reason (operator, controller, ...) and outcome (ok, or the Kubernetes reason it failed with)."},
			[]string{"kind", "op", "reason", "outcome"}),
		applied:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "kstore_catalog_applied_revision", Help: "The newest revision (Raft index) the catalog has applied."}),
		compacted: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kstore_catalog_compacted_revision", Help: "The oldest revision the catalog still serves: reads and watches below it are Gone."}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kstore_catalog_size_bytes",
			Help: "Disk space the catalog's Badger files take (tables, value log, memtable logs), read every 10 s; old revisions count until compaction and Badger's own compactions reclaim them."}),
		byKind: map[string]map[uint32]prometheus.Counter{},
	}
	for _, c := range []prometheus.Collector{m.backendCommit, m.backendSync, m.commands, m.applied, m.compacted, m.size} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	if requests != nil {
		m.get, m.list, m.hashKV = requests.WithLabelValues("get"), requests.WithLabelValues("list"), requests.WithLabelValues("hashkv")
	}
	return m, nil
}

// revisions publishes the applied and compacted revisions.
func (m *Metrics) revisions(applied, compacted uint64) {
	if m != nil {
		m.applied.Set(float64(applied))
		m.compacted.Set(float64(compacted))
	}
}

// sizeDue counts a tick and reports whether the catalog's size is due to be read: every
// sizeEveryTicks ticks, and not while a reading is still under way.
func (m *Metrics) sizeDue() bool {
	if m == nil {
		return false
	}
	m.ticks++
	return m.ticks%sizeEveryTicks == 1 && m.sizing.CompareAndSwap(false, true)
}

// readSize reads the catalog's size: the disk space of the files in dir (its tables, value log
// and memtable logs), as du counts it (allocated blocks: Badger's preallocated memtable files
// count for what they hold, not their length). It stats the files, so it runs on a goroutine
// of the actor's, never in its Receive: a disk that hangs must not hang the catalog's actor.
func (m *Metrics) readSize(dir string) {
	defer m.sizing.Store(false)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return // a swap under way; the next reading comes in 10 s
	}
	var n int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512 // st_blocks counts 512-byte units whatever the block size
		} else {
			n += fi.Size()
		}
	}
	m.size.Set(float64(n))
}

// observeSince observes the seconds since start into o, when both are set.
func observeSince(o prometheus.Observer, start time.Time) {
	if o != nil && !start.IsZero() {
		o.Observe(time.Since(start).Seconds())
	}
}

// readTimer is the observer of a read request's latency, by the request's type; nil for the
// reads watchers make (their catch-ups are counted by the watch hub).
func (m *Metrics) readTimer(msg any) prometheus.Observer {
	if m == nil {
		return nil
	}
	switch msg.(type) {
	case *messages.GetRequest:
		return m.get
	case *messages.ListRequest:
		return m.list
	case *messages.HashKVRequest:
		return m.hashKV
	}
	return nil
}

// applyTimer is the observer of an apply batch's duration; nil when metrics are off.
func (m *Metrics) applyTimer() prometheus.Observer {
	if m == nil {
		return nil
	}
	return m.backendCommit
}

// syncTimer is the observer of a Badger sync's duration; nil when metrics are off.
func (m *Metrics) syncTimer() prometheus.Observer {
	if m == nil {
		return nil
	}
	return m.backendSync
}

// countCommands counts the commands of an applied batch with their outcomes. Both are in index
// order, and every outcome's entry is among entries; the commands are read from the entries
// without decoding them (scanCommand), since the applier decoded them already.
func (m *Metrics) countCommands(entries []*raftpb.Entry, outcomes []outcome) {
	if m == nil {
		return
	}
	k := 0
	for _, o := range outcomes {
		for k < len(entries) && entries[k].GetIndex() < o.index {
			k++
		}
		if k == len(entries) {
			return
		}
		op, reason, kind, ok := scanCommand(entries[k].GetData())
		if !ok || op < 0 || op > 0xff || reason < 0 || reason > 0xff {
			// Not a command the intake admitted: counted as kind "other", op and reason
			// unspecified (and the label key below stays one byte each).
			op, reason, kind = 0, 0, nil
		}
		out := uint32(0) // ok
		if st := o.result.GetStatus(); st != nil {
			out = 1 + uint32(st.GetReason())
		}
		m.counter(kind, op, reason, out).Inc()
	}
}

// counter is the bound counter of a command's labels. out is 0 for ok, else 1 + the failure's
// StatusReason. It allocates only for labels not seen before.
func (m *Metrics) counter(kind []byte, op messages.CommandKind, reason messages.Reason, out uint32) prometheus.Counter {
	byLabels, ok := m.byKind[string(kind)] // no allocation: a map index by string(bytes)
	if !ok {
		name := otherKind
		if len(kind) > 0 && len(m.byKind) < maxKinds {
			name = string(kind)
		}
		if byLabels, ok = m.byKind[name]; !ok {
			byLabels = map[uint32]prometheus.Counter{}
			m.byKind[name] = byLabels
		}
		if name == otherKind {
			kind = nil // labelled "other" below
		}
	}
	key := uint32(op)<<16 | uint32(reason)<<8 | out
	c, ok := byLabels[key]
	if !ok {
		outcome := "ok"
		if out > 0 {
			outcome = messages.ReasonName(messages.StatusReason(out - 1))
		}
		label := otherKind
		if len(kind) > 0 {
			label = string(kind)
		}
		c = m.commands.WithLabelValues(label, op.String(), strings.ToLower(reason.String()), outcome)
		byLabels[key] = c
	}
	return c
}

// Command entries as messages/entry.go lays them out: a format byte, a header (the proposal
// id), then the Command. Format 1 had a shorter header.
const (
	entryFormat1, entryHeader1 = 1, 9
	entryFormat2, entryHeader2 = 2, 25
)

// Field numbers of messages.Command and messages.ResourceKey (kstore.proto).
const (
	commandKindField   = 1
	commandKeyField    = 2
	commandReasonField = 7
	keyKindField       = 3
)

// scanCommand reads a command entry's op, reason and object kind without decoding the command
// (which would copy its object): kind aliases data. ok is false for data that is not a command.
func scanCommand(data []byte) (op messages.CommandKind, reason messages.Reason, kind []byte, ok bool) {
	switch {
	case len(data) >= entryHeader2 && data[0] == entryFormat2:
		data = data[entryHeader2:]
	case len(data) >= entryHeader1 && data[0] == entryFormat1:
		data = data[entryHeader1:]
	default:
		return 0, 0, nil, false
	}
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return 0, 0, nil, false
		}
		data = data[n:]
		switch {
		case typ == protowire.VarintType && (num == commandKindField || num == commandReasonField):
			v, n := protowire.ConsumeVarint(data)
			if n < 0 {
				return 0, 0, nil, false
			}
			data = data[n:]
			if num == commandKindField {
				op = messages.CommandKind(v)
			} else {
				reason = messages.Reason(v)
			}
		case typ == protowire.BytesType && num == commandKeyField:
			key, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return 0, 0, nil, false
			}
			data = data[n:]
			kind = scanKeyKind(key)
		default:
			n := protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return 0, 0, nil, false
			}
			data = data[n:]
		}
	}
	return op, reason, kind, true
}

// scanKeyKind reads the kind of a marshaled ResourceKey; nil when it has none.
func scanKeyKind(b []byte) []byte {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if num == keyKindField && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil
			}
			return v
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil
		}
		b = b[n:]
	}
	return nil
}
