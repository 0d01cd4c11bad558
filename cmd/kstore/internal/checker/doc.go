// Package checker checks what clients saw of a kstore cluster during a fault test: the history
// of their operations for linearizability (porcupine, against a model of kstore's semantics),
// their watch streams for the six watch properties of etcd's robustness tests, and the reference
// change log (every change of the namespace, read back after the run) against the operations.
//
// It is pure: records in, findings out, no I/O but the HTML visualization Linearizable writes
// when asked. A fault test runs, in any order:
//
//	errs := checker.Changes(rec.Ops, rec.Reference)
//	errs = append(errs, checker.Watches(rec.Watches, rec.Reference)...)
//	err := checker.Linearizable(checker.Resolve(rec.Ops, rec.Reference), time.Minute, "history.html")
//
// Resolve is optional. It uses the reference to settle the writes whose outcome the client
// could not know (timeouts): each either made a change of the reference, and gets its rv, or
// is dropped. It trusts the reference, which Changes and Watches check. Linearizable alone
// trusts nothing but the history; it settles only the writes whose value a read saw, and a
// history with many unsettled writes may take longer than its timeout to show a violation.
//
// # What a history is
//
// Every operation is on one namespace and one kind, so a key is an object name. Every write is a
// Raft command, and the resourceVersion (rv) of a change is the Raft index that committed it.
// Indices increase but are not consecutive as the clients see them (elections, membership
// changes and failed commands consume indices), so the model never predicts an rv: it only
// constrains it. Every change committed after another has a greater rv; a linearizable list
// reads at an applied index, its listRV, at or above every rv before it and below every rv
// after it. The semantics modelled are those of catalogactor.Apply; see Op for each kind.
//
// # Limits
//
// The model enforces only what surely holds, so it is weaker than kstore: it never counts the
// indices that failed commands and NO_OP puts and updates consume; it bounds the rv of a write
// with an unknown outcome (above everything before it, below every rv committed after it) but
// does not remember what a Conflict excluded; a get's read index is known only to be at or
// above the rv it returned. Only put, create, update, delete, get and a list of the whole
// namespace are modelled: no patch, no selector, no read at an older resourceVersion.
//
// The search is porcupine's, on one partition (a list reads every key), and porcupine keeps a
// copy of its set of linearized operations for every state it visits. On one core, a
// 20,000-operation history of 8 clients checks in about 3 s and 700 MB when every write is
// settled; with 5% of the outcomes unknown and only Linearizable's own settling, in about
// 12 s and 2 GB. The race detector makes porcupine about ten times slower.
package checker
