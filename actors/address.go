package actors

// This file holds where an actor system listens and the address it is known by.
//
// protoactor addresses an actor by the host:port its system advertises (PID.Address), and a
// system delivers a message locally only when the PID names exactly that address; any other is
// another system's, to be forwarded, and the guard forwards nothing. So an address other systems
// use must be one the system advertises, or one the guard knows for an alias of it. The rules:
//   - the advertised address is --advertise-address (Config.Advertise) when given, else the
//     address the listener got (a name is resolved: --listen localhost:7452 advertises
//     127.0.0.1:7452);
//   - a wildcard listen (0.0.0.0, [::], an empty host) needs an advertised address: "every
//     interface" is no address to reach a system at;
//   - the advertised address must reach this listener: its port is the listen port, and its host
//     is an address of this machine (or a name resolving only to such addresses) that the
//     listener covers;
//   - the guard delivers, as local, messages to the aliases: the listen address as given and as
//     bound, localhost when the listener covers loopback, and with a wildcard listen every
//     address of this machine's interfaces (taken at start) and its host name, all at the port.

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// resolveTimeout bounds the name lookup of an advertised host: a name that does not resolve in
// this time would not resolve for the peers that dial it either.
const resolveTimeout = 5 * time.Second

// addresses is where a system listens and what it answers to.
type addresses struct {
	host       string // remote's listen host: an IP, or a wildcard as given; bracketed for IPv6
	port       int    // the port, picked when the listen port was 0
	advertised string // host:port the system's PIDs name
	// aliases are the other host:port forms that name this system: messages to them are
	// delivered as to advertised.
	aliases map[string]bool
}

// planAddresses checks listen and advertise and works out a system's addresses. It binds
// listen briefly (protoactor's remote panics when it cannot listen, and a port of 0 is picked
// here), so a port in use fails here, with an error to show.
func planAddresses(listen, advertise string) (addresses, error) {
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return addresses{}, fmt.Errorf("actors: listen address %q: %w (give host:port, e.g. 127.0.0.1:7450)", listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return addresses{}, fmt.Errorf("actors: listen address %q: the port is not a number from 0 to 65535", listen)
	}
	wildcard := isWildcard(host)
	local, err := localIPs()
	if err != nil {
		return addresses{}, fmt.Errorf("actors: list this machine's addresses: %w", err)
	}
	if wildcard && advertise == "" {
		return addresses{}, fmt.Errorf("actors: the listen address %s is every interface of this machine, which is no address to reach the node at: give the one clients and peers use with --advertise-address, such as %s",
			listen, net.JoinHostPort(exampleIP(local), portText))
	}
	var ah string
	var aport int
	if advertise != "" {
		var ap string
		if ah, ap, err = net.SplitHostPort(advertise); err != nil || ah == "" {
			return addresses{}, fmt.Errorf("actors: --advertise-address %q is not host:port, such as %s", advertise, net.JoinHostPort(exampleIP(local), portText))
		}
		if aport, err = strconv.Atoi(ap); err != nil || aport != port {
			return addresses{}, fmt.Errorf("actors: --advertise-address %s has port %s, but the node listens on port %d: other systems would connect to a port it does not listen on; give its listen port (a port forwarded to it, as through NAT, is not supported: the node could not check that it reaches it)",
				advertise, ap, port)
		}
	}

	l, err := net.Listen("tcp", listen)
	if err != nil {
		return addresses{}, fmt.Errorf("actors: cannot listen on %s: %w (is another kstore running? pick another --listen)", listen, err)
	}
	bound := l.Addr().(*net.TCPAddr)
	l.Close()
	port = bound.Port
	at := addresses{port: port, aliases: map[string]bool{}}
	p := strconv.Itoa(port)
	if wildcard {
		at.host = host
	} else {
		at.host = bound.IP.String()
	}
	if strings.Contains(at.host, ":") {
		at.host = "[" + at.host + "]" // remote joins host and port with a bare colon
	}

	at.advertised = net.JoinHostPort(bound.IP.String(), p)
	if advertise != "" {
		ips, err := lookupHost(ah)
		if err != nil {
			return addresses{}, fmt.Errorf("actors: --advertise-address %s: %w: give an address of this machine, or a name that resolves to one", advertise, err)
		}
		covered := false
		for _, ip := range ips {
			if ip.IsUnspecified() {
				return addresses{}, fmt.Errorf("actors: --advertise-address %s is every interface, which is no address to reach the node at: give one of this machine's addresses, such as %s",
					advertise, net.JoinHostPort(exampleIP(local), p))
			}
			if !slices.ContainsFunc(local, ip.Equal) {
				return addresses{}, fmt.Errorf("actors: --advertise-address %s names %s, which is not an address of this machine (%s): clients and peers would send to another machine; give one of this machine's addresses, or a name that resolves only to them",
					advertise, ip, formatIPs(local))
			}
			covered = covered || wildcard || ip.Equal(bound.IP)
			at.aliases[net.JoinHostPort(ip.String(), p)] = true
		}
		if !covered {
			return addresses{}, fmt.Errorf("actors: --advertise-address %s does not reach the listener: the node listens on %s only; listen on %s, or on every interface (0.0.0.0:%d)",
				advertise, net.JoinHostPort(bound.IP.String(), p), net.JoinHostPort(ah, p), port)
		}
		at.advertised = net.JoinHostPort(ah, p)
	}

	at.aliases[net.JoinHostPort(host, p)] = true
	at.aliases[net.JoinHostPort(bound.IP.String(), p)] = true
	if wildcard || bound.IP.IsLoopback() {
		at.aliases[net.JoinHostPort("localhost", p)] = true
	}
	if wildcard {
		for _, ip := range local {
			at.aliases[net.JoinHostPort(ip.String(), p)] = true
		}
		if name, err := os.Hostname(); err == nil && name != "" {
			at.aliases[net.JoinHostPort(name, p)] = true
		}
	}
	delete(at.aliases, at.advertised)
	return at, nil
}

// isWildcard reports whether a listen host means every interface.
func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// lookupHost returns host's IPs: host itself when it is one, else what it resolves to.
func lookupHost(host string) ([]net.IP, error) { return lookupHostCtx(context.Background(), host) }

// lookupHostCtx is lookupHost, ended early by ctx.
func lookupHostCtx(ctx context.Context, host string) ([]net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("%s does not resolve (%v)", host, err)
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips, nil
}

// localIPs are the addresses of this machine's interfaces.
func localIPs() ([]net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return ips, nil
}

// exampleIP is an address of this machine to show in a message: its first non-loopback IPv4
// one, else 127.0.0.1.
func exampleIP(local []net.IP) string {
	for _, ip := range local {
		if ip.To4() != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
			return ip.String()
		}
	}
	return "127.0.0.1"
}

func formatIPs(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}
