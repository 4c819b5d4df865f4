package ipam

import (
	"net/netip"
	"strconv"
)

// Family is an IP address family.
type Family int

// The address families. Their values are the IP version numbers.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "IPv4" or "IPv6" (or "Family(N)" for an invalid value).
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	default:
		return "Family(" + strconv.Itoa(int(f)) + ")"
	}
}

// valid reports whether f is IPv4 or IPv6.
func (f Family) valid() bool { return f == IPv4 || f == IPv6 }

// FamilyOf returns the family of a: IPv4 for a 4-byte address, IPv6 for a 16-byte one (including
// IPv4-mapped IPv6 addresses). It returns 0 for the zero netip.Addr.
func FamilyOf(a netip.Addr) Family {
	switch {
	case a.Is4():
		return IPv4
	case a.Is6():
		return IPv6
	default:
		return 0
	}
}
