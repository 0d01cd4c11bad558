package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/catalogactor"
	"github.com/kstore/kstore/cluster"
	"github.com/kstore/kstore/raftactor"
	"github.com/kstore/kstore/watcheractor"
)

type serveOptions struct {
	dataDir          string
	listen           string
	advertise        string
	bookmarkInterval time.Duration
	nodeID           uint64
	initialCluster   string
	join             string
	historyRevisions uint64
	diskReserve      int64
	// --snapshot-count and --snapshot-catchup-entries.
	compactAfter, keepEntries uint64
	// The actor cluster.
	clusterName, clusterProvider, clusterEndpoints string
	auditLogPath                                   string
	logFormat                                      string
	metrics                                        metricsOptions // --listen-metrics, --enable-pprof (metrics.go)
	tls                                            tlsOptions     // --cert-file, --peer-cert-file... (tlsflags.go)

	// Tuning for tests that need a long history or many memtable flushes in a short run;
	// hidden from --help (zero: the defaults).
	syncEvery    uint64
	maxInflight  int
	memTableSize int64
	pprofListen  string
}

func newServeCmd(g *globals) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a kstore node",
		Long: `Run a kstore node until SIGINT or SIGTERM.

The node keeps its Raft log and catalog in --data-dir (created when missing) and holds that
directory locked while it runs: a second node on the same directory fails at once. Clients and
peers reach it at --advertise-address, by default the address --listen got (a name resolved:
--listen localhost:7450 serves as 127.0.0.1:7450). protoactor addresses every actor by that
exact host:port, so serve refuses to start where it could not be reached: a wildcard --listen
(0.0.0.0:PORT, [::]:PORT) without --advertise-address; an advertised port other than the listen
port; an advertised host that is not an address of this machine, or that --listen does not
cover. The node still answers requests addressed to its other addresses at its port
(127.0.0.1 and every interface's address when it listens on all of them, localhost when it
listens on loopback).

When the node is ready, serve prints one line to stderr:
  kstore: node 1 serving on 127.0.0.1:7450, data dir /abs/path/kstore-data
Logs go to stderr as JSON lines (zap's production format with ISO 8601 times), one object per
event, so that a log collector can parse them; --log-format console writes lines for a person.
At --log-level debug each command the node applies is logged ("applied": rv, op, reason, key,
outcome or error), an audit trail in the node's own log (--audit-log-path writes the same lines
to a file of their own at any level).

On SIGINT or SIGTERM the node stops in order and serve exits 0; a second signal ends the
process at once. When the node stops by itself (a storage failure, an internal actor that
stopped), serve prints the error and exits 1. Startup failures (data dir in use, address in
use, less free disk than --disk-reserve-bytes) print "Error: ..." and exit 1, and leave no data
dir behind that they created (one that existed stays as it was).

While the data dir's disk has less free space than --disk-reserve-bytes, writes are refused
with Unavailable and reads go on: Badger writes through memory maps, and a full disk would
kill the process at every start until space is freed.`,
		Example: `  # A node in ./kstore-data on 127.0.0.1:7450.
  kstore serve

  # Somewhere else, quieter.
  kstore serve --data-dir /var/lib/kstore --listen 10.0.0.5:7450 --log-level warn

  # On every interface, known to clients and peers as 10.0.0.5:7450; local clients may use
  # 127.0.0.1:7450.
  kstore serve --listen 0.0.0.0:7450 --advertise-address 10.0.0.5:7450`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error { return o.run(cmd, g) }),
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", actors.DefaultDataDir,
		"directory holding the node's Raft log and catalog; created when missing, locked while the node runs")
	f.StringVar(&o.listen, "listen", actors.DefaultListen,
		"host:port the node listens on, for clients and peers; port 0 picks a free one (shown in the ready line); a wildcard host (0.0.0.0) needs --advertise-address")
	f.StringVar(&o.advertise, "advertise-address", "",
		"host:port clients and peers reach the node at, the address its actors are named by: an address of this machine that --listen covers (or a name resolving only to such), at the listen port; default: the address --listen got")
	f.DurationVar(&o.bookmarkInterval, "bookmark-interval", watcheractor.DefaultBookmarkInterval,
		fmt.Sprintf("how often a watch that asked for bookmarks gets one, unless it asks for its own interval; from %v to %v", watcheractor.MinBookmarkInterval, watcheractor.MaxBookmarkInterval))
	f.Uint64Var(&o.nodeID, "node-id", 1, "this node's Raft id, non-zero")
	f.StringVar(&o.join, "join", "",
		"HOST:PORT[,HOST:PORT] of running members of a cluster this node joins, once kstore member add has added it; used when the data dir is new")
	f.StringVar(&o.initialCluster, "initial-cluster", "",
		"the members of a new cluster, ID=HOST:PORT[,ID=HOST:PORT], this node's own --node-id and --listen among them; used when the data dir is new (empty: a cluster of this node alone)")
	f.Uint64Var(&o.historyRevisions, "history-revisions", catalogactor.DefaultHistoryRevisions,
		"how many revisions behind the newest stay readable (get and list --resource-version, continue tokens); older ones are Gone")
	f.Int64Var(&o.diskReserve, "disk-reserve-bytes", actors.DefaultDiskReserve,
		"free space the data dir's disk must keep: below it writes are refused (Unavailable) and the node does not start; 0 turns the reserve off")
	f.Uint64Var(&o.syncEvery, "catalog-sync-every", 0, "entries applied between two syncs of the catalog (tests)")
	f.Uint64Var(&o.compactAfter, "snapshot-count", raftactor.DefaultSnapshotCount,
		"entries the catalog holds on disk before the Raft log is compacted behind them (the catalog is the Raft snapshot a lagging member is sent)")
	f.Uint64Var(&o.keepEntries, "snapshot-catchup-entries", raftactor.DefaultSnapshotCatchupEntries,
		"entries a compaction keeps in the Raft log, for members a little behind: they catch up from the log instead of a snapshot")
	f.IntVar(&o.maxInflight, "max-inflight-proposals", 0, "writes waiting to commit before more are refused (tests)")
	f.Int64Var(&o.memTableSize, "badger-memtable-size", 0, "size of the catalog's memtables in bytes (tests)")
	f.StringVar(&o.pprofListen, "pprof-listen", "", "host:port to serve Go's /debug/pprof on (diagnosis)")
	o.metrics.addFlags(f)
	o.tls.addFlags(f)
	f.StringVar(&o.clusterName, "cluster-name", cluster.DefaultName,
		"the protoactor cluster this node is a member of; other actors reach the store in it as kind \""+cluster.Kind+"\", identity \""+cluster.Identity+"\"")
	f.StringVar(&o.clusterProvider, "cluster-provider", cluster.Automanaged,
		"how cluster members find each other: "+strings.Join(cluster.Providers, ", ")+
			fmt.Sprintf("; automanaged needs no outside service and serves a health endpoint on the --listen host at the --listen port + %d", cluster.HealthPortOffset))
	f.StringVar(&o.clusterEndpoints, "cluster-provider-endpoints", "",
		"the provider's service: consul, the agent's HOST:PORT (default Consul's own); etcd, its client URLs, comma-separated; unused by automanaged and kubernetes")
	f.StringVar(&o.auditLogPath, "audit-log-path", "",
		"file to append one JSON line to per command this node applies (rv, op, reason, key, outcome or error), as the Kubernetes API server's audit log; - for stderr; empty: none")
	f.StringVar(&o.logFormat, "log-format", "json",
		"json: one JSON object per log line (zap's production encoding), for a log collector; console: tab-separated lines for a person. At --log-level debug every applied command is logged with its rv, op, reason and key")
	for _, name := range []string{"catalog-sync-every", "max-inflight-proposals", "badger-memtable-size", "pprof-listen"} {
		_ = f.MarkHidden(name)
	}
	return cmd
}

