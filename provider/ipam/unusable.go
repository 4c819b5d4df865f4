package ipam

import (
	"encoding/binary"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"go4.org/netipx"
)

// A VIP is answered for by ARP/NDP and routed by BGP like any unicast host address, so an address
// nothing would deliver to a Service (multicast, loopback, link-local, ...) or that routers answer
// themselves (the subnet anycast addresses) must never be handed out. This file is the one place
// that says which addresses those are.

// fixedBlock is one prefix of unusable addresses.
type fixedBlock struct {
	prefix netip.Prefix
	// reason is what Unusable returns; what names the block in error messages.
	reason, what string
}

// fixedBlocks is sorted by address and disjoint. The IPPool CRD's CEL rules reject the same
// blocks; their tests should take the list from UnusableBlocks rather than copy it.
var fixedBlocks = []fixedBlock{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network (0.0.0.0/8)", "this-network (0.0.0.0/8)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback", "loopback (127.0.0.0/8)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local", "link-local (169.254.0.0/16)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast", "multicast (224.0.0.0/4)"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast", "broadcast (255.255.255.255)"},
	{netip.MustParsePrefix("::/128"), "unspecified", "unspecified (::)"},
	{netip.MustParsePrefix("::1/128"), "loopback", "loopback (::1)"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped", "IPv4-mapped (::ffff:0:0/96)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local", "link-local (fe80::/10)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast", "multicast (ff00::/8)"},
}

// The per-/64 holes of IPv6: interface ID 0 is the subnet-router anycast address (RFC 4291
// section 2.6.1), and the 128 interface IDs from rfc2526Low to rfc2526High are the reserved subnet
// anycast addresses of RFC 2526 (57 one bits with the universal/local bit cleared, then a 7-bit
// anycast ID), which Linux also refuses as host addresses. A /64 thus has 2^64 - 129 usable
// addresses. A /bits prefix has 129·2^(64-bits) such holes, far too many to store as ranges, so
// they are handled arithmetically.
const (
	rfc2526Low  = 0xfdff_ffff_ffff_ff80
	rfc2526High = 0xfdff_ffff_ffff_ffff

	reasonSubnetRouter = "subnet-router anycast"
	reasonRFC2526      = "reserved subnet anycast (RFC 2526)"
	whatSubnetRouter   = "subnet-router anycast (interface ID 0 of a /64, RFC 4291)"
	whatRFC2526        = "reserved subnet anycast (interface IDs fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff of a /64, RFC 2526)"
)

// UnusableBlocks returns the fixed prefixes of addresses that can never be a VIP, sorted by
// address: IPv4 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4 and 255.255.255.255/32;
// IPv6 ::/128, ::1/128, ::ffff:0:0/96, fe80::/10 and ff00::/8. It does not include the holes
// every IPv6 /64 has (see Unusable), which are not a finite list of prefixes. The slice is a copy.
func UnusableBlocks() []netip.Prefix {
	out := make([]netip.Prefix, len(fixedBlocks))
	for i, b := range fixedBlocks {
		out[i] = b.prefix
	}
	return out
}

// Unusable returns "" if addr may be a VIP, and otherwise a short reason for a human:
// "unspecified", "this-network (0.0.0.0/8)", "loopback", "link-local", "multicast",
// "broadcast", "IPv4-mapped", "subnet-router anycast" (IPv6 interface ID 0, RFC 4291 2.6.1) or
// "reserved subnet anycast (RFC 2526)" (IPv6 interface IDs fdff:ffff:ffff:ff80 to
// fdff:ffff:ffff:ffff). The unusable addresses are those of UnusableBlocks plus, in every IPv6
// /64, those two holes. A zone is ignored; the zero Addr is "not an IP address".
//
// Pools never contain, and the Allocator never hands out, an unusable address. Assign does not
// check: callers validating a requested address should.
func Unusable(addr netip.Addr) string {
	if !addr.IsValid() {
		return "not an IP address"
	}
	_, _, reason, _ := hole(addr.WithZone(""))
	return reason
}

// hole returns the maximal run of unusable addresses of one kind that contains x, with its
// reasons, or an empty reason if x is usable. x must be valid and have no zone.
func hole(x netip.Addr) (first, last netip.Addr, reason, what string) {
	if !mayBeUnusable(x) {
		return netip.Addr{}, netip.Addr{}, "", ""
	}
	if x.IsUnspecified() {
		// 0.0.0.0 is inside this-network, but "unspecified" is what users know it as.
		if x.Is4() {
			return x, x, "unspecified", "unspecified (0.0.0.0)"
		}
		return x, x, "unspecified", "unspecified (::)"
	}
	for _, b := range fixedBlocks {
		if b.prefix.Contains(x) {
			if x.Is4() && b.prefix.Addr().IsUnspecified() {
				// The unspecified address is reported on its own, above.
				return b.prefix.Addr().Next(), netipx.RangeOfPrefix(b.prefix).To(), b.reason, b.what
			}
			return b.prefix.Addr(), netipx.RangeOfPrefix(b.prefix).To(), b.reason, b.what
		}
	}
	if x.Is6() {
		switch iid := low64(x); {
		case iid == 0:
			return x, x, reasonSubnetRouter, whatSubnetRouter
		case iid >= rfc2526Low && iid <= rfc2526High:
			return withLow64(x, rfc2526Low), withLow64(x, rfc2526High), reasonRFC2526, whatRFC2526
		}
	}
	return netip.Addr{}, netip.Addr{}, "", ""
}

