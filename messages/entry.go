package messages

import (
	"encoding/binary"

	"google.golang.org/protobuf/proto"
)

// The Raft log format of a command entry, shared by every node that applies it:
//
//	byte 0      entryFormat (2)
//	bytes 1-8   proposer: the node id of the member that proposed it, big endian
//	bytes 9-16  epoch: that member's boot epoch (a fresh value at every start)
//	bytes 17-24 sequence: counts that boot's proposals
//	bytes 25-   the Command, marshaled deterministically
//
// The three together (a ProposalID) let the proposer match the committed entry to the caller
// waiting for it without decoding the command, and no other member, nor the same member after a
// restart, can mistake the entry for one of its own. Format 1 (a single-node log of an older
// kstore) carried only an 8-byte id; it still decodes, with Node and Epoch 0, which no live
// proposer uses.
//
// An entry with empty data is one raft appends itself (a new leader's empty entry).
const (
	entryFormat1 = 1
	entryFormat  = 2
)

const (
	entryHeader1 = 9
	entryHeader  = 25
)

var marshalDeterministic = proto.MarshalOptions{Deterministic: true}

// ProposalID names one proposal in the whole cluster's history: the member that made it, the
// boot of that member, and the proposal's sequence number within the boot.
type ProposalID struct {
	Node, Epoch, Seq uint64
}

// EncodeEntry returns the Raft entry data of a command proposed as id.
func EncodeEntry(id ProposalID, c *Command) ([]byte, error) {
	buf := make([]byte, entryHeader, entryHeader+marshalDeterministic.Size(c))
	buf[0] = entryFormat
	binary.BigEndian.PutUint64(buf[1:], id.Node)
	binary.BigEndian.PutUint64(buf[9:], id.Epoch)
	binary.BigEndian.PutUint64(buf[17:], id.Seq)
	return marshalDeterministic.MarshalAppend(buf, c)
}

// EntryProposalID reads the proposal id of entry data without decoding the command; ok is false
// for data that is not a command entry.
func EntryProposalID(data []byte) (id ProposalID, ok bool) {
	switch {
	case len(data) >= entryHeader && data[0] == entryFormat:
		return ProposalID{Node: binary.BigEndian.Uint64(data[1:]), Epoch: binary.BigEndian.Uint64(data[9:]),
			Seq: binary.BigEndian.Uint64(data[17:])}, true
	case len(data) >= entryHeader1 && data[0] == entryFormat1:
		return ProposalID{Seq: binary.BigEndian.Uint64(data[1:])}, true
	}
	return ProposalID{}, false
}

// DecodeEntry reads the command of entry data.
func DecodeEntry(data []byte) (*Command, error) {
	var body []byte
	switch {
	case len(data) >= entryHeader && data[0] == entryFormat:
		body = data[entryHeader:]
	case len(data) >= entryHeader1 && data[0] == entryFormat1:
		body = data[entryHeader1:]
	default:
		return nil, Errorf(StatusReason_INVALID, "raft entry of %d bytes is not a kstore command (format byte %v)", len(data), data[:min(len(data), 1)])
	}
	c := &Command{}
	if err := proto.Unmarshal(body, c); err != nil {
		return nil, Errorf(StatusReason_INVALID, "raft entry does not decode as a command: %v", err)
	}
	return c, nil
}

// MaxRequestIDBytes bounds Command.request_id: it is stored in the Raft log with the command and
// echoed in its result, so an unbounded one costs the log and every reply. Kubernetes request
// ids and UUIDs are under 64 bytes; 256 leaves room for a caller's own prefix.
const MaxRequestIDBytes = 256
