package metallb

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// maxAddressEntries is the IPPool CRD's limit on spec.addresses.
const maxAddressEntries = 64

// entry is one parsed address entry: a prefix, or an inclusive range (a single address is a
// range of one).
type entry struct {
	text       string
	prefix     netip.Prefix // valid for CIDR entries
	start, end netip.Addr
}

// parseEntry reads a MetalLB address entry: a CIDR or "start-end" (MetalLB allows spaces around
// the dash). A CIDR with host bits set is read as its network, as MetalLB reads it.
func parseEntry(s string) (entry, string, error) {
	t := strings.TrimSpace(s)
	if a, b, ok := strings.Cut(t, "-"); ok {
		start, err := netip.ParseAddr(strings.TrimSpace(a))
		if err != nil {
			return entry{}, "", fmt.Errorf("range %q: %w", s, err)
		}
		end, err := netip.ParseAddr(strings.TrimSpace(b))
		if err != nil {
			return entry{}, "", fmt.Errorf("range %q: %w", s, err)
		}
		switch {
		case start.Is4() != end.Is4():
			return entry{}, "", fmt.Errorf("range %q mixes IPv4 and IPv6", s)
		case end.Less(start):
			return entry{}, "", fmt.Errorf("range %q ends below its start", s)
		}
		if err := usableSyntax(start); err != nil {
			return entry{}, "", fmt.Errorf("range %q: %w", s, err)
		}
		if err := usableSyntax(end); err != nil {
			return entry{}, "", fmt.Errorf("range %q: %w", s, err)
		}
		return entry{text: start.String() + "-" + end.String(), start: start, end: end}, "", nil
	}
	if strings.Contains(t, "/") {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			return entry{}, "", fmt.Errorf("CIDR %q: %w", s, err)
		}
		if err := usableSyntax(p.Addr()); err != nil {
			return entry{}, "", fmt.Errorf("CIDR %q: %w", s, err)
		}
		var note string
		if m := p.Masked(); m != p {
			note = fmt.Sprintf("%q has host bits set; MetalLB read it as %s, and so does this conversion", s, m)
			p = m
		}
		return entry{text: p.String(), prefix: p, start: p.Addr(), end: lastAddr(p)}, note, nil
	}
	a, err := netip.ParseAddr(t)
	if err != nil {
		return entry{}, "", fmt.Errorf("%q is neither a CIDR nor a range: %w", s, err)
	}
	if err := usableSyntax(a); err != nil {
		return entry{}, "", fmt.Errorf("%q: %w", s, err)
	}
	return entry{text: a.String(), start: a, end: a}, "", nil
}

// usableSyntax refuses the address forms our CRD refuses whatever their value.
func usableSyntax(a netip.Addr) error {
	switch {
	case a.Zone() != "":
		return fmt.Errorf("%s has a zone", a)
	case a.Is4In6():
		return fmt.Errorf("%s is an IPv4-mapped IPv6 address; write the IPv4 address", a)
	}
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// buggy reports whether MetalLB's avoidBuggyIPs skips a: IPv4 addresses ending in .0 or .255.
func buggy(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	last := a.As4()[3]
	return last == 0 || last == 255
}

// ourUsable returns the first and last address of e that our allocator hands out, under the
// rule the README states: an IPv4 CIDR wider than /31 loses its network and broadcast address.
func ourUsable(e entry) (netip.Addr, netip.Addr) {
	if e.prefix.IsValid() && e.prefix.Addr().Is4() && e.prefix.Bits() < 31 {
		return e.start.Next(), e.end.Prev()
	}
	return e.start, e.end
}

// lostAddresses lists the addresses of e that MetalLB could hand out and we never do: the
// network and broadcast address of an IPv4 CIDR wider than /31 (unless avoidBuggyIPs kept
// MetalLB off them too), and an IPv6 subnet-router anycast address (the low 64 bits zero) at
// the start of the entry, MetalLB's first pick in such a pool.
func lostAddresses(e entry, avoidBuggy bool) []netip.Addr {
	var out []netip.Addr
	if e.prefix.IsValid() && e.prefix.Addr().Is4() && e.prefix.Bits() < 31 {
		for _, a := range []netip.Addr{e.start, e.end} {
			if !avoidBuggy || !buggy(a) {
				out = append(out, a)
			}
		}
	}
	if e.start.Is6() {
		b := e.start.As16()
		if [8]byte(b[8:]) == [8]byte{} && !e.start.IsUnspecified() {
			out = append(out, e.start)
		}
	}
	return out
}

// avoidBuggy rewrites IPv4 entries so that our allocator never hands out an address ending in
// .0 or .255, as MetalLB's avoidBuggyIPs did: each entry that would hand one out is split into
// the pieces between them (a whole /24 becomes its CIDR, whose .0 and .255 we skip anyway).
// ok is false, and the entries unchanged, when that needs more entries than the CRD allows.
func avoidBuggy(entries []entry) (out []entry, changed []string, ok bool) {
	for _, e := range entries {
		lo, hi := ourUsable(e)
		if !e.start.Is4() || !lo.IsValid() || hi.Less(lo) || !spansBuggy(lo, hi) {
			out = append(out, e)
			continue
		}
		changed = append(changed, e.text)
		for block := blockOf(lo); ; {
			first, last := block.Next(), lastAddr(netip.PrefixFrom(block, 24)).Prev()
			a, b := maxAddr(lo, first), minAddr(hi, last)
			switch {
			case !b.Less(a) && a == first && b == last:
				p := netip.PrefixFrom(block, 24)
				out = append(out, entry{text: p.String(), prefix: p, start: block, end: last.Next()})
			case !b.Less(a):
				out = append(out, entry{text: a.String() + "-" + b.String(), start: a, end: b})
			}
			if len(out) > maxAddressEntries {
				return entries, nil, false
			}
			next := last.Next().Next()
			if !next.IsValid() || !next.Is4() || hi.Less(next) {
				break
			}
			block = next
		}
	}
	return out, changed, true
}

// spansBuggy reports whether [lo, hi] holds an address ending in .0 or .255.
func spansBuggy(lo, hi netip.Addr) bool {
	return buggy(lo) || buggy(hi) || blockOf(lo) != blockOf(hi)
}

func blockOf(a netip.Addr) netip.Addr {
	return netip.PrefixFrom(a, 24).Masked().Addr()
}

func maxAddr(a, b netip.Addr) netip.Addr {
	if a.Less(b) {
		return b
	}
	return a
}

func minAddr(a, b netip.Addr) netip.Addr {
	if a.Less(b) {
		return a
	}
	return b
}

func blocks(entries []entry) []v1alpha1.AddressBlock {
	out := make([]v1alpha1.AddressBlock, len(entries))
	for i, e := range entries {
		out[i] = v1alpha1.AddressBlock(e.text)
	}
	return out
}
