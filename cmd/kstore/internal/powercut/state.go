package powercut

import (
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"syscall"
	"time"
)

// State is what a disk holds durably: the namespace and, for each file, the content of its
// last completed fsync. Cut returns one; Mount starts from one. A State is immutable and may
// be mounted any number of times (each mount starts from the same disk image).
type State struct {
	root *stateNode
}

type stateNode struct {
	mode     uint32
	uid, gid uint32
	mtime    time.Time
	children map[string]*stateNode // directories
	content  content               // regular files
}

func (n *stateNode) isDir() bool { return n.mode&syscall.S_IFMT == syscall.S_IFDIR }

// lookup returns the node at name, a slash-separated path relative to the file system's root.
func (s *State) lookup(name string) (*stateNode, error) {
	n := s.root
	if name == "." || name == "" {
		return n, nil
	}
	for part := range strings.SplitSeq(name, "/") {
		if !n.isDir() {
			return nil, fmt.Errorf("powercut: %s: %w", name, fs.ErrNotExist)
		}
		if n = n.children[part]; n == nil {
			return nil, fmt.Errorf("powercut: %s: %w", name, fs.ErrNotExist)
		}
	}
	return n, nil
}

// ReadFile returns the durable content of the regular file at name, a slash-separated path
// relative to the file system's root.
func (s *State) ReadFile(name string) ([]byte, error) {
	n, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, fmt.Errorf("powercut: %s is a directory", name)
	}
	return n.content.bytes(), nil
}

// Files returns the size of every regular file, by slash-separated path.
func (s *State) Files() map[string]int64 {
	out := map[string]int64{}
	var walk func(prefix string, n *stateNode)
	walk = func(prefix string, n *stateNode) {
		for _, name := range slices.Sorted(maps.Keys(n.children)) {
			c := n.children[name]
			if c.isDir() {
				walk(prefix+name+"/", c)
				continue
			}
			out[prefix+name] = c.content.size
		}
	}
	walk("", s.root)
	return out
}
