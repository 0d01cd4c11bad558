//go:build race

package checker

// slowdown is how much longer a check takes under the race detector, which instruments every
// word porcupine's bitsets copy and compare: about fifteen times, on a 5,000-operation history.
const slowdown = 15
