package nethub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// errClosed is what a port's recv and send return once the port is closed.
	errClosed = errors.New("nethub: port closed")
	// errUnreadable is what recv returns for a frame the kernel could not hand over with a
	// virtio-net header (an offload the header cannot describe); the kernel discarded it.
	errUnreadable = errors.New("nethub: frame with offloads the virtio-net header cannot describe")
)

// Config is what a Hub forwards between and how badly.
type Config struct {
	// Ports names the hub's ports: interfaces in the current network namespace, typically
	// the hub's ends of veth pairs whose other ends are in the hosts' namespaces. At least
	// two, each named once. They need not be up: a port that is down passes nothing until it
	// is brought up, which a test may do to cut a host off.
	Ports []string
	// Delay is added to every frame forwarded, at least 0.
	Delay time.Duration
	// Loss is the probability of dropping each copy of a frame, in [0,1]; 1 drops everything.
	Loss float64
	// Seed seeds the loss decisions. Each port draws from its own generator, seeded with
	// Seed and the port's position in Ports.
	Seed int64
}

func (c Config) validate() error {
	if len(c.Ports) < 2 {
		return fmt.Errorf("nethub: %d ports %q; give at least two interfaces to forward between", len(c.Ports), c.Ports)
	}
	seen := make(map[string]bool, len(c.Ports))
	for _, name := range c.Ports {
		if name == "" {
			return fmt.Errorf("nethub: empty port name in %q; give interface names", c.Ports)
		}
		if seen[name] {
			return fmt.Errorf("nethub: port %q given twice in %q; give each interface once", name, c.Ports)
		}
		seen[name] = true
	}
	if err := validDelay(c.Delay); err != nil {
		return err
	}
	return validLoss(c.Loss)
}

func validDelay(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("nethub: delay %v is negative; give 0 or more", d)
	}
	return nil
}

func validLoss(p float64) error {
	if !(p >= 0 && p <= 1) { // also catches NaN
		return fmt.Errorf("nethub: loss %v is not a probability; give a number from 0 to 1", p)
	}
	return nil
}

// Stats counts what a Hub did with the frames it read. A flooded frame makes several copies,
// each forwarded, lost or overflowed on its own.
type Stats struct {
	Received      uint64 // frames read from the ports, not counting the hub's own
	Forwarded     uint64 // copies handed to the kernel to send out of a port
	Lost          uint64 // copies dropped with probability Loss
	Overflowed    uint64 // copies dropped because their port's queue was full
	SendFailed    uint64 // copies the kernel refused to send (the port is down, ...)
	Oversize      uint64 // frames longer than 65553 bytes (BIG TCP), dropped
	Unreadable    uint64 // frames too short for an Ethernet header, or with offloads the virtio-net header cannot describe
	KernelDropped uint64 // frames the kernel dropped because a socket's receive buffer was full
	Largest       uint64 // bytes of the longest Ethernet frame read: GSO frames exceed the MTU
}

// String formats s as the fields of Main's stats reply: "received=N forwarded=N ...".
func (s Stats) String() string {
	return fmt.Sprintf("received=%d forwarded=%d lost=%d overflowed=%d sendfailed=%d oversize=%d unreadable=%d kerneldropped=%d largest=%d",
		s.Received, s.Forwarded, s.Lost, s.Overflowed, s.SendFailed, s.Oversize, s.Unreadable, s.KernelDropped, s.Largest)
}

// Hub forwards frames between its ports; see the package doc.
type Hub struct {
	ports []*port // nil in tests that drive forward and the lines without sockets
	lines []*line // lines[i] is the queue of ports[i]
	table *table
	seed  uint64

	delay atomic.Int64  // a time.Duration, at least 0
	loss  atomic.Uint64 // the bits of a float64 in [0,1]

	// The counts of Stats, one field each.
	received, forwarded, lost, overflowed atomic.Uint64
	sendFailed, oversize, unreadable      atomic.Uint64
	kernelDropped, largest                atomic.Uint64

	mu      sync.Mutex
	started bool // Run was called: Run owns the ports and closes them
	closed  bool // Close closed the ports
}

// New opens and binds a socket on each of cfg.Ports. Once it returns, every frame arriving on
// a port is kept (in the socket's buffer) until Run forwards it. Run the Hub, or Close it.
func New(cfg Config) (*Hub, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	h := newHub(cfg, len(cfg.Ports))
	for _, name := range cfg.Ports {
		p, err := openPort(name)
		if err != nil {
			for _, p := range h.ports {
				p.close()
			}
			return nil, err
		}
		h.ports = append(h.ports, p)
	}
	return h, nil
}

// newHub returns a Hub of n ports without sockets.
func newHub(cfg Config, n int) *Hub {
	h := &Hub{table: newTable(), seed: uint64(cfg.Seed)}
	for range n {
		h.lines = append(h.lines, newLine())
	}
	h.delay.Store(int64(cfg.Delay))
	h.loss.Store(math.Float64bits(cfg.Loss))
	return h
}

// Run creates a Hub from cfg and runs it until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	h, err := New(cfg)
	if err != nil {
		return err
	}
	return h.Run(ctx)
}

