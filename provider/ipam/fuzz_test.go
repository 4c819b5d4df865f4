package ipam_test

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"testing"

	"go4.org/netipx"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

var parseSeeds = []string{
	"", " ", "192.168.1.5", "2001:db8::5", "192.168.1.0/24", "2001:db8:1::/120", "192.168.1.240-192.168.1.250",
	"192.168.1.240 - 192.168.1.250", "192.168.1.250-192.168.1.240", "192.168.1.1-2001:db8::1", "fe80::1%eth0",
	"fe80::1%eth-0-fe80::2", "::ffff:1.2.3.4", "::ffff:1.2.3.0/120", "192.168.1.5/24", "192.168.1.4/31",
	"192.168.1.4/32", "0.0.0.0/0", "::/0", "255.255.255.255", "0.0.0.0/31", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
	"10.0.0.0/33", "10.0.0.0/08", "1.2.3.4-", "-1.2.3.4", "--", "/", "1.2.3.4/", "1.2.3.4-1.2.3.5-1.2.3.6",
	"::1.2.3.4", "1.2.3.4,1.2.3.5", "1.2.3.4\n", "2001:db8::/64", "\x00", "1.2.3.4/-1", "[::1]",
}

func FuzzParseAddresses(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ipam.ParseAddresses(s)
		if err != nil {
			var pe *ipam.ParseError
			if !errors.As(err, &pe) || pe.Input != s || pe.Reason == "" {
				t.Fatalf("ParseAddresses(%q): bad error %#v", s, err)
			}
			if !r.IsZero() {
				t.Fatalf("ParseAddresses(%q): range %s with error", s, r)
			}
			return
		}
		from, to := r.From(), r.To()
		if !r.IsValid() || to.Less(from) || from.BitLen() != to.BitLen() {
			t.Fatalf("ParseAddresses(%q) = invalid range %s", s, r)
		}
		if from.Zone() != "" || from.Is4In6() || to.Is4In6() {
			t.Fatalf("ParseAddresses(%q) = %s: zone or IPv4-mapped", s, r)
		}
		again, err := ipam.ParseAddresses(from.String() + "-" + to.String())
		if err != nil || again != r {
			t.Fatalf("ParseAddresses(%q) = %s, but re-parsing gives %s, %v", s, r, again, err)
		}
		// Cross-check with the standard library for the simple forms.
		in := strings.TrimSpace(s)
		if a, err := netip.ParseAddr(in); err == nil && r != netipx.IPRangeFrom(a, a) {
			t.Fatalf("ParseAddresses(%q) = %s, want the single address %s", s, r, a)
		}
		if p, err := netip.ParsePrefix(in); err == nil {
			want := netipx.RangeOfPrefix(p)
			if p.Addr().Is4() && p.Bits() < 31 {
				want = netipx.IPRangeFrom(want.From().Next(), want.To().Prev())
			}
			if r != want || p.Masked() != p {
				t.Fatalf("ParseAddresses(%q) = %s, want %s", s, r, want)
			}
		}
	})
}

