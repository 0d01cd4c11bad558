package powercut

import (
	"slices"
	"sync/atomic"
)

// chunkSize is the unit in which file content is stored, shared and copied. Badger creates
// sparse files of twice its memtable and value-log sizes (128 MiB with kstore's options) and the
// Raft WAL preallocates 64 MiB segments: content is held in chunks so that holes cost nothing
// and an fsync shares the chunks with the durable copy instead of copying the file. 64 KiB
// keeps the copy made by the first write to a chunk after an fsync small.
const chunkSize = 64 << 10

// A chunk is chunkSize bytes of a file. A chunk is written in place only by the content whose
// gen it carries; every other holder (the durable copy, a State, another mount) sees it as
// immutable, and a write to it copies it first.
type chunk struct {
	gen uint64
	b   [chunkSize]byte
}

// zeroChunk stands for space that fallocate reserved and nobody wrote: it reads as zeros,
// counts as allocated, and its gen matches no content, so it is never written in place.
var zeroChunk = &chunk{}

// lastGen numbers generations across every disk of the process, so that a chunk inherited from
// a State (made by another disk) never carries a gen that the new disk hands out.
var lastGen atomic.Uint64

func newGen() uint64 { return lastGen.Add(1) }

// content is a sparse file body: chunks[i] holds bytes [i*chunkSize, (i+1)*chunkSize), nil is a
// hole. Invariants: len(chunks) == chunksFor(size); bytes of the last chunk past size are zero
// (so growing the file exposes zeros, as on a real file system).
type content struct {
	size   int64
	chunks []*chunk
}

func chunksFor(size int64) int { return int((size + chunkSize - 1) / chunkSize) }

// clone returns a content sharing every chunk with c. Writes to either copy chunks first unless
// the writer owns them (see chunk).
func (c content) clone() content { return content{size: c.size, chunks: slices.Clone(c.chunks)} }

// readAt copies bytes from off into p and returns how many: fewer than len(p) only at the end.
func (c *content) readAt(p []byte, off int64) int {
	if off >= c.size {
		return 0
	}
	n := int(min(int64(len(p)), c.size-off))
	for done := 0; done < n; {
		pos := off + int64(done)
		i, o := pos/chunkSize, int(pos%chunkSize)
		m := min(n-done, chunkSize-o)
		if ch := c.chunks[i]; ch != nil {
			copy(p[done:done+m], ch.b[o:])
		} else {
			clear(p[done : done+m])
		}
		done += m
	}
	return n
}

// holes counts the chunks of [off, end) that hold no space yet (holes, or past the end): what
// writing or allocating that range would add to the disk's usage.
func (c *content) holes(off, end int64) int64 {
	var n int64
	for i := off / chunkSize; i*chunkSize < end; i++ {
		if i >= int64(len(c.chunks)) || c.chunks[i] == nil {
			n++
		}
	}
	return n
}

// allocated is the number of chunks that hold space.
func (c *content) allocated() int64 {
	var n int64
	for _, ch := range c.chunks {
		if ch != nil {
			n++
		}
	}
	return n
}

// owned is the number of chunks carrying gen: for a file's data, those written since its last
// fsync.
func (c *content) owned(gen uint64) int64 {
	var n int64
	for _, ch := range c.chunks {
		if ch != nil && ch.gen == gen {
			n++
		}
	}
	return n
}

// grow extends the content to size with zeros; a smaller size does nothing.
func (c *content) grow(size int64) {
	if size <= c.size {
		return
	}
	c.size = size
	if n := chunksFor(size) - len(c.chunks); n > 0 {
		c.chunks = append(c.chunks, make([]*chunk, n)...)
	}
}

// own returns chunk i for writing in place: the chunk itself when it carries gen, otherwise a
// copy carrying gen, which replaces it.
func (c *content) own(i int64, gen uint64) *chunk {
	ch := c.chunks[i]
	if ch != nil && ch != zeroChunk && ch.gen == gen {
		return ch
	}
	nc := &chunk{gen: gen}
	if ch != nil {
		nc.b = ch.b
	}
	c.chunks[i] = nc
	return nc
}

// writeAt writes p at off, growing the content when p ends past it. Chunks not carrying gen
// are copied first.
func (c *content) writeAt(p []byte, off int64, gen uint64) {
	c.grow(off + int64(len(p)))
	for done := 0; done < len(p); {
		pos := off + int64(done)
		done += copy(c.own(pos/chunkSize, gen).b[pos%chunkSize:], p[done:])
	}
}

// truncate sets the size: shrinking drops the chunks past it and zeroes the tail of the last one
// (in a copy unless it carries gen); growing adds zeros.
func (c *content) truncate(size int64, gen uint64) {
	if size >= c.size {
		c.grow(size)
		return
	}
	n := chunksFor(size)
	clear(c.chunks[n:])
	c.chunks = c.chunks[:n]
	c.size = size
	if o := size % chunkSize; o != 0 {
		if ch := c.chunks[n-1]; ch != nil && ch != zeroChunk {
			clear(c.own(int64(n-1), gen).b[o:])
		}
	}
}

// allocate reserves [off, end): holes in the range (within the size) become zeroChunk, and the
// size grows to end unless keepSize.
func (c *content) allocate(off, end int64, keepSize bool) {
	if !keepSize {
		c.grow(end)
	}
	for i := off / chunkSize; i*chunkSize < min(end, c.size); i++ {
		if c.chunks[i] == nil {
			c.chunks[i] = zeroChunk
		}
	}
}

// bytes returns the whole content as one slice.
func (c *content) bytes() []byte {
	b := make([]byte, c.size)
	c.readAt(b, 0)
	return b
}
