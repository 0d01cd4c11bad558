package messages

import (
	"encoding/binary"

	"google.golang.org/protobuf/proto"
)

// The Raft log format of a command entry, shared by every node that applies it:
//
//	byte 0     entryFormat (1)
//	bytes 1-8  proposal id, big endian: unique on the proposing node, it lets that node match the
//	           committed entry to the caller waiting for it without decoding the command
//	bytes 9-   the Command, marshaled deterministically
//
// An entry with empty data is one raft appends itself (a new leader's empty entry).
const entryFormat = 1

const entryHeader = 9

var marshalDeterministic = proto.MarshalOptions{Deterministic: true}

// EncodeEntry returns the Raft entry data of a command proposed under proposalID.
func EncodeEntry(proposalID uint64, c *Command) ([]byte, error) {
	buf := make([]byte, entryHeader, entryHeader+marshalDeterministic.Size(c))
	buf[0] = entryFormat
	binary.BigEndian.PutUint64(buf[1:], proposalID)
	return marshalDeterministic.MarshalAppend(buf, c)
}

// EntryProposalID reads the proposal id of entry data without decoding the command; ok is false
// for data that is not a command entry.
func EntryProposalID(data []byte) (id uint64, ok bool) {
	if len(data) < entryHeader || data[0] != entryFormat {
		return 0, false
	}
	return binary.BigEndian.Uint64(data[1:]), true
}

// DecodeEntry reads the command of entry data.
func DecodeEntry(data []byte) (*Command, error) {
	if len(data) < entryHeader || data[0] != entryFormat {
		return nil, Errorf(StatusReason_INVALID, "raft entry of %d bytes is not a kstore command (format byte %v)", len(data), data[:min(len(data), 1)])
	}
	c := &Command{}
	if err := proto.Unmarshal(data[entryHeader:], c); err != nil {
		return nil, Errorf(StatusReason_INVALID, "raft entry does not decode as a command: %v", err)
	}
	return c, nil
}

// MaxRequestIDBytes bounds Command.request_id: it is stored in the Raft log with the command and
// echoed in its result, so an unbounded one costs the log and every reply. Kubernetes request
// ids and UUIDs are under 64 bytes; 256 leaves room for a caller's own prefix.
const MaxRequestIDBytes = 256
