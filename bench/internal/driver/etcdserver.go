package driver

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

// RunEtcdServerIfAsked turns this process into an etcd member when its first argument is
// EtcdServerArg, and returns otherwise. The benchmark's main (and a test's TestMain) call it
// before anything else, so the benchmark ships its own etcd server built from the same module
// versions as its client, and each member is a process of its own whose CPU time and memory
// /proc can tell apart from the loader's.
func RunEtcdServerIfAsked() {
	if len(os.Args) < 2 || os.Args[1] != EtcdServerArg {
		return
	}
	// etcdmain parses args[1:] as etcd's flags, as the etcd binary's main passes os.Args.
	etcdmain.Main(append([]string{"etcd"}, os.Args[2:]...))
	// Main returns only once the server has stopped; a member must never fall through into the
	// benchmark (or the test binary's tests).
	os.Exit(0)
}
