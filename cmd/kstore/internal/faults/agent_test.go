package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/cmd/kstore/internal/checker"
	"github.com/kstore/kstore/messages"
)

// agentEnv carries the agent's configuration (JSON) into the re-executed test binary.
const agentEnv = "KSTORE_FAULTS_AGENT"

// agentConfig is what the agent is told to do.
type agentConfig struct {
	Endpoints []string      // the members' --listen addresses
	Listen    string        // the agent's own actor system address, inside its namespace
	Clients   int           // concurrent clients, each with its own connection order
	Readers   int           // clients that only read, each pinned to one member
	Keys      int           // the key space the clients share
	Interval  time.Duration // each client's pause between operations
	Timeout   time.Duration // a request's budget; a write not answered in it has an unknown outcome
	Watches   int           // namespace-wide watches, beside one watch of a single key
	Out       string        // where the record goes
	Seed      uint64
}

// record is what the agent hands the test: every operation and watch event it saw, the
// reference change log read back after the run, and the members' digests.
type record struct {
	Ops       []checker.Op
	Watches   []checker.WatchLog
	Reference []checker.Event
	Hashes    map[string]string // endpoint -> digest at Revision
	Revision  uint64
	Problems  []string // what the agent could not do (a watch that ended, no convergence)
}

const (
	namespace = "lin"
	apiKind   = "ConfigMap"
)

// runAgent is the agent process: it starts the clients at once, then answers the test's
// commands on stdin, one line each, with one line on stdout:
//
//	leader   -> "leader N" (0: no member reachable reports one)
//	finish   -> stops the clients, waits for the members to converge, reads the reference log,
//	            writes the record, "done"
func runAgent() int {
	var cfg agentConfig
	if err := json.Unmarshal([]byte(os.Getenv(agentEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "agent: bad config:", err)
		return 2
	}
	sys, err := actors.NewSystem(cfg.Listen, zap.NewNop())
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		return 2
	}
	defer sys.Close()
	a := &agent{cfg: cfg, sys: sys, start: time.Now()}
	if err := a.begin(); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		return 2
	}
	fmt.Println("started")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "leader":
			fmt.Println("leader", a.leader())
		case "finish":
			if err := a.finish(); err != nil {
				fmt.Fprintln(os.Stderr, "agent:", err)
				return 2
			}
			fmt.Println("done")
			return 0
		}
	}
	return 2
}

type agent struct {
	cfg   agentConfig
	sys   *actors.System
	start time.Time // operation times are offsets from it, on the monotonic clock

	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	ops     [][]checker.Op // per client
	watches []*watchRec
	fromRV  uint64 // the watches' start
}

// watchRec is one watch's log, filled by its reader goroutine.
type watchRec struct {
	mu   sync.Mutex
	log  checker.WatchLog
	w    *actors.Watch
	done chan struct{}
	err  error
}

func (a *agent) now() int64 { return int64(time.Since(a.start)) }

// client returns a client of every endpoint, starting at the i-th.
func (a *agent) client(i int, timeout time.Duration) *actors.Client {
	n := len(a.cfg.Endpoints)
	eps := append(slices.Clone(a.cfg.Endpoints[i%n:]), a.cfg.Endpoints[:i%n]...)
	return actors.NewClient(a.sys.ActorSystem, eps, timeout)
}

// worker returns client i of the workload: the first len(Endpoints) are each pinned to one
// member, as Jepsen's clients are, so that a member cut off from the others keeps being asked
// (and must refuse); the rest move between members as the typed client does on failures.
func (a *agent) worker(i int) *actors.Client {
	n := len(a.cfg.Endpoints)
	switch {
	case i >= a.cfg.Clients: // a reader
		return actors.NewClient(a.sys.ActorSystem, a.cfg.Endpoints[i%n:i%n+1], a.cfg.Timeout)
	case i < n:
		return actors.NewClient(a.sys.ActorSystem, a.cfg.Endpoints[i:i+1], a.cfg.Timeout)
	}
	return a.client(i, a.cfg.Timeout)
}

