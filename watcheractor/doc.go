// Package watcheractor will hold one watcher actor per subscriber: it owns that subscriber's
// bounded buffer and credit count, so a slow or stalled client slows neither writes nor other
// watchers. (The watch issue builds it; until then the package is only this contract.)
package watcheractor