// mayBeUnusable is false for addresses that are certainly usable: allocation asks about every
// address it hands out, and this keeps the common answer to a few byte comparisons.
func mayBeUnusable(x netip.Addr) bool {
	if x.Is4() {
		b := x.As4()
		return b[0] == 0 || b[0] == 127 || (b[0] == 169 && b[1] == 254) || b[0] >= 224
	}
	b := x.As16()
	// ::/8 holds ::, ::1 and ::ffff:0:0/96; fe00::/8 holds fe80::/10; ff00::/8 is multicast.
	if b[0] == 0 || b[0] == 0xfe || b[0] == 0xff {
		return true
	}
	return subnetHole(x)
}

// subnetHole reports whether x is one of the per-/64 IPv6 holes. Pool ranges exclude the fixed
// blocks already, so this is all Pool.Contains has to check on top of them.
func subnetHole(x netip.Addr) bool {
	if !x.Is6() {
		return false
	}
	iid := low64(x)
	return iid == 0 || (iid >= rfc2526Low && iid <= rfc2526High)
}

// nextUsable returns the lowest usable address >= x, or the zero Addr if there is none in x's
// family. Unusable addresses come in a handful of runs per /64, so it loops only a few times.
func nextUsable(x netip.Addr) netip.Addr {
	for x.IsValid() {
		_, last, reason, _ := hole(x)
		if reason == "" {
			return x
		}
		x = last.Next()
	}
	return netip.Addr{}
}

// prevUsable returns the highest usable address <= x, or the zero Addr if there is none.
func prevUsable(x netip.Addr) netip.Addr {
	for x.IsValid() {
		first, _, reason, _ := hole(x)
		if reason == "" {
			return x
		}
		x = first.Prev()
	}
	return netip.Addr{}
}

// noUsable returns "" if the inclusive range from-to holds a usable address, and otherwise why
// not, for a ParseError. A range without usable addresses is a sequence of adjacent holes, and
// holes of different kinds are rarely adjacent, so the walk is short.
func noUsable(from, to netip.Addr) string {
	var whats []string
	for x := from; ; {
		_, last, reason, what := hole(x)
		if reason == "" {
			return ""
		}
		if !slices.Contains(whats, what) {
			whats = append(whats, what)
		}
		if !last.Less(to) {
			break
		}
		x = last.Next()
	}
	if from == to {
		return from.String() + " is " + whats[0] + "; it cannot be a VIP"
	}
	return "every address in it is " + strings.Join(whats, " or ") + "; none can be a VIP"
}

// subnetHoles returns the number of per-/64 holes in the inclusive range from-to (both of one
// family, from <= to).
func subnetHoles(from, to netip.Addr) *big.Int {
	n := new(big.Int)
	if !from.Is6() {
		return n
	}
	a, b := from.As16(), to.As16()
	hiA, hiB := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	loA, loB := low64(from), low64(to)
	if loA == 0 {
		n.SetUint64(1)
	}
	if hiA == hiB {
		return n.Add(n, big.NewInt(int64(overlapRFC2526(loA, loB))))
	}
	// The partial /64s at both ends, then the whole ones between them, each with 1 + 128 holes;
	// the last /64's interface ID 0 is always inside.
	n.Add(n, big.NewInt(int64(overlapRFC2526(loA, ^uint64(0))+1+overlapRFC2526(0, loB))))
	whole := new(big.Int).SetUint64(hiB - hiA - 1)
	return n.Add(n, whole.Mul(whole, big.NewInt(1+rfc2526High-rfc2526Low+1)))
}

// overlapRFC2526 returns how many interface IDs from lo to hi inclusive are RFC 2526 holes.
func overlapRFC2526(lo, hi uint64) uint64 {
	lo, hi = max(lo, rfc2526Low), min(hi, rfc2526High)
	if hi < lo {
		return 0
	}
	return hi - lo + 1
}

// withLow64 returns x (IPv6) with its interface ID replaced by iid.
func withLow64(x netip.Addr, iid uint64) netip.Addr {
	b := x.As16()
	binary.BigEndian.PutUint64(b[8:], iid)
	return netip.AddrFrom16(b)
}