func (a *agent) begin() error {
	// The members may still be electing: the watches' start is the first list that succeeds.
	c := a.client(0, a.cfg.Timeout)
	deadline := time.Now().Add(60 * time.Second)
	for {
		l, err := c.List(context.Background(), &messages.ListRequest{Version: "v1", Kind: apiKind, Namespace: namespace})
		if err == nil {
			a.fromRV = l.GetResourceVersion()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no member served a list within 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
	for i := range a.cfg.Watches + 1 {
		key := ""
		if i == a.cfg.Watches {
			key = "k0"
		}
		a.watches = append(a.watches, a.watch(i, key))
	}
	a.stop = make(chan struct{})
	a.ops = make([][]checker.Op, a.cfg.Clients+a.cfg.Readers)
	for i := range a.cfg.Clients + a.cfg.Readers {
		a.wg.Add(1)
		go a.run(i)
	}
	return nil
}

func (a *agent) watch(i int, key string) *watchRec {
	req := &messages.WatchRequest{Version: "v1", Kind: apiKind, Namespace: namespace, ResourceVersion: a.fromRV, Bookmarks: true}
	if key != "" {
		req.FieldSelector = "metadata.name=" + key
	}
	r := &watchRec{log: checker.WatchLog{Client: 1000 + i, Key: key, StartRV: a.fromRV}, done: make(chan struct{})}
	r.w = a.client(i, a.cfg.Timeout).Watch(context.Background(), req, actors.WatchOptions{})
	go func() {
		defer close(r.done)
		for ev := range r.w.Events() {
			e := checker.Event{Type: strings.TrimPrefix(ev.GetType().String(), "EVENT_"), RV: ev.GetResourceVersion()}
			if ev.GetType() != messages.EventType_EVENT_BOOKMARK {
				e.Key, e.Value = ev.GetKey().GetName(), valueOf(ev.GetObject())
			}
			r.mu.Lock()
			r.log.Events = append(r.log.Events, e)
			r.mu.Unlock()
		}
		r.err = r.w.Err()
	}()
	return r
}

// lastRV is the newest revision the watch delivered.
func (r *watchRec) lastRV() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.log.Events); n > 0 {
		return r.log.Events[n-1].RV
	}
	return r.log.StartRV
}

// run is client i's loop: a random operation, then a pause, until stop.
func (a *agent) run(i int) {
	defer a.wg.Done()
	c := a.worker(i)
	rng := rand.New(rand.NewPCG(a.cfg.Seed, uint64(i)))
	seen := map[string]uint64{} // the newest rv this client saw of each key, for preconditions
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-a.stop:
			return
		case <-tick.C:
		}
		op := a.do(c, rng, i, seq, seen)
		a.mu.Lock()
		a.ops[i] = append(a.ops[i], op)
		a.mu.Unlock()
	}
}

