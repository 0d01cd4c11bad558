package actors

import (
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
)

// TestInternalActorStopStopsTheNode: an internal actor that stops while the node serves (here
// told to by a Stop or a Poison; a bug could do the same) leaves the node unable to serve, so the
// node stops with an error that names the actor instead of staying up and answering nothing.
func TestInternalActorStopStopsTheNode(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions...)
	tests := []struct {
		name   string
		target string
		poison bool
		want   string
	}{
		{"raft actor stopped", "kstore/raft", false, "internal actor kstore/raft stopped"},
		{"catalog actor poisoned", "kstore/catalog", true, "internal actor kstore/catalog stopped"},
		{"watch hub stopped", "kstore/watch", false, "internal actor kstore/watch stopped"},
		{"node actor poisoned", "kstore", true, "the node actor kstore was stopped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			system := quietSystem()
			defer system.Shutdown()
			n, err := Spawn(system, Config{DataDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Stop()
			pid := actor.NewPID(system.Address(), tt.target)
			if tt.poison {
				system.Root.Poison(pid)
			} else {
				system.Root.Stop(pid)
			}
			select {
			case <-n.Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("the node still runs 10 s after %s stopped", tt.target)
			}
			if err := n.Err(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("node stopped with %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
