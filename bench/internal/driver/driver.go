// Package driver starts the systems the benchmark compares (kstore and etcd, one member or
// three, each member a process of its own on loopback) and drives them through one interface,
// so that every scenario sends both the same operations on the same objects.
//
// A Store is owned by the goroutine that started it, which alone may Close it; its Conns are
// safe for concurrent use by the scenario's clients.
package driver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnsupported is what a Conn returns for an operation its system has no equivalent of (a
// merge patch or a label selector on etcd): the scenario's row is marked n/a.
var ErrUnsupported = errors.New("not supported by this target")

// ErrConflict is what Update returns when the object changed between its read and its write
// (kstore's Conflict, etcd's failed compare of the mod revision).
var ErrConflict = errors.New("Conflict")

// Target names a system and its size: "kstore", "kstore-3", "etcd" or "etcd-3".
type Target struct {
	System  string // "kstore" or "etcd"
	Members int
}

func (t Target) String() string {
	if t.Members == 1 {
		return t.System
	}
	return fmt.Sprintf("%s-%d", t.System, t.Members)
}

// ParseTargets reads a comma-separated list of targets.
func ParseTargets(s string) ([]Target, error) {
	var ts []Target
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		sys, n, found := strings.Cut(f, "-")
		members := 1
		if found {
			m, err := strconv.Atoi(n)
			if err != nil || (m != 1 && m != 3) {
				return nil, fmt.Errorf("target %q: give kstore, kstore-3, etcd or etcd-3", f)
			}
			members = m
		}
		if sys != "kstore" && sys != "etcd" {
			return nil, fmt.Errorf("target %q: give kstore, kstore-3, etcd or etcd-3", f)
		}
		ts = append(ts, Target{System: sys, Members: members})
	}
	return ts, nil
}

// Options are what starting a target needs.
type Options struct {
	// Kstore is the kstore binary (`make build` makes bin/kstore).
	Kstore string
	// Self is this benchmark's own executable, which serves as etcd's server main when run with
	// EtcdServerArg as its first argument.
	Self string
	// Conns is how many client connections the loader opens (etcd: gRPC connections shared by
	// the clients; kstore: one actor system per connection, one client per member in each).
	Conns int
	// Dir is where the members' data dirs go (a fresh folder under it per start).
	Dir string
	// KstoreArgs are more arguments for `kstore serve` (a profiler's --pprof-listen, say).
	KstoreArgs []string
}

// EtcdServerArg, as the first argument of the benchmark's own executable, makes it run etcd's
// server main with the remaining arguments.
const EtcdServerArg = "etcd-server"

// Store is one running cluster of a target, and the loader's connections to it.
type Store interface {
	Target() Target
	// PIDs are the members' server processes, for their CPU time and memory.
	PIDs() []int
	// DataDir is the first member's data dir.
	DataDir() string
	// Conn is the i-th client's connection: clients are spread over the connections, and each
	// connection over the members, as etcd's benchmark tool spreads them.
	Conn(i int) Conn
	// Close stops the members and removes their data.
	Close() error
}

// Doc is one benchmark object: a Pod named Name in Namespace, with label group=g<Group>, a
// spec.seq of Seq, and padding to Size bytes in all. Every scenario writes Docs, so both
// systems store the same JSON: kstore as the object, etcd as the value at /registry/pods/NS/NAME.
type Doc struct {
	Namespace, Name string
	Seq, Size       int
	Group           int
}

// JSON encodes the Doc; resourceVersion, when non-empty, goes into its metadata (kstore's
// precondition of an update).
func (d Doc) JSON(resourceVersion string) []byte {
	var b strings.Builder
	b.Grow(d.Size + 64)
	b.WriteString(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"`)
	b.WriteString(d.Name)
	b.WriteString(`","namespace":"`)
	b.WriteString(d.Namespace)
	b.WriteString(`","labels":{"group":"g`)
	b.WriteString(strconv.Itoa(d.Group))
	b.WriteString(`"}`)
	if resourceVersion != "" {
		b.WriteString(`,"resourceVersion":"`)
		b.WriteString(resourceVersion)
		b.WriteString(`"`)
	}
	b.WriteString(`},"spec":{"seq":`)
	b.WriteString(strconv.Itoa(d.Seq))
	b.WriteString(`,"data":"`)
	const tail = `"}}`
	for pad := d.Size - b.Len() - len(tail); pad > 0; pad-- {
		b.WriteByte('x')
	}
	b.WriteString(tail)
	return []byte(b.String())
}

// EtcdKey is where etcd holds a Doc, as the Kubernetes API server lays out its keys.
func EtcdKey(namespace, name string) string { return "/registry/pods/" + namespace + "/" + name }

// EtcdPrefix is the prefix of every Doc of a namespace in etcd, or of every Doc when namespace
// is empty.
func EtcdPrefix(namespace string) string {
	if namespace == "" {
		return "/registry/pods/"
	}
	return "/registry/pods/" + namespace + "/"
}

// Event is one watch event as a scenario sees it: the object's name and whether it was a
// deletion (a BOOKMARK or progress notice is not passed on).
type Event struct {
	Namespace, Name string
	Deleted         bool
}

// Conn is a connection of the loader to a store. Every method may be called concurrently.
type Conn interface {
	// Put creates or replaces the Doc.
	Put(ctx context.Context, d Doc) error
	// Update reads the object, then writes d only if it is still the version read
	// (resourceVersion / mod revision precondition). It returns ErrConflict when it was not.
	Update(ctx context.Context, d Doc) error
	// Patch sets spec.seq of the object with a JSON merge patch (ErrUnsupported on etcd).
	Patch(ctx context.Context, namespace, name string, seq int) error
	// Get reads one object: linearizable, or serializable (from the member's own state).
	Get(ctx context.Context, namespace, name string, serializable bool) error
	// List reads every Doc of namespace (all namespaces when empty) in pages of pageSize,
	// filtered by a label selector when selector is non-empty (ErrUnsupported on etcd), and
	// returns how many it read.
	List(ctx context.Context, namespace string, pageSize int, selector string) (int, error)
	// Revision is the store's current revision (resourceVersion), to start watches from.
	Revision(ctx context.Context) (int64, error)
	// Watch watches the Docs of namespace (every Doc when empty) after revision rev, calling fn
	// for each event from one goroutine, until ctx ends or the watch fails. The returned
	// function waits for the watch to end and returns its error (nil when ctx ended it).
	Watch(ctx context.Context, namespace string, rev int64, fn func(Event)) (wait func() error)
	// Reason names a failure of this connection's calls by its kind: a Kubernetes reason name
	// (Conflict, Timeout, Unavailable, ...) for kstore, etcd's error or gRPC code for etcd.
	Reason(err error) string
}
