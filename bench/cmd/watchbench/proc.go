package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// rssBytes reads a process's resident set size from /proc/<pid>/status (VmRSS).
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(rest)) // "123456 kB"
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// clockTick is Linux's USER_HZ, the unit of /proc/<pid>/stat's CPU times, which is 100 on every
// architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpuTime is the user plus system CPU time a process has used, from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count fields after its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state); utime is field 14, stime 15
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// machineBusy is the CPU time every core of the machine has spent busy (not idle or waiting for
// I/O), from /proc/stat: with the two processes' own times it says how much other tenants took.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line)) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += v
	}
	return time.Duration(busy) * clockTick, nil
}

// selfCPU is this process's user plus system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapBytes is this process's live heap after a full collection.
func heapBytes() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// cpuMeter measures the CPU the node, this process and the rest of the machine use over a phase.
type cpuMeter struct {
	b                    *bench
	start                time.Time
	server, client, busy time.Duration
	serverOK, busyOK     bool
}

func (b *bench) startCPU() *cpuMeter {
	m := &cpuMeter{b: b}
	m.server, m.serverOK = b.serverCPU()
	busy, err := machineBusy()
	m.busy, m.busyOK = busy, err == nil
	m.client, m.start = selfCPU(), time.Now()
	return m
}

// stop fills r's CPU figures for the phase, in which events were delivered, and returns its
// length.
func (m *cpuMeter) stop(r *result, events int64) time.Duration {
	wall := time.Since(m.start)
	client := selfCPU() - m.client
	r.ClientCPU = client.Seconds() / wall.Seconds()
	if events > 0 {
		r.ClientUSPerEvent = ptr(float64(client.Microseconds()) / float64(events))
	}
	server, ok := m.b.serverCPU()
	if !ok || !m.serverOK {
		return wall
	}
	server -= m.server
	r.ServerCPU = ptr(server.Seconds() / wall.Seconds())
	if events > 0 {
		r.ServerUSPerEvent = ptr(float64(server.Microseconds()) / float64(events))
	}
	if busy, err := machineBusy(); err == nil && m.busyOK {
		r.OtherCPU = ptr(max((busy-m.busy-server-client).Seconds()/wall.Seconds(), 0))
	}
	return wall
}
