package device

import (
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/securedeviceaccess/sda/transport"
)

// DefaultNonceQuota is the number of nonces one connection may hold when
// Config.NonceQuota is zero.
const DefaultNonceQuota = 4

// source is where requests come from, as far as the agent can tell: one
// connection served by [Agent.Serve] or [Agent.ServeListener]. A nil
// *source is the shared source of [Agent.Process] and [Agent.Handle],
// which cannot tell senders apart.
//
// A connection's nonces count against its quota and are released when it
// closes. Its failures count against the throttle of its address, which
// outlives the connection, so reconnecting does not reset it; a connection
// without an IP address (a serial line, a pipe) shares the device-wide
// throttle with the shared source.
type source struct {
	// held counts the unexpired nonces issued to the source. It changes
	// under the nonce store's mutex and is read without it (by eviction,
	// which prefers connections holding none).
	held atomic.Int32
	// quota bounds held; zero means no quota but the store's size.
	quota int
	// addr is the key of the source's throttle: the peer's IPv4 address or
	// IPv6 /64 prefix, or the zero Prefix for the device-wide throttle.
	addr netip.Prefix
	// remote is the peer's address as the transport tells it, or nil.
	remote net.Addr
}

// newSource returns the source of a connection.
func newSource(conn transport.Conn, quota int) *source {
	s := &source{quota: quota}
	if ra, ok := conn.(transport.RemoteAddresser); ok {
		s.remote = ra.RemoteAddr()
		s.addr = throttleKey(s.remote)
	}
	return s
}

// throttleKey returns the key under which failures from a are counted: an
// IPv4 address, or the /64 prefix of a global IPv6 address (the block a
// single site is commonly given, so that its many addresses count as one;
// a link-local address counts alone, since every host on the link shares
// its /64). It returns the zero Prefix when a is not an IP address.
func throttleKey(a net.Addr) netip.Prefix {
	var ip netip.Addr
	switch a := a.(type) {
	case nil:
		return netip.Prefix{}
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	case *net.UDPAddr:
		ip = a.AddrPort().Addr()
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Prefix{}
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	bits := 64
	switch {
	case ip.Is4():
		bits = 32
	case ip.IsLinkLocalUnicast():
		bits = 128
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
