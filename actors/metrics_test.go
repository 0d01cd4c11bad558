package actors

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/watcheractor"
)

// gathered is the value of each gauge and counter of reg without labels, and the sample count
// of each histogram without labels, by name.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) > 0 {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				out[mf.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[mf.GetName()] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestNodeMetrics: a node registers its collectors in the registry it is given, keeps them up
// to date, answers the health and readiness checks, refuses a second node on the same registry
// (leaving the first one's collectors in place), and unregisters them when it stops, so that a
// node started again in the process can register anew.
func TestNodeMetrics(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions...)
	reg := prometheus.NewRegistry()
	n, err := Start(Config{DataDir: t.TempDir(), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			n.Stop()
		}
	}()
	if _, err := Start(Config{DataDir: t.TempDir(), Metrics: reg}); err == nil || !strings.Contains(err.Error(), "its own registry") {
		t.Fatalf("a second node on the same registry: err = %v, want a refusal that asks for a registry of its own", err)
	}
	c := NewClientPIDs(n.System(), []*actor.PID{n.PID()}, 0)
	for _, name := range []string{"a", "b"} {
		if res, err := c.Put(context.Background(), pod(name), messages.Reason_OPERATOR); err != nil || res.GetOp() != messages.ResourceOp_CREATED {
			t.Fatalf("put %s: %v %v", name, res, err)
		}
	}
	if err := n.CheckHealth(2 * time.Second); err != nil {
		t.Errorf("CheckHealth of a single node that leads: %v", err)
	}
	if err := n.CheckReady(2 * time.Second); err != nil {
		t.Errorf("CheckReady of a single node that leads: %v", err)
	}
	// The applied index reaches raft just after the catalog answered the write.
	deadline := time.Now().Add(5 * time.Second)
	var got map[string]float64
	for {
		got = gathered(t, reg)
		if got["etcd_server_proposals_applied_total"] == got["etcd_server_proposals_committed_total"] || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	want := map[string]float64{
		"etcd_server_has_leader":                1,
		"etcd_server_is_leader":                 1,
		"etcd_server_leader_changes_seen_total": 1,
		"etcd_server_proposals_pending":         0,
		"kstore_proposals_capacity":             4096,
		"kstore_watchers":                       0,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	// Two puts and the new leader's empty entry after the bootstrap entry at index 1.
	if got["etcd_server_proposals_committed_total"] < 4 || got["etcd_server_proposals_applied_total"] != got["etcd_server_proposals_committed_total"] {
		t.Errorf("committed %v, applied %v: want at least 4, and applied up to commit",
			got["etcd_server_proposals_committed_total"], got["etcd_server_proposals_applied_total"])
	}
	if got["etcd_disk_wal_fsync_duration_seconds"] == 0 || got["etcd_disk_backend_commit_duration_seconds"] == 0 {
		t.Errorf("no WAL fsync or backend commit observed after two writes: %v", got)
	}

	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if left := gathered(t, reg); len(left) > 0 {
		t.Errorf("a stopped node left collectors in its registry: %v", left)
	}
	if err := n.CheckHealth(time.Second); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("CheckHealth of a stopped node: %v, want an error saying it stopped", err)
	}
	n2, err := Start(Config{DataDir: t.TempDir(), Metrics: reg})
	if err != nil {
		t.Fatalf("a node on the registry of a stopped one: %v", err)
	}
	n2.Stop()
}

// sampleOf is the value (or histogram sample count) of the sample of name with label=value.
func sampleOf(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if h := m.GetHistogram(); h != nil {
						return float64(h.GetSampleCount())
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestWatchMetrics: a watch from a revision the hub's ring no longer holds is a catch-up from
// history and goes live once caught up; its events count as delivered while it is open; a
// watch from a compacted revision counts as Gone.
func TestWatchMetrics(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions...)
	reg := prometheus.NewRegistry()
	// A ring of one change, and four revisions of history.
	n, err := Start(Config{DataDir: t.TempDir(), Metrics: reg, HistoryRevisions: 4, Watch: watcheractor.Config{RingChanges: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	c := NewClientPIDs(n.System(), []*actor.PID{n.PID()}, 0)
	var last uint64
	for i := range 6 {
		res, err := c.Put(context.Background(), pod(fmt.Sprint("w", i)), messages.Reason_OPERATOR)
		if err != nil {
			t.Fatal(err)
		}
		last = res.GetResourceVersion()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// From four revisions back. A put's reply may reach the client before the hub has its
	// change (the catalog sends the reply, then the change), so a watch from two back could find
	// the ring still holding the change before the last and join it live, with no catch-up;
	// from four back the hub would have to be three changes behind.
	from := last - 4
	w := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: from}, WatchOptions{})
	for want := from + 1; want <= last; want++ {
		select {
		case ev := <-w.Events():
			if ev.GetResourceVersion() != want {
				t.Fatalf("event at %d, want %d: %v", ev.GetResourceVersion(), want, ev)
			}
		case <-w.Done():
			t.Fatalf("the watch from %d ended: %v", from, w.Err())
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for sampleOf(t, reg, "kstore_request_duration_seconds", "type", "watch") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the watch never went live (kstore_request_duration_seconds{type=watch} has no sample)")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	got := gathered(t, reg)
	if got["kstore_watchers"] != 1 || got["kstore_watch_catchups_total"] != 1 || got["kstore_watch_events_delivered_total"] < 4 || got["kstore_watch_gone_total"] != 0 {
		t.Errorf("with one watch caught up from history: %v; want 1 watcher, 1 catch-up, at least 4 events, none Gone", got)
	}
	w.Stop()

	gone := c.Watch(ctx, &messages.WatchRequest{Version: "v1", Kind: "Pod", ResourceVersion: 1}, WatchOptions{})
	for range gone.Events() {
	}
	if !messages.IsGone(gone.Err()) {
		t.Fatalf("a watch from compacted revision 1 ended with %v, want Gone", gone.Err())
	}
	for {
		got = gathered(t, reg)
		if got["kstore_watch_gone_total"] == 1 && got["kstore_watchers"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the Gone watch: %v; want 1 Gone and no watcher left", got)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}
