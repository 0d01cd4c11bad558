//go:build !linux

package nethub

import "errors"

const (
	vnetHdrLen = 10
	maxFrame   = 65535 + 14 + 4
)

// port needs Linux's AF_PACKET sockets; elsewhere New fails.
type port struct{ name string }

func openPort(name string) (*port, error) {
	return nil, errors.New("nethub: a hub needs Linux AF_PACKET sockets; run it on Linux")
}

func (p *port) recv(buf []byte) (int, error) { return 0, errClosed }
func (p *port) send(b []byte) error          { return errClosed }
func (p *port) kernelDrops() uint64          { return 0 }
func (p *port) close() error                 { return nil }