// do makes one random operation and returns it as the client saw it.
func (a *agent) do(c *actors.Client, rng *rand.Rand, client, seq int, seen map[string]uint64) checker.Op {
	key := fmt.Sprintf("k%d", rng.IntN(a.cfg.Keys))
	value := fmt.Sprintf("c%d-%d", client, seq)
	ctx := context.Background()
	op := checker.Op{Client: client, Key: key}
	ref := &messages.ResourceKey{Version: "v1", Kind: apiKind, Namespace: namespace, Name: key}
	var res *messages.CommandResult
	var err error
	p := rng.IntN(100)
	if client >= a.cfg.Clients {
		// A reader: a member cut off from the others, or paused and woken up, keeps being
		// asked for linearizable reads many times a second, and must refuse them all, however
		// long its writers' requests hang.
		p = rng.IntN(35)
	}
	op.Call = a.now()
	switch {
	case p < 25:
		op.Kind = checker.Get
		var g *messages.GetResult
		g, err = c.Get(ctx, ref, 0)
		if err == nil {
			op.RV, op.GotValue = g.GetResourceVersion(), valueOf(g.GetObject())
			seen[key] = op.RV
		}
	case p < 35:
		op.Kind, op.Key = checker.List, ""
		var l *messages.ListResult
		l, err = c.List(ctx, &messages.ListRequest{Version: "v1", Kind: apiKind, Namespace: namespace})
		if err == nil {
			op.ListRV = l.GetResourceVersion()
			for _, it := range l.GetItems() {
				item := checker.Item{Key: nameOf(it), Value: valueOf(it), RV: rvOf(it)}
				op.Items = append(op.Items, item)
				seen[item.Key] = item.RV
			}
		}
	case p < 55:
		op.Kind, op.Value = checker.Put, value
		res, err = c.Put(ctx, object(key, value, 0), messages.Reason_OPERATOR)
	case p < 65:
		op.Kind, op.Value = checker.Create, value
		res, err = c.Create(ctx, object(key, value, 0), messages.Reason_OPERATOR)
	case p < 85:
		op.Kind, op.Value, op.IfRV = checker.Update, value, seen[key]
		if op.IfRV == 0 {
			op.IfRV = 1 // never stored: a Conflict, or NotFound
		}
		res, err = c.Update(ctx, object(key, value, op.IfRV), messages.Reason_OPERATOR)
	default:
		op.Kind = checker.Delete
		if rng.IntN(2) == 0 {
			op.IfRV = seen[key]
		}
		res, err = c.Delete(ctx, ref, op.IfRV, messages.Reason_OPERATOR)
	}
	op.Return = a.now()
	op.Outcome, op.Reason = outcome(op.Kind, err)
	if err == nil && res != nil {
		op.Result = res.GetOp().String()
		op.RV = res.GetResourceVersion()
		if op.Result != "DELETED" {
			seen[key] = op.RV
		} else {
			delete(seen, key)
		}
	}
	return op
}

// outcome classifies an error as the client's contract states it: the reasons that say the
// store refused the command are failures (a get's NotFound is an observation: the key was
// absent), so is Unavailable (the client's contract: nothing took
// effect, the checker holds it to that), and a Timeout of a write may or may not have happened.
func outcome(kind checker.OpKind, err error) (checker.Outcome, string) {
	if err == nil {
		return checker.OK, ""
	}
	read := kind == checker.Get || kind == checker.List
	switch r := messages.ReasonOf(err); {
	case r == messages.StatusReason_NOT_FOUND, r == messages.StatusReason_ALREADY_EXISTS, r == messages.StatusReason_CONFLICT:
		return checker.Failed, reasonName[r]
	case read:
		return checker.Unknown, "" // a failed read observed nothing
	case r == messages.StatusReason_TIMEOUT && strings.Contains(err.Error(), "nothing was sent"):
		return checker.Failed, ""
	case r == messages.StatusReason_UNAVAILABLE:
		return checker.Failed, ""
	}
	return checker.Unknown, ""
}

var reasonName = map[messages.StatusReason]string{
	messages.StatusReason_NOT_FOUND:      "NotFound",
	messages.StatusReason_ALREADY_EXISTS: "AlreadyExists",
	messages.StatusReason_CONFLICT:       "Conflict",
}

// object is the workload's ConfigMap: the key, the value, and a precondition when rv != 0.
func object(key, value string, rv uint64) []byte {
	meta := map[string]string{"name": key, "namespace": namespace}
	if rv != 0 {
		meta["resourceVersion"] = strconv.FormatUint(rv, 10)
	}
	b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": apiKind, "metadata": meta, "data": map[string]string{"v": value}})
	return b
}

type storedObject struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Data struct {
		V string `json:"v"`
	} `json:"data"`
}

