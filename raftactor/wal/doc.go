// Package wal is the durable Raft log of a kstore node: an append-only
// write-ahead log of raft entries, HardStates and snapshot records in one
// directory of segment files.
//
// # Ownership
//
// A WAL owns its directory exclusively: Open takes a non-blocking flock on
// the directory, so a second Open of the same directory, in this process or
// another, fails until Close. A *WAL is not safe for concurrent use: one
// owner (the Raft actor) calls it, and the package starts no goroutines.
// Like etcd's server, the owner keeps entries in a raft.MemoryStorage for
// raft to read and makes them durable here: on each Ready it calls
// Save(rd.HardState, rd.Entries, rd.MustSync) and sends messages only after
// Save returns. On restart it calls Open and loads the returned State into a
// fresh MemoryStorage.
//
// # Files
//
// Segment files are named %016x-%016x.wal (sequence number, then the index
// of the first entry expected in the segment, which is the log's last index
// + 1 when the segment was created), so they sort in write order. Sequence
// numbers are consecutive; deletion (ReleaseTo) only ever removes a prefix.
// A segment is created as <name>.tmp, preallocated to Options.SegmentSize,
// given its header, fsynced, renamed and then the directory is fsynced, so
// a segment that has its final name always has a complete, durable header.
// Leftover *.tmp files are removed by Open.
//
// Every segment begins with a header: the latest HardState and the latest
// snapshot record (each when there is one), then a batch record. So every
// segment is self-describing, and deleting older segments loses nothing.
//
// # Records
//
// A record is 9 header bytes, then the payload, then zero padding to a
// multiple of 8 bytes (records start 8-aligned):
//
//	length  uint32 little-endian, payload length
//	crc     uint32 little-endian, CRC-32C (Castagnoli) of length, type, payload
//	type    1 byte: 1 batch, 2 entry, 3 hardstate, 4 snapshot
//	payload batch: uint64 little-endian "synced" offset (see below);
//	        otherwise a raftpb.Entry, raftpb.HardState or
//	        raftpb.SnapshotMetadata marshaled with deterministic protobuf
//
// Nine zero bytes where a header is expected (type 0 is never written) mark
// the end of a segment's records: the rest is preallocated space.
//
// Each Save and SaveSnapshot writes one batch with one write call: a batch
// record, then the entries in order, then the HardState (after the entries:
// replay keeps only a prefix of a torn batch, so it never returns a
// HardState without the entries written before it).
// The batch record carries how far the segment had been fdatasynced when
// the batch was written. That is what lets Open tell a torn write from
// damage (see Crash safety). A segment header ends with a batch record whose
// synced offset is its own offset: the header is durable before the file
// gets its name.
//
// # Replay
//
// Open reads the segments in order with one buffered reader (memory is one
// buffer plus the entries it returns) and applies raft's rules:
//   - An entry whose index is at or below the latest snapshot's index is
//     dropped. An entry with an index at or below the last index replaces
//     that entry and drops every later one (raft's overwrite rule; later
//     records win). An entry beyond last index + 1 is a gap: corruption.
//   - A snapshot record (index i, term t) makes the log start after i. The
//     entries after i are kept when the log holds entry i with term t (a
//     local compaction, raft.MemoryStorage.Compact); otherwise every entry is
//     dropped and the log is empty after i (raft restored a leader's
//     snapshot, raft.MemoryStorage.ApplySnapshot). A snapshot record older
//     than the latest one is ignored.
//   - The latest HardState record wins.
//
// The live WAL tracks the same state (without the entries: only the terms,
// as runs) so that segment names and these checks agree with replay.
//
// # Crash safety
//
// Save writes its batch with pwrite and, when asked, fdatasyncs; a batch is
// durable once an fdatasync after it has returned (a synced Save,
// SaveSnapshot, a segment roll, Close or the next Open). After a crash, the
// batches written since the last completed sync may be torn in any way the
// disk allows (partial, or sectors persisted out of order). On Open, in the
// last segment, the first bad record at offset X (checksum mismatch, a
// record running past the end of the file, nonzero padding, or a zero
// header followed by nonzero bytes) is judged as follows:
//   - if it lies in the segment header, or if a valid batch record after it
//     says the segment had been synced past X, a record that was durable is
//     now damaged: Open fails with ErrCorrupt naming file and offset;
//   - otherwise it is a torn tail: the log is truncated at X, the space
//     after X is zeroed (ftruncate, then preallocated again) so nothing stale
//     is read later, Open logs a warning with file and offset, and the
//     valid records after X, all of them unacknowledged, are dropped too.
//
// In an earlier segment any bad record is corruption (a segment is
// fdatasynced before the next one is created). Each segment must begin at
// the index where the previous one ended, and its header must hold the
// HardState and snapshot the previous segments ended with. A valid record
// of an unknown type, a gap in the indexes, a log that starts after an
// index no snapshot covers, or a HardState committing past the last index
// are corruption too. Damage within the last synced
// batch of the last segment cannot be told from a torn write; it is
// truncated like one. Open fsyncs the last segment before returning, so
// records it returns are durable even if they were only in the page cache
// of a process that was killed.
//
// # Preallocation
//
// Segments are preallocated with fallocate (ftruncate, a sparse file, where
// fallocate is not supported) so that fdatasync of an append need not also
// flush a size change. Measured on the development machine (ext4 on a
// virtio disk, kernel 6.18) with BenchmarkSaveSync and BenchmarkSaveSync64
// (-benchtime 2000x -count 3), one synced Save of a HardState and 1 or 64
// entries of 1 KiB:
//
//	                 1 entry: mean   p50    p99     64 entries: mean   p50   max
//	fallocate        103-110 µs    89 µs  ~195 µs  198-200 µs     194 µs  0.8-1.7 ms
//	no preallocation 145-147 µs   141 µs  ~200 µs  205-219 µs     204 µs  0.7-1.7 ms
//	zero-filled       91-99 µs     88 µs  ~135 µs  157-205 µs     116 µs  31-148 ms
//
// (dd oflag=dsync of 4 KiB blocks on the same disk: 157 µs appending,
// 102 µs overwriting.) A zero-filled file syncs fastest, since its extents
// are already written and fdatasync has no extent conversion to journal,
// but writing and syncing 64 MiB of zeros stalls Save for 30-175 ms at
// every segment roll, and no goroutine may hide that. fallocate gives most
// of the gain over no preallocation with rolls of about 1 ms, so segments
// are fallocated.
//
// # Errors
//
// Errors are prefixed "wal: ". Damage is reported as an error wrapping
// ErrCorrupt. A failed write or fdatasync leaves the WAL unusable: every
// later call fails (retrying an fsync after a failure can report success
// for data that was lost); the owner should stop the node and reopen.
package wal
