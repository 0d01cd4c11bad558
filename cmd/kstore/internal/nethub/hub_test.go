package nethub

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	broadcast = mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	multicast = mac{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}
	hostA     = mac{0x02, 0, 0, 0, 0, 0x0a}
	hostB     = mac{0x02, 0, 0, 0, 0, 0x0b}
	hostC     = mac{0x02, 0, 0, 0, 0, 0x0c}
)

// ethFrame returns a frame as a port reads it: a zero virtio-net header, then an Ethernet
// frame from src to dst whose last byte is id.
func ethFrame(dst, src mac, id byte) []byte {
	b := make([]byte, vnetHdrLen)
	b = append(b, dst[:]...)
	b = append(b, src[:]...)
	return append(b, 0x08, 0x00, id)
}

// queued pops the frames queued on each of h's ports and returns their ids.
func queued(h *Hub) [][]byte {
	ids := make([][]byte, len(h.lines))
	for i, l := range h.lines {
		for {
			f, ok := l.peek()
			if !ok {
				break
			}
			l.pop()
			ids[i] = append(ids[i], f.data[len(f.data)-1])
		}
	}
	return ids
}

func TestForward(t *testing.T) {
	type in struct {
		port     int
		dst, src mac
		id       byte
	}
	tests := []struct {
		name string
		give []in
		want [][]byte // ids of the frames queued on ports 0, 1, 2
	}{
		{
			name: "broadcast floods every other port",
			give: []in{{0, broadcast, hostA, 1}},
			want: [][]byte{nil, {1}, {1}},
		},
		{
			name: "multicast floods every other port",
			give: []in{{1, multicast, hostB, 1}},
			want: [][]byte{{1}, nil, {1}},
		},
		{
			name: "unknown unicast floods every other port",
			give: []in{{0, hostB, hostA, 1}},
			want: [][]byte{nil, {1}, {1}},
		},
		{
			name: "unicast to a learned address goes to its port only",
			give: []in{{1, broadcast, hostB, 1}, {0, hostB, hostA, 2}, {1, hostA, hostB, 3}},
			want: [][]byte{{1, 3}, {2}, {1}},
		},
		{
			name: "unicast to an address on the port it came from goes nowhere",
			give: []in{{1, broadcast, hostB, 1}, {1, hostB, hostC, 2}},
			want: [][]byte{{1}, nil, {1}},
		},
		{
			name: "an address that moves is relearned",
			give: []in{{1, broadcast, hostB, 1}, {2, broadcast, hostB, 2}, {0, hostB, hostA, 3}},
			want: [][]byte{{1, 2}, {2}, {1, 3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHub(Config{}, 3)
			for _, f := range tt.give {
				h.forward(f.port, ethFrame(f.dst, f.src, f.id), time.Now(), nil)
			}
			got := queued(h)
			for port := range tt.want {
				if !slices.Equal(got[port], tt.want[port]) {
					t.Errorf("port %d queued frames %v; want %v", port, got[port], tt.want[port])
				}
			}
		})
	}
}

func TestTableBound(t *testing.T) {
	tb := newTable()
	tb.route(0, multicast, broadcast)
	if len(tb.ports) != 0 {
		t.Errorf("table learned a group source address: %v; want none learned", tb.ports)
	}
	addr := func(i int) mac { return mac{0x02, 0, 0, 0, byte(i >> 8), byte(i)} }
	for i := range maxMACs + 1 {
		tb.route(0, addr(i), broadcast)
	}
	if _, ok := tb.route(1, hostA, addr(maxMACs)); ok {
		t.Errorf("address %d learned; want the table to stop at maxMACs=%d", maxMACs+1, maxMACs)
	}
	tb.route(1, addr(0), broadcast) // a known address moves to port 1
	if out, ok := tb.route(2, hostA, addr(0)); !ok || out != 1 {
		t.Errorf("route to a moved address in a full table: port %d, %v; want port 1, true", out, ok)
	}
}

func TestLossAndOverflow(t *testing.T) {
	tests := []struct {
		name                     string
		loss                     float64
		give                     int // broadcasts from port 0, each copied to ports 1 and 2
		wantLostMin, wantLostMax uint64
		wantOverflowed           uint64
	}{
		{name: "loss 0 drops nothing", loss: 0, give: 1000},
		{name: "loss 1 drops everything", loss: 1, give: 1000, wantLostMin: 2000, wantLostMax: 2000},
		{name: "loss 0.5 drops about half the copies", loss: 0.5, give: 1000, wantLostMin: 900, wantLostMax: 1100},
		{name: "a full queue drops and counts", loss: 0, give: maxQueueFrames + 10, wantOverflowed: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHub(Config{Loss: tt.loss}, 3)
			rng := rand.New(rand.NewPCG(1, 0))
			for i := range tt.give {
				h.forward(0, ethFrame(broadcast, hostA, byte(i)), time.Now(), rng)
			}
			st := h.Stats()
			if st.Lost < tt.wantLostMin || st.Lost > tt.wantLostMax {
				t.Errorf("lost %d copies of %d; want %d to %d", st.Lost, 2*tt.give, tt.wantLostMin, tt.wantLostMax)
			}
			if st.Overflowed != tt.wantOverflowed {
				t.Errorf("overflowed %d copies; want %d", st.Overflowed, tt.wantOverflowed)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		give    Config
		wantErr string // "" for valid
	}{
		{"two ports", Config{Ports: []string{"a", "b"}}, ""},
		{"delay and loss", Config{Ports: []string{"a", "b"}, Delay: time.Second, Loss: 1}, ""},
		{"one port", Config{Ports: []string{"a"}}, "at least two"},
		{"same port twice", Config{Ports: []string{"a", "a"}}, "given twice"},
		{"empty name", Config{Ports: []string{"a", ""}}, "empty port name"},
		{"negative delay", Config{Ports: []string{"a", "b"}, Delay: -1}, "negative"},
		{"loss above 1", Config{Ports: []string{"a", "b"}, Loss: 1.5}, "not a probability"},
		{"negative loss", Config{Ports: []string{"a", "b"}, Loss: -0.1}, "not a probability"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("validate() = %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		give    map[string]string
		want    Config
		wantErr string
	}{
		{
			name: "all set",
			give: map[string]string{EnvPorts: "a, b,c", EnvDelay: "200ms", EnvLoss: "0.1", EnvSeed: "7"},
			want: Config{Ports: []string{"a", "b", "c"}, Delay: 200 * time.Millisecond, Loss: 0.1, Seed: 7},
		},
		{name: "defaults", give: map[string]string{EnvPorts: "a,b"}, want: Config{Ports: []string{"a", "b"}}},
		{name: "no ports", give: map[string]string{}, wantErr: "at least two"},
		{name: "bad delay", give: map[string]string{EnvPorts: "a,b", EnvDelay: "200"}, wantErr: "Go duration"},
		{name: "bad loss", give: map[string]string{EnvPorts: "a,b", EnvLoss: "10%"}, wantErr: "probability"},
		{name: "loss out of range", give: map[string]string{EnvPorts: "a,b", EnvLoss: "2"}, wantErr: "not a probability"},
		{name: "bad seed", give: map[string]string{EnvPorts: "a,b", EnvSeed: "x"}, wantErr: "integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configFromEnv(func(k string) string { return tt.give[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("configFromEnv() = %+v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Ports, tt.want.Ports) || got.Delay != tt.want.Delay || got.Loss != tt.want.Loss || got.Seed != tt.want.Seed {
				t.Errorf("configFromEnv() = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		give      string
		want      string // the answer's beginning
		wantDelay time.Duration
		wantLoss  float64
	}{
		{give: "delay 200ms", want: "nethub delay 200ms", wantDelay: 200 * time.Millisecond},
		{give: "  delay   1s ", want: "nethub delay 1s", wantDelay: time.Second},
		{give: "delay 0", want: "nethub delay 0s"},
		{give: "delay -1s", want: "nethub error: delay -1s is negative"},
		{give: "delay soon", want: "nethub error: time: invalid duration"},
		{give: "loss 0.1", want: "nethub loss 0.1", wantLoss: 0.1},
		{give: "loss 1", want: "nethub loss 1", wantLoss: 1},
		{give: "loss 2", want: "nethub error: loss 2 is not a probability"},
		{give: "loss NaN", want: "nethub error: loss NaN is not a probability"},
		{give: "stats", want: "nethub stats received=0 forwarded=0 lost=0"},
		{give: "stats now", want: "nethub error: stats takes no argument"},
		{give: "jump 3", want: `nethub error: unknown command "jump 3"`},
		{give: "", want: `nethub error: unknown command ""`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			h := newHub(Config{}, 2)
			if got := h.command(tt.give); !strings.HasPrefix(got, tt.want) {
				t.Errorf("command(%q) = %q; want it to start with %q", tt.give, got, tt.want)
			}
			if h.Delay() != tt.wantDelay || h.Loss() != tt.wantLoss {
				t.Errorf("after %q: delay %v, loss %v; want %v, %v", tt.give, h.Delay(), h.Loss(), tt.wantDelay, tt.wantLoss)
			}
		})
	}
}
