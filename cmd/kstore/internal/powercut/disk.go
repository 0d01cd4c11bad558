package powercut

import (
	"maps"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// disk is the file system's state and its durability rules, with no FUSE in it: the FUSE
// shell (fs.go) turns each request into one method call. Every method takes mu, so a Cut falls
// between two requests, never inside one.
type disk struct {
	mu   sync.Mutex
	root *node
	// lastIno numbers nodes; a number is never reused, so a node the kernel still knows by
	// number cannot be confused with a newer one.
	lastIno uint64
	// used is the space held by the linked files' current content, in bytes (whole chunks).
	used int64
	// capacity is the disk's size in bytes; 0 means unlimited (statfs reports 1 TiB).
	capacity int64
	// syncBandwidth, in bytes per second, makes an fsync take as long as writing the file's
	// chunks changed since its last fsync; 0 makes it instant.
	syncBandwidth int64
	// cut is set by Cut: from then on every request fails with EIO.
	cut bool
}

// A node is a directory or a regular file.
type node struct {
	ino      uint64
	mode     uint32 // file type and permission bits
	uid, gid uint32
	atime    time.Time
	mtime    time.Time
	ctime    time.Time
	// linked is false once the node is no longer in any directory (unlinked, or replaced by a
	// rename). An open file may still be read and written; it survives no Cut.
	linked bool

	// Directories only.
	children map[string]*node

	// Regular files only.
	data    content // what reads see
	durable content // what the file held at its last completed fsync, with the size changes since
	// gen marks the chunks of data that belong to it alone and may be written in place.
	// Every fsync takes a new gen: the chunks it shared with durable become copy-on-write.
	gen uint64
	// dirty says data changed since the last fsync, so that an fsync of a clean file is free.
	dirty bool
}

const (
	rootIno   = 1 // FUSE's root node id
	blockSize = 4096
	// unlimitedSize is what statfs reports as the disk size when no capacity is set.
	unlimitedSize = 1 << 40
	maxNameLen    = 255
)

func (n *node) isDir() bool { return n.mode&syscall.S_IFMT == syscall.S_IFDIR }

// newDisk returns a disk holding s (nil: an empty root directory), as a rebooted machine finds
// it: every file's content is its durable content.
func newDisk(s *State) *disk {
	d := &disk{}
	if s == nil {
		now := time.Now()
		s = &State{root: &stateNode{mode: syscall.S_IFDIR | 0o755, mtime: now, children: map[string]*stateNode{}}}
	}
	d.root = d.restore(s.root)
	return d
}

func (d *disk) restore(s *stateNode) *node {
	n := &node{mode: s.mode, uid: s.uid, gid: s.gid, atime: s.mtime, mtime: s.mtime, ctime: s.mtime, linked: true}
	if d.lastIno == 0 {
		n.ino = rootIno
		d.lastIno = rootIno
	} else {
		d.lastIno++
		n.ino = d.lastIno
	}
	if n.isDir() {
		n.children = make(map[string]*node, len(s.children))
		for name, c := range s.children {
			n.children[name] = d.restore(c)
		}
		return n
	}
	// Both copies share the State's chunks, whose gens belong to the disk that made them:
	// writes copy them, so the State can be mounted again.
	n.data, n.durable, n.gen = s.content.clone(), s.content.clone(), newGen()
	d.used += n.data.allocated() * chunkSize
	return n
}

func (d *disk) newNode(mode, uid, gid uint32) *node {
	d.lastIno++
	now := time.Now()
	n := &node{ino: d.lastIno, mode: mode, uid: uid, gid: gid, atime: now, mtime: now, ctime: now, linked: true}
	if n.isDir() {
		n.children = map[string]*node{}
	} else {
		n.gen = newGen()
	}
	return n
}

// attr fills a with n's attributes.
func (n *node) attr(a *fuse.Attr) {
	*a = fuse.Attr{Ino: n.ino, Mode: n.mode, Owner: fuse.Owner{Uid: n.uid, Gid: n.gid}, Blksize: blockSize}
	a.SetTimes(&n.atime, &n.mtime, &n.ctime)
	switch {
	case !n.linked:
		a.Nlink = 0
	case n.isDir():
		a.Nlink = 2
		for _, c := range n.children {
			if c.isDir() {
				a.Nlink++
			}
		}
	default:
		a.Nlink = 1
	}
	if n.isDir() {
		a.Size = blockSize
		return
	}
	a.Size = uint64(n.data.size)
	a.Blocks = uint64(n.data.allocated() * chunkSize / 512)
}

// charge reserves chunks chunks of space for n, failing with ENOSPC when the disk is full.
// Unlinked files are not charged: their space is given back at unlink.
func (d *disk) charge(n *node, chunks int64) syscall.Errno {
	if !n.linked || chunks == 0 {
		return 0
	}
	if d.capacity > 0 && d.used+chunks*chunkSize > d.capacity {
		return syscall.ENOSPC
	}
	d.used += chunks * chunkSize
	return 0
}

// drop takes n out of the namespace.
func (d *disk) drop(n *node) {
	if !n.linked {
		return
	}
	n.linked = false
	n.ctime = time.Now()
	if !n.isDir() {
		d.used -= n.data.allocated() * chunkSize
	}
}

func (d *disk) lookup(dir *node, name string, a *fuse.Attr) (*node, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, syscall.EIO
	}
	c := dir.children[name]
	if c == nil {
		return nil, syscall.ENOENT
	}
	c.attr(a)
	return c, 0
}

