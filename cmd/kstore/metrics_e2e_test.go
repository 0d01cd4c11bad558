package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// httpGet fetches url and returns the status code and body; a connection error fails the test.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: read the body: %v", url, err)
	}
	return res.StatusCode, string(b)
}

// scrape reads a node's /metrics with the Prometheus text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse as the Prometheus text format: %v\n%s", err, body)
	}
	return mfs
}

// metricValue is the value of the sample of name whose labels include labels (name=value
// pairs): a counter's or gauge's value, a histogram's sample count. 0 when there is none.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf := mfs[name]
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// TestMetricsCountWrites: a node's /metrics parses, its commit and apply indexes and its command
// counters move by the writes a client makes, with their labels; /health, /livez and /readyz
// answer 200.
func TestMetricsCountWrites(t *testing.T) {
	bin := kstoreBinary(t)
	maddr := freeAddr(t)
	s := startServer(t, bin, t.TempDir(), freeAddr(t), "--listen-metrics", maddr)
	if want := "metrics and health on http://" + maddr; !strings.Contains(s.log.String(), want) {
		t.Fatalf("serve's output does not say %q:\n%s", want, s.log)
	}
	k := &cli{t: t, bin: bin, endpoints: addrOf(t, s)}

	before := scrape(t, maddr)
	for _, name := range []string{"etcd_server_has_leader", "etcd_server_is_leader", "etcd_server_proposals_pending",
		"etcd_disk_wal_fsync_duration_seconds", "kstore_proposals_capacity", "kstore_catalog_applied_revision", "go_goroutines"} {
		if before[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if v := metricValue(before, "etcd_server_has_leader"); v != 1 {
		t.Errorf("etcd_server_has_leader = %v on a single node that leads, want 1", v)
	}
	if v := metricValue(before, "etcd_server_is_leader"); v != 1 {
		t.Errorf("etcd_server_is_leader = %v on a single node that leads, want 1", v)
	}

	const n = 5
	var docs []string
	for i := range n {
		docs = append(docs, pod("metrics", fmt.Sprintf("p%d", i), "nginx", nil))
	}
	if rs := results(t, k.ok(strings.Join(docs, "\n"), "apply", "-f", "-")); len(rs) != n {
		t.Fatalf("apply of %d pods gave %d results", n, len(rs))
	}
	if r := k.run(docs[0], "create", "-f", "-"); r.code == 0 || !strings.Contains(r.stderr, "AlreadyExists") {
		t.Fatalf("create of an existing pod: want AlreadyExists:\n%v", r)
	}
	const proposals = n + 1 // every write is one Raft entry, the refused create too

	// The catalog answers a write as it applies it, and tells raft so right after: wait for the
	// apply gauge, then every figure must have moved by exactly the writes made.
	var after map[string]*dto.MetricFamily
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = scrape(t, maddr)
		if metricValue(after, "etcd_server_proposals_applied_total") >= metricValue(before, "etcd_server_proposals_applied_total")+proposals {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd_server_proposals_applied_total did not move by %d within 10s: %v -> %v", proposals,
				metricValue(before, "etcd_server_proposals_applied_total"), metricValue(after, "etcd_server_proposals_applied_total"))
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	moved := func(name string, labels ...string) float64 {
		return metricValue(after, name, labels...) - metricValue(before, name, labels...)
	}
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"etcd_server_proposals_committed_total", nil, proposals},
		{"etcd_server_proposals_applied_total", nil, proposals},
		{"kstore_catalog_applied_revision", nil, proposals},
		{"kstore_commands_total", []string{"kind", "Pod", "op", "PUT", "reason", "operator", "outcome", "ok"}, n},
		{"kstore_commands_total", []string{"kind", "Pod", "op", "CREATE", "reason", "operator", "outcome", "AlreadyExists"}, 1},
		{"kstore_request_duration_seconds", []string{"type", "write"}, proposals},
		{"etcd_server_proposals_failed_total", nil, 0},
		{"etcd_server_leader_changes_seen_total", nil, 0},
	}
	for _, tt := range tests {
		if got := moved(tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v moved by %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if got := moved("etcd_disk_wal_fsync_duration_seconds"); got < 1 {
		t.Errorf("etcd_disk_wal_fsync_duration_seconds observed %v syncs for %d writes, want some", got, proposals)
	}

	// The catalog's size is read at the node's first tick, on a goroutine of the catalog's.
	for deadline := time.Now().Add(10 * time.Second); metricValue(scrape(t, maddr), "kstore_catalog_size_bytes") <= 0; {
		if time.Now().After(deadline) {
			t.Fatal("kstore_catalog_size_bytes still 0 after 10s")
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}

	k.ok("", "get", "Pod.v1/p0", "-n", "metrics")
	if got := metricValue(scrape(t, maddr), "kstore_request_duration_seconds", "type", "get") - metricValue(after, "kstore_request_duration_seconds", "type", "get"); got < 1 {
		t.Errorf("a get moved kstore_request_duration_seconds{type=get} by %v, want at least 1", got)
	}

	probes := []struct {
		path, want string
	}{
		{"/health", `{"health":"true"}`},
		{"/livez", "ok"},
		{"/readyz", "ok"},
	}
	for _, p := range probes {
		if code, body := httpGet(t, "http://"+maddr+p.path); code != http.StatusOK || strings.TrimSpace(body) != p.want {
			t.Errorf("GET %s = %d %q, want 200 %q", p.path, code, body, p.want)
		}
	}
	if code, _ := httpGet(t, "http://"+maddr+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without --enable-pprof = %d, want 404", code)
	}

	// The listener goes with serve.
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("serve exited %d on SIGTERM:\n%s", code, s.log)
	}
	c := &http.Client{Timeout: time.Second}
	if res, err := c.Get("http://" + maddr + "/livez"); err == nil {
		res.Body.Close()
		t.Errorf("the metrics listener still answers after serve exited")
	}
}

// addrOf is the address a server's ready line names.
func addrOf(t *testing.T, s *server) string {
	t.Helper()
	_, rest, ok := strings.Cut(s.log.String(), " serving on ")
	addr, _, ok2 := strings.Cut(rest, ",")
	if !ok || !ok2 {
		t.Fatalf("no ready line:\n%s", s.log)
	}
	return addr
}

// TestPprofFlag: Go's profiles are served on the metrics listener with --enable-pprof only, and
// --enable-pprof alone is refused.
func TestPprofFlag(t *testing.T) {
	bin := kstoreBinary(t)
	maddr := freeAddr(t)
	startServer(t, bin, t.TempDir(), freeAddr(t), "--listen-metrics", maddr, "--enable-pprof")
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		if code, body := httpGet(t, "http://"+maddr+path); code != http.StatusOK {
			t.Errorf("GET %s with --enable-pprof = %d %q, want 200", path, code, body)
		}
	}
	k := &cli{t: t, bin: bin}
	r := k.run("", "serve", "--data-dir", t.TempDir(), "--listen", freeAddr(t), "--enable-pprof")
	if r.code == 0 || !strings.Contains(r.stderr, "Error (Invalid)") || !strings.Contains(r.stderr, "--listen-metrics") {
		t.Errorf("--enable-pprof without --listen-metrics: want Error (Invalid) naming --listen-metrics:\n%v", r)
	}
}

// TestHealthLosesQuorum: in a cluster of three, /health on a member is 200 while the quorum
// holds and turns 503, with has_leader 0, once the two other members are killed: whether the
// survivor led (it steps down when no quorum answers, CheckQuorum) or followed.
func TestHealthLosesQuorum(t *testing.T) {
	tests := []struct {
		name          string
		survivorLeads bool
	}{
		{"survivor was the leader", true},
		{"survivor was a follower", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, maddrs := startMetricsCluster(t, 3)
			leader := c.waitLeader(nil)
			survivor := (leader + 1) % 3
			if tt.survivorLeads {
				survivor = leader
			}
			m := maddrs[survivor]
			if code, body := waitHealth(t, m, http.StatusOK, 10*time.Second); code != http.StatusOK {
				t.Fatalf("/health on member %d of a healthy cluster = %d %s", survivor+1, code, body)
			}
			// The leader measures its heartbeats' round trips to each follower, by node id.
			deadline := time.Now().Add(10 * time.Second)
			for _, f := range []int{(leader + 1) % 3, (leader + 2) % 3} {
				for metricValue(scrape(t, maddrs[leader]), "etcd_network_peer_round_trip_time_seconds", "To", fmt.Sprint(f+1)) == 0 {
					if time.Now().After(deadline) {
						t.Fatalf("the leader (member %d) measured no round trip to member %d within 10s", leader+1, f+1)
					}
					time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
				}
			}
			for i := range 3 {
				if i != survivor {
					c.kill(i)
				}
			}
			killed := time.Now()
			code, body := waitHealth(t, m, http.StatusServiceUnavailable, 15*time.Second)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, `"health":"false"`) || !strings.Contains(body, `"reason":`) {
				t.Fatalf("/health on the survivor did not turn 503 with a reason within 15s: %d %s", code, body)
			}
			t.Logf("/health turned 503 %v after the kills: %s", time.Since(killed).Round(10*time.Millisecond), strings.TrimSpace(body))
			deadline = time.Now().Add(15 * time.Second)
			for metricValue(scrape(t, m), "etcd_server_has_leader") != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("etcd_server_has_leader on the survivor is still 1 15s after the quorum was lost")
				}
				time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
			}
			// The loss is a warning in the survivor's log (it runs at --log-level warn), naming the
			// leader it had.
			for !strings.Contains(c.servers[survivor].log.String(), `"msg":"leader lost`) {
				if time.Now().After(deadline) {
					t.Fatalf("the survivor logged no leader-lost warning:\n%s", c.servers[survivor].log)
				}
				time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
			}
			if l := c.servers[survivor].log.String(); !strings.Contains(l, fmt.Sprintf(`"old-leader":%d`, leader+1)) || !strings.Contains(l, `"level":"warn"`) {
				t.Errorf("the leader-lost warning does not name the old leader %d:\n%s", leader+1, l)
			}
			if code, body := httpGet(t, "http://"+m+"/readyz"); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz on a survivor with no leader = %d %q, want 503", code, body)
			}
			if code, _ := httpGet(t, "http://"+m+"/livez"); code != http.StatusOK {
				t.Errorf("/livez on the survivor = %d, want 200: its process serves", code)
			}
		})
	}
}