// Run forwards frames between the ports until ctx ends, then closes the sockets and returns
// nil once every goroutine it started has ended; the frames still queued are dropped. It
// returns an error, also after stopping and closing everything, if a socket fails. Run may be
// called once.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.started || h.closed {
		h.mu.Unlock()
		return errors.New("nethub: Run called on a Hub that was run or closed; create another with New")
	}
	h.started = true
	h.mu.Unlock()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i, p := range h.ports {
		wg.Go(func() {
			if err := h.receive(i, p); !errors.Is(err, errClosed) {
				cancel(fmt.Errorf("nethub: port %q: %w", p.name, err))
			}
		})
		wg.Go(func() { h.lines[i].run(ctx, func(b []byte) error { return h.send(p, b) }) })
	}
	<-ctx.Done()
	h.addKernelDrops()
	for _, p := range h.ports {
		p.close() // ends the receives, and a send waiting for room in its socket
	}
	wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// Close closes the sockets of a Hub that will not be run. Once Run was called, Run closes them
// and Close does nothing.
func (h *Hub) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started || h.closed {
		return nil
	}
	h.closed = true
	var errs []error
	for _, p := range h.ports {
		errs = append(errs, p.close())
	}
	return errors.Join(errs...)
}

// SetDelay sets the delay of the frames read from now on. Delay and loss are decided when the
// hub reads a frame, not when the frame reached the socket: a frame that arrived before the
// call and still waits in the socket's receive buffer (Stats.Received does not count it
// yet) gets the new delay and loss.
func (h *Hub) SetDelay(d time.Duration) error {
	if err := validDelay(d); err != nil {
		return err
	}
	h.delay.Store(int64(d))
	return nil
}

// SetLoss sets the probability of dropping the frames read from now on (see SetDelay).
func (h *Hub) SetLoss(p float64) error {
	if err := validLoss(p); err != nil {
		return err
	}
	h.loss.Store(math.Float64bits(p))
	return nil
}

// Delay returns the delay set by Config or SetDelay.
func (h *Hub) Delay() time.Duration { return time.Duration(h.delay.Load()) }

// Loss returns the loss set by Config or SetLoss.
func (h *Hub) Loss() float64 { return math.Float64frombits(h.loss.Load()) }

// Stats returns the counts so far.
func (h *Hub) Stats() Stats {
	h.addKernelDrops()
	return Stats{
		Received:      h.received.Load(),
		Forwarded:     h.forwarded.Load(),
		Lost:          h.lost.Load(),
		Overflowed:    h.overflowed.Load(),
		SendFailed:    h.sendFailed.Load(),
		Oversize:      h.oversize.Load(),
		Unreadable:    h.unreadable.Load(),
		KernelDropped: h.kernelDropped.Load(),
		Largest:       h.largest.Load(),
	}
}

func (h *Hub) addKernelDrops() {
	for _, p := range h.ports {
		h.kernelDropped.Add(p.kernelDrops())
	}
}

// receive reads the frames of port in and forwards them until the port is closed (errClosed)
// or fails.
func (h *Hub) receive(in int, p *port) error {
	rng := rand.New(rand.NewPCG(h.seed, uint64(in)))
	buf := make([]byte, vnetHdrLen+maxFrame)
	for {
		n, err := p.recv(buf)
		switch {
		case errors.Is(err, errUnreadable):
			h.unreadable.Add(1)
			continue
		case err != nil:
			return err
		case n > len(buf):
			h.oversize.Add(1)
			continue
		case n < vnetHdrLen+14:
			h.unreadable.Add(1)
			continue
		}
		h.received.Add(1)
		size := uint64(n - vnetHdrLen)
		for old := h.largest.Load(); size > old && !h.largest.CompareAndSwap(old, size); old = h.largest.Load() {
		}
		data := make([]byte, n) // shared by the frame's copies until the last is sent
		copy(data, buf)
		h.forward(in, data, time.Now(), rng)
	}
}

// forward queues the copies of a frame read from port in at now: data is its virtio-net header
// and Ethernet frame.
func (h *Hub) forward(in int, data []byte, now time.Time, rng *rand.Rand) {
	eth := data[vnetHdrLen:]
	dst, src := mac(eth[0:6]), mac(eth[6:12])
	f := frame{data: data, due: now.Add(time.Duration(h.delay.Load()))}
	loss := math.Float64frombits(h.loss.Load())
	if out, ok := h.table.route(in, src, dst); ok {
		if out != in { // else the destination is on the port the frame came from
			h.offer(out, f, loss, rng)
		}
		return
	}
	for out := range h.lines {
		if out != in {
			h.offer(out, f, loss, rng)
		}
	}
}

// offer drops f with probability loss, or else queues it on port out if there is room.
func (h *Hub) offer(out int, f frame, loss float64, rng *rand.Rand) {
	if loss > 0 && rng.Float64() < loss {
		h.lost.Add(1)
		return
	}
	if !h.lines[out].push(f) {
		h.overflowed.Add(1)
	}
}

func (h *Hub) send(p *port, b []byte) error {
	err := p.send(b)
	switch {
	case err == nil:
		h.forwarded.Add(1)
	case !errors.Is(err, errClosed):
		h.sendFailed.Add(1)
	}
	return err
}
