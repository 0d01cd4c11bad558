// Command putbench measures durable puts (or gets) per second and their latency through the typed
// client.
//
// It starts `kstore serve` (the binary given by --kstore) on a fresh data dir and a free port,
// --members 3 a three-node cluster, or uses running nodes (--endpoints), then for each client
// count runs N concurrent clients, spread over the members as etcd's loader spreads them, each
// putting 1 KiB objects over a key space of 10,000, and prints one JSON line per count:
//
//	{"target":"kstore","op":"put","members":1,"clients":64,"ops":40000,"errors":0,"seconds":..,"ops_per_s":..,"p50_ms":..,"p99_ms":..,"max_ms":..}
//
// The totals match ../shared/etcdbench's loader: 3,000 operations for one client, 40,000
// otherwise. Every put changes its object, as every etcd put writes a new revision. --op get
// reads the objects (linearizable, as etcd's default), get-serializable from the member's own
// state; the key space is written once first. --via cluster sends every request to the store
// identity of the nodes' actor cluster (actors.JoinCluster, NewClusterClient) instead of a
// node actor's PID, to measure what the cluster's routing costs.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/bench"
	"github.com/kstore/kstore/messages"
)

func main() {
	bin := flag.String("kstore", "bin/kstore", "the kstore binary to start (ignored with --endpoints)")
	endpoints := flag.String("endpoints", "", "use a running node instead of starting one")
	clientsFlag := flag.String("clients", "1,64,256", "comma-separated client counts")
	size := flag.Int("size", 1024, "object bytes")
	keys := flag.Int("keys", 10000, "key space")
	total := flag.Int("total", 0, "puts per client count (0: 3,000 for one client, 40,000 otherwise)")
	namespace := flag.String("namespace", "default", "the objects' namespace")
	cpuprofile := flag.String("cpuprofile", "", "write the client's CPU profile here")
	members := flag.Int("members", 1, "members of the cluster to start (1 or 3; ignored with --endpoints)")
	op := flag.String("op", "put", "put, get (linearizable) or get-serializable")
	via := flag.String("via", "address", "how the clients reach the store: address (the nodes' node actors by PID) or cluster (the store identity of the actor cluster the nodes are in, joined through them)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	objectNamespace = *namespace
	if err := run(*bin, *endpoints, *clientsFlag, *op, *via, *members, *size, *keys, *total); err != nil {
		fmt.Fprintln(os.Stderr, "putbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(bin, endpoints, clientsFlag, op, via string, members, size, keys, total int) error {
	switch op {
	case "put", "get", "get-serializable":
	default:
		return fmt.Errorf("--op %q: give put, get or get-serializable", op)
	}
	if via != "address" && via != "cluster" {
		return fmt.Errorf("--via %q: give address or cluster", via)
	}
	if endpoints == "" {
		nodes, err := bench.StartCluster(bin, members)
		if err != nil {
			return err
		}
		defer bench.StopAll(nodes)
		var eps []string
		for _, n := range nodes {
			eps = append(eps, n.Addr)
		}
		endpoints = strings.Join(eps, ",")
	}
	var cs []*actors.Client
	eps := strings.Split(endpoints, ",")
	if via == "cluster" {
		sys, c, err := actors.JoinCluster(eps, "127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		defer sys.Close()
		cs = append(cs, actors.NewClusterClient(c, 10*time.Second))
	} else {
		sys, err := actors.NewSystem("127.0.0.1:0", nil)
		if err != nil {
			return err
		}
		defer sys.Close()
		// One client per member, each starting at its own: the workers are spread over them.
		for i := range eps {
			rotated := append(slices.Clone(eps[i:]), eps[:i]...)
			cs = append(cs, actors.NewClient(sys.ActorSystem, rotated, 10*time.Second))
		}
	}
	for _, c := range cs {
		if err := bench.WaitLeader(c); err != nil {
			return err
		}
	}
	if op != "put" {
		// The objects to read: the whole key space, once.
		var wg sync.WaitGroup
		for w := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < keys; i += 64 {
					if _, err := cs[0].Put(context.Background(), object(i, i, size), messages.Reason_OPERATOR); err != nil {
						fmt.Fprintln(os.Stderr, "put:", err)
					}
				}
			}()
		}
		wg.Wait()
	}
	for _, f := range strings.Split(clientsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("--clients: %q is not a positive number", f)
		}
		t := total
		if t == 0 {
			t = 40000
			if n == 1 {
				t = 3000
			}
		}
		fmt.Println(string(load(cs, op, via, len(eps), n, t, size, keys)))
	}
	return nil
}

func load(cs []*actors.Client, op, via string, members, clients, total, size, keys int) []byte {
	var next, errs atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		wg.Add(1)
		c := cs[w%len(cs)]
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				var err error
				t := time.Now()
				switch op {
				case "put":
					// Every put changes its object (the sequence number is in it): a put equal
					// to the stored object would be a NoOp, cheaper than etcd's new revision.
					_, err = c.Put(context.Background(), object(int(i%int64(keys)), int(i), size), messages.Reason_OPERATOR)
				default:
					req := &messages.GetRequest{Key: &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: objectNamespace,
						Name: fmt.Sprintf("p%06d", i%int64(keys))}}
					if op == "get-serializable" {
						req.Consistency = messages.Consistency_SERIALIZABLE
					}
					_, err = c.Read(context.Background(), req)
				}
				if err != nil {
					if errs.Add(1) <= 3 {
						fmt.Fprintln(os.Stderr, op+":", err)
					}
					continue
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	out, _ := json.Marshal(map[string]any{
		"target": "kstore", "op": op, "via": via, "members": members, "clients": clients, "ops": len(all), "errors": errs.Load(),
		"seconds": el.Seconds(), "ops_per_s": float64(len(all)) / el.Seconds(),
		"p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1),
	})
	return out
}

// objectNamespace is --namespace.
var objectNamespace = "default"

// object returns a Pod of exactly size bytes (when size allows), named for key i, holding seq.
func object(i, seq, size int) []byte {
	head := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p%06d","namespace":%q},"spec":{"seq":%d,"data":"`, i, objectNamespace, seq)
	tail := `"}}`
	pad := max(size-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("x", pad) + tail)
}