func (d *disk) getattr(n *node, a *fuse.Attr) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return syscall.EIO
	}
	n.attr(a)
	return 0
}

// setattrIn is what a SETATTR asks for; nil fields are left alone.
type setattrIn struct {
	size         *uint64
	mode         *uint32
	uid, gid     *uint32
	atime, mtime *time.Time
}

// setattr applies in. A size change (truncate) reaches the durable copy at once: ext4 journals
// it like any metadata change. Shrinking drops durable bytes past the new size; growing, or
// shrinking below the current size but above the durable one, shows zeros where unsynced
// data was, as ext4's delayed allocation does.
func (d *disk) setattr(n *node, in setattrIn, a *fuse.Attr) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return syscall.EIO
	}
	now := time.Now()
	if in.size != nil {
		if n.isDir() {
			return syscall.EISDIR
		}
		if errno := d.truncate(n, int64(*in.size)); errno != 0 {
			return errno
		}
		n.mtime = now
	}
	if in.mode != nil {
		n.mode = n.mode&syscall.S_IFMT | *in.mode&0o7777
	}
	if in.uid != nil {
		n.uid = *in.uid
	}
	if in.gid != nil {
		n.gid = *in.gid
	}
	if in.atime != nil {
		n.atime = *in.atime
	}
	if in.mtime != nil {
		n.mtime = *in.mtime
	}
	n.ctime = now
	n.attr(a)
	return 0
}

func (d *disk) truncate(n *node, size int64) syscall.Errno {
	if size < 0 {
		return syscall.EINVAL
	}
	if size == n.data.size && size == n.durable.size {
		return 0
	}
	before := n.data.allocated()
	n.data.truncate(size, n.gen)
	if n.linked {
		d.used += (n.data.allocated() - before) * chunkSize
	}
	// The durable copy is shared: a fresh gen makes truncate copy the chunk it zeroes.
	n.durable.truncate(size, newGen())
	n.dirty = true
	return 0
}

// create makes a regular file. Like every namespace change, it is durable at once; the file's
// content is empty until an fsync.
func (d *disk) create(dir *node, name string, mode, uid, gid uint32, a *fuse.Attr) (*node, syscall.Errno) {
	return d.mknode(dir, name, syscall.S_IFREG|mode&0o7777, uid, gid, a)
}

func (d *disk) mkdir(dir *node, name string, mode, uid, gid uint32, a *fuse.Attr) (*node, syscall.Errno) {
	return d.mknode(dir, name, syscall.S_IFDIR|mode&0o7777, uid, gid, a)
}

