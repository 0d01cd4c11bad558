package main

import "testing"

// TestRaceFilter: the e2e tests fail on races in kstore's code and only log protoactor-go's own,
// even when a kstore function is further out on the racing stack.
func TestRaceFilter(t *testing.T) {
	upstream := `
WARNING: DATA RACE
Read at 0x00c0002fc2b8 by goroutine 752:
  github.com/asynkron/protoactor-go/remote.(*BlockList).IsBlocked()
      /root/go/pkg/mod/github.com/asynkron/protoactor-go/remote/blocklist.go:44 +0xe4
  github.com/asynkron/protoactor-go/remote.(*endpointReader).Receive()
      /root/go/pkg/mod/github.com/asynkron/protoactor-go/remote/endpoint_reader.go:83 +0x559
  github.com/kstore/kstore/actors.(*guard).stream()
      /work/main/actors/guard.go:165 +0x294

Previous write at 0x00c0002fc2b8 by goroutine 23:
  github.com/asynkron/protoactor-go/remote.(*BlockList).Block()
      /root/go/pkg/mod/github.com/asynkron/protoactor-go/remote/blocklist.go:37 +0x444

Goroutine 23 (running) created at:
  github.com/kstore/kstore/cluster.start()
      /work/main/cluster/cluster.go:178 +0xbc6
`
	ours := `
WARNING: DATA RACE
Write at 0x00c000123456 by goroutine 7:
  runtime.mapassign_faststr()
      /usr/local/go/src/runtime/map.go:1 +0x1
  github.com/kstore/kstore/actors.(*nodeActor).Receive()
      /work/main/actors/nodeactor.go:200 +0x10

Previous read at 0x00c000123456 by goroutine 9:
  github.com/asynkron/protoactor-go/actor.(*actorContext).Receive()
      /root/go/pkg/mod/github.com/asynkron/protoactor-go/actor/actor_context.go:1 +0x1
`
	sep := "==================\n"
	log := "serving\n" + sep + upstream + sep + "more\n" + sep + ours + sep
	got, n := kstoreRaces(log)
	if len(got) != 1 || n != 1 {
		t.Fatalf("kstoreRaces found %d of kstore's and %d upstream; want 1 and 1", len(got), n)
	}
	if !accessInKstore(ours) || accessInKstore(upstream) {
		t.Errorf("accessInKstore(ours) = %v, accessInKstore(upstream) = %v; want true, false", accessInKstore(ours), accessInKstore(upstream))
	}
}
