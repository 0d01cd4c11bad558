// Package nethub is a userspace Ethernet switch that delays and drops frames, for fault tests
// that run each kstore node in its own Linux network namespace.
//
// Such tests want "200 ms of delay and 10% loss on every link". The usual tool, tc netem,
// needs the kernel's sch_netem, which the test machines' kernels lack (tc answers "Specified
// qdisc kind is unknown"), and there is no NFQUEUE either. So the fault sits in a switch of its
// own: the hosts' namespaces are cabled by veth pairs to a hub namespace, and a Hub there
// forwards frames between its ends of the pairs (its ports), holding each frame Delay and
// dropping it with probability Loss. The faults are at the network level, outside kstore:
// kstore sees what it would see on a bad network (ARP, TCP retransmissions and all).
//
//	hub, err := nethub.New(nethub.Config{Ports: []string{"a", "b"}, Delay: 200 * time.Millisecond, Loss: 0.1})
//	... // every socket is bound: the hub is ready
//	done := make(chan error, 1)
//	go func() { done <- hub.Run(ctx) }() // forwards until ctx ends, then closes its sockets
//	hub.SetLoss(0)                       // Loss and Delay may be changed while it runs
//	cancel()
//	err = <-done
//
// Main runs a Hub as a program configured by environment variables and commands on stdin, so
// that a test binary can run it in the hub namespace by re-executing itself under
// `ip netns exec` (see Main).
//
// # Forwarding
//
// The Hub is a learning switch: it remembers the port each source MAC address was last seen
// on, sends a unicast frame to the port its destination was learned on, and floods broadcast,
// multicast and unknown destinations to every port but the one the frame came in on. With N
// hosts, a frame between two of them then crosses only their two links instead of all N, and
// a host's queue is not filled with frames its kernel would throw away. The table holds at
// most 1024 addresses and never forgets one, but relearns it on its next frame: hosts do
// not move between ports while a test runs.
//
// Every copy of a frame that is to leave a port is dropped with probability Loss, decided
// independently per copy when the hub reads the frame, or else queued on that port and sent
// once Delay has passed since it was read. A frame between two hosts crosses the hub once, so
// Delay is the one-way delay and a round trip takes 2×Delay. Frames keep their order from
// one port to another. A change of Delay applies to frames read after it; as the queue
// is first in, first out, a frame never leaves before the one ahead of it, so lowering the
// delay lets the frames queued before the change through first.
//
// Loss is per frame as the kernel hands frames to the hub. Veth devices pass TCP data as
// segmentation-offload (GSO) frames of up to 64 KiB, cut into MTU-sized packets only where
// they leave the machine, so one lost frame can be up to 45 lost segments of a bulk transfer.
// netem drops these same unsegmented frames, so the loss is the one netem would give; a test
// that needs per-packet loss must turn segmentation offload off on its hosts' interfaces
// (ethtool -K eth0 tso off gso off).
//
// # Bounds
//
// Each port's queue holds at most 4096 frames and 8 MiB; a frame
// that finds it full is dropped and counted in Stats.Overflowed, the way a switch's buffer
// overflows. At a 200 ms delay the bytes bound caps a port at 40 MiB/s, far above what a test
// cluster sends. Nothing else waits: a port whose peer is slow fills its own queue only.
//
// # Kernel interface
//
// Each port is an AF_PACKET socket bound to the interface with ETH_P_ALL. It puts the
// interface in promiscuous mode while it is open (a membership the kernel drops when the
// socket closes), so that frames addressed to other hosts reach the hub on any kind of
// device; veths hand them over without it. Frames the hub sends itself are not read back
// (PACKET_IGNORE_OUTGOING, and frames marked PACKET_OUTGOING are skipped).
//
// The sockets use PACKET_VNET_HDR: each frame is read with the virtio-net header that
// describes its offloads, and sent with it. Without it a GSO frame, longer than the MTU, is
// refused by the sending port (EMSGSIZE), and a frame whose checksum the sender left to the
// hardware (CHECKSUM_PARTIAL, what veth carries) arrives with a checksum the receiver
// rejects; with it the kernel rebuilds the frame as it was, offloads included, on the way out.
// Frames longer than 65553 bytes (BIG TCP) are counted in Stats.Oversize, and frames with an offload the
// header cannot describe in Stats.Unreadable.
//
// # Ownership
//
// A Hub owns its sockets from New until Run returns (or until Close, for a Hub that is never
// run), and one goroutine per port for receiving and one per port for sending, all ended and
// waited for before Run returns. SetDelay, SetLoss and Stats may be called from any goroutine.
package nethub
