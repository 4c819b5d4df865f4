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

// slash64Size returns the number of usable addresses in n /64s: all but interface ID 0 and the
// 128 RFC 2526 interface IDs.
func slash64Size(n int64) *big.Int {
	one := new(big.Int).Sub(bigPow2(64), big.NewInt(129))
	return one.Mul(one, big.NewInt(n))
}

// everythingSize6 returns the number of usable IPv6 addresses: all but the fixed blocks and the
// 129 holes of every /64 outside them. The /64s of fe80::/10 and ff00::/8 lie entirely inside
// fixed blocks; ::/64 keeps its RFC 2526 holes, but its interface ID 0 is :: (a fixed block).
func everythingSize6() *big.Int {
	n := bigPow2(128)
	for _, fixed := range []*big.Int{big.NewInt(1), big.NewInt(1), bigPow2(32), bigPow2(118), bigPow2(120)} {
		n.Sub(n, fixed)
	}
	slash64s := new(big.Int).Sub(bigPow2(64), bigPow2(54))
	slash64s.Sub(slash64s, bigPow2(56))
	n.Sub(n, slash64s.Mul(slash64s, big.NewInt(129)))
	return n.Add(n, big.NewInt(1))
}

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
		// 2001:db8:: is the subnet-router anycast address of 2001:db8::/64.
		{"sorted", []string{"10.0.0.20", "2001:db8::/120", "10.0.0.1-10.0.0.2"},
			"10.0.0.1-10.0.0.2 10.0.0.20-10.0.0.20 2001:db8::1-2001:db8::ff", big.NewInt(3), big.NewInt(255)},
		{"slash64", []string{"2001:db8::/64"}, "2001:db8::1-2001:db8::ffff:ffff:ffff:ffff", big.NewInt(0), slash64Size(1)},
		{"two slash64", []string{"2001:db8::/64", "2001:db8:0:1::/64", "2001:db8:0:5::/64"},
			"2001:db8::1-2001:db8:0:1:ffff:ffff:ffff:ffff 2001:db8:0:5::1-2001:db8:0:5:ffff:ffff:ffff:ffff",
			big.NewInt(0), slash64Size(3)},
		{"slash32", []string{"2001:db8::/32"}, "2001:db8::1-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
			big.NewInt(0), slash64Size(1 << 32)},
		{"everything", []string{"::/0", "0.0.0.0/0"},
			"1.0.0.0-126.255.255.255 128.0.0.0-169.253.255.255 169.255.0.0-223.255.255.255 240.0.0.0-255.255.255.254 " +
				"::2-::fffe:ffff:ffff ::1:0:0:0-fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff fec0::1-feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
			big.NewInt(1<<32 - 1<<24 - 1<<24 - 1<<16 - 1<<28 - 1), everythingSize6()},
		{"multicast skipped", []string{"223.255.255.250-224.0.0.3"}, "223.255.255.250-223.255.255.255", big.NewInt(6), big.NewInt(0)},
		{"IPv4-mapped skipped", []string{"::fffe:ffff:ffff-::1:0:0:5"}, "::fffe:ffff:ffff-::fffe:ffff:ffff ::1:0:0:0-::1:0:0:5",
			big.NewInt(0), big.NewInt(7)},
		{"across a /64", []string{"2001:db8::ffff:ffff:ffff:ff00-2001:db8:0:1::ff"},
			"2001:db8::ffff:ffff:ffff:ff00-2001:db8:0:1::ff", big.NewInt(0), big.NewInt(256 + 255)},
		{"across RFC 2526", []string{"2001:db8::fdff:ffff:ffff:ff7e-2001:db8::fe00:0:0:1"},
			"2001:db8::fdff:ffff:ffff:ff7e-2001:db8::fe00:0:0:1", big.NewInt(0), big.NewInt(4)},
		{"holes at both ends trimmed", []string{"2001:db8::fdff:ffff:ffff:ff80-2001:db8:0:1::"},
			"2001:db8:0:0:fe00::-2001:db8::ffff:ffff:ffff:ffff", big.NewInt(0), bigPow2(57)},
		{"a piece of only holes dropped", []string{"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff-fec0::"},
			"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff-fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", big.NewInt(0), big.NewInt(1)},
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
		// Entries without a single usable address.
		{[]string{"10.0.0.1", "10.0.0.2", "224.0.0.0/24"}, `spec.addresses[2]: invalid address "224.0.0.0/24": every address in it is multicast (224.0.0.0/4); none can be a VIP`},
		{[]string{"0.0.0.0"}, `spec.addresses[0]: invalid address "0.0.0.0": 0.0.0.0 is unspecified (0.0.0.0); it cannot be a VIP`},
		{[]string{"0.0.0.0/31"}, `spec.addresses[0]: invalid address "0.0.0.0/31": every address in it is unspecified (0.0.0.0) or this-network (0.0.0.0/8); none can be a VIP`},
		{[]string{"0.1.2.3"}, `spec.addresses[0]: invalid address "0.1.2.3": 0.1.2.3 is this-network (0.0.0.0/8); it cannot be a VIP`},
		{[]string{"255.255.255.255"}, `spec.addresses[0]: invalid address "255.255.255.255": 255.255.255.255 is broadcast (255.255.255.255); it cannot be a VIP`},
		{[]string{"127.0.0.1"}, `spec.addresses[0]: invalid address "127.0.0.1": 127.0.0.1 is loopback (127.0.0.0/8); it cannot be a VIP`},
		{[]string{"169.254.0.0/16"}, `spec.addresses[0]: invalid address "169.254.0.0/16": every address in it is link-local (169.254.0.0/16); none can be a VIP`},
		{[]string{"::"}, `spec.addresses[0]: invalid address "::": :: is unspecified (::); it cannot be a VIP`},
		{[]string{"::/127"}, `spec.addresses[0]: invalid address "::/127": every address in it is unspecified (::) or loopback (::1); none can be a VIP`},
		{[]string{"fe80::/64"}, `spec.addresses[0]: invalid address "fe80::/64": every address in it is link-local (fe80::/10); none can be a VIP`},
		{[]string{"ff02::1"}, `spec.addresses[0]: invalid address "ff02::1": ff02::1 is multicast (ff00::/8); it cannot be a VIP`},
		{[]string{"2001:db8:0:1::"}, `spec.addresses[0]: invalid address "2001:db8:0:1::": 2001:db8:0:1:: is subnet-router anycast (interface ID 0 of a /64, RFC 4291); it cannot be a VIP`},
		{[]string{"2001:db8::fdff:ffff:ffff:ff80/121"}, `spec.addresses[0]: invalid address "2001:db8::fdff:ffff:ffff:ff80/121": every address in it is reserved subnet anycast (interface IDs fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff of a /64, RFC 2526); none can be a VIP`},
		{[]string{"fe80::-fec0::"}, `spec.addresses[0]: invalid address "fe80::-fec0::": every address in it is link-local (fe80::/10) or subnet-router anycast (interface ID 0 of a /64, RFC 4291); none can be a VIP`},
		// The IPv4-mapped block cannot be written as an IPv6 range: both ends would be mapped.
		{[]string{"::ffff:0:0/96"}, `spec.addresses[0]: invalid address "::ffff:0:0/96": IPv4-mapped IPv6 address ::ffff:0.0.0.0 is not allowed; write the IPv4 address 0.0.0.0 instead`},
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
	p := mustPool(t, "p", "10.0.0.0/29", "10.0.1.5-10.0.1.9", "2001:db8::/126", "255.255.255.254/31")
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.0.0.0", false}, {"10.0.0.1", true}, {"10.0.0.6", true}, {"10.0.0.7", false},
		{"10.0.1.4", false}, {"10.0.1.5", true}, {"10.0.1.9", true}, {"10.0.1.10", false},
		{"9.255.255.255", false}, {"255.255.255.254", true}, {"255.255.255.255", false}, {"0.0.0.0", false},
		{"2001:db8::", false}, {"2001:db8::1", true}, {"2001:db8::3", true}, {"2001:db8::4", false}, {"::", false},
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
		// Only usable overlap counts: ends are never holes, and overlapping holes are no overlap.
		{[]string{"2001:db8::/120"}, []string{"2001:db8::-2001:db8::5"}, "2001:db8::1-2001:db8::5"},
		{[]string{"2001:db8::fdff:ffff:ffff:ff70-2001:db8::fdff:ffff:ffff:ff90"},
			[]string{"2001:db8::fdff:ffff:ffff:ff85-2001:db8::fe00:0:0:1"}, ""},
		{[]string{"0.0.0.0/0"}, []string{"223.255.255.0-224.0.0.10"}, "223.255.255.0-223.255.255.255"},
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
