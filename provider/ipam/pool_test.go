package ipam_test

import (
	"errors"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"go4.org/netipx"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

func rangesString(rr []netipx.IPRange) string {
	s := make([]string, len(rr))
	for i, r := range rr {
		s[i] = r.String()
	}
	return strings.Join(s, " ")
}

func bigPow2(n uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), n) }

func TestNewPool(t *testing.T) {
	for _, tc := range []struct {
		name         string
		addresses    []string
		ranges       string
		size4, size6 *big.Int
	}{
		{"empty", nil, "", big.NewInt(0), big.NewInt(0)},
		{"one", []string{"192.168.1.5"}, "192.168.1.5-192.168.1.5", big.NewInt(1), big.NewInt(0)},
		{"cidr", []string{"192.168.1.0/24"}, "192.168.1.1-192.168.1.254", big.NewInt(254), big.NewInt(0)},
		{"overlap merged", []string{"192.168.1.0/24", "192.168.1.200-192.168.2.10"},
			"192.168.1.1-192.168.2.10", big.NewInt(266), big.NewInt(0)},
		{"duplicates", []string{"10.0.0.1", "10.0.0.1", "10.0.0.1-10.0.0.1"}, "10.0.0.1-10.0.0.1", big.NewInt(1), big.NewInt(0)},
		{"adjacent merged", []string{"10.0.0.1-10.0.0.5", "10.0.0.6-10.0.0.9"}, "10.0.0.1-10.0.0.9", big.NewInt(9), big.NewInt(0)},
		{"sorted", []string{"10.0.0.20", "2001:db8::/120", "10.0.0.1-10.0.0.2"},
			"10.0.0.1-10.0.0.2 10.0.0.20-10.0.0.20 2001:db8::-2001:db8::ff", big.NewInt(3), big.NewInt(256)},
		{"slash64", []string{"2001:db8::/64"}, "2001:db8::-2001:db8::ffff:ffff:ffff:ffff", big.NewInt(0), bigPow2(64)},
		{"two slash64", []string{"2001:db8::/64", "2001:db8:0:1::/64", "2001:db8:0:5::/64"},
			"2001:db8::-2001:db8:0:1:ffff:ffff:ffff:ffff 2001:db8:0:5::-2001:db8:0:5:ffff:ffff:ffff:ffff",
			big.NewInt(0), new(big.Int).Mul(big.NewInt(3), bigPow2(64))},
		{"everything", []string{"::/0", "0.0.0.0/0"}, "0.0.0.1-255.255.255.254 ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
			big.NewInt(1<<32 - 2), bigPow2(128)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ipam.NewPool(tc.name, tc.addresses)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name() != tc.name {
				t.Errorf("Name() = %q", p.Name())
			}
			if got := rangesString(p.Ranges()); got != tc.ranges {
				t.Errorf("Ranges() = %s, want %s", got, tc.ranges)
			}
			if got := p.Size(ipam.IPv4); got.Cmp(tc.size4) != 0 {
				t.Errorf("Size(IPv4) = %s, want %s", got, tc.size4)
			}
			if got := p.Size(ipam.IPv6); got.Cmp(tc.size6) != 0 {
				t.Errorf("Size(IPv6) = %s, want %s", got, tc.size6)
			}
			// Size returns a copy.
			p.Size(ipam.IPv4).SetInt64(-1)
			if got := p.Size(ipam.IPv4); got.Cmp(tc.size4) != 0 {
				t.Errorf("Size is not a copy")
			}
			// Ranges returns a copy.
			if rr := p.Ranges(); len(rr) > 0 {
				rr[0] = netipx.IPRange{}
				if p.Ranges()[0].IsZero() {
					t.Errorf("Ranges is not a copy")
				}
			}
		})
	}
}

