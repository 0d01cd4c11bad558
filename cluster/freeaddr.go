package cluster

import (
	"fmt"
	"net"
)

// FreeLoopbackAddr returns a loopback address whose port nothing listens on right now, nor the
// port HealthPortOffset above it (HealthAddress), where a member's automanaged health endpoint
// would listen: tests and benchmarks start nodes on it. Another process may take either port
// before the caller binds it.
func FreeLoopbackAddr() (string, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
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