func parse(b []byte) storedObject {
	var o storedObject
	_ = json.Unmarshal(b, &o)
	return o
}

func valueOf(b []byte) string { return parse(b).Data.V }
func nameOf(b []byte) string  { return parse(b).Metadata.Name }
func rvOf(b []byte) uint64 {
	rv, _ := strconv.ParseUint(parse(b).Metadata.ResourceVersion, 10, 64)
	return rv
}

// leader is the leader most reachable members report, 0 when none does.
func (a *agent) leader() uint64 {
	votes := map[uint64]int{}
	for _, s := range a.statuses(time.Second) {
		if s != nil && s.GetLeader() != 0 {
			votes[s.GetLeader()]++
		}
	}
	var best uint64
	for id, n := range votes {
		if n > votes[best] {
			best = id
		}
	}
	return best
}

// statuses asks every endpoint on its own, in parallel; nil for one that did not answer.
func (a *agent) statuses(timeout time.Duration) []*messages.NodeStatus {
	out := make([]*messages.NodeStatus, len(a.cfg.Endpoints))
	var wg sync.WaitGroup
	for i, ep := range a.cfg.Endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := actors.NewClient(a.sys.ActorSystem, []string{ep}, timeout)
			if s, err := c.Status(context.Background()); err == nil {
				out[i] = s
			}
		}()
	}
	wg.Wait()
	return out
}

