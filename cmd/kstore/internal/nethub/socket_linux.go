package nethub

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	// vnetHdrLen is the size of struct virtio_net_hdr, which PACKET_VNET_HDR puts before
	// every frame read and expects before every frame sent. The hub passes it through as is.
	vnetHdrLen = 10
	// maxFrame is the longest frame a port reads: an IP packet is at most 65535 bytes (its
	// length field), a GSO frame included, plus the Ethernet header and one VLAN tag. Longer
	// frames (BIG TCP, with gso_max_size raised past 64 KiB) are counted in Stats.Oversize.
	maxFrame = 65535 + 14 + 4
	// rcvBuf is the receive buffer asked of each socket, which the kernel doubles for its
	// bookkeeping: dozens of the largest frames, so that frames arriving while the receive
	// goroutine waits for a CPU are kept, not dropped (Stats.KernelDropped). The default
	// (net.core.rmem_default, about 200 KiB) holds two or three.
	rcvBuf = 4 << 20
)

// port is the AF_PACKET socket of one interface. recv is called by one goroutine, send by
// another; the poller lets them share the descriptor and close unblocks both.
type port struct {
	name string
	file *os.File // non-blocking descriptor, in the runtime poller
	conn syscall.RawConn
}

// openPort opens a socket on the interface called name in the current network namespace,
// puts the interface in promiscuous mode while the socket is open, and binds it.
func openPort(name string) (*port, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("nethub: port %q: %w; give the name of an interface in the hub's network namespace", name, err)
	}
	// Protocol 0: the socket receives nothing until bind gives it the interface and
	// ETH_P_ALL, so it never sees other interfaces' frames.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("nethub: port %q: AF_PACKET socket: %w (it needs CAP_NET_RAW)", name, err)
	}
	if err := setup(fd, ifi.Index); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nethub: port %q: %w", name, err)
	}
	file := os.NewFile(uintptr(fd), "packet:"+name)
	conn, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("nethub: port %q: %w", name, err)
	}
	return &port{name: name, file: file, conn: conn}, nil
}

func setup(fd, ifindex int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fmt.Errorf("PACKET_VNET_HDR: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fmt.Errorf("PACKET_MR_PROMISC: %w", err)
	}
	// SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN; SO_RCVBUF is capped.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf); err != nil {
			return fmt.Errorf("SO_RCVBUF: %w", err)
		}
	}
	sa := unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, &sa); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return nil
}

// recv reads the next frame into buf, which must hold vnetHdrLen+maxFrame bytes, and
// returns its length with the header; a length above len(buf) means the frame was longer
// and was cut. Frames the hub sent itself are skipped. It returns errClosed once the port is
// closed, and errUnreadable for a frame whose offloads the virtio-net header cannot describe
// (the kernel has discarded it).
func (p *port) recv(buf []byte) (int, error) {
	for {
		var (
			n    int
			from unix.Sockaddr
			err  error
		)
		rerr := p.conn.Read(func(fd uintptr) bool {
			n, from, err = unix.Recvfrom(int(fd), buf, unix.MSG_TRUNC)
			return err != unix.EAGAIN
		})
		if rerr != nil {
			return 0, closedOr(rerr)
		}
		switch err {
		case nil:
		case unix.EINVAL:
			return 0, errUnreadable
		case unix.ENETDOWN:
			continue // the kernel reports once that the interface went down
		default:
			return 0, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // PACKET_IGNORE_OUTGOING should have kept it out
		}
		return n, nil
	}
}

// send writes one frame, with its virtio-net header, out of the port. It returns errClosed
// once the port is closed.
func (p *port) send(b []byte) error {
	var err error
	werr := p.conn.Write(func(fd uintptr) bool {
		_, err = unix.Write(int(fd), b)
		return err != unix.EAGAIN
	})
	if werr != nil {
		return closedOr(werr)
	}
	return err
}

// kernelDrops returns the frames the kernel dropped for want of room in the socket's receive
// buffer since the last call (reading PACKET_STATISTICS resets it).
func (p *port) kernelDrops() uint64 {
	var drops uint64
	_ = p.conn.Control(func(fd uintptr) {
		if st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			drops = uint64(st.Drops)
		}
	})
	return drops
}

func (p *port) close() error {
	return p.file.Close()
}

func closedOr(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return errClosed
	}
	return err
}

func htons(v uint16) uint16 {
	return v<<8 | v>>8
}
