// Package report holds what one measurement found (Result) and turns a run's results into
// what a reader gets: one JSON line per result on stdout, results.json, a Markdown table with
// the kstore/etcd ratio on every row, and plots of the put and watch scenarios.
package report

import (
	"encoding/json"
	"time"
)

// Result is one measurement: one scenario, against one target, at one concurrency. Fields a
// scenario does not measure stay zero and are left out of the JSON.
type Result struct {
	Target   string `json:"target"`  // kstore or etcd
	Members  int    `json:"members"` // 1 or 3
	Scenario string `json:"scenario"`
	// Variant says which part of a scenario this is when it has several ("steady", "max").
	Variant  string `json:"variant,omitempty"`
	Clients  int    `json:"clients,omitempty"`
	Watchers int    `json:"watchers,omitempty"`
	// NA is set when the target has no equivalent of the scenario (etcd has no merge patch
	// and no label selector); nothing else is then measured.
	NA bool `json:"na,omitempty"`

	Ops     int64   `json:"ops"`
	Seconds float64 `json:"seconds"`
	OpsPerS float64 `json:"ops_per_s"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	P999    float64 `json:"p999_ms"`
	Max     float64 `json:"max_ms"`
	Errors  int64   `json:"errors"`
	// ErrorsBy counts the failures by reason (Conflict, Timeout, Unavailable, ...).
	ErrorsBy map[string]int64 `json:"errors_by_reason,omitempty"`
	// Items read per second by the list scenarios (each op is a whole paged list).
	ItemsPerS float64 `json:"items_per_s,omitempty"`

	// CPU seconds used over the measurement by the server processes (all members) and by the
	// loader (this process).
	ServerCPU float64 `json:"server_cpu_s"`
	LoaderCPU float64 `json:"loader_cpu_s"`

	// The put rows' share of the machine's ceilings measured in the same run: puts/s over
	// synced 4 KiB writes/s on the data dir's disk, and over batched synced Badger writes/s.
	OfDiskSyncs   float64 `json:"of_disk_syncs,omitempty"`
	OfBadgerBatch float64 `json:"of_badger_batched,omitempty"`

	// Watch scenarios. Rate is the writes/s asked for in the steady phase, OpsPerS (above) the
	// rate achieved; lag is from a write's scheduled send time to its event reaching a watcher.
	// ServerRSS is the servers' resident memory with the watches open, ServerRSSPerW its growth
	// over the RSS before they were opened, per watcher. In watch-idle rows, which write nothing
	// but the watches' first write, Ops is the watches opened, Seconds the time they took
	// (OpenSeconds) and OpsPerS watches opened per second; watches that had not seen their first
	// write within the round's open timeout count as NotOpened errors, and OpsPerS stays 0.
	Rate            int     `json:"rate,omitempty"`
	LagP50          float64 `json:"lag_p50_ms,omitempty"`
	LagP99          float64 `json:"lag_p99_ms,omitempty"`
	LagMax          float64 `json:"lag_max_ms,omitempty"`
	Deliveries      int64   `json:"deliveries,omitempty"`
	Expected        int64   `json:"deliveries_expected,omitempty"`
	ServerRSS       int64   `json:"server_rss_bytes,omitempty"`
	ServerRSSPerW   int64   `json:"server_rss_per_watcher_bytes,omitempty"`
	MaxWriteRate    float64 `json:"max_write_rate,omitempty"`
	MaxWriteRateNoW float64 `json:"max_write_rate_no_watchers,omitempty"`
	WriteRatio      float64 `json:"write_ratio,omitempty"`
	OpenSeconds     float64 `json:"open_seconds,omitempty"`

	// Latency distribution for the plots: the latency (ms) at each of DistQuantiles. Kept in
	// results.json, left out of the stdout line.
	Dist []float64 `json:"dist_ms,omitempty"`

	// Ops is split by operation in the mix scenario: per-op latency.
	PerOp []OpStat `json:"per_op,omitempty"`
}

// OpStat is one operation's figures within a mixed scenario.
type OpStat struct {
	Op      string  `json:"op"`
	Ops     int64   `json:"ops"`
	OpsPerS float64 `json:"ops_per_s"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Errors  int64   `json:"errors"`
}

// DistQuantiles are the quantiles Result.Dist holds, for a latency-distribution plot (whose
// x axis is conventionally 1/(1-q), so the tail gets room).
var DistQuantiles = []float64{0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999}

// Line is the result as one JSON line, without the distribution.
func (r Result) Line() []byte {
	r.Dist = nil
	b, _ := json.Marshal(r)
	return b
}

// Run is a whole run: when and where, with which command, and every result in order.
type Run struct {
	Started time.Time `json:"started"`
	Command string    `json:"command"`
	Machine string    `json:"machine"` // CPUs, model, memory, Go version
	Limits  Limits    `json:"limits"`
	Results []Result  `json:"results"`
}

// Limits are the machine's own ceilings, measured in the same run.
type Limits struct {
	// DiskSyncsPerS is synced 4 KiB writes per second on the data dir's disk, one at a time.
	DiskSyncsPerS float64 `json:"disk_syncs_per_s"`
	DiskSyncP50   float64 `json:"disk_sync_p50_ms"`
	// BadgerBatchedPerS is 1 KiB values written per second to Badger with SyncWrites, in
	// transactions of BadgerBatch values each, with no Raft and no actors.
	BadgerBatchedPerS float64 `json:"badger_batched_per_s"`
	BadgerBatch       int     `json:"badger_batch"`
}