func (o *serveOptions) run(cmd *cobra.Command, g *globals) error {
	if o.nodeID == 0 {
		return invalid("--node-id must be non-zero")
	}
	if o.listen == "" {
		return invalid("--listen is empty: give the host:port the node listens on, such as %s", actors.DefaultListen)
	}
	if o.bookmarkInterval < watcheractor.MinBookmarkInterval || o.bookmarkInterval > watcheractor.MaxBookmarkInterval {
		return invalid("--bookmark-interval %v is out of bounds: give %v to %v: more often, bookmarks would cost more than most watches' events; rarer, an idle watch would not notice a lost stream for that long",
			o.bookmarkInterval, watcheractor.MinBookmarkInterval, watcheractor.MaxBookmarkInterval)
	}
	initial, err := parseInitialCluster(o.initialCluster)
	if err != nil {
		return err
	}
	if o.keepEntries >= o.compactAfter {
		return invalid("--snapshot-catchup-entries (%d) must be below --snapshot-count (%d): a compaction keeps that many of the entries it compacts", o.keepEntries, o.compactAfter)
	}
	if o.historyRevisions == 0 {
		return invalid("--history-revisions must be at least 1")
	}
	if o.diskReserve < 0 {
		return invalid("--disk-reserve-bytes must not be negative: give 0 to turn the reserve off")
	}
	reserve := o.diskReserve
	if reserve == 0 {
		reserve = -1 // off; actors.Config takes 0 as the default
	}
	tlsConfig, err := o.tls.config()
	if err != nil {
		return err
	}
	level, err := g.level()
	if err != nil {
		return err
	}
	if o.logFormat != "json" && o.logFormat != "console" {
		return invalid("--log-format %q: use json (one object per line, for a log collector) or console (for a person)", o.logFormat)
	}
	logger := serverLoggerFormat(g.errw, level, o.logFormat)
	defer func() { _ = logger.Sync() }()
	if o.pprofListen != "" {
		stop, err := servePprof(o.pprofListen)
		if err != nil {
			return err
		}
		defer stop()
	}

	audit, closeAudit, err := auditLogger(o.auditLogPath, g.errw)
	if err != nil {
		return err
	}
	defer closeAudit()
	provider := o.clusterProvider
	if provider == "k8s" {
		provider = cluster.Kubernetes
	}
	if !slices.Contains(cluster.Providers, provider) {
		return invalid("--cluster-provider %q: use one of %s", o.clusterProvider, strings.Join(cluster.Providers, ", "))
	}
	metrics, err := o.metrics.start(g.errw) // before the node: /livez answers while it starts
	if err != nil {
		return err
	}
	defer metrics.stop()
	node, err := actors.Start(actors.Config{
		TLS:              tlsConfig,
		Metrics:          metrics.registry(),
		Cluster:          &cluster.Config{Name: o.clusterName, Provider: provider, Endpoints: splitList(o.clusterEndpoints)},
		Audit:            audit,
		DataDir:          o.dataDir,
		Listen:           o.listen,
		Advertise:        o.advertise,
		Watch:            watcheractor.Config{BookmarkInterval: o.bookmarkInterval},
		NodeID:           o.nodeID,
		InitialCluster:   initial,
		Join:             splitList(o.join),
		Logger:           logger,
		HistoryRevisions: o.historyRevisions,
		DiskReserve:      reserve,
		LogCompaction: actors.LogCompaction{
			SyncEvery: o.syncEvery, CompactAfter: o.compactAfter, KeepEntries: o.keepEntries},
		MaxInflightProposals: o.maxInflight,
		MemTableSize:         o.memTableSize,
	})
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(o.dataDir)
	if err != nil {
		dir = o.dataDir
	}
	metrics.setNode(node)
	fmt.Fprintf(g.errw, "kstore: node %d serving on %s, data dir %s\n", o.nodeID, node.Address(), dir)

	select {
	case <-cmd.Context().Done():
		// From here a second SIGINT or SIGTERM ends the process with the default action, for
		// an operator whose node does not stop.
		g.stopSignals()
		logger.Info("stopping on a signal")
		_ = node.Stop()
		logger.Info("stopped")
		return nil
	case <-node.Done():
		if err := node.Err(); err != nil {
			return fmt.Errorf("the node stopped: %w", err)
		}
		return nil
	}
}

