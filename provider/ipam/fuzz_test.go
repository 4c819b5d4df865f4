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
			var pe *ipam.ParseError
			if !errors.As(err, &pe) || p != nil {
				t.Fatalf("NewPool(%q): %v, %v", entries, p, err)
			}
			// The error names the first bad entry.
			for i, e := range entries {
				if _, perr := ipam.ParseAddresses(e); perr != nil {
					if want := fmt.Sprintf("spec.addresses[%d]: %v", i, perr); err.Error() != want || pe.Input != e {
						t.Fatalf("NewPool(%q) = %v, want %v", entries, err, want)
					}
					return
				}
			}
			t.Fatalf("NewPool(%q) failed, but every entry parses: %v", entries, err)
		}
		rr := p.Ranges()
		size := map[ipam.Family]*big.Int{ipam.IPv4: new(big.Int), ipam.IPv6: new(big.Int)}
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
			from, to := r.From().As16(), r.To().As16()
			n := new(big.Int).Sub(new(big.Int).SetBytes(to[:]), new(big.Int).SetBytes(from[:]))
			size[ipam.FamilyOf(r.From())].Add(size[ipam.FamilyOf(r.From())], n.Add(n, big.NewInt(1)))
		}
		for f, want := range size {
			if got := p.Size(f); got.Cmp(want) != 0 {
				t.Fatalf("Size(%v) = %s, want %s", f, got, want)
			}
		}
		for _, e := range entries {
			r, _ := ipam.ParseAddresses(e)
			if !p.Contains(r.From()) || !p.Contains(r.To()) {
				t.Fatalf("pool %v lost entry %q", rr, e)
			}
		}
		if len(rr) > 0 {
			if got, ok := p.Overlap(p); !ok || got != rr[0] {
				t.Fatalf("Overlap(self) = %s, %v; want %s", got, ok, rr[0])
			}
		} else if _, ok := p.Overlap(p); ok {
			t.Fatal("empty pool overlaps itself")
		}
		// An Allocator hands out the pool's first address of each family.
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
			if got != first || (err == nil) != first.IsValid() {
				t.Fatalf("Allocate(%v) = %v, %v; want %v", f, got, err, first)
			}
		}
	})
}
