package catalogactor

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"go.uber.org/zap"

	"github.com/kstore/kstore/messages"
)

// Backup files (kstore snapshot save | status | restore): a catalog's snapshot at one
// resourceVersion, in the chunks exportSnapshot makes for Raft snapshots (snapshot.go), behind a
// header that says what the file holds and how to check it. All integers are big endian:
//
//	header = magic "KSTORESNAP" (10 bytes) | format (uint16) | resourceVersion (uint64) |
//	         compacted (uint64) | objects (uint64) | body length (uint64) |
//	         sha256 of the body (32 bytes) | CRC-32C of the 76 header bytes before it (uint32)
//	body   = frame...
//	frame  = length of the chunk (uint32) | chunk
//
// resourceVersion is the Raft index the catalog was read at, compacted the revision the copy's
// history starts at (reads at revisions from compacted to resourceVersion see what they saw on
// the node), objects the objects live at resourceVersion. The file is whole when:
//   - the header's CRC matches (a flipped header byte is caught before anything else);
//   - the file is headerSize + body length bytes long (a truncated or extended file);
//   - the body's sha256 matches (any flipped body byte);
//   - the chunks decode, are of one snapshot (the header's resourceVersion and compacted) in
//     order from 0, and end with the end record, whose record count and digest (the catalog's
//     Digest at resourceVersion) match what came: the copy is the node's catalog, not merely
//     the bytes that were written.
//
// A writer (BackupWriter) writes the header last, over a placeholder: a file whose save was cut
// short has a zero header, which no reader takes.
const (
	backupMagic  = "KSTORESNAP"
	backupFormat = 1
	// BackupHeaderSize is the header's length in bytes.
	BackupHeaderSize = len(backupMagic) + 2 + 4*8 + sha256.Size + 4
	// maxBackupFrame bounds the chunk a reader takes into memory: exportSnapshot's chunks stay
	// below snapshotChunkBytes + partSize (1.5 MiB); 64 MiB refuses a damaged length long
	// before it costs the reader's memory.
	maxBackupFrame = 64 << 20
)

var (
	crc32c = crc32.MakeTable(crc32.Castagnoli)
	// ErrBackupDamaged matches every error that says a backup file is damaged (also a
	// messages.Error with reason Invalid, which says what is wrong).
	ErrBackupDamaged = errors.New("catalogactor: snapshot file is damaged")
)

// BackupHeader is what a backup file's header says.
type BackupHeader struct {
	Format          uint16
	ResourceVersion uint64
	Compacted       uint64
	Objects         uint64
	BodyBytes       uint64
	SHA256          [sha256.Size]byte
}

// Size is the length of the file the header describes.
func (h BackupHeader) Size() int64 { return int64(BackupHeaderSize) + int64(h.BodyBytes) }

// Checksum is the body's sha256 in hex.
func (h BackupHeader) Checksum() string { return hex.EncodeToString(h.SHA256[:]) }

func (h BackupHeader) marshal() []byte {
	b := make([]byte, 0, BackupHeaderSize)
	b = append(b, backupMagic...)
	b = binary.BigEndian.AppendUint16(b, h.Format)
	b = binary.BigEndian.AppendUint64(b, h.ResourceVersion)
	b = binary.BigEndian.AppendUint64(b, h.Compacted)
	b = binary.BigEndian.AppendUint64(b, h.Objects)
	b = binary.BigEndian.AppendUint64(b, h.BodyBytes)
	b = append(b, h.SHA256[:]...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32c))
}

// damagedError is a messages.Error (Invalid) that also matches ErrBackupDamaged.
type damagedError struct{ e *messages.Error }

func (d damagedError) Error() string   { return d.e.Error() }
func (d damagedError) Unwrap() []error { return []error{d.e, ErrBackupDamaged} }

func damaged(format string, args ...any) error {
	return damagedError{messages.Errorf(messages.StatusReason_INVALID,
		"the snapshot file is damaged: "+format+"; save a new snapshot, or restore another copy", args...)}
}

