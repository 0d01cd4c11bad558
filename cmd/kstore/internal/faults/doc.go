// Package faults holds kstore's fault tests: real `kstore serve` processes, each in its own
// network namespace, under partitions, lossy and slow links, crashes, pauses and restarts, with
// a client process that records every operation it made and every watch event it got. After a
// run the records are checked by package checker: the history for linearizability (porcupine),
// the watches for etcd's six watch properties, and the members' catalogs for convergence.
//
// The tests need root (network namespaces, veth pairs, iptables); they skip otherwise. Who owns
// what: the test process owns the namespaces and the server processes (start, kill, stop,
// partition); the agent process (this test binary re-executed inside the client namespace) owns
// the kstore clients and the record, and answers the test's questions (who leads, has the
// cluster converged) on its stdout, since only it can reach the members.
//
// `make test` runs a short run of each fault family; `make soak SOAK=10m` runs them for longer
// and prints a summary table.
package faults
