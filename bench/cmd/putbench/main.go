// Command putbench measures durable puts per second and their latency through the typed client.
//
// It starts `kstore serve` (the binary given by --kstore) on a fresh data dir and a free port, or
// uses a running node (--endpoints), then for each client count runs N concurrent clients, each
// putting 1 KiB objects over a key space of 10,000, and prints one JSON line per count:
//
//	{"target":"kstore","op":"put","clients":64,"ops":40000,"errors":0,"seconds":..,"ops_per_s":..,"p50_ms":..,"p99_ms":..,"max_ms":..}
//
// The totals match ../shared/etcdbench's loader: 3,000 puts for one client, 40,000 otherwise.
// Every put changes its object, as every etcd put writes a new revision.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
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
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	objectNamespace = *namespace
	if err := run(*bin, *endpoints, *clientsFlag, *size, *keys, *total); err != nil {
		fmt.Fprintln(os.Stderr, "putbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(bin, endpoints, clientsFlag string, size, keys, total int) error {
	if endpoints == "" {
		node, err := bench.StartNode(bin)
		if err != nil {
			return err
		}
		defer node.Stop()
		endpoints = node.Addr
	}
	sys, err := actors.NewSystem("127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	defer sys.Close()
	c := actors.NewClient(sys.ActorSystem, strings.Split(endpoints, ","), 10*time.Second)
	if err := bench.WaitLeader(c); err != nil {
		return err
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
		fmt.Println(string(load(c, n, t, size, keys)))
	}
	return nil
}

func load(c *actors.Client, clients, total, size, keys int) []byte {
	var next, errs atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				// Every put changes its object (the sequence number is in it): a put equal to the
				// stored object would be a NoOp, cheaper than the new revision etcd writes.
				o := object(int(i%int64(keys)), int(i), size)
				t := time.Now()
				_, err := c.Put(context.Background(), o, messages.Reason_OPERATOR)
				if err != nil {
					if errs.Add(1) <= 3 {
						fmt.Fprintln(os.Stderr, "put:", err)
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
		"target": "kstore", "op": "put", "clients": clients, "ops": len(all), "errors": errs.Load(),
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