func TestNewPoolErrors(t *testing.T) {
	for _, tc := range []struct {
		addresses []string
		want      string
	}{
		{[]string{"10.0.0.1", "10.0.0.2", "x"}, `spec.addresses[2]: invalid address "x": not an IP address, CIDR (192.168.1.0/24) or range (192.168.1.10-192.168.1.20)`},
		{[]string{"192.168.1.5/24"}, `spec.addresses[0]: invalid address "192.168.1.5/24": 192.168.1.5/24 has host bits set; did you mean 192.168.1.0/24?`},
		{[]string{"10.0.0.1", ""}, `spec.addresses[1]: invalid address "": empty; expected an address (192.168.1.5), a CIDR (192.168.1.0/24) or a range (192.168.1.10-192.168.1.20)`},
		{[]string{"10.0.0.1", "bad", "worse"}, `spec.addresses[1]: invalid address "bad": not an IP address, CIDR (192.168.1.0/24) or range (192.168.1.10-192.168.1.20)`},
	} {
		p, err := ipam.NewPool("p", tc.addresses)
		if err == nil {
			t.Errorf("NewPool(%q) = %v, want error", tc.addresses, p.Ranges())
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("NewPool(%q):\n got %s\nwant %s", tc.addresses, err, tc.want)
		}
		var pe *ipam.ParseError
		if !errors.As(err, &pe) {
			t.Errorf("NewPool(%q): error does not wrap *ParseError", tc.addresses)
		}
		if p != nil {
			t.Errorf("NewPool(%q): non-nil pool with error", tc.addresses)
		}
	}
}

func TestPoolContains(t *testing.T) {
	p := mustPool(t, "p", "10.0.0.0/29", "10.0.1.5-10.0.1.9", "2001:db8::/126", "255.255.255.255")
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.0.0.0", false}, {"10.0.0.1", true}, {"10.0.0.6", true}, {"10.0.0.7", false},
		{"10.0.1.4", false}, {"10.0.1.5", true}, {"10.0.1.9", true}, {"10.0.1.10", false},
		{"9.255.255.255", false}, {"255.255.255.255", true}, {"0.0.0.0", false},
		{"2001:db8::", true}, {"2001:db8::3", true}, {"2001:db8::4", false}, {"::", false},
		{"::ffff:10.0.0.1", false}, {"fe80::1%eth0", false},
	} {
		if got := p.Contains(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if p.Contains(netip.Addr{}) {
		t.Error("Contains(zero Addr) = true")
	}
}

func TestPoolOverlap(t *testing.T) {
	for _, tc := range []struct {
		a, b []string
		want string // "" means none
	}{
		{[]string{"10.0.0.0/24"}, []string{"10.0.1.0/24"}, ""},
		{[]string{"10.0.0.0/24"}, []string{"10.0.0.200-10.0.1.5"}, "10.0.0.200-10.0.0.254"},
		{[]string{"10.0.0.200-10.0.1.5"}, []string{"10.0.0.0/24"}, "10.0.0.200-10.0.0.254"},
		{[]string{"10.0.0.1-10.0.0.3", "10.0.0.10-10.0.0.20"}, []string{"10.0.0.4-10.0.0.9", "10.0.0.15"}, "10.0.0.15-10.0.0.15"},
		{[]string{"10.0.0.1-10.0.0.3"}, []string{"10.0.0.4-10.0.0.9"}, ""},
		{[]string{"10.0.0.1", "2001:db8::/120"}, []string{"2001:db8::80-2001:db8::1:0"}, "2001:db8::80-2001:db8::ff"},
		{[]string{"10.0.0.1"}, []string{"2001:db8::/120"}, ""},
		{nil, []string{"10.0.0.1"}, ""},
	} {
		a, b := mustPool(t, "a", tc.a...), mustPool(t, "b", tc.b...)
		r, ok := a.Overlap(b)
		got := ""
		if ok {
			got = r.String()
		}
		if got != tc.want {
			t.Errorf("%v.Overlap(%v) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

func mustPool(t testing.TB, name string, addresses ...string) *ipam.Pool {
	t.Helper()
	p, err := ipam.NewPool(name, addresses)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFamily(t *testing.T) {
	if ipam.IPv4.String() != "IPv4" || ipam.IPv6.String() != "IPv6" || ipam.Family(5).String() != "Family(5)" {
		t.Error("Family.String")
	}
	for _, tc := range []struct {
		addr string
		want ipam.Family
	}{{"1.2.3.4", ipam.IPv4}, {"::1", ipam.IPv6}, {"::ffff:1.2.3.4", ipam.IPv6}} {
		if got := ipam.FamilyOf(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("FamilyOf(%s) = %v", tc.addr, got)
		}
	}
	if got := ipam.FamilyOf(netip.Addr{}); got != 0 {
		t.Errorf("FamilyOf(zero) = %v", got)
	}
	if !slices.Equal([]ipam.Family{ipam.IPv4, ipam.IPv6}, []ipam.Family{4, 6}) {
		t.Error("family values")
	}
}
