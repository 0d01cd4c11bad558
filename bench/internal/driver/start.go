package driver

import "fmt"

// Start starts a cluster of t and connects to it.
func Start(t Target, o Options) (Store, error) {
	switch t.System {
	case "kstore":
		return startKstore(t, o)
	case "etcd":
		return startEtcd(t, o)
	}
	return nil, fmt.Errorf("unknown target %v", t)
}