// FuzzNewPool builds a pool from up to a few ";"-separated entries and checks its ranges.
func FuzzNewPool(f *testing.F) {
	f.Add("192.168.1.0/24;192.168.1.200-192.168.2.10")
	f.Add("10.0.0.1;10.0.0.2;10.0.0.3-10.0.0.9;2001:db8::/126")
	f.Add("2001:db8::/64;2001:db8:0:1::/64;10.0.0.0/8")
	f.Add("10.0.0.1;x;10.0.0.2")
	f.Add("0.0.0.0/0;::/0")
	f.Add("")
	f.Add(";")
	f.Add("255.255.255.254/31;0.0.0.0/31;ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127")
	// Holes: a /64 boundary, the RFC 2526 block, ::ffff:0:0/96, multicast, entries of holes only.
	f.Add("2001:db8::ffff:ffff:ffff:ff00-2001:db8:0:1::ff")
	f.Add("2001:db8::fdff:ffff:ffff:ff7e-2001:db8::fe00:0:0:1;2001:db8::fdff:ffff:ffff:ff80/121")
	f.Add("::fffe:ffff:ffff-::1:0:0:5;223.255.255.250-224.0.0.3")
	f.Add("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff-fec0::;2001:db8:0:1::")
	f.Add("10.0.0.1;224.0.0.0/24;::")
	// Crasher: a rejected entry ending at the last address made the test's own loop endless.
	f.Add("255.255.255.254/31;2.0.0.0/31;ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127")
	f.Fuzz(func(t *testing.T, joined string) {
		var entries []string
		if joined != "" {
			entries = strings.Split(joined, ";")
		}
		if len(entries) > 16 {
			entries = entries[:16]
		}
		p, err := ipam.NewPool("fuzz", entries)
		if err != nil {
			checkNewPoolError(t, entries, p, err)
			return
		}
		rr := p.Ranges()
		for i, r := range rr {
			if !r.IsValid() {
				t.Fatalf("invalid range %s", r)
			}
			if i > 0 {
				prev := rr[i-1]
				if !prev.To().Less(r.From()) || prev.To().Next() == r.From() {
					t.Fatalf("ranges %s and %s overlap, touch or are unsorted", prev, r)
				}
			}
			if !p.Contains(r.From()) || !p.Contains(r.To()) {
				t.Fatalf("pool does not contain the ends of its range %s", r)
			}
			if x := r.From().Prev(); x.IsValid() && p.Contains(x) {
				t.Fatalf("pool contains %s, just below range %s", x, r)
			}
			if x := r.To().Next(); x.IsValid() && p.Contains(x) {
				t.Fatalf("pool contains %s, just above range %s", x, r)
			}
			for _, b := range ipam.UnusableBlocks() {
				if br := netipx.RangeOfPrefix(b); !br.To().Less(r.From()) && !r.To().Less(br.From()) {
					t.Fatalf("range %s overlaps unusable block %s", r, b)
				}
			}
		}
		checkPoolSize(t, p)
		for _, e := range entries {
			r, _ := ipam.ParseAddresses(e)
			for _, x := range []netip.Addr{r.From(), r.From().Next(), r.To().Prev(), r.To()} {
				if r.Contains(x) && p.Contains(x) != (ipam.Unusable(x) == "") {
					t.Fatalf("pool %v: Contains(%s) = %v for entry %q, Unusable %q", rr, x, p.Contains(x), e, ipam.Unusable(x))
				}
			}
		}
		if len(rr) > 0 {
			if got, ok := p.Overlap(p); !ok || got != rr[0] {
				t.Fatalf("Overlap(self) = %s, %v; want %s", got, ok, rr[0])
			}
		} else if _, ok := p.Overlap(p); ok {
			t.Fatal("empty pool overlaps itself")
		}
		// An Allocator hands out the pool's first address of each family, which is usable.
		a := ipam.NewAllocator()
		a.SetPool(p)
		for _, f := range []ipam.Family{ipam.IPv4, ipam.IPv6} {
			got, err := a.Allocate("fuzz", f, ipam.Claim{Service: "ns/a"})
			var first netip.Addr
			for _, r := range rr {
				if ipam.FamilyOf(r.From()) == f {
					first = r.From()
					break
				}
			}
			if got != first || (err == nil) != first.IsValid() || (err == nil && ipam.Unusable(got) != "") {
				t.Fatalf("Allocate(%v) = %v, %v; want %v", f, got, err, first)
			}
		}
	})
}

