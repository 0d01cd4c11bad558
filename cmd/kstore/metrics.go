package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"

	"github.com/kstore/kstore/actors"
)

// metricsOptions are serve's flags for the operator's HTTP listener: etcd's names.
type metricsOptions struct {
	listen      string // --listen-metrics; empty: no listener
	enablePprof bool   // --enable-pprof: Go's /debug/pprof/ on that listener
}

func (o *metricsOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.listen, "listen-metrics", "",
		"HOST:PORT of an HTTP listener serving /metrics (Prometheus), /health (etcd's), /livez and /readyz; off unless given. It has no authentication: keep it on loopback or a private network")
	f.BoolVar(&o.enablePprof, "enable-pprof", false,
		"also serve Go's profiles at /debug/pprof/ on the --listen-metrics listener (CPU, heap, goroutines: for diagnosis)")
}

const (
	// healthTimeout bounds one /health or /readyz check: a linearizable read takes a heartbeat
	// round trip on a healthy cluster, and a probe that waited longer than a load balancer's
	// would answer no one. Kubernetes probes of these endpoints need timeoutSeconds >= 2.
	healthTimeout = 2 * time.Second
	// metricsShutdown bounds the wait for requests in flight when serve stops.
	metricsShutdown = 5 * time.Second
)

// metricsServer is serve's HTTP listener. It starts before the node, so that /livez answers
// while the node loads its state, and learns the node once it runs (setNode).
type metricsServer struct {
	reg  *prometheus.Registry
	srv  *http.Server
	node atomic.Pointer[actors.Node]
	done chan struct{} // closed when Serve has returned
}

// start opens the listener when --listen-metrics is given (nil, nil otherwise) and serves on it
// until stop. It writes the address it serves on to w.
func (o *metricsOptions) start(w io.Writer) (*metricsServer, error) {
	if o.listen == "" {
		if o.enablePprof {
			return nil, invalid("--enable-pprof serves on the --listen-metrics listener: give --listen-metrics HOST:PORT too")
		}
		return nil, nil
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, invalid("--listen-metrics %s: %v: give a free HOST:PORT, such as 127.0.0.1:7460", o.listen, err)
	}
	s := &metricsServer{reg: prometheus.NewRegistry(), done: make(chan struct{})}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("/health", s.health)
	mux.HandleFunc("/livez", s.livez)
	mux.HandleFunc("/readyz", s.readyz)
	paths := "/metrics, /health, /livez, /readyz"
	if o.enablePprof {
		addPprof(mux)
		paths += ", /debug/pprof/"
	}
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(l) // ErrServerClosed once stop shuts it down
	}()
	fmt.Fprintf(w, "kstore: metrics and health on http://%s (%s)\n", l.Addr(), paths)
	return s, nil
}

// registry is where the node registers its collectors; nil (metrics off) without a listener.
func (s *metricsServer) registry() prometheus.Registerer {
	if s == nil {
		return nil
	}
	return s.reg
}

// setNode makes the health endpoints ask node.
func (s *metricsServer) setNode(n *actors.Node) {
	if s != nil {
		s.node.Store(n)
	}
}

// stop shuts the listener down, waiting (a bounded time) for the requests in flight, and for
// the serving goroutine to end.
func (s *metricsServer) stop() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metricsShutdown)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}

// health is etcd's /health: 200 {"health":"true"} when the member has a leader and serves a
// linearizable read; 503 {"health":"false","reason":"..."} otherwise.
func (s *metricsServer) health(w http.ResponseWriter, _ *http.Request) {
	err := fmt.Errorf("the node is starting")
	if n := s.node.Load(); n != nil {
		err = n.CheckHealth(healthTimeout)
	}
	type answer struct {
		Health string `json:"health"`
		Reason string `json:"reason,omitempty"`
	}
	a, code := answer{Health: "true"}, http.StatusOK
	if err != nil {
		a, code = answer{Health: "false", Reason: err.Error()}, http.StatusServiceUnavailable
	}
	b, _ := json.Marshal(a)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// livez answers 200 while the process serves, unless its node has stopped (serve then exits).
func (s *metricsServer) livez(w http.ResponseWriter, _ *http.Request) {
	if n := s.node.Load(); n != nil {
		select {
		case <-n.Done():
			plain(w, http.StatusServiceUnavailable, "livez check failed: the node stopped")
			return
		default:
		}
	}
	plain(w, http.StatusOK, "ok")
}

// readyz answers 200 once the node has started, knows a leader, and has applied up to its
// commit index (actors.Node.CheckReady).
func (s *metricsServer) readyz(w http.ResponseWriter, _ *http.Request) {
	err := fmt.Errorf("the node is starting")
	if n := s.node.Load(); n != nil {
		err = n.CheckReady(healthTimeout)
	}
	if err != nil {
		plain(w, http.StatusServiceUnavailable, "readyz check failed: "+err.Error())
		return
	}
	plain(w, http.StatusOK, "ok")
}

func plain(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, text+"\n")
}
