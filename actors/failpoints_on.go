//go:build failpoints

package actors

// armFaults is what ArmFailpoints registered; nil: no failpoints.
var armFaults func() (*Faults, error)

// ArmFailpoints makes every node this process starts from now on (Start, Spawn) call arm and
// take the faults it returns (nil: none); an error makes Start and Spawn fail with it. It exists
// only in a build with -tags failpoints; call it before the first node starts (from an init
// function), as it is not synchronised.
func ArmFailpoints(arm func() (*Faults, error)) { armFaults = arm }

func armedFaults() (*Faults, error) {
	if armFaults == nil {
		return nil, nil
	}
	return armFaults()
}
