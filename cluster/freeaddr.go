package cluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreeLoopbackAddr returns a loopback address whose port nothing listens on right now, nor the
// port HealthPortOffset above it (HealthAddress), where a member's automanaged health endpoint
// would listen: tests and benchmarks start nodes on it. Both ports are below the kernel's range
// of ephemeral ports when there is room there (Linux: net.ipv4.ip_local_port_range, 32768 and
// up by default): a port from that range is what every outgoing connection binds, so one that
// was free when chosen is often taken by the time a node restarts on it (CI saw a health
// endpoint's port taken so). Another listener may still take either port before the caller
// binds it.
func FreeLoopbackAddr() (string, error) {
	lo, hi := quietPorts()
	for range 100 {
		addr := "127.0.0.1:0"
		if hi > lo {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		addr = l.Addr().String()
		health, err := HealthAddress(addr)
		if err != nil {
			l.Close()
			continue
		}
		h, err := net.Listen("tcp", health)
		l.Close()
		if err == nil {
			h.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("no free pair of loopback ports")
}

// quietPorts is a range of ports [lo, hi) that, with HealthPortOffset added, stays below the
// first ephemeral port; hi <= lo when the range cannot be read or leaves no room.
func quietPorts() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	first, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, 0
	}
	return 10_000, first - HealthPortOffset
}
