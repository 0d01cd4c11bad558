//go:build !failpoints

package actors

// armedFaults: a build without -tags failpoints has no way to arm a failpoint.
func armedFaults() (*Faults, error) { return nil, nil }
