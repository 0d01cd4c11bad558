// Package watcheractor serves watches: the Hub actor (hub.go), one watcher actor per watch
// (watcher.go), one stream actor per client process (stream.go), and the filter that decides
// what a watch sees of a change (filter.go).
//
// Who owns what: the Hub owns the ring of recent changes, the set of live watchers and its
// children; the catalog hands it each applied batch (catalogactor.Changes) without waiting,
// and it pushes them to the live watchers in a shared, never-modified push. A watcher owns its
// subscriber's bounded buffer, credits and sequence numbers; it reads the initial state and old
// history from the catalog a page at a time, and when its subscriber falls too far behind it
// drops its buffer and leaves the live set, to catch up later from history, so a slow or stalled
// client slows neither writes nor other watchers. A stream owns the events gathered for one
// client process's mux and its window of unacknowledged messages. No state is shared outside
// these actors.
package watcheractor
