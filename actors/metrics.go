package actors

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/raftactor"
	"github.com/kstore/kstore/watcheractor"
)

// nodeMetrics are a node's collectors, each package's where its state lives, all in the
// registry of Config.Metrics. nil is metrics off.
type nodeMetrics struct {
	reg prometheus.Registerer
	// requests is kstore_request_duration_seconds{type}: each type is observed where the
	// request ends (see NewMetrics in raftactor, catalogactor, watcheractor and readIndex here).
	requests  *prometheus.HistogramVec
	readIndex prometheus.Observer
	raft      *raftactor.Metrics
	catalog   *catalogactor.Metrics
	watch     *watcheractor.Metrics
	all       []prometheus.Collector // what unregister takes back
}

// newNodeMetrics registers a node's collectors in reg; nil reg gives nil (metrics off, at no
// cost but nil checks). Registering the same names twice fails: two nodes in one process need
// two registries (a node never uses the global default one, for that reason).
func newNodeMetrics(reg prometheus.Registerer) (_ *nodeMetrics, err error) {
	if reg == nil {
		return nil, nil
	}
	// Registrations are recorded as they succeed, so that a failure part way takes back those
	// that came before it, and a later Start with the same registry can register again.
	rec := &recordingRegisterer{reg: reg}
	m := &nodeMetrics{reg: reg}
	defer func() {
		if err != nil {
			rec.unregister()
		}
	}()
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kstore_request_duration_seconds",
		Help: "Latency of the requests this member served, by type: write (from the raft actor taking the proposal to the catalog applying it), " +
			"get, list and hashkv (from the catalog taking the request to its answer), read_index (a linearizable read's wait for the leader's confirmation, before the catalog serves it), " +
			"watch (from a watch's start to its watcher going live, its initial state or catch-up handed over)",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"type"})
	if err := rec.Register(m.requests); err != nil {
		return nil, err
	}
	m.readIndex = m.requests.WithLabelValues("read_index")
	if m.raft, err = raftactor.NewMetrics(rec, m.requests.WithLabelValues("write")); err != nil {
		return nil, err
	}
	if m.catalog, err = catalogactor.NewMetrics(rec, m.requests); err != nil {
		return nil, err
	}
	if m.watch, err = watcheractor.NewMetrics(rec, m.requests); err != nil {
		return nil, err
	}
	m.all = rec.done
	return m, nil
}

// unregister takes the node's collectors out of its registry, when the node stops: a node
// started again in the same process, with the same registry, registers them anew.
func (m *nodeMetrics) unregister() {
	if m == nil {
		return
	}
	for _, c := range m.all {
		m.reg.Unregister(c)
	}
	m.all = nil
}

// recordingRegisterer registers into reg and remembers what it registered.
type recordingRegisterer struct {
	reg  prometheus.Registerer
	done []prometheus.Collector
}

var _ prometheus.Registerer = (*recordingRegisterer)(nil)

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return errors.New("kstore: the metrics registry has a node's collectors already: give each node in a process its own registry (Config.Metrics)")
		}
		return err
	}
	r.done = append(r.done, c)
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recordingRegisterer) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

func (r *recordingRegisterer) unregister() {
	for _, c := range r.done {
		r.reg.Unregister(c)
	}
	r.done = nil
}

// Nil-safe accessors, for the configs of the node's actors.

func (m *nodeMetrics) raftMetrics() *raftactor.Metrics {
	if m == nil {
		return nil
	}
	return m.raft
}

func (m *nodeMetrics) catalogMetrics() *catalogactor.Metrics {
	if m == nil {
		return nil
	}
	return m.catalog
}

func (m *nodeMetrics) watchMetrics() *watcheractor.Metrics {
	if m == nil {
		return nil
	}
	return m.watch
}

func (m *nodeMetrics) readIndexTimer() prometheus.Observer {
	if m == nil {
		return nil
	}
	return m.readIndex
}
