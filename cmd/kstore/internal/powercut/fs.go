package powercut

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FS is a mounted powercut file system.
type FS struct {
	dir    string
	disk   *disk
	server *fuse.Server
}

// Mount serves a file system at dir, an existing empty directory, starting from state (nil: an
// empty file system). It needs root (or CAP_SYS_ADMIN) and /dev/fuse: the mount is made with
// mount(2) directly, with no fusermount. Call Unmount when done, also after Cut.
func Mount(dir string, state *State) (*FS, error) {
	d := newDisk(state)
	// The kernel may cache entries and attributes: nothing changes the file system but the
	// kernel's own requests, until Cut, after which the mount is dead anyway.
	timeout := time.Second
	server, err := fs.Mount(dir, &inode{disk: d, node: d.root}, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:            "powercut",
			Name:              "powercut",
			DirectMountStrict: true,
			// Fewer, larger requests; the kernel caps it (1 MiB on Linux 4.20 and later).
			MaxWrite: 1 << 20,
			// ENOSYS at once: otherwise the kernel asks for security.capability before every write.
			DisableXAttrs: true,
			// The page cache is never stale (see timeout): keep it across opens and attribute
			// changes, which also keeps mmap'ed pages where Badger expects them.
			ExplicitDataCacheControl: true,
			// EnableLocks stays off: the kernel then implements flock and POSIX locks itself,
			// which is all a single machine needs (Badger's and the WAL's directory flock).
		},
		EntryTimeout:   &timeout,
		AttrTimeout:    &timeout,
		RootStableAttr: &fs.StableAttr{Ino: rootIno, Mode: syscall.S_IFDIR},
	})
	if err != nil {
		return nil, fmt.Errorf("powercut: mount %s: %w", dir, err)
	}
	return &FS{dir: dir, disk: d, server: server}, nil
}

// Dir is the mount point.
func (f *FS) Dir() string { return f.dir }

// Cut is the power cut. From this instant every request to the file system fails with EIO
// (writes the kernel still holds in its page cache, writes of killed processes included, are
// lost), and Cut returns what the disk holds durably. Reads the kernel answers from its page
// cache may still return data that did not survive: look at the returned State, or Mount it,
// to see what did. Calling Cut again returns the same disk image.
func (f *FS) Cut() *State { return f.disk.powerCut() }

// SetCapacity sets the disk's size in bytes: statfs reports it, and a write or fallocate that
// needs space beyond it fails with ENOSPC. 0 (the default) is unlimited, reported as 1 TiB.
// Space is counted in 64 KiB chunks of the files' current content.
func (f *FS) SetCapacity(bytes int64) { f.disk.setCapacity(bytes) }

// SetSyncBandwidth makes the disk slow to make data durable: an fsync takes as long as writing
// the file's chunks changed since its last fsync at bytesPerSecond. In memory, Badger's
// background work that ends in an fsync (a memtable flushed to a table) is nearly instant,
// which closes the windows a power cut should be able to hit; a disk speed opens them again.
// 0 (the default) makes fsync instant. Reads and writes are never slowed.
func (f *FS) SetSyncBandwidth(bytesPerSecond int64) { f.disk.setSyncBandwidth(bytesPerSecond) }

// Unmount unmounts the file system. Every process using it must have ended (a killed process
// must have been waited for), or Unmount fails with EBUSY.
func (f *FS) Unmount() error {
	if err := f.server.Unmount(); err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("powercut: unmount %s: %w (a process still uses it: end it and wait for it first)", f.dir, err)
		}
		return fmt.Errorf("powercut: unmount %s: %w", f.dir, err)
	}
	return nil
}

// inode is the FUSE face of a node. The kernel may hold several inodes for one node over
// time (go-fuse forgets them when the kernel does); all state is in the node.
type inode struct {
	fs.Inode
	disk *disk
	node *node
}

var (
	_ fs.NodeLookuper  = (*inode)(nil)
	_ fs.NodeGetattrer = (*inode)(nil)
	_ fs.NodeSetattrer = (*inode)(nil)
	_ fs.NodeOpener    = (*inode)(nil)
	_ fs.NodeCreater   = (*inode)(nil)
	_ fs.NodeReader    = (*inode)(nil)
	_ fs.NodeWriter    = (*inode)(nil)
	_ fs.NodeFsyncer   = (*inode)(nil)
	_ fs.NodeFlusher   = (*inode)(nil)
	_ fs.NodeAllocater = (*inode)(nil)
	_ fs.NodeMkdirer   = (*inode)(nil)
	_ fs.NodeUnlinker  = (*inode)(nil)
	_ fs.NodeRmdirer   = (*inode)(nil)
	_ fs.NodeRenamer   = (*inode)(nil)
	_ fs.NodeReaddirer = (*inode)(nil)
	_ fs.NodeStatfser  = (*inode)(nil)
	_ fs.NodeOpendirer = (*inode)(nil)
	_ fs.InodeEmbedder = (*inode)(nil)
	_ fs.NodeAccesser  = (*inode)(nil)
)

