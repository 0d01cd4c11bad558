//go:build race

package main

// raceBuildFlags builds the binary the end-to-end test runs with the race detector when the
// test itself runs with it, so that `go test -race` checks the node's goroutines too.
var raceBuildFlags = []string{"-race"}
