package ipam_test

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"go4.org/netipx"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

func TestUnusable(t *testing.T) {
	for _, tc := range []struct {
		addr, want string
	}{
		{"0.0.0.0", "unspecified"},
		{"0.0.0.1", "this-network (0.0.0.0/8)"},
		{"0.255.255.255", "this-network (0.0.0.0/8)"},
		{"1.0.0.0", ""},
		{"10.0.0.0", ""}, // a network address is usable in a range or /31
		{"126.255.255.255", ""},
		{"127.0.0.1", "loopback"},
		{"127.255.255.255", "loopback"},
		{"128.0.0.0", ""},
		{"169.253.255.255", ""},
		{"169.254.0.0", "link-local"},
		{"169.254.255.255", "link-local"},
		{"169.255.0.0", ""},
		{"223.255.255.255", ""},
		{"224.0.0.0", "multicast"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.255", "multicast"},
		{"240.0.0.0", ""},
		{"255.255.255.254", ""},
		{"255.255.255.255", "broadcast"},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::2", ""},
		{"::fffe:ffff:ffff", ""},
		{"::ffff:0:0", "IPv4-mapped"},
		{"::ffff:10.0.0.1", "IPv4-mapped"},
		{"::ffff:ffff:ffff", "IPv4-mapped"},
		{"::1:0:0:0", ""},
		{"::1.2.3.4", ""}, // IPv4-compatible, deprecated but plain IPv6
		{"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"fe80::", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"},
		{"fec0::", "subnet-router anycast"},
		{"fec0::1", ""},
		{"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"ff00::", "multicast"},
		{"ff02::1", "multicast"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},
		// Per-/64 holes.
		{"2001:db8::", "subnet-router anycast"},
		{"2001:db8:0:1::", "subnet-router anycast"},
		{"2001:db8::1", ""},
		{"2001:db8::ffff:ffff:ffff:ffff", ""},
		{"2001:db8::fdff:ffff:ffff:ff7f", ""},
		{"2001:db8::fdff:ffff:ffff:ff80", "reserved subnet anycast (RFC 2526)"},
		{"2001:db8::fdff:ffff:ffff:fffe", "reserved subnet anycast (RFC 2526)"},
		{"2001:db8::fdff:ffff:ffff:ffff", "reserved subnet anycast (RFC 2526)"},
		{"2001:db8:0:0:fe00::", ""},
		{"2001:db8::ffff:ffff:ffff:ff80", ""},
		{"::fdff:ffff:ffff:ff80", "reserved subnet anycast (RFC 2526)"},
	} {
		if got := ipam.Unusable(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Unusable(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if got := ipam.Unusable(netip.Addr{}); got == "" {
		t.Error(`Unusable(zero Addr) = ""`)
	}
}

func TestUnusableBlocks(t *testing.T) {
	got := ipam.UnusableBlocks()
	want := []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("224.0.0.0/4"), netip.MustParsePrefix("255.255.255.255/32"),
		netip.MustParsePrefix("::/128"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("::ffff:0:0/96"),
		netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("ff00::/8"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("UnusableBlocks() = %v, want %v", got, want)
	}
	got[0] = netip.Prefix{}
	if ipam.UnusableBlocks()[0] != want[0] {
		t.Error("UnusableBlocks is not a copy")
	}
	for i, p := range want {
		if p.Masked() != p {
			t.Errorf("%s is not masked", p)
		}
		if i > 0 && !netipx.RangeOfPrefix(want[i-1]).To().Less(p.Addr()) {
			t.Errorf("%s and %s overlap or are unsorted", want[i-1], p)
		}
		r := netipx.RangeOfPrefix(p)
		for _, x := range []netip.Addr{r.From(), r.From().Next(), r.To().Prev(), r.To()} {
			if x.IsValid() && p.Contains(x) && ipam.Unusable(x) == "" {
				t.Errorf("Unusable(%s) = \"\" inside block %s", x, p)
			}
		}
	}
}

// TestEverythingPoolContainsExactlyUsable checks Pool.Contains, which skips holes arithmetically,
// against Unusable on random addresses and on every edge of every hole.
func TestEverythingPoolContainsExactlyUsable(t *testing.T) {
	p := mustPool(t, "all", "0.0.0.0/0", "::/0")
	var probes []netip.Addr
	for _, b := range ipam.UnusableBlocks() {
		r := netipx.RangeOfPrefix(b)
		probes = append(probes, r.From().Prev(), r.From(), r.To(), r.To().Next())
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for i := 0; i < 20000; i++ {
		var b [16]byte
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		x := netip.AddrFrom16(b)
		probes = append(probes, x, netip.AddrFrom4([4]byte(b[:4])))
		// The same /64's holes and their neighbours.
		for _, iid := range []string{"::", "::1", "::ffff:ffff:ffff:ffff", "::fdff:ffff:ffff:ff7f",
			"::fdff:ffff:ffff:ff80", "::fdff:ffff:ffff:ffff", "::fe00:0:0:0"} {
			y := netip.MustParseAddr(iid).As16()
			copy(y[:8], b[:8])
			probes = append(probes, netip.AddrFrom16(y))
		}
	}
	for _, x := range probes {
		if !x.IsValid() {
			continue
		}
		if got, want := p.Contains(x), ipam.Unusable(x) == ""; got != want {
			t.Fatalf("Contains(%s) = %v, but Unusable = %q", x, got, ipam.Unusable(x))
		}
	}
}

func TestPoolSizeHoles(t *testing.T) {
	for _, tc := range []struct {
		addresses []string
		f         ipam.Family
		want      *big.Int
	}{
		{[]string{"2001:db8::/120"}, ipam.IPv6, big.NewInt(255)},
		{[]string{"2001:db8::1-2001:db8::ff"}, ipam.IPv6, big.NewInt(255)},
		{[]string{"2001:db8::/64"}, ipam.IPv6, slash64Size(1)},
		{[]string{"2001:db8::/63"}, ipam.IPv6, slash64Size(2)},
		{[]string{"2001:db8::/48"}, ipam.IPv6, slash64Size(1 << 16)},
		{[]string{"2001:db8::fdff:ffff:ffff:ff00/120"}, ipam.IPv6, big.NewInt(128)},
		{[]string{"2001:db8::fdff:ffff:ffff:ff00/121"}, ipam.IPv6, big.NewInt(128)},
		{[]string{"2001:db8::fdff:ffff:ffff:fe00/119"}, ipam.IPv6, big.NewInt(384)},
		{[]string{"2001:db8::ffff:ffff:ffff:ff00-2001:db8:0:1::ff"}, ipam.IPv6, big.NewInt(511)},
		{[]string{"2001:db8::fdff:ffff:ffff:ff7e-2001:db8::fe00:0:0:1"}, ipam.IPv6, big.NewInt(4)},
		{[]string{"2001:db8::5-2001:db8:0:2::4"}, ipam.IPv6,
			new(big.Int).Sub(new(big.Int).Add(new(big.Int).Lsh(big.NewInt(2), 64), big.NewInt(4-5+1)), big.NewInt(2+128*2))},
		{[]string{"::fffe:ffff:ffff-::1:0:0:5"}, ipam.IPv6, big.NewInt(7)},
		{[]string{"::/64"}, ipam.IPv6, new(big.Int).Sub(bigPow2(64), big.NewInt(2+1<<32+128))},
		{[]string{"192.168.1.0/24"}, ipam.IPv4, big.NewInt(254)},
		{[]string{"223.255.255.250-224.0.0.3"}, ipam.IPv4, big.NewInt(6)},
		{[]string{"0.0.0.0/7"}, ipam.IPv4, big.NewInt(1<<24 - 1)},      // 1.0.0.0-1.255.255.254
		{[]string{"169.254.0.0/15"}, ipam.IPv4, big.NewInt(1<<16 - 1)}, // 169.255.0.0-169.255.255.254
	} {
		p := mustPool(t, "p", tc.addresses...)
		if got := p.Size(tc.f); got.Cmp(tc.want) != 0 {
			t.Errorf("%v: Size(%v) = %s, want %s", tc.addresses, tc.f, got, tc.want)
		}
	}
}

func TestPoolContainsHoles(t *testing.T) {
	p := mustPool(t, "p", "2001:db8::ffff:ffff:ffff:ff00-2001:db8:0:1::ff", "2001:db8:1::fdff:ffff:ffff:fe00/119",
		"::fffe:ffff:ffff-::1:0:0:5", "223.255.255.250-224.0.0.3")
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"2001:db8::ffff:ffff:ffff:feff", false},
		{"2001:db8::ffff:ffff:ffff:ff00", true},
		{"2001:db8::ffff:ffff:ffff:ffff", true},
		{"2001:db8:0:1::", false},
		{"2001:db8:0:1::1", true},
		{"2001:db8:0:1::ff", true},
		{"2001:db8:0:1::100", false},
		{"2001:db8:1::fdff:ffff:ffff:fe00", true},
		{"2001:db8:1::fdff:ffff:ffff:ff00", true},
		{"2001:db8:1::fdff:ffff:ffff:ff7f", true},
		{"2001:db8:1::fdff:ffff:ffff:ff80", false},
		{"2001:db8:1::fdff:ffff:ffff:ffff", false},
		{"2001:db8:1:0:fe00::", false},
		{"::fffe:ffff:ffff", true},
		{"::ffff:0:0", false},
		{"::ffff:10.0.0.1", false},
		{"::1:0:0:0", true},
		{"::1:0:0:5", true},
		{"223.255.255.255", true},
		{"224.0.0.0", false},
		{"224.0.0.3", false},
	} {
		if got := p.Contains(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// holePools are pools whose ranges cross holes, with their numbers of usable addresses.
var holePools = []struct {
	entries []string
	n4, n6  int
}{
	{[]string{"2001:db8::ffff:ffff:ffff:ff00-2001:db8:0:1::ff"}, 0, 256 + 255},    // across a /64 boundary
	{[]string{"2001:db8::fdff:ffff:ffff:ff70-2001:db8::fe00:0:0:10"}, 0, 16 + 17}, // across the RFC 2526 block
	{[]string{"::fffe:ffff:ffff-::1:0:0:5"}, 0, 1 + 6},                            // across ::ffff:0:0/96
	{[]string{"223.255.255.250-224.0.0.3"}, 6, 0},                                 // into multicast
	{[]string{"2001:db8:5::/120", "2001:db8:6::fdff:ffff:ffff:fe00/119", "10.0.0.0/30"}, 2, 255 + 384},
	{[]string{"126.255.255.254-128.0.0.1", "169.253.255.254-169.255.0.1"}, 8, 0}, // across loopback and link-local
}

// usableAddresses enumerates, the slow way, the usable addresses of family f in the entries.
func usableAddresses(t *testing.T, entries []string, f ipam.Family) []netip.Addr {
	t.Helper()
	var b netipx.IPSetBuilder
	for _, e := range entries {
		r, err := ipam.ParseAddresses(e)
		if err != nil {
			t.Fatal(err)
		}
		b.AddRange(r)
	}
	set, err := b.IPSet()
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, r := range set.Ranges() {
		if ipam.FamilyOf(r.From()) != f {
			continue
		}
	next:
		// Jump over the big blocks the entries cross, one address at a time elsewhere.
		for x := r.From(); x.IsValid() && !r.To().Less(x); x = x.Next() {
			for _, b := range ipam.UnusableBlocks() {
				if b.Contains(x) {
					x = netipx.RangeOfPrefix(b).To()
					continue next
				}
			}
			if len(out) > 1<<16 {
				t.Fatalf("entries %v too large to enumerate", entries)
			}
			if ipam.Unusable(x) == "" {
				out = append(out, x)
			}
		}
	}
	return out
}

// TestAllocateEveryAddressSkipsHoles allocates every address of pools with holes, one by one:
// the allocator must return exactly the usable ones in order, then PoolExhaustedError.
func TestAllocateEveryAddressSkipsHoles(t *testing.T) {
	for _, hp := range holePools {
		entries := hp.entries
		for _, f := range []ipam.Family{ipam.IPv4, ipam.IPv6} {
			want := usableAddresses(t, entries, f)
			if n := map[ipam.Family]int{ipam.IPv4: hp.n4, ipam.IPv6: hp.n6}[f]; len(want) != n {
				t.Fatalf("%v: %d usable %v addresses, want %d", entries, len(want), f, n)
			}
			if len(want) == 0 {
				continue
			}
			a := ipam.NewAllocator()
			p := mustPool(t, "p", entries...)
			a.SetPool(p)
			if got := p.Size(f); got.Cmp(big.NewInt(int64(len(want)))) != 0 {
				t.Errorf("%v: Size(%v) = %s, want %d", entries, f, got, len(want))
			}
			var got []netip.Addr
			for i := 0; ; i++ {
				x, err := a.Allocate("p", f, ipam.Claim{Service: "ns/s" + strconv.Itoa(i)})
				if err != nil {
					var ex *ipam.PoolExhaustedError
					if !errors.As(err, &ex) || ex.Used != uint64(len(want)) || ex.Size.Cmp(big.NewInt(int64(len(want)))) != 0 {
						t.Fatalf("%v %v: allocation %d: %v", entries, f, i, err)
					}
					break
				}
				if i > len(want) {
					t.Fatalf("%v %v: more allocations than usable addresses: %v", entries, f, x)
				}
				got = append(got, x)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%v %v: allocated %v, want %v", entries, f, got, want)
			}
			check(t, a)
			if u := a.Usage("p"); u.Free(f).Sign() != 0 {
				t.Errorf("%v %v: Free = %s after exhaustion", entries, f, u.Free(f))
			}
		}
	}
}

// TestAllocateHeldHoles checks a pool whose holes are held (restored state may hold anything):
// allocation skips runs that cross holes, and the usage counters ignore the held holes, whether
// counted incrementally or by SetPool.
func TestAllocateHeldHoles(t *testing.T) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(t, "p", "2001:db8::fdff:ffff:ffff:ff70-2001:db8::fe00:0:0:10", "2001:db8::ffff:ffff:ffff:fffe-2001:db8:0:1::3"))
	a.SetPool(mustPool(t, "v4", "223.255.255.254-224.0.0.1", "2001:db8::/120"))
	hold := func(from, to string) {
		t.Helper()
		r := netipx.IPRangeFrom(addr(from), addr(to))
		for x := r.From(); !r.To().Less(x); x = x.Next() {
			if err := a.Assign(x, ipam.Claim{Service: "ns/restored"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One run from ff70 through the whole RFC 2526 block to fe00::2, another across the /64
	// boundary, plus held holes elsewhere.
	hold("2001:db8::fdff:ffff:ffff:ff70", "2001:db8::fe00:0:0:2")
	hold("2001:db8::ffff:ffff:ffff:fffe", "2001:db8:0:1::1")
	hold("2001:db8::", "2001:db8::")
	hold("224.0.0.0", "224.0.0.1")
	check(t, a)
	wantUsed := map[string][2]uint64{"p": {0, 16 + 3 + 3}, "v4": {0, 0}}
	for name, want := range wantUsed {
		if u := a.Usage(name); u.Used4 != want[0] || u.Used6 != want[1] {
			t.Errorf("Usage(%s) = %d/%d, want %d/%d", name, u.Used4, u.Used6, want[0], want[1])
		}
	}
	// SetPool recounts the same.
	a.SetPool(mustPool(t, "p", "2001:db8::fdff:ffff:ffff:ff70-2001:db8::fe00:0:0:10", "2001:db8::ffff:ffff:ffff:fffe-2001:db8:0:1::3"))
	a.SetPool(mustPool(t, "v4", "223.255.255.254-224.0.0.1", "2001:db8::/120"))
	check(t, a)
	for name, want := range wantUsed {
		u := a.Usage(name)
		if u.Used4 != want[0] || u.Used6 != want[1] {
			t.Errorf("after SetPool, Usage(%s) = %d/%d, want %d/%d", name, u.Used4, u.Used6, want[0], want[1])
		}
		for _, f := range []ipam.Family{ipam.IPv4, ipam.IPv6} {
			if u.Free(f).Sign() < 0 {
				t.Errorf("Usage(%s).Free(%v) = %s", name, f, u.Free(f))
			}
		}
	}
	for _, want := range []string{"2001:db8::fe00:0:0:3", "2001:db8::fe00:0:0:4"} {
		if got := mustAllocate(t, a, "p", ipam.IPv6, ipam.Claim{Service: "ns/new-" + want}); got != addr(want) {
			t.Fatalf("Allocate = %s, want %s", got, want)
		}
	}
	if got := mustAllocate(t, a, "v4", ipam.IPv6, ipam.Claim{Service: "ns/v6"}); got != addr("2001:db8::1") {
		t.Fatalf("Allocate = %s, want 2001:db8::1", got)
	}
	// Releasing held holes changes no counter.
	a.Release(addr("2001:db8::fdff:ffff:ffff:ff90"), "ns/restored")
	a.Release(addr("224.0.0.1"), "ns/restored")
	check(t, a)
}

// TestAllocateAcrossHugeHoles allocates from pools whose first addresses follow huge unusable
// blocks; the allocator must jump them, not walk them.
func TestAllocateAcrossHugeHoles(t *testing.T) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(t, "all", "0.0.0.0/0", "::/0"))
	a.SetPool(mustPool(t, "mapped", "::fffe:ffff:ffff-::1:0:0:1"))
	for i, want := range []string{"1.0.0.0", "1.0.0.1"} {
		if got := mustAllocate(t, a, "all", ipam.IPv4, ipam.Claim{Service: "ns/v4-" + strconv.Itoa(i)}); got != addr(want) {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	for i, want := range []string{"::fffe:ffff:ffff", "::1:0:0:0", "::1:0:0:1"} {
		if got := mustAllocate(t, a, "mapped", ipam.IPv6, ipam.Claim{Service: "ns/v6-" + strconv.Itoa(i)}); got != addr(want) {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	a.SetPool(mustPool(t, "edge", "126.255.255.254-128.0.0.1", "223.255.255.255-240.0.0.0"))
	for i, want := range []string{"126.255.255.254", "126.255.255.255", "128.0.0.0", "128.0.0.1", "223.255.255.255", "240.0.0.0"} {
		if got := mustAllocate(t, a, "edge", ipam.IPv4, ipam.Claim{Service: "ns/edge-" + strconv.Itoa(i)}); got != addr(want) {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	if _, err := a.Allocate("edge", ipam.IPv4, ipam.Claim{Service: "ns/late"}); !errors.As(err, new(*ipam.PoolExhaustedError)) {
		t.Fatalf("Allocate on full pool: %v", err)
	}
}
