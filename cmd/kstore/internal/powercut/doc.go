// Package powercut is an in-memory FUSE file system that forgets what was not fsynced, for
// tests that cut the power under a storage engine.
//
// Mount serves it at a directory; processes use it as any file system (pwrite, mmap, fsync,
// rename, flock...). Cut is the power cut: from that instant the file system answers every
// request with EIO, and Cut returns the State the disk holds durably. Unmount, then Mount that
// State (at the same or another directory) to get the disk a rebooted machine would find.
//
//	fsys, _ := powercut.Mount(dir, nil)
//	... run the program under test on dir ...
//	state := fsys.Cut() // then SIGKILL the program, and wait for it
//	_ = fsys.Unmount()
//	fsys, _ = powercut.Mount(dir, state) // restart the program on dir, check what survived
//
// # What survives a cut
//
// Each regular file has two contents: what reads see now, and its durable content, a copy
// taken when an fsync or fdatasync of the file (any descriptor, or msync(MS_SYNC) of a mapping,
// which the kernel turns into the WRITEs of the dirty pages followed by FSYNC) completes.
// After a cut, a file holds its durable content:
//   - data written after the file's last completed fsync is gone, all of it: no write is
//     half-kept or torn, and no later write survives while an earlier one is lost;
//   - a file created, written and never fsynced is empty (what ext4 gives after a crash: the
//     name was journaled, the delayed-allocation data never reached the disk);
//   - pages written through a MAP_SHARED mapping and never msynced or fsynced are gone, also
//     those the kernel wrote back by itself before the cut.
//
// Directory operations are durable as soon as they return: create, mkdir, rename (also
// over an existing file), unlink, rmdir, and size changes by truncate, ftruncate, O_TRUNC and
// fallocate (growing shows zeros where unsynced data was, as ext4's delayed allocation does).
// fsync of a directory is accepted and does nothing. This is weaker than POSIX, which makes a
// new name durable only after an fsync of its directory, and about what ext4 with
// data=ordered gives once its journal commits (every few seconds, or at any fsync): the tests
// are about data durability, not about missing directory fsyncs. A program that skips the
// directory fsync after a rename is not caught.
//
// # What it supports
//
// Regular files and directories: open, create, O_TRUNC, O_APPEND, read, write and pwrite,
// truncate and ftruncate, fallocate (mode 0 and FALLOC_FL_KEEP_SIZE; other modes fail with
// EOPNOTSUPP), fsync and fdatasync of files and directories, rename (with RENAME_NOREPLACE
// and RENAME_EXCHANGE), unlink, rmdir, readdir, mkdir, stat and chmod/chown/utimes, statfs,
// and MAP_SHARED writable mmap (direct I/O is off). flock and POSIX locks are implemented by
// the kernel for the one machine (FUSE's local locking). No hard links, symlinks, device
// nodes or extended attributes. Permissions are not checked (the mount needs root anyway).
//
// SetCapacity gives the disk a size: statfs reports it and writes that need space beyond it
// fail with ENOSPC. Space is counted in whole 64 KiB chunks of current content (holes are
// free, fallocated space counts); a file's durable copy costs nothing extra.
//
// SetSyncBandwidth makes the disk slow to make data durable: an fsync waits as long as
// writing the 64 KiB chunks changed since the file's last fsync takes at that rate, then
// makes the content of that moment durable. In memory, background work that ends in an fsync
// (Badger flushing a memtable to a table) is nearly instant, and the windows a cut should be
// able to hit almost never open. Fsyncs of different files wait side by side, as on a disk
// with deep queues; reads and writes are never slowed.
//
// # Limits
//
// Nothing that was not fsynced survives. A real disk may also keep some of it: the kernel
// writes dirty pages back by itself, in any order, across files. So a program that is safe
// here may still lose data on a real disk when it relies on the order in which unsynced data
// of different files reaches the disk; the states a cut produces here are a subset of the
// real ones. No write is torn either: a completed fsync keeps whole writes.
//
// Everything is in memory: a file's content is held in 64 KiB chunks (holes cost nothing);
// an fsync shares the chunks with the durable copy, and the first write to a shared chunk
// copies it. Reads the kernel serves from its page cache after a cut may show data that did
// not survive: look at the State, or remount. A process that touches a mapped file on the
// mount must not be the one serving it (the test process): a page fault waits for the FUSE
// server, and a Go garbage collection that stops the world while a goroutine waits on such a
// fault deadlocks. Run such programs (Badger) in a child process; read, write and fsync
// syscalls from the serving process are fine.
package powercut
