package catalogactor

// latestCache holds the newest stored bytes of recently written objects. The applier keeps one:
// each put reads the object it replaces, and that read through Badger's memtables and tables
// was half of the applier's CPU under a stream of updates. Only the applier goroutine touches
// it, and only after a batch is in Badger, so an entry always equals what Badger holds at the
// applied index; a key absent from it is read from Badger. It lives in its catalog: a snapshot
// installed opens a new catalog, and with it an empty cache. The catalog actor keeps another
// for gets (Actor.newest), filled from what each batch wrote as the actor's applied moves.
//
// The bound is in bytes. At the bound, entries picked at random (Go's map order) make room:
// under a working set larger than the cache the hit rate falls, never the correctness.
type latestCache struct {
	objects  map[string][]byte
	bytes    int
	maxBytes int
}

// defaultLatestBytes holds a 1 KiB object for each of about 30,000 keys.
const defaultLatestBytes = 32 << 20

func newLatestCache(maxBytes int) *latestCache {
	return &latestCache{objects: map[string][]byte{}, maxBytes: maxBytes}
}

// get returns key's newest stored bytes, if the cache holds them.
func (l *latestCache) get(key string) ([]byte, bool) {
	if l == nil {
		return nil, false
	}
	v, ok := l.objects[key]
	return v, ok
}

// put records obj as key's newest stored bytes; nil obj (a deletion) forgets the key. obj is
// kept, not copied: stored bytes are never changed once written (watchers share them too).
func (l *latestCache) put(key string, obj []byte) {
	if l == nil {
		return
	}
	if old, ok := l.objects[key]; ok {
		l.bytes -= len(key) + len(old)
		delete(l.objects, key)
	}
	need := len(key) + len(obj)
	if obj == nil || need > l.maxBytes {
		return
	}
	for k, v := range l.objects {
		if l.bytes+need <= l.maxBytes {
			break
		}
		l.bytes -= len(k) + len(v)
		delete(l.objects, k)
	}
	l.objects[key] = obj
	l.bytes += need
}
