package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"google.golang.org/protobuf/proto"
)

// Record types. Zero is never written: a zero header marks the end of a
// segment's records.
const (
	recBatch     byte = 1 // payload: uint64 LE, bytes of the segment fdatasynced when the batch was written
	recEntry     byte = 2 // payload: raftpb.Entry
	recHardState byte = 3 // payload: raftpb.HardState
	recSnapshot  byte = 4 // payload: raftpb.SnapshotMetadata
)

const (
	headerSize  = 9 // length uint32, crc uint32, type byte
	recordAlign = 8 // records start at multiples of 8, so a scan for records after damage need only try those
)

var (
	crcTable  = crc32.MakeTable(crc32.Castagnoli)
	zeroBytes [recordAlign + headerSize]byte
)

func validType(t byte) bool { return t >= recBatch && t <= recSnapshot }

// paddedSize is the size of a record with an n-byte payload, padding included.
func paddedSize(n int) int64 {
	return (int64(headerSize+n) + recordAlign - 1) &^ (recordAlign - 1)
}

func recordCRC(hdr []byte, typ byte, payload []byte) uint32 {
	crc := crc32.Update(0, crcTable, hdr[0:4])
	crc = crc32.Update(crc, crcTable, []byte{typ})
	return crc32.Update(crc, crcTable, payload)
}

// encoder frames records into one reusable buffer, so that a batch is
// written with one write call.
type encoder struct {
	buf []byte
	mo  proto.MarshalOptions
}

func newEncoder() *encoder {
	return &encoder{mo: proto.MarshalOptions{Deterministic: true}}
}

func (e *encoder) reset() { e.buf = e.buf[:0] }

func (e *encoder) appendBatch(synced int64) {
	start := e.begin()
	e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(synced))
	// Eight payload bytes cannot exceed the length field.
	_ = e.finish(start, recBatch)
}

// setBatch sets the synced offset of the batch record that begins the
// buffer.
func (e *encoder) setBatch(synced int64) {
	h := e.buf[:headerSize+8]
	binary.LittleEndian.PutUint64(h[headerSize:], uint64(synced))
	binary.LittleEndian.PutUint32(h[4:8], recordCRC(h, recBatch, h[headerSize:]))
}

// payload returns the payload of the record that starts at start.
func (e *encoder) payload(start int) []byte {
	n := int(binary.LittleEndian.Uint32(e.buf[start : start+4]))
	return e.buf[start+headerSize : start+headerSize+n]
}

func (e *encoder) appendProto(typ byte, m proto.Message) error {
	start := e.begin()
	var err error
	if e.buf, err = e.mo.MarshalAppend(e.buf, m); err != nil {
		e.buf = e.buf[:start]
		return fmt.Errorf("wal: marshal record type %d: %w", typ, err)
	}
	return e.finish(start, typ)
}

func (e *encoder) begin() int {
	start := len(e.buf)
	e.buf = append(e.buf, zeroBytes[:headerSize]...)
	return start
}

func (e *encoder) finish(start int, typ byte) error {
	h := e.buf[start:]
	n := len(h) - headerSize
	if n > math.MaxUint32 {
		e.buf = e.buf[:start]
		return fmt.Errorf("wal: record of %d bytes is larger than the 4 GiB a record can hold", n)
	}
	binary.LittleEndian.PutUint32(h[0:4], uint32(n))
	h[8] = typ
	binary.LittleEndian.PutUint32(h[4:8], recordCRC(h, typ, h[headerSize:]))
	pad := paddedSize(n) - int64(headerSize+n)
	e.buf = append(e.buf, zeroBytes[:pad]...)
	return nil
}

// readStatus is what recordReader found at its offset.
type readStatus int

const (
	readOK    readStatus = iota // a valid record
	readEnd                     // zero header or end of file: no record starts here
	readBad                     // torn or damaged; the reason says which
	readAlien                   // checksum fine but a type this code does not know: never a torn write
)

// recordReader streams the records of one segment through one buffer. On
// readEnd and readBad, off stays at the offset that was examined.
type recordReader struct {
	br      *bufio.Reader
	off     int64 // offset of the next record
	size    int64 // file size
	payload []byte
}

