package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMetricsListenerBeforeNode: before serve has a node, the listener is live (/livez 200) but
// neither healthy nor ready, /metrics serves the process's collectors, and stop releases the
// port and its goroutine (TestMain's goleak check).
func TestMetricsListenerBeforeNode(t *testing.T) {
	addr := freeAddr(t)
	var out strings.Builder
	s, err := (&metricsOptions{listen: addr}).start(&out)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/livez", http.StatusOK, "ok"},
		{"/readyz", http.StatusServiceUnavailable, "readyz check failed: the node is starting"},
		{"/health", http.StatusServiceUnavailable, `{"health":"false","reason":"the node is starting"}`},
		{"/metrics", http.StatusOK, "go_goroutines"},
		{"/debug/pprof/", http.StatusNotFound, ""},
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, tt := range tests {
		res, err := c.Get("http://" + addr + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.wantCode || !strings.Contains(string(b), tt.wantBody) {
			t.Errorf("GET %s = %d %q, want %d with %q", tt.path, res.StatusCode, b, tt.wantCode, tt.wantBody)
		}
	}
	s.stop()
	if _, err := c.Get("http://" + addr + "/livez"); err == nil {
		t.Error("the listener answers after stop")
	}
	if !strings.Contains(out.String(), "metrics and health on http://"+addr) {
		t.Errorf("start wrote %q, want the address it serves on", out.String())
	}
}
