package ipam

import (
	"fmt"
	"net/netip"
	"strings"

	"go4.org/netipx"
)

// ParseError reports an entry of spec.addresses that could not be parsed.
type ParseError struct {
	// Input is the entry exactly as given.
	Input string
	// Reason says, for a human, what is wrong with it.
	Reason string
}

// Error returns `invalid address "INPUT": REASON`.
func (e *ParseError) Error() string {
	return fmt.Sprintf("invalid address %q: %s", e.Input, e.Reason)
}

// ParseAddresses parses one entry of an IPPool's spec.addresses and returns the inclusive range of
// addresses it denotes. The range may include unusable addresses (see Unusable), such as
// 2001:db8:: in "2001:db8::/120" or all of "224.0.0.0/24": NewPool leaves them out, and rejects
// an entry without a single usable address.
//
// Accepted forms, with optional surrounding white space:
//
//   - a single address: "192.168.1.5", "2001:db8::5";
//   - a CIDR: "192.168.1.0/24", "2001:db8:1::/120". For IPv4 prefixes shorter than /31 the
//     network and broadcast addresses are excluded (192.168.1.0/24 yields .1-.254); /31 and /32
//     keep all their addresses, as do all IPv6 prefixes;
//   - an inclusive range "start-end", with optional spaces around the dash:
//     "192.168.1.240-192.168.1.250". Ranges keep all their addresses.
//
// It fails with a *ParseError for an empty entry, anything that is not one of the forms above,
// an IPv6 zone ("fe80::1%eth0"), an IPv4-mapped IPv6 address ("::ffff:1.2.3.4"), a CIDR with host
// bits set, a range whose end is below its start, and a range mixing IPv4 and IPv6.
func ParseAddresses(s string) (netipx.IPRange, error) {
	in := strings.TrimSpace(s)
	fail := func(format string, args ...any) (netipx.IPRange, error) {
		return netipx.IPRange{}, &ParseError{Input: s, Reason: fmt.Sprintf(format, args...)}
	}
	if in == "" {
		return fail("empty; expected an address (192.168.1.5), a CIDR (192.168.1.0/24) or a range (192.168.1.10-192.168.1.20)")
	}
	if zone := findZone(in); zone != "" {
		return fail("IPv6 zone %q is not allowed; pool addresses must not carry a zone", zone)
	}

	if i := strings.IndexByte(in, '-'); i >= 0 {
		startText := strings.TrimSpace(in[:i])
		endText := strings.TrimSpace(in[i+1:])
		if startText == "" {
			return fail("range has no start address; expected start-end, e.g. 192.168.1.10-192.168.1.20")
		}
		if endText == "" {
			return fail("range has no end address; expected start-end, e.g. 192.168.1.10-192.168.1.20")
		}
		start, reason := parseAddr(startText, "range start")
		if reason != "" {
			return fail("%s", reason)
		}
		end, reason := parseAddr(endText, "range end")
		if reason != "" {
			return fail("%s", reason)
		}
		if FamilyOf(start) != FamilyOf(end) {
			return fail("range mixes %s start %s with %s end %s; both ends must be of the same family",
				FamilyOf(start), start, FamilyOf(end), end)
		}
		if end.Less(start) {
			return fail("range end %s is below its start %s; did you mean %s-%s?", end, start, end, start)
		}
		return netipx.IPRangeFrom(start, end), nil
	}

	if i := strings.IndexByte(in, '/'); i >= 0 {
		addrText, bitsText := in[:i], in[i+1:]
		addr, reason := parseAddr(addrText, "CIDR address")
		if reason != "" {
			return fail("%s", reason)
		}
		bits, ok := parseBits(bitsText, addr.BitLen())
		if !ok {
			return fail("prefix length %q is not valid for %s; it must be a number from 0 to %d",
				"/"+bitsText, FamilyOf(addr), addr.BitLen())
		}
		p := netip.PrefixFrom(addr, bits)
		if m := p.Masked(); m != p {
			return fail("%s has host bits set; did you mean %s?", p, m)
		}
		r := netipx.RangeOfPrefix(p)
		if addr.Is4() && bits < 31 {
			r = netipx.IPRangeFrom(r.From().Next(), r.To().Prev())
		}
		return r, nil
	}

	addr, reason := parseAddr(in, "address")
	if reason != "" {
		if _, err := netip.ParseAddr(in); err == nil {
			return fail("%s", reason) // parses, but is not allowed
		}
		if strings.ContainsAny(in, ", \t\n") {
			return fail("not an IP address, CIDR or range; put each address, CIDR or range in its own list item")
		}
		return fail("not an IP address, CIDR (192.168.1.0/24) or range (192.168.1.10-192.168.1.20)")
	}
	return netipx.IPRangeFrom(addr, addr), nil
}

// parseAddr parses one address; what names it in the reason ("range start", ...). It returns a
// non-empty reason on failure. Zoned IPv6 addresses have been rejected by the caller; anything
// else with a zone (such as "1.2.3.4%x") is reported as not being an address.
func parseAddr(s, what string) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Sprintf("%s %q is not an IP address", what, s)
	}
	if a.Is4In6() {
		return netip.Addr{}, fmt.Sprintf("IPv4-mapped IPv6 address %s is not allowed; write the IPv4 address %s instead",
			a, a.Unmap())
	}
	return a, ""
}

// parseBits parses a prefix length: decimal digits without sign or leading zeros, at most max.
func parseBits(s string, max int) (int, bool) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= max
}

// findZone returns the "%zone" suffix of the first zoned IPv6 address in s, or "". A "%" that does
// not follow an IPv6 address is left for the general error handling.
func findZone(s string) string {
	for i := strings.IndexByte(s, '%'); i >= 0; {
		start := strings.LastIndexAny(s[:i], "-/ \t") + 1
		end := len(s)
		if j := strings.IndexAny(s[i:], "-/ \t"); j >= 0 {
			end = i + j
		}
		if a, err := netip.ParseAddr(s[start:end]); err == nil && a.Zone() != "" {
			return s[i:end]
		}
		next := strings.IndexByte(s[i+1:], '%')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return ""
}
