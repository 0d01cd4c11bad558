package nethub

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// roleEnv set to "hub" makes the test binary a hub: TestMain calls Main, the way a test
// binary of another package runs a hub in a namespace.
const roleEnv = "KSTORE_NETHUB_TEST_ROLE"

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "hub" {
		Main()
	}
	goleak.VerifyTestMain(m)
}
