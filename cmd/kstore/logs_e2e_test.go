package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeLogs: serve's log formats, and the audit trail in the node's own log at debug level
// (one "applied" line per command with its rv, op, reason and key, none dropped by sampling).
func TestServeLogs(t *testing.T) {
	bin := kstoreBinary(t)
	t.Run("json debug audit", func(t *testing.T) {
		addr := freeAddr(t)
		srv := startProcess(t, bin, []string{"serve", "--data-dir", filepath.Join(t.TempDir(), "data"), "--listen", addr,
			"--log-level", "debug"}, " serving on ")
		k := &cli{t: t, bin: bin, endpoints: addr}
		// More than the sampler lets through in a second (100 of a message): every one must show.
		const writes = 150
		var manifests strings.Builder
		for i := range writes {
			fmt.Fprintf(&manifests, "%s\n", pod("audit", fmt.Sprintf("p%d", i), "nginx", nil))
		}
		k.ok(manifests.String(), "apply", "-f", "-", "--reason", "controller")
		rv := result1(t, k.ok(pod("audit", "last", "nginx", nil), "apply", "-f", "-", "--reason", "scheduler"), "Created").ResourceVersion
		var lines []map[string]any
		deadline := time.Now().Add(10 * time.Second)
		for {
			lines = lines[:0]
			for _, l := range strings.Split(srv.log.String(), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "applied" {
					lines = append(lines, m)
				}
			}
			if len(lines) >= writes+1 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond) // polling the child's log until the deadline
		}
		if len(lines) != writes+1 {
			t.Fatalf("%d applied lines at debug level, want %d (one per command)", len(lines), writes+1)
		}
		last := lines[len(lines)-1]
		want := map[string]any{"level": "debug", "op": "PUT", "reason": "scheduler", "key": "/v1/Pod/audit/last",
			"rv": float64(rv), "outcome": "CREATED"}
		for k, v := range want {
			if last[k] != v {
				t.Errorf("the last applied line has %s=%v, want %v: %v", k, last[k], v, last)
			}
		}
		if lines[0]["reason"] != "controller" {
			t.Errorf("the first applied line has reason %v, want controller", lines[0]["reason"])
		}
	})
	t.Run("console", func(t *testing.T) {
		addr := freeAddr(t)
		srv := startProcess(t, bin, []string{"serve", "--data-dir", filepath.Join(t.TempDir(), "data"), "--listen", addr,
			"--log-format", "console"}, " serving on ")
		var logged bool
		for _, l := range strings.Split(srv.log.String(), "\n") {
			if strings.Contains(l, "\tINFO\t") {
				logged = true
			}
			if strings.HasPrefix(l, "{") {
				t.Errorf("a JSON line with --log-format console: %s", l)
			}
		}
		if !logged {
			t.Errorf("no console INFO line before the ready line:\n%s", srv.log)
		}
	})
	t.Run("bad format", func(t *testing.T) {
		refusedServe(t, bin, "--log-format", "--log-format", "xml", "--listen", freeAddr(t))
	})
}
