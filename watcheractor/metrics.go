package watcheractor

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kstore/kstore/messages"
)

// Metrics are the watch hub's and its watchers' collectors. A nil *Metrics is metrics off:
// every method is then a no-op. The hub and the watchers (which run on their senders'
// goroutines) update them concurrently; prometheus collectors are safe for that, and each
// update is one atomic add.
type Metrics struct {
	open      prometheus.Gauge
	delivered prometheus.Counter
	catchups  prometheus.Counter
	gone      prometheus.Counter
	goLive    prometheus.Observer // nil: not measured
}

// NewMetrics registers the watch collectors in reg; nil reg gives nil (metrics off). When
// requests is set, each watch's time from its start to going live (its initial state or its
// catch-up sent, or buffered, and the watcher taking the hub's live changes) is observed into
// it with type="watch".
func NewMetrics(reg prometheus.Registerer, requests *prometheus.HistogramVec) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &Metrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kstore_watchers",
			Help: "Watches this member serves now."}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "kstore_watch_events_delivered_total",
			Help: "Watch events (bookmarks included) sent to subscribers by this member's watchers."}),
		catchups: prometheus.NewCounter(prometheus.CounterOpts{Name: "kstore_watch_catchups_total",
			Help: "Times a watcher caught up from the catalog's history because the hub's ring of recent changes no longer reached back to it (a slow subscriber, a watch from an old resourceVersion, a snapshot installed)."}),
		gone: prometheus.NewCounter(prometheus.CounterOpts{Name: "kstore_watch_gone_total",
			Help: "Watches ended with Gone: the revision they needed was compacted; their clients must re-list."}),
	}
	for _, c := range []prometheus.Collector{m.open, m.delivered, m.catchups, m.gone} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	if requests != nil {
		m.goLive = requests.WithLabelValues("watch")
	}
	return m, nil
}

func (m *Metrics) watchers(n int) {
	if m != nil {
		m.open.Set(float64(n))
	}
}

func (m *Metrics) sent(events int) {
	if m != nil {
		m.delivered.Add(float64(events))
	}
}

func (m *Metrics) caughtUp() {
	if m != nil {
		m.catchups.Inc()
	}
}

func (m *Metrics) ended(err error) {
	if m != nil && messages.ReasonOf(err) == messages.StatusReason_GONE {
		m.gone.Inc()
	}
}

// startTime is when a watch began, for its go-live latency; zero when not measured.
func (m *Metrics) startTime() time.Time {
	if m == nil || m.goLive == nil {
		return time.Time{}
	}
	return time.Now()
}

// live observes a watch's time to go live, once: start is zeroed.
func (m *Metrics) live(start *time.Time) {
	if m == nil || m.goLive == nil || start.IsZero() {
		return
	}
	m.goLive.Observe(time.Since(*start).Seconds())
	*start = time.Time{}
}
