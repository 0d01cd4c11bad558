//go:build !race

package main

// raceBuildFlags: see race_on_test.go.
var raceBuildFlags []string
