// Package bench holds kstore's benchmark harnesses, which a user runs with `make bench`:
// cmd/putbench drives durable puts through the typed client against a `kstore serve` process and
// prints one JSON line per client count, in the same shape as the etcd loader of
// ../shared/etcdbench, so the two can be read side by side from one run on one machine.
package bench
