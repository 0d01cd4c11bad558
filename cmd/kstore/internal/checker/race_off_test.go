//go:build !race

package checker

// slowdown: see race_on_test.go.
const slowdown = 1