func (a *agent) finish() error {
	close(a.stop)
	a.wg.Wait()
	rec := record{Hashes: map[string]string{}}
	for _, ops := range a.ops {
		rec.Ops = append(rec.Ops, ops...)
	}
	// A last write, on a key of its own, after every client stopped: its revision is the end of
	// the reference log and what every watch must reach.
	sentinel := a.sentinel(&rec)

	// Converged: every member reports the same leader and has applied the same index, at least
	// the newest any client saw acknowledged.
	var newest uint64
	for _, op := range rec.Ops {
		newest = max(newest, op.RV, op.ListRV)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		sts := a.statuses(2 * time.Second)
		ok := true
		for _, s := range sts {
			ok = ok && s != nil && s.GetLeader() != 0 && s.GetLeader() == sts[0].GetLeader() &&
				s.GetApplied() == sts[0].GetApplied() && s.GetApplied() >= newest
		}
		if ok {
			rec.Revision = sts[0].GetApplied()
			break
		}
		if time.Now().After(deadline) {
			rec.Problems = append(rec.Problems, fmt.Sprintf("the members did not converge within 90s: %v", describe(sts)))
			break
		}
		time.Sleep(200 * time.Millisecond) // polling a condition with a deadline
	}

	if rec.Revision != 0 && sentinel != 0 {
		a.hashes(&rec)
		a.reference(&rec, sentinel)
	}
	// The watches: each has seen, or soon sees, the last change of its filter.
	lastFor := func(key string) uint64 {
		var rv uint64
		for _, e := range rec.Reference {
			if key == "" || e.Key == key {
				rv = e.RV
			}
		}
		return rv
	}
	for _, w := range a.watches {
		want := lastFor(w.log.Key)
		deadline := time.Now().Add(30 * time.Second)
		for w.lastRV() < want && time.Now().Before(deadline) {
			select {
			case <-w.done:
				deadline = time.Now()
			case <-time.After(50 * time.Millisecond): // polling a condition with a deadline
			}
		}
		w.w.Stop()
		<-w.done
		if got := w.lastRV(); got < want {
			rec.Problems = append(rec.Problems, fmt.Sprintf("watch %d (key %q) stopped at %d, short of the last change %d (%v)", w.log.Client, w.log.Key, got, want, w.err))
		}
		rec.Watches = append(rec.Watches, w.log)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(a.cfg.Out, b, 0o644)
}

func describe(sts []*messages.NodeStatus) string {
	var parts []string
	for i, s := range sts {
		if s == nil {
			parts = append(parts, fmt.Sprintf("#%d: no answer", i+1))
			continue
		}
		parts = append(parts, fmt.Sprintf("#%d: leader %d term %d applied %d", s.GetNodeId(), s.GetLeader(), s.GetTerm(), s.GetApplied()))
	}
	return strings.Join(parts, "; ")
}

// hashes asks every member for its catalog digest at the converged revision, from the oldest
// revision all of them still hold.
func (a *agent) hashes(rec *record) {
	var from uint64
	for _, ep := range a.cfg.Endpoints {
		c := actors.NewClient(a.sys.ActorSystem, []string{ep}, 10*time.Second)
		h, err := c.HashKV(context.Background(), &messages.HashKVRequest{Revision: rec.Revision})
		if err != nil {
			rec.Problems = append(rec.Problems, fmt.Sprintf("hashkv at %s: %v", ep, err))
			return
		}
		from = max(from, h.GetFrom())
	}
	for _, ep := range a.cfg.Endpoints {
		c := actors.NewClient(a.sys.ActorSystem, []string{ep}, 10*time.Second)
		h, err := c.HashKV(context.Background(), &messages.HashKVRequest{Revision: rec.Revision, From: from})
		if err != nil {
			rec.Problems = append(rec.Problems, fmt.Sprintf("hashkv at %s: %v", ep, err))
			return
		}
		rec.Hashes[ep] = h.GetHash()
	}
}

// sentinel writes the last change of the run, retrying until one attempt is acknowledged;
// every attempt goes into the record. It returns the change's revision, 0 when none succeeded.
func (a *agent) sentinel(rec *record) uint64 {
	c := a.client(0, a.cfg.Timeout)
	deadline := time.Now().Add(60 * time.Second)
	for try := 0; time.Now().Before(deadline); try++ {
		op := checker.Op{Client: a.cfg.Clients + a.cfg.Readers, Kind: checker.Put, Key: "end", Value: fmt.Sprintf("end-%d", try), Call: a.now()}
		res, err := c.Put(context.Background(), object(op.Key, op.Value, 0), messages.Reason_OPERATOR)
		op.Return = a.now()
		op.Outcome, op.Reason = outcome(op.Kind, err)
		if err == nil {
			op.Result, op.RV = res.GetOp().String(), res.GetResourceVersion()
		}
		rec.Ops = append(rec.Ops, op)
		if err == nil {
			return op.RV
		}
	}
	rec.Problems = append(rec.Problems, "no member acknowledged the run's last write within 60s")
	return 0
}

// reference reads every change of the namespace from the watches' start to the run's last
// write, by a watch from the first member: the log the clients' records are checked against.
func (a *agent) reference(rec *record, last uint64) {
	c := actors.NewClient(a.sys.ActorSystem, a.cfg.Endpoints[:1], 10*time.Second)
	w := c.Watch(context.Background(), &messages.WatchRequest{Version: "v1", Kind: apiKind, Namespace: namespace, ResourceVersion: a.fromRV, Bookmarks: true},
		actors.WatchOptions{GiveUpAfter: 10 * time.Second})
	defer w.Stop()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				rec.Problems = append(rec.Problems, fmt.Sprintf("the reference watch ended: %v", w.Err()))
				return
			}
			if ev.GetType() != messages.EventType_EVENT_BOOKMARK {
				rec.Reference = append(rec.Reference, checker.Event{Type: strings.TrimPrefix(ev.GetType().String(), "EVENT_"),
					Key: ev.GetKey().GetName(), Value: valueOf(ev.GetObject()), RV: ev.GetResourceVersion()})
			}
			if ev.GetResourceVersion() >= last {
				return
			}
		case <-timeout.C:
			rec.Problems = append(rec.Problems, fmt.Sprintf("the reference watch did not reach the last write (%d) within 60s", last))
			return
		}
	}
}
