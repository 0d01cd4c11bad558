//go:build race

package actors

// raceEnabled says the race detector is on: timing comparisons skip themselves.
const raceEnabled = true
