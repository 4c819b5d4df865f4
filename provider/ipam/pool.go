package ipam

import (
	"fmt"
	"math/big"
	"net/netip"
	"sort"

	"go4.org/netipx"
)

// Pool is an immutable, named set of usable addresses (see Unusable). Both families may be
// present. A Pool is safe for concurrent use.
type Pool struct {
	name string
	// ranges is sorted, disjoint and non-adjacent (as produced by netipx.IPSet); all IPv4 ranges
	// come first, so ranges[:n4] are IPv4 and ranges[n4:] IPv6. They exclude the fixed unusable
	// blocks and begin and end on usable addresses, but may span per-/64 IPv6 holes, which
	// Contains, Size and the Allocator skip arithmetically.
	ranges []netipx.IPRange
	n4     int
	size4  *big.Int
	size6  *big.Int
}

// NewPool parses every entry of addresses (see ParseAddresses) and merges them into one Pool of
// the entries' usable addresses: the unusable ones (see Unusable) are silently left out, so
// "0.0.0.0/0" or "::/0" are valid pools. Overlapping or adjacent entries are merged, not an error.
//
// On the first entry that does not parse, or that holds no usable address at all (such as
// "224.0.0.0/24", "255.255.255.255", "fe80::/64" or "2001:db8:0:1::", a subnet-router anycast
// address), it returns an error naming its index, `spec.addresses[2]: invalid address "x": ...`,
// that wraps a *ParseError (use errors.As). An empty list gives a Pool with no addresses.
func NewPool(name string, addresses []string) (*Pool, error) {
	var b netipx.IPSetBuilder
	for i, s := range addresses {
		r, err := ParseAddresses(s)
		if err != nil {
			return nil, fmt.Errorf("spec.addresses[%d]: %w", i, err)
		}
		if reason := noUsable(r.From(), r.To()); reason != "" {
			return nil, fmt.Errorf("spec.addresses[%d]: %w", i, &ParseError{Input: s, Reason: reason})
		}
		b.AddRange(r)
	}
	for _, fb := range fixedBlocks {
		b.RemovePrefix(fb.prefix)
	}
	set, err := b.IPSet()
	if err != nil {
		// Unreachable: ParseAddresses only returns valid ranges.
		return nil, fmt.Errorf("pool %q: %w", name, err)
	}
	p := &Pool{name: name, size4: new(big.Int), size6: new(big.Int)}
	for _, r := range set.Ranges() {
		// Trimming to usable ends keeps Ranges honest at its edges and lets Overlap return
		// usable ends; a range of nothing but per-/64 holes disappears.
		from, to := nextUsable(r.From()), prevUsable(r.To())
		if !from.IsValid() || !to.IsValid() || to.Less(from) {
			continue
		}
		r = netipx.IPRangeFrom(from, to)
		p.ranges = append(p.ranges, r)
		n := rangeSize(r)
		n.Sub(n, subnetHoles(from, to))
		if from.Is4() {
			p.n4++
			p.size4.Add(p.size4, n)
		} else {
			p.size6.Add(p.size6, n)
		}
	}
	return p, nil
}

// rangeSize returns the number of addresses in r.
func rangeSize(r netipx.IPRange) *big.Int {
	from, to := r.From().As16(), r.To().As16()
	n := new(big.Int).SetBytes(to[:])
	n.Sub(n, new(big.Int).SetBytes(from[:]))
	return n.Add(n, big.NewInt(1))
}

// Name returns the pool's name.
func (p *Pool) Name() string {
	if p == nil {
		return ""
	}
	return p.name
}

// Ranges returns the pool's addresses as sorted, disjoint, non-adjacent ranges, IPv4 first.
// The fixed unusable blocks (UnusableBlocks) are cut out and every range begins and ends on a
// usable address, but an IPv6 range may still span per-/64 holes (see Unusable), which the pool
// does not contain. The slice is a copy.
func (p *Pool) Ranges() []netipx.IPRange {
	if p == nil {
		return nil
	}
	return append([]netipx.IPRange(nil), p.ranges...)
}

// familyRanges returns the pool's ranges of family f (not a copy).
func (p *Pool) familyRanges(f Family) []netipx.IPRange {
	switch f {
	case IPv4:
		return p.ranges[:p.n4]
	case IPv6:
		return p.ranges[p.n4:]
	default:
		return nil
	}
}

// Contains reports whether a is one of the pool's addresses; it is false for every unusable
// address (see Unusable). It takes O(log r) time for r ranges. Addresses with a zone are never
// contained.
func (p *Pool) Contains(a netip.Addr) bool {
	if p == nil || !a.IsValid() || a.Zone() != "" {
		return false
	}
	i := sort.Search(len(p.ranges), func(i int) bool { return p.ranges[i].To().Compare(a) >= 0 })
	return i < len(p.ranges) && p.ranges[i].From().Compare(a) <= 0 && !subnetHole(a)
}

// Size returns the number of addresses of family f in the pool, counting only usable ones (a /64
// is 2^64 - 129, an IPv4 /24 254). The result is a fresh big.Int the caller may modify.
func (p *Pool) Size(f Family) *big.Int {
	if p == nil {
		return new(big.Int)
	}
	switch f {
	case IPv4:
		return new(big.Int).Set(p.size4)
	case IPv6:
		return new(big.Int).Set(p.size6)
	default:
		return new(big.Int)
	}
}

// Overlap returns the lowest range of addresses that both p and q contain, if any. Both ends of
// the result are usable addresses of both pools (the range may span per-/64 IPv6 holes, as
// Ranges do). It takes time linear in the number of ranges of both pools.
func (p *Pool) Overlap(q *Pool) (netipx.IPRange, bool) {
	if p == nil || q == nil {
		return netipx.IPRange{}, false
	}
	a, b := p.ranges, q.ranges
	for len(a) > 0 && len(b) > 0 {
		x, y := a[0], b[0]
		switch {
		case x.To().Less(y.From()):
			a = a[1:]
		case y.To().Less(x.From()):
			b = b[1:]
		default:
			from, to := x.From(), x.To()
			if from.Less(y.From()) {
				from = y.From()
			}
			if y.To().Less(to) {
				to = y.To()
			}
			return netipx.IPRangeFrom(from, to), true
		}
	}
	return netipx.IPRange{}, false
}
