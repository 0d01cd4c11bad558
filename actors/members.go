package actors

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/kstore/kstore/messages"
	"github.com/kstore/kstore/raftactor"
)

// A member's identity and what it knows of its peers, kept in its data dir beside the Raft log:
//
//	member.json  made with the data dir: this member's node id, a random identity, the cluster
//	             id (a digest of the initial cluster) and the initial cluster itself
//	peers.json   every peer met: its address and identity, and the ids removed from the cluster
//
// Raft's safety rests on a member remembering its votes and its log. A member whose data dir
// was wiped and that comes back under its old id has forgotten both, so peers check a member's
// identity (messages.Hello) before their raft takes its messages, and refuse one whose identity
// changed: it must be removed and added again, as a new member.

const (
	memberFile = "member.json"
	peersFile  = "peers.json"
	// helloInterval: how often a member says Hello to each peer. A peer that restarted takes no
	// Raft message from this member until it has heard one, so this bounds how long a restart
	// keeps a member out of its peers' elections and appends.
	helloInterval = time.Second
)

// identity is member.json.
type identity struct {
	NodeID         uint64            `json:"node_id"`
	Identity       string            `json:"identity"`
	ClusterID      string            `json:"cluster_id"`
	InitialCluster map[uint64]string `json:"initial_cluster,omitempty"`
}

// peerRecord is what a member remembers of a peer.
type peerRecord struct {
	Address  string `json:"address"`
	Identity string `json:"identity,omitempty"`
}

// peerBook is peers.json.
type peerBook struct {
	Peers   map[uint64]peerRecord `json:"peers"`
	Removed []uint64              `json:"removed,omitempty"`
}

// clusterID is a digest of an initial cluster: every member started with the same
// --initial-cluster has the same.
func clusterID(members map[uint64]string) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(members)) {
		fmt.Fprintf(&b, "%d=%s,", id, members[id])
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

// loadIdentity reads member.json, or makes an identity for a new data dir (fresh is then set;
// the caller saves it with saveIdentity once the Raft log exists, so that a data dir with
// member.json always has its log). It refuses a data dir of another node id, and an
// --initial-cluster that disagrees with the one the data dir was made with.
func loadIdentity(dir string, nodeID uint64, flag, initial map[uint64]string, cluster string) (id identity, fresh bool, err error) {
	path := filepath.Join(dir, memberFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &id); err != nil {
			return id, false, fmt.Errorf("kstore: %s is damaged (%v): the data dir cannot be trusted", path, err)
		}
		switch {
		case id.NodeID != nodeID:
			return id, false, fmt.Errorf("kstore: the data dir %s belongs to node %d, not to node %d: give --node-id %d, or another --data-dir", dir, id.NodeID, nodeID, id.NodeID)
		case len(flag) > 0 && !maps.Equal(flag, id.InitialCluster):
			return id, false, fmt.Errorf("kstore: --initial-cluster %s disagrees with the cluster the data dir %s was made for (%s): the membership of a running cluster changes with kstore member add and remove, not with the flag; give the original flag, or leave it out",
				formatMembers(flag), dir, cmp.Or(formatMembers(id.InitialCluster), "joined with --join"))
		}
		return id, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return id, false, fmt.Errorf("kstore: read %s: %w", path, err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return id, false, err
	}
	id = identity{NodeID: nodeID, Identity: hex.EncodeToString(raw[:]), ClusterID: cluster, InitialCluster: initial}
	return id, true, nil
}

// saveIdentity writes member.json.
func saveIdentity(dir string, id identity) error {
	return writeJSONDurably(filepath.Join(dir, memberFile), id)
}

func formatMembers(m map[uint64]string) string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d=%s", id, m[id]))
	}
	return strings.Join(parts, ",")
}

func loadPeers(dir string) (peerBook, error) {
	book := peerBook{Peers: map[uint64]peerRecord{}}
	b, err := os.ReadFile(filepath.Join(dir, peersFile))
	if errors.Is(err, fs.ErrNotExist) {
		return book, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &book)
	}
	if err != nil {
		return book, fmt.Errorf("kstore: read %s: %w", filepath.Join(dir, peersFile), err)
	}
	if book.Peers == nil {
		book.Peers = map[uint64]peerRecord{}
	}
	return book, nil
}

