package nethub

import "sync"

// maxMACs bounds the learned addresses. A test cluster has a handful of hosts, each with one
// address; the bound keeps a host that sends from random source addresses from growing the
// table without end. Frames to addresses not learned are flooded, so a full table costs
// traffic, never connectivity.
const maxMACs = 1024

type mac [6]byte

// table maps source MAC addresses to the port they were last seen on. Every receive
// goroutine uses it.
type table struct {
	mu    sync.Mutex
	ports map[mac]int // at most maxMACs entries
}

func newTable() *table {
	return &table{ports: make(map[mac]int)}
}

// route learns that src is reached through port in and returns the port a frame to dst goes
// out of, or ok false when it is flooded (dst is a broadcast or multicast address, or was not
// learned). A group (multicast) source address is not learned: no frame is sent from one.
func (t *table) route(in int, src, dst mac) (out int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if src[0]&1 == 0 {
		if _, known := t.ports[src]; known || len(t.ports) < maxMACs {
			t.ports[src] = in
		}
	}
	if dst[0]&1 != 0 { // the group bit: broadcast and multicast
		return 0, false
	}
	out, ok = t.ports[dst]
	return out, ok
}