// serverLogger writes JSON lines to w at level and above: zap's production encoding (sampled,
// one object per event, for log collectors), with ISO 8601 times instead of epoch floats so that
// a person reading the raw stream can still follow it.
func serverLogger(w io.Writer, level zapcore.Level) *zap.Logger {
	return serverLoggerFormat(w, level, "json")
}

// serverLoggerFormat is serverLogger with format "json" or "console" (zap's console encoder:
// time, level, logger name, message, then the fields as one JSON object).
func serverLoggerFormat(w io.Writer, level zapcore.Level, format string) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	encoder := zapcore.NewJSONEncoder(enc)
	if format == "console" {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	core := zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), level)
	core = unsampledAudit{sampled: zapcore.NewSamplerWithOptions(core, time.Second, 100, 100), raw: core}
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w))))
}

// unsampledAudit samples every line but the debug audit lines ("applied", one per command
// applied, catalogactor's auditLine): an audit trail that dropped lines after 100 a second would
// not be one.
type unsampledAudit struct{ sampled, raw zapcore.Core }

func (c unsampledAudit) Enabled(l zapcore.Level) bool { return c.raw.Enabled(l) }
func (c unsampledAudit) Sync() error                  { return c.raw.Sync() }
func (c unsampledAudit) Write(e zapcore.Entry, f []zapcore.Field) error {
	return c.raw.Write(e, f)
}
func (c unsampledAudit) With(f []zapcore.Field) zapcore.Core {
	return unsampledAudit{sampled: c.sampled.With(f), raw: c.raw.With(f)}
}
func (c unsampledAudit) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Level == zapcore.DebugLevel && e.Message == "applied" {
		return c.raw.Check(e, ce)
	}
	return c.sampled.Check(e, ce)
}