// waitHealth polls /health until it answers want, or within is over; it returns the last answer.
func waitHealth(t *testing.T, maddr string, want int, within time.Duration) (int, string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := httpGet(t, "http://"+maddr+"/health")
		if code == want || time.Now().After(deadline) {
			return code, body
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// startMetricsCluster starts n members, each with a metrics listener of its own, and returns
// the cluster and the listeners' addresses.
func startMetricsCluster(t *testing.T, n int) (*testCluster, []string) {
	t.Helper()
	c := &testCluster{t: t, bin: kstoreBinary(t), servers: make([]*server, n)}
	var initial, maddrs []string
	for i := range n {
		c.dirs = append(c.dirs, t.TempDir())
		c.addrs = append(c.addrs, freeAddr(t))
		maddrs = append(maddrs, freeAddr(t))
		initial = append(initial, fmt.Sprintf("%d=%s", i+1, c.addrs[i]))
	}
	c.extra = []string{"--initial-cluster", strings.Join(initial, ",")}
	for i := range n {
		c.servers[i] = startServer(t, c.bin, c.dirs[i], c.addrs[i], "--node-id", fmt.Sprint(i+1), "--disk-reserve-bytes", "0",
			"--initial-cluster", strings.Join(initial, ","), "--listen-metrics", maddrs[i])
	}
	return c, maddrs
}
