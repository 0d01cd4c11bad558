// Package actors runs kstore nodes and holds their typed client.
//
// A node (Start, Node) is the actors of one member: the node actor "kstore" that takes requests,
// the Raft actor, the catalog actor that owns the Badger state, and the watch hub with one
// watcher actor per subscriber; each owns its state and nothing else touches it. System is the
// protoactor actor system they run on, with remote on a TCP address for other processes (or
// none, for a program that only embeds a node).
//
// Client is the typed client of nodes, for Go programs and for actors: writes (Put, Create,
// Update, Patch, Delete, Do), reads (Get, Read, List, ListAll), watches (Watch, Informer) and the
// node's status, with objects as JSON bytes or as *Unstructured. Its errors are *messages.Error
// values carrying the Kubernetes reason (messages.IsNotFound and the like); a call whose context
// ends returns the context's error. See the package examples.
package actors