// parseBackupHeader decodes and checks a header.
func parseBackupHeader(b []byte) (BackupHeader, error) {
	var h BackupHeader
	switch {
	case len(b) < BackupHeaderSize:
		return h, damaged("it is %d bytes long, shorter than the %d-byte header", len(b), BackupHeaderSize)
	case !bytes.Equal(b[:len(backupMagic)], []byte(backupMagic)):
		if bytes.Count(b[:BackupHeaderSize], []byte{0}) == BackupHeaderSize {
			return h, damaged("its header is all zeros (a save that did not finish)")
		}
		return h, damagedError{messages.Errorf(messages.StatusReason_INVALID,
			"it does not start with %q, so it is not a kstore snapshot file (or its first bytes were overwritten): give the file kstore snapshot save wrote", backupMagic)}
	}
	crcAt := BackupHeaderSize - 4
	if got, want := crc32.Checksum(b[:crcAt], crc32c), binary.BigEndian.Uint32(b[crcAt:]); got != want {
		return h, damaged("the header's checksum is %08x, the header says %08x (a header byte changed)", got, want)
	}
	off := len(backupMagic)
	h.Format = binary.BigEndian.Uint16(b[off:])
	off += 2
	for _, p := range []*uint64{&h.ResourceVersion, &h.Compacted, &h.Objects, &h.BodyBytes} {
		*p = binary.BigEndian.Uint64(b[off:])
		off += 8
	}
	copy(h.SHA256[:], b[off:])
	switch {
	case h.Format != backupFormat:
		return h, messages.Errorf(messages.StatusReason_INVALID,
			"the snapshot file has format %d; this kstore reads format %d: use the kstore release that saved it", h.Format, backupFormat)
	case h.ResourceVersion == 0 || h.Compacted > h.ResourceVersion:
		return h, damaged("its header says resourceVersion %d with history from %d", h.ResourceVersion, h.Compacted)
	}
	return h, nil
}

// ReadBackupHeader reads and checks the header at the start of r; it reads nothing else.
func ReadBackupHeader(r io.Reader) (BackupHeader, error) {
	b := make([]byte, BackupHeaderSize)
	n, err := io.ReadFull(r, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return BackupHeader{}, fmt.Errorf("catalogactor: read snapshot file: %w", err)
	}
	return parseBackupHeader(b[:n])
}

// chunkCheck follows a snapshot's chunks as the installer does (one snapshot, in order, ending
// with an end record that matches the records), without writing them, and counts the objects
// live at the snapshot's index.
type chunkCheck struct {
	ts, floor uint64
	seq       uint64 // the next chunk's
	records   uint64
	objects   uint64
	h         hash.Hash // the digest of the records, as the end record has it
	lastKey   []byte    // the object key whose versions are being read
	ended     bool
}

func newChunkCheck() *chunkCheck { return &chunkCheck{h: newDigestHash()} }

// add checks one chunk and returns it decoded.
func (c *chunkCheck) add(b []byte) (snapChunk, error) {
	if c.ended {
		return snapChunk{}, damaged("a chunk follows the last one of the snapshot at %d", c.ts)
	}
	ch, err := parseChunk(b)
	if err != nil {
		return ch, damaged("%v", err)
	}
	if c.seq == 0 {
		if ch.ts == 0 || ch.floor > ch.ts {
			return ch, damaged("a snapshot at %d with history from %d", ch.ts, ch.floor)
		}
		c.ts, c.floor = ch.ts, ch.floor
	} else if ch.ts != c.ts || ch.floor != c.floor {
		return ch, damaged("chunk %d is of the snapshot at %d (history from %d), the first one of the snapshot at %d (from %d)",
			ch.seq, ch.ts, ch.floor, c.ts, c.floor)
	}
	if ch.seq != c.seq {
		return ch, damaged("chunk %d came where chunk %d was due", ch.seq, c.seq)
	}
	c.seq++
	for _, r := range ch.records {
		c.h.Write(r.raw)
		c.records++
		// Records come in key order, each key's versions newest first: an object's first
		// record is its state at ts.
		if len(r.key) > 0 && r.key[0] == prefixObject && !bytes.Equal(r.key, c.lastKey) {
			c.lastKey = append(c.lastKey[:0], r.key...)
			if r.kind == recPut {
				c.objects++
			}
		}
	}
	if ch.end != nil {
		if sum := c.h.Sum(nil); ch.end.count != c.records || !bytes.Equal(ch.end.sum, sum) {
			return ch, damaged("the snapshot at %d ends saying %d records with digest %x; %d came, with digest %x",
				c.ts, ch.end.count, ch.end.sum, c.records, sum)
		}
		c.ended = true
	}
	return ch, nil
}