// auditLogger opens --audit-log-path: JSON lines, buffered (flushed every second and at close)
// so that the apply path does not wait on the file.
func auditLogger(path string, stderr io.Writer) (*zap.Logger, func(), error) {
	if path == "" {
		return nil, func() {}, nil
	}
	var w zapcore.WriteSyncer = zapcore.Lock(zapcore.AddSync(stderr))
	closeFile := func() error { return nil }
	if path != "-" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("--audit-log-path: %w", err)
		}
		w, closeFile = f, f.Close
	}
	bw := &zapcore.BufferedWriteSyncer{WS: w, FlushInterval: time.Second}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), bw, zapcore.InfoLevel)).Named("audit")
	return logger, func() {
		_ = bw.Stop()
		_ = closeFile()
	}, nil
}

// parseInitialCluster reads --initial-cluster: ID=HOST:PORT pairs separated by commas.
func parseInitialCluster(s string) (map[uint64]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	members := map[uint64]string{}
	addrs := map[string]uint64{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		idText, addr, ok := strings.Cut(part, "=")
		id, err := strconv.ParseUint(idText, 10, 64)
		if !ok || err != nil || id == 0 {
			return nil, invalid("--initial-cluster: %q is not ID=HOST:PORT with a non-zero numeric ID, such as 1=127.0.0.1:7451", part)
		}
		if host, port, err := net.SplitHostPort(addr); err != nil || host == "" || port == "" || port == "0" {
			return nil, invalid("--initial-cluster: member %d's address %q is not HOST:PORT with a fixed port, such as 127.0.0.1:7451", id, addr)
		}
		if _, dup := members[id]; dup {
			return nil, invalid("--initial-cluster names member %d twice", id)
		}
		if other, dup := addrs[addr]; dup {
			return nil, invalid("--initial-cluster gives members %d and %d the same address %s", other, id, addr)
		}
		members[id], addrs[addr] = addr, id
	}
	return members, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
