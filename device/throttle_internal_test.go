package device

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestThrottleKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4000}, "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 4000}, "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 4000}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 4000, Zone: "eth0"}, "fe80::1/128"},
		{&net.UDPAddr{IP: net.IPv4(192, 0, 2, 8), Port: 5683}, "192.0.2.8/32"},
		{&net.UnixAddr{Name: "@sda", Net: "unix"}, "invalid Prefix"},
		{nil, "invalid Prefix"},
		// Another transport's address that prints as host:port.
		{textAddr("192.0.2.9:7"), "192.0.2.9/32"},
		{textAddr("[2001:db8::1]:7"), "2001:db8::/64"},
		{textAddr("serial:/dev/ttyUSB0"), "invalid Prefix"},
	} {
		if got := throttleKey(tc.addr).String(); got != tc.want {
			t.Errorf("throttleKey(%v) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

// textAddr is a net.Addr of some other transport.
type textAddr string

func (a textAddr) Network() string { return "other" }
func (a textAddr) String() string  { return string(a) }

func addrSource(ip string) *source {
	return &source{addr: netip.PrefixFrom(netip.MustParseAddr(ip), 32)}
}

// Failures from one address lock out that address, across its
// connections, and no other.
func TestThrottlePerSource(t *testing.T) {
	now := time.Unix(1000, 0)
	th := newThrottle(Throttle{Failures: 3}, now)
	attacker, again := addrSource("192.0.2.1"), addrSource("192.0.2.1")
	for range 3 {
		th.fail(attacker, now)
	}
	switch {
	case !th.blocked(attacker, now):
		t.Fatal("the failing source is not throttled")
	case !th.blocked(again, now):
		t.Fatal("a new connection from the failing address is not throttled")
	case th.blocked(addrSource("192.0.2.2"), now), th.blocked(nil, now), th.blocked(&source{}, now):
		t.Fatal("another source is throttled")
	case th.blocked(attacker, now.Add(DefaultThrottleLockout)):
		t.Fatal("still throttled after the lockout")
	}
}

// The failure histories are bounded: an address flood makes the agent
// forget the least recently failing addresses.
func TestThrottleSourcesBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	th := newThrottle(Throttle{Failures: 2}, now)
	first := addrSource("10.0.0.1")
	th.fail(first, now)
	th.fail(first, now)
	for i := range 2 * maxThrottleSources {
		th.fail(addrSource(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String()), now)
	}
	if n := len(th.bySource); n != maxThrottleSources || th.recent.Len() != maxThrottleSources {
		t.Fatalf("%d sources remembered (%d in the list), bound %d", n, th.recent.Len(), maxThrottleSources)
	}
	if th.blocked(first, now) {
		t.Fatal("the least recently failing source was not forgotten")
	}
}