// BackupWriter writes a backup file from the chunks of a snapshot (the data of the
// SnapshotChunk messages a save receives, in order): the header last, over a placeholder, once
// the snapshot ended. It checks every chunk as a restore will. The caller makes the file
// durable after Finish. Used by one goroutine.
type BackupWriter struct {
	w     io.WriteSeeker
	start int64 // where the header goes
	check *chunkCheck
	sum   hash.Hash // of the body
	body  uint64
	err   error
}

// NewBackupWriter writes a placeholder header at w's offset and returns a writer of the rest.
func NewBackupWriter(w io.WriteSeeker) (*BackupWriter, error) {
	start, err := w.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = w.Write(make([]byte, BackupHeaderSize))
	}
	if err != nil {
		return nil, fmt.Errorf("catalogactor: write snapshot file: %w", err)
	}
	return &BackupWriter{w: w, start: start, check: newChunkCheck(), sum: sha256.New()}, nil
}

// Write checks a chunk and appends it to the file. After an error it refuses everything.
func (b *BackupWriter) Write(chunk []byte) error {
	if b.err != nil {
		return b.err
	}
	if _, err := b.check.add(chunk); err != nil {
		b.err = fmt.Errorf("catalogactor: the node sent a damaged snapshot: %w", err)
		return b.err
	}
	frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4), uint32(len(chunk)))
	for _, p := range [][]byte{frame, chunk} {
		if _, err := b.w.Write(p); err != nil {
			b.err = fmt.Errorf("catalogactor: write snapshot file: %w", err)
			return b.err
		}
		b.sum.Write(p)
		b.body += uint64(len(p))
	}
	return nil
}

// Progress is what has been written so far: objects counted and bytes of the body.
func (b *BackupWriter) Progress() (objects, bytes uint64) { return b.check.objects, b.body }

// Finish writes the header, once the snapshot's last chunk came, and leaves w's offset at the
// end of the file.
func (b *BackupWriter) Finish() (BackupHeader, error) {
	if b.err != nil {
		return BackupHeader{}, b.err
	}
	if !b.check.ended {
		b.err = fmt.Errorf("catalogactor: the snapshot is incomplete: %d chunks came, without its end", b.check.seq)
		return BackupHeader{}, b.err
	}
	h := BackupHeader{Format: backupFormat, ResourceVersion: b.check.ts, Compacted: b.check.floor, Objects: b.check.objects, BodyBytes: b.body}
	copy(h.SHA256[:], b.sum.Sum(nil))
	end := b.start + h.Size()
	_, err := b.w.Seek(b.start, io.SeekStart)
	if err == nil {
		_, err = b.w.Write(h.marshal())
	}
	if err == nil {
		_, err = b.w.Seek(end, io.SeekStart)
	}
	if err != nil {
		b.err = fmt.Errorf("catalogactor: write snapshot file header: %w", err)
		return BackupHeader{}, b.err
	}
	b.err = errors.New("catalogactor: the snapshot file is finished")
	return h, nil
}