func (d *disk) mknode(dir *node, name string, mode, uid, gid uint32, a *fuse.Attr) (*node, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, syscall.EIO
	}
	if len(name) > maxNameLen {
		return nil, syscall.ENAMETOOLONG
	}
	if !dir.linked {
		return nil, syscall.ENOENT
	}
	if dir.children[name] != nil {
		return nil, syscall.EEXIST
	}
	n := d.newNode(mode, uid, gid)
	dir.children[name] = n
	dir.mtime, dir.ctime = n.mtime, n.mtime
	n.attr(a)
	return n, 0
}

func (d *disk) unlink(dir *node, name string) syscall.Errno {
	return d.remove(dir, name, false)
}

func (d *disk) rmdir(dir *node, name string) syscall.Errno {
	return d.remove(dir, name, true)
}

func (d *disk) remove(dir *node, name string, wantDir bool) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return syscall.EIO
	}
	c := dir.children[name]
	switch {
	case c == nil:
		return syscall.ENOENT
	case wantDir && !c.isDir():
		return syscall.ENOTDIR
	case !wantDir && c.isDir():
		return syscall.EISDIR
	case wantDir && len(c.children) > 0:
		return syscall.ENOTEMPTY
	}
	delete(dir.children, name)
	d.drop(c)
	dir.mtime, dir.ctime = c.ctime, c.ctime
	return 0
}

// Flags of renameat2(2).
const (
	renameNoReplace = 1
	renameExchange  = 2
)

// rename moves dir/name to newDir/newName, replacing what is there (a file by a file, a
// directory by an empty directory). Durable at once.
func (d *disk) rename(dir *node, name string, newDir *node, newName string, flags uint32) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return syscall.EIO
	}
	if flags&^(renameNoReplace|renameExchange) != 0 || flags == renameNoReplace|renameExchange {
		return syscall.EINVAL
	}
	if len(newName) > maxNameLen {
		return syscall.ENAMETOOLONG
	}
	src, dst := dir.children[name], newDir.children[newName]
	if src == nil {
		return syscall.ENOENT
	}
	now := time.Now()
	dir.mtime, dir.ctime, newDir.mtime, newDir.ctime, src.ctime = now, now, now, now, now
	if flags&renameExchange != 0 {
		if dst == nil {
			return syscall.ENOENT
		}
		dir.children[name], newDir.children[newName] = dst, src
		dst.ctime = now
		return 0
	}
	if dst == src {
		return 0
	}
	if dst != nil {
		switch {
		case flags&renameNoReplace != 0:
			return syscall.EEXIST
		case src.isDir() && !dst.isDir():
			return syscall.ENOTDIR
		case !src.isDir() && dst.isDir():
			return syscall.EISDIR
		case dst.isDir() && len(dst.children) > 0:
			return syscall.ENOTEMPTY
		}
		d.drop(dst)
	}
	delete(dir.children, name)
	newDir.children[newName] = src
	return 0
}

func (d *disk) readdir(dir *node) ([]fuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, syscall.EIO
	}
	names := slices.Sorted(maps.Keys(dir.children))
	out := make([]fuse.DirEntry, len(names))
	for i, name := range names {
		c := dir.children[name]
		out[i] = fuse.DirEntry{Name: name, Ino: c.ino, Mode: c.mode & syscall.S_IFMT}
	}
	return out, 0
}

// open checks that n may be opened; O_TRUNC truncates (the kernel usually sends a SETATTR
// first, which makes this a no-op).
func (d *disk) open(n *node, flags uint32) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return syscall.EIO
	}
	if flags&syscall.O_TRUNC != 0 && !n.isDir() && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return d.truncate(n, 0)
	}
	return 0
}

func (d *disk) read(n *node, p []byte, off int64) (int, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return 0, syscall.EIO
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	return n.data.readAt(p, off), 0
}

