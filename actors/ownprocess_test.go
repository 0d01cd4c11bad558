package actors

import (
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// ownProcessEnv names the test that a child test process runs.
const ownProcessEnv = "KSTORE_ACTORS_TEST_OWN_PROCESS"

// inOwnProcess runs the calling test in a test process of its own when the race detector is on,
// and reports whether it did (the caller then returns). remote.Start sets gRPC's global logger,
// which the gRPC goroutines of a remote started earlier in the process read without
// synchronisation: under -race, the second protoactor remote of a process is a reported race.
// So every test that starts one gets a process; the child is the same race-enabled binary.
func inOwnProcess(t *testing.T) bool {
	t.Helper()
	if !raceEnabled || os.Getenv(ownProcessEnv) == t.Name() {
		return false
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), ownProcessEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in a process of its own: %v\n%s", t.Name(), err, out)
	}
	if testing.Verbose() {
		t.Logf("in a process of its own:\n%s", out)
	}
	return true
}