// child returns the kernel's inode for n, a child of i.
func (i *inode) child(ctx context.Context, n *node) *fs.Inode {
	return i.NewInode(ctx, &inode{disk: i.disk, node: n}, fs.StableAttr{Mode: n.mode & syscall.S_IFMT, Ino: n.ino})
}

func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return 0, 0
}

func (i *inode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n, errno := i.disk.lookup(i.node, name, &out.Attr)
	if errno != 0 {
		return nil, errno
	}
	return i.child(ctx, n), 0
}

func (i *inode) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return i.disk.getattr(i.node, &out.Attr)
}

func (i *inode) Setattr(_ context.Context, _ fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var s setattrIn
	if v, ok := in.GetSize(); ok {
		s.size = &v
	}
	if v, ok := in.GetMode(); ok {
		s.mode = &v
	}
	if v, ok := in.GetUID(); ok {
		s.uid = &v
	}
	if v, ok := in.GetGID(); ok {
		s.gid = &v
	}
	if v, ok := in.GetATime(); ok {
		s.atime = &v
	}
	if v, ok := in.GetMTime(); ok {
		s.mtime = &v
	}
	return i.disk.setattr(i.node, s, &out.Attr)
}

// Access allows everything: the file system is for tests run as root.
func (i *inode) Access(context.Context, uint32) syscall.Errno { return 0 }

// Open returns no file handle: reads and writes go to the node. FOPEN_KEEP_CACHE keeps the
// page cache across opens (see Mount); direct I/O stays off, so MAP_SHARED mmap works.
func (i *inode) Open(_ context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_KEEP_CACHE, i.disk.open(i.node, flags)
}

func (i *inode) Opendir(context.Context) syscall.Errno {
	return i.disk.open(i.node, 0)
}

func (i *inode) Create(ctx context.Context, name string, _ uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	uid, gid := caller(ctx)
	n, errno := i.disk.create(i.node, name, mode, uid, gid, &out.Attr)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return i.child(ctx, n), nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (i *inode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	uid, gid := caller(ctx)
	n, errno := i.disk.mkdir(i.node, name, mode, uid, gid, &out.Attr)
	if errno != 0 {
		return nil, errno
	}
	return i.child(ctx, n), 0
}

func (i *inode) Read(_ context.Context, _ fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, errno := i.disk.read(i.node, dest, off)
	if errno != 0 {
		return nil, errno
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (i *inode) Write(_ context.Context, _ fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	n, errno := i.disk.write(i.node, data, off)
	return uint32(n), errno
}

// Fsync serves fsync and fdatasync (the same here: metadata is durable at once), on files and
// directories. msync(MS_SYNC) arrives as the kernel's WRITEs of the dirty pages, then FSYNC.
func (i *inode) Fsync(context.Context, fs.FileHandle, uint32) syscall.Errno {
	return i.disk.fsync(i.node)
}

// Flush (close) succeeds, also after Cut: there is nothing left to write back.
func (i *inode) Flush(context.Context, fs.FileHandle) syscall.Errno { return 0 }

func (i *inode) Allocate(_ context.Context, _ fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	return i.disk.allocate(i.node, off, size, mode)
}

func (i *inode) Unlink(_ context.Context, name string) syscall.Errno {
	return i.disk.unlink(i.node, name)
}

func (i *inode) Rmdir(_ context.Context, name string) syscall.Errno {
	return i.disk.rmdir(i.node, name)
}

func (i *inode) Rename(_ context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	p, ok := newParent.(*inode)
	if !ok {
		return syscall.EXDEV
	}
	return i.disk.rename(i.node, name, p.node, newName, flags)
}

func (i *inode) Readdir(context.Context) (fs.DirStream, syscall.Errno) {
	entries, errno := i.disk.readdir(i.node)
	if errno != 0 {
		return nil, errno
	}
	return fs.NewListDirStream(entries), 0
}

func (i *inode) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return i.disk.statfs(out)
}