const readBufferSize = 256 << 10

func newRecordReader(r io.Reader, size int64) *recordReader {
	return &recordReader{br: bufio.NewReaderSize(r, readBufferSize), size: size}
}

// next reads the record at rr.off. The payload is valid until the next call.
func (rr *recordReader) next() (typ byte, payload []byte, st readStatus, why string, err error) {
	var hdr [headerSize]byte
	avail := min(rr.size-rr.off, headerSize)
	if avail <= 0 {
		return 0, nil, readEnd, "", nil
	}
	if _, err := io.ReadFull(rr.br, hdr[:avail]); err != nil {
		return 0, nil, 0, "", fmt.Errorf("wal: read at offset %d: %w", rr.off, err)
	}
	if hdr == [headerSize]byte{} {
		return 0, nil, readEnd, "", nil
	}
	if avail < headerSize {
		return 0, nil, readBad, "record header cut off by the end of the file", nil
	}
	n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
	typ = hdr[8]
	total := paddedSize(int(n))
	if rr.off+total > rr.size {
		return 0, nil, readBad, fmt.Sprintf("record of %d bytes runs past the end of the file (%d bytes)", total, rr.size), nil
	}
	if int64(cap(rr.payload)) < n {
		rr.payload = make([]byte, n)
	}
	payload = rr.payload[:n]
	if _, err := io.ReadFull(rr.br, payload); err != nil {
		return 0, nil, 0, "", fmt.Errorf("wal: read at offset %d: %w", rr.off, err)
	}
	if recordCRC(hdr[:], typ, payload) != binary.LittleEndian.Uint32(hdr[4:8]) {
		return 0, nil, readBad, "checksum mismatch", nil
	}
	if !validType(typ) {
		return 0, nil, readAlien, fmt.Sprintf("unknown record type %d (written by a newer version?)", typ), nil
	}
	var pad [recordAlign]byte
	if _, err := io.ReadFull(rr.br, pad[:total-headerSize-n]); err != nil {
		return 0, nil, 0, "", fmt.Errorf("wal: read at offset %d: %w", rr.off, err)
	}
	if pad != [recordAlign]byte{} {
		return 0, nil, readBad, "nonzero padding after the record", nil
	}
	rr.off += total
	return typ, payload, readOK, "", nil
}

// errNoData is returned by a dataSeeker when no data follows the offset.
var errNoData = errors.New("no data")

// scanBatches calls fn for each valid batch record that starts at an aligned
// offset in [from, size) of r. It is used only after damage, to learn what
// was written after it, so it tries every aligned offset. seekData, when not
// nil, skips holes (unwritten preallocated space reads as zeros).
func scanBatches(r io.ReaderAt, from, size int64, seekData func(int64) (int64, error), fn func(off, synced int64)) error {
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	var rec []byte
	pos := from
	for pos+headerSize <= size {
		if seekData != nil {
			d, err := seekData(pos)
			if errors.Is(err, errNoData) {
				return nil
			}
			if d = d &^ (recordAlign - 1); err == nil && d > pos {
				pos = d
				continue
			}
		}
		n := min(int64(chunk), size-pos)
		if _, err := r.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("wal: read at offset %d: %w", pos, err)
		}
		var o int64
		for ; o+headerSize <= n; o += recordAlign {
			h := buf[o : o+headerSize]
			if h[8] != recBatch || binary.LittleEndian.Uint32(h[0:4]) != 8 {
				continue
			}
			if pos+o+paddedSize(8) > size {
				continue
			}
			if o+headerSize+8 <= n {
				rec = buf[o : o+headerSize+8]
			} else {
				rec = make([]byte, headerSize+8)
				if _, err := r.ReadAt(rec, pos+o); err != nil {
					return fmt.Errorf("wal: read at offset %d: %w", pos+o, err)
				}
			}
			payload := rec[headerSize:]
			if recordCRC(rec, recBatch, payload) == binary.LittleEndian.Uint32(rec[4:8]) {
				fn(pos+o, int64(binary.LittleEndian.Uint64(payload)))
			}
		}
		pos += o
	}
	return nil
}