// writeJSONDurably replaces path with v as JSON: a temporary file, fsynced, renamed over it,
// and the directory fsynced.
func writeJSONDurably(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("kstore: write %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// membership is the node actor's view of the members: where they listen, who they are, and
// which peers it has checked. The node actor owns it.
type membership struct {
	dir      string
	self     identity
	fresh    bool // self is new: saveIdentity once the Raft log exists
	book     peerBook
	voters   []uint64
	learners []uint64
	removed  map[uint64]bool
	checked  map[uint64]bool // peers whose Hello this boot verified
	acked    map[uint64]bool // peers that accepted this node's Hello (HelloAck)
	// refusedBy are the peers that refused this node (MemberRefused) this boot.
	refusedBy map[uint64]bool
	watched   map[uint64]string
}

// addresses is every member's address by id, this node's included.
func (ms *membership) addresses(selfAddr string) map[uint64]string {
	out := map[uint64]string{ms.self.NodeID: selfAddr}
	for id, p := range ms.book.Peers {
		if !ms.removed[id] && p.Address != "" {
			out[id] = p.Address
		}
	}
	return out
}

func (ms *membership) save() error {
	ms.book.Removed = slices.Sorted(maps.Keys(ms.removed))
	return writeJSONDurably(filepath.Join(ms.dir, peersFile), ms.book)
}

// sayHello introduces this node to every peer it knows. A Request, so the peer sees who asks.
func (a *nodeActor) sayHello(ctx actor.Context) {
	for id, addr := range a.members {
		if id == a.id || addr == "" {
			continue
		}
		ctx.Request(actor.NewPID(addr, a.name), &messages.Hello{ClusterId: a.ms.self.ClusterID, NodeId: a.id, Identity: a.ms.self.Identity})
	}
}

// hello checks a peer's identity against what the cluster knows of it.
func (a *nodeActor) hello(ctx actor.Context, m *messages.Hello) {
	from := ctx.Sender()
	if from == nil {
		return
	}
	id := m.GetNodeId()
	refuse := func(msg string) {
		a.log.Error("peer refused", zap.Uint64("peer", id), zap.String("address", from.GetAddress()), zap.String("reason", msg))
		ctx.Request(from, &messages.MemberRefused{Status: &messages.Status{Reason: messages.StatusReason_INVALID, Message: msg}})
		delete(a.ms.checked, id)
		ctx.Send(a.kids.raft, &raftactor.Verified{ID: id, Refused: true})
	}
	known, ok := a.ms.book.Peers[id]
	switch {
	case m.GetClusterId() != a.ms.self.ClusterID:
		refuse(fmt.Sprintf("node %d at %s belongs to another cluster (cluster id %s; this cluster's is %s): check its --initial-cluster or --join", id, from.GetAddress(), m.GetClusterId(), a.ms.self.ClusterID))
		return
	case id == a.id || id == 0:
		refuse(fmt.Sprintf("a node at %s says it is node %d, this node's own id: give every member its own --node-id", from.GetAddress(), id))
		return
	case a.ms.removed[id]:
		refuse(fmt.Sprintf("node %d was removed from this cluster: it stops serving. To bring the machine back, delete its data dir and add it again (kstore member add %d HOST:PORT, then kstore serve --join)", id, id))
		return
	case ok && known.Identity != "" && known.Identity != m.GetIdentity():
		refuse(fmt.Sprintf("node %d at %s has another data dir than the one this cluster knows as node %d (identity %s, known %s): it was wiped or replaced and forgot its Raft votes and log, so it cannot rejoin under its old id. Remove it (kstore member remove %d), delete its data dir, and add it again (kstore member add %d %s, then kstore serve --join)",
			id, from.GetAddress(), id, short(m.GetIdentity()), short(known.Identity), id, id, from.GetAddress()))
		return
	}
	if !ok || known.Identity == "" || known.Address != from.GetAddress() {
		a.ms.book.Peers[id] = peerRecord{Address: from.GetAddress(), Identity: m.GetIdentity()}
		if err := a.ms.save(); err != nil {
			a.fail(err) // what it remembers of its peers is part of the cluster's safety
			return
		}
		a.members[id] = from.GetAddress()
		a.watchPeers(ctx)
	}
	ctx.Request(from, &messages.HelloAck{NodeId: a.id})
	if a.down[id] {
		delete(a.down, id) // it is back: writes may be forwarded to it again
		a.watchPeers(ctx)
	}
	if !a.ms.checked[id] {
		a.ms.checked[id] = true
		a.log.Info("peer verified", zap.Uint64("peer", id), zap.String("address", from.GetAddress()))
		a.maybeVerified(ctx, id)
	}
}

// refused notes a peer's refusal. The node stops once most of its peers refuse it: one peer
// alone may know less than the others (it caught up by a snapshot that skipped a member's
// removal and return), and one message, which any process can send, must not stop a node.
func (a *nodeActor) refused(ctx actor.Context, m *messages.MemberRefused) {
	id, ok := a.peerOf(ctx.Sender())
	if !ok {
		return
	}
	a.log.Error("refused by a peer", zap.Uint64("peer", id), zap.String("reason", m.GetStatus().GetMessage()))
	if a.ms.refusedBy == nil {
		a.ms.refusedBy = map[uint64]bool{}
	}
	a.ms.refusedBy[id] = true
	peers := 0
	for pid := range a.members {
		if pid != a.id {
			peers++
		}
	}
	if len(a.ms.refusedBy) >= peers/2+1 {
		a.fail(fmt.Errorf("kstore: node %d is refused by its peers: %s", a.id, m.GetStatus().GetMessage()))
	}
}

// helloAck notes that a peer accepted this node.
func (a *nodeActor) helloAck(ctx actor.Context, m *messages.HelloAck) {
	id, ok := a.peerOf(ctx.Sender())
	if !ok || id != m.GetNodeId() || a.ms.acked[id] {
		return
	}
	a.ms.acked[id] = true
	a.maybeVerified(ctx, id)
}

// maybeVerified lets raft take a peer's messages once each has accepted the other.
func (a *nodeActor) maybeVerified(ctx actor.Context, id uint64) {
	if a.ms.checked[id] && a.ms.acked[id] {
		ctx.Send(a.kids.raft, &raftactor.Verified{ID: id, Address: a.members[id]})
	}
}

func short(s string) string { return s[:min(len(s), 8)] }

// membersChanged takes in the membership raft applied, and remembers it.
func (a *nodeActor) membersChanged(ctx actor.Context, m *raftactor.MembersChanged) {
	if m.Self {
		a.fail(errors.New("kstore: " + m.SelfRemovedReason))
		return
	}
	a.ms.voters, a.ms.learners = m.Voters, m.Learners
	changed := false
	for _, id := range m.Removed {
		if !a.ms.removed[id] {
			a.ms.removed[id], changed = true, true
			delete(a.ms.book.Peers, id) // a member added again under this id is a new one
			delete(a.ms.checked, id)
			delete(a.ms.acked, id)
			delete(a.members, id)
		}
	}
	for id := range a.ms.removed {
		// Raft knows only the removals its log still holds after a restart: an id stays
		// removed here until a configuration adds it again.
		if slices.Contains(m.Voters, id) || slices.Contains(m.Learners, id) {
			delete(a.ms.removed, id)
			changed = true
		}
	}
	for id, addr := range m.Addresses {
		if id == a.id || addr == "" || a.ms.removed[id] {
			continue
		}
		if p := a.ms.book.Peers[id]; p.Address != addr {
			p.Address = addr
			a.ms.book.Peers[id], changed = p, true
		}
		a.members[id] = addr
	}
	if changed {
		if err := a.ms.save(); err != nil {
			a.fail(err)
			return
		}
		a.sayHello(ctx)
	}
	a.watchPeers(ctx)
}

// watchPeers watches the node actor of every peer not watched yet at its address.
func (a *nodeActor) watchPeers(ctx actor.Context) {
	for id, addr := range a.members {
		if id == a.id || addr == "" || a.ms.watched[id] == addr {
			continue
		}
		a.ms.watched[id] = addr
		ctx.Watch(actor.NewPID(addr, a.name))
	}
}

// memberRequest changes the membership on the leader, or forwards the request to it.
func (a *nodeActor) memberRequest(ctx actor.Context, m *messages.MemberRequest, forwarded bool) {
	if m == nil {
		m = &messages.MemberRequest{}
	}
	if !a.leads {
		status := &messages.Status{Reason: messages.StatusReason_UNAVAILABLE}
		switch {
		case forwarded:
			status.Message = fmt.Sprintf("node %d got a membership change forwarded as to the leader, but it does not lead now: nothing changed; retry", a.id)
		case a.leader == 0 || a.members[a.leader] == "" || a.down[a.leader]:
			status.Message = fmt.Sprintf("node %d knows no reachable leader (an election is under way, or it is cut off): nothing changed; retry shortly", a.id)
		default:
			ctx.RequestWithCustomSender(actor.NewPID(a.members[a.leader], a.name), &messages.Forwarded{Member: m, From: a.id}, ctx.Sender())
			return
		}
		ctx.Respond(&messages.MemberResult{Status: status})
		return
	}
	ctx.Send(a.kids.raft, &raftactor.ChangeMembers{Request: m, ReplyTo: ctx.Sender()})
}