// write changes the content reads see; nothing reaches the durable copy before an fsync.
func (d *disk) write(n *node, p []byte, off int64) (int, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return 0, syscall.EIO
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if len(p) == 0 {
		return 0, 0
	}
	end := off + int64(len(p))
	if errno := d.charge(n, n.data.holes(off, end)); errno != 0 {
		return 0, errno
	}
	n.data.writeAt(p, off, n.gen)
	n.mtime = time.Now()
	n.dirty = true
	return len(p), 0
}

// Modes of fallocate(2) that allocate supports.
const fallocKeepSize = 1

// allocate reserves [off, off+length) (fallocate mode 0 or FALLOC_FL_KEEP_SIZE). The new size
// is durable at once (ext4 journals it; the reserved blocks read as zeros after a crash).
// Punching holes and the other modes are not supported.
func (d *disk) allocate(n *node, off, length uint64, mode uint32) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return syscall.EIO
	}
	if mode&^fallocKeepSize != 0 {
		return syscall.EOPNOTSUPP
	}
	if length == 0 || int64(off) < 0 || int64(off+length) < int64(off) {
		return syscall.EINVAL
	}
	start, end := int64(off), int64(off+length)
	keep := mode&fallocKeepSize != 0
	limit := end
	if keep {
		limit = min(end, n.data.size)
	}
	if start < limit {
		if errno := d.charge(n, n.data.holes(start, limit)); errno != 0 {
			return errno
		}
	}
	n.data.allocate(start, end, keep)
	if !keep {
		n.durable.grow(end)
		n.mtime = time.Now()
	}
	n.dirty = true
	return 0
}

// fsync makes n's current content durable. On a directory it does nothing: namespace changes
// are durable at once.
//
// With a sync bandwidth, the fsync first waits as long as writing the chunks changed since the
// last fsync would take, then makes the content of that moment durable: writes made during
// the wait may be made durable too, as a real disk may do. A cut during the wait fails it.
func (d *disk) fsync(n *node) syscall.Errno {
	d.mu.Lock()
	if d.cut {
		d.mu.Unlock()
		return syscall.EIO
	}
	if n.isDir() || !n.dirty {
		d.mu.Unlock()
		return 0
	}
	var wait time.Duration
	if bw := d.syncBandwidth; bw > 0 {
		wait = time.Duration(float64(n.data.owned(n.gen)*chunkSize) / float64(bw) * float64(time.Second))
	}
	d.mu.Unlock()
	time.Sleep(wait)

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return syscall.EIO
	}
	if !n.dirty { // a concurrent fsync did it
		return 0
	}
	n.durable = n.data.clone()
	n.gen = newGen()
	n.dirty = false
	return 0
}

func (d *disk) statfs(out *fuse.StatfsOut) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return syscall.EIO
	}
	total := d.capacity
	if total == 0 {
		total = unlimitedSize
	}
	free := max(total-d.used, 0)
	const files = 1 << 20
	*out = fuse.StatfsOut{
		Blocks: uint64(total / blockSize), Bfree: uint64(free / blockSize), Bavail: uint64(free / blockSize),
		Files: files, Ffree: files - min(d.lastIno, files), Bsize: blockSize, Frsize: blockSize, NameLen: maxNameLen,
	}
	return 0
}

func (d *disk) setCapacity(bytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.capacity = bytes
}

func (d *disk) setSyncBandwidth(bytesPerSecond int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncBandwidth = bytesPerSecond
}

// powerCut stops the disk and returns what it holds durably.
func (d *disk) powerCut() *State {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	return &State{root: snapshot(d.root)}
}

// snapshot copies the durable image of n. Durable chunks are never written in place, so the
// copy shares them.
func snapshot(n *node) *stateNode {
	s := &stateNode{mode: n.mode, uid: n.uid, gid: n.gid, mtime: n.mtime}
	if n.isDir() {
		s.children = make(map[string]*stateNode, len(n.children))
		for name, c := range n.children {
			s.children[name] = snapshot(c)
		}
		return s
	}
	s.content = n.durable.clone()
	return s
}