// checkNewPoolError checks that err names the first entry that does not parse or has no usable
// address.
func checkNewPoolError(t *testing.T, entries []string, p *ipam.Pool, err error) {
	t.Helper()
	var pe *ipam.ParseError
	if !errors.As(err, &pe) || p != nil {
		t.Fatalf("NewPool(%q): %v, %v", entries, p, err)
	}
	for i, e := range entries {
		r, perr := ipam.ParseAddresses(e)
		if perr != nil {
			if want := fmt.Sprintf("spec.addresses[%d]: %v", i, perr); err.Error() != want || pe.Input != e {
				t.Fatalf("NewPool(%q) = %v, want %v", entries, err, want)
			}
			return
		}
		if _, err := ipam.NewPool("one", []string{e}); err == nil {
			continue
		}
		// Entry i parses but has no usable address: spot-check that.
		if want := fmt.Sprintf("spec.addresses[%d]: invalid address %q: ", i, e); !strings.HasPrefix(err.Error(), want) ||
			pe.Input != e || !strings.HasSuffix(pe.Reason, "be a VIP") {
			t.Fatalf("NewPool(%q) = %v, want %s...be a VIP", entries, err, want)
		}
		probes := []netip.Addr{r.From(), r.From().Next(), r.To().Prev(), r.To()}
		if rangeLen(r).Cmp(big.NewInt(4096)) <= 0 {
			probes = probes[:0]
			for x := r.From(); x.IsValid() && !r.To().Less(x); x = x.Next() {
				probes = append(probes, x)
			}
		}
		for _, x := range probes {
			if r.Contains(x) && ipam.Unusable(x) == "" {
				t.Fatalf("NewPool(%q): entry %q rejected, but %s in it is usable: %v", entries, e, x, err)
			}
		}
		return
	}
	t.Fatalf("NewPool(%q) failed, but every entry is fine: %v", entries, err)
}

func rangeLen(r netipx.IPRange) *big.Int {
	from, to := r.From().As16(), r.To().As16()
	n := new(big.Int).Sub(new(big.Int).SetBytes(to[:]), new(big.Int).SetBytes(from[:]))
	return n.Add(n, big.NewInt(1))
}

// checkPoolSize checks Size by enumeration for small ranges, and for large ones by additivity:
// the pools of the two halves of a range must add up to its size.
func checkPoolSize(t *testing.T, p *ipam.Pool) {
	t.Helper()
	size := map[ipam.Family]*big.Int{ipam.IPv4: new(big.Int), ipam.IPv6: new(big.Int)}
	for _, r := range p.Ranges() {
		f := ipam.FamilyOf(r.From())
		n := rangeLen(r)
		if n.Cmp(big.NewInt(4096)) <= 0 {
			var usable int64
			for x := r.From(); x.IsValid() && !r.To().Less(x); x = x.Next() {
				if ipam.Unusable(x) == "" {
					usable++
				}
			}
			size[f].Add(size[f], big.NewInt(usable))
			continue
		}
		whole := mustPoolSize(t, r.From(), r.To(), f)
		if whole.Sign() <= 0 || whole.Cmp(n) > 0 {
			t.Fatalf("range %s: size %s of %s addresses", r, whole, n)
		}
		// Split at a point that moves with the range, so /64 boundaries and holes get hit.
		half := new(big.Int).Rsh(n, 1)
		from := r.From().As16()
		mid16 := new(big.Int).Add(new(big.Int).SetBytes(from[:]), half).FillBytes(make([]byte, 16))
		mid := netip.AddrFrom16([16]byte(mid16))
		if f == ipam.IPv4 {
			mid = mid.Unmap()
		}
		sum := new(big.Int).Add(mustPoolSize(t, r.From(), mid, f), mustPoolSize(t, mid.Next(), r.To(), f))
		if sum.Cmp(whole) != 0 {
			t.Fatalf("range %s: size %s, but its halves at %s add up to %s", r, whole, mid, sum)
		}
		size[f].Add(size[f], whole)
	}
	for f, want := range size {
		if got := p.Size(f); got.Cmp(want) != 0 {
			t.Fatalf("Size(%v) = %s, want %s", f, got, want)
		}
	}
}

// mustPoolSize returns the size of the pool of from-to, 0 if it has no usable address.
func mustPoolSize(t *testing.T, from, to netip.Addr, f ipam.Family) *big.Int {
	t.Helper()
	p, err := ipam.NewPool("part", []string{from.String() + "-" + to.String()})
	if err != nil {
		var pe *ipam.ParseError
		if !errors.As(err, &pe) || !strings.HasSuffix(pe.Reason, "be a VIP") {
			t.Fatalf("pool of %s-%s: %v", from, to, err)
		}
		return new(big.Int)
	}
	return p.Size(f)
}