// readBackup reads a backup file of size bytes from r, checking everything the format promises
// (see the top of this file), and hands each chunk to chunk (nil: only check). It reads the file
// twice: the header and the body's sha256 first, so that a changed byte anywhere is named as
// such before any chunk is decoded or handed on; then the chunks. A damaged file's error
// matches ErrBackupDamaged; chunk's errors are returned as they are.
func readBackup(r io.ReaderAt, size int64, chunk func([]byte) error) (BackupHeader, error) {
	h, err := ReadBackupHeader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return h, err
	}
	if size != h.Size() {
		return h, damaged("it is %d bytes long; its header says %d (%d of header, %d of body): it was truncated or extended",
			size, h.Size(), BackupHeaderSize, h.BodyBytes)
	}
	body := func() *io.SectionReader { return io.NewSectionReader(r, int64(BackupHeaderSize), int64(h.BodyBytes)) }
	sum := sha256.New()
	if _, err := io.Copy(sum, body()); err != nil {
		return h, fmt.Errorf("catalogactor: read snapshot file: %w", err)
	}
	if got := sum.Sum(nil); !bytes.Equal(got, h.SHA256[:]) {
		return h, damaged("the body's sha256 is %x, the header says %x (a body byte changed)", got, h.SHA256)
	}

	br := bufio.NewReaderSize(body(), 1<<20)
	check := newChunkCheck()
	left := h.BodyBytes
	var frame [4]byte
	buf := make([]byte, 0, 2<<20)
	for left > 0 {
		at := h.BodyBytes - left
		if left < 4 {
			return h, damaged("%d bytes at body offset %d are too short for a chunk's length", left, at)
		}
		if _, err := io.ReadFull(br, frame[:]); err != nil {
			return h, readErr(err, at)
		}
		n := uint64(binary.BigEndian.Uint32(frame[:]))
		left -= 4
		if n == 0 || n > maxBackupFrame || n > left {
			return h, damaged("a chunk at body offset %d says it is %d bytes long; %d bytes of body are left", at, n, left)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, 0, n)
		}
		b := buf[:n]
		if _, err := io.ReadFull(br, b); err != nil {
			return h, readErr(err, at)
		}
		left -= n
		if _, err := check.add(b); err != nil {
			return h, fmt.Errorf("%w (chunk at body offset %d)", err, at)
		}
		if chunk != nil {
			if err := chunk(b); err != nil {
				return h, err
			}
		}
	}
	switch {
	case !check.ended:
		return h, damaged("the snapshot's end record is missing after %d chunks", check.seq)
	case check.ts != h.ResourceVersion || check.floor != h.Compacted:
		return h, damaged("the header says resourceVersion %d from %d, the chunks say %d from %d",
			h.ResourceVersion, h.Compacted, check.ts, check.floor)
	case check.objects != h.Objects:
		return h, damaged("the header says %d objects, the chunks hold %d", h.Objects, check.objects)
	}
	return h, nil
}

func readErr(err error, at uint64) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return damaged("it ends inside the chunk at body offset %d", at)
	}
	return fmt.Errorf("catalogactor: read snapshot file: %w", err)
}

// VerifyBackup reads a whole backup file of size bytes and checks everything the format
// promises: the header, the length, the body's sha256, and the chunks' own end record.
func VerifyBackup(r io.ReaderAt, size int64) (BackupHeader, error) {
	return readBackup(r, size, nil)
}

// RestoreCatalog writes the catalog a backup file holds into dir, which must be missing or
// empty: a complete catalog at the file's resourceVersion (applied) and compacted revision,
// durable, with its durable-point file beside dir (dir + ".durable"), as a node opens it. On any
// error it removes what it wrote.
func RestoreCatalog(r io.ReaderAt, size int64, dir string, log *zap.Logger) (BackupHeader, error) {
	inst, err := newSnapshotInstaller(StoreOptions{Dir: dir, Logger: log})
	if err != nil {
		return BackupHeader{}, err
	}
	h, err := readBackup(r, size, inst.write)
	if err == nil {
		var applied, compacted uint64
		applied, compacted, err = inst.finish()
		if err == nil && (applied != h.ResourceVersion || compacted != h.Compacted) {
			err = damaged("the restored catalog says applied %d from %d; the header says %d from %d",
				applied, compacted, h.ResourceVersion, h.Compacted)
		}
		if err == nil {
			return h, nil
		}
	}
	return h, errors.Join(err, inst.abort())
}
