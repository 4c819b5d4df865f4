package ipam_test

import (
	"errors"
	"math/big"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

var (
	tcp80  = ipam.Port{Protocol: "TCP", Number: 80}
	tcp443 = ipam.Port{Protocol: "TCP", Number: 443}
	tcp53  = ipam.Port{Protocol: "TCP", Number: 53}
	udp53  = ipam.Port{Protocol: "UDP", Number: 53}
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = addr(s)
	}
	return out
}

func check(t *testing.T, a *ipam.Allocator) {
	t.Helper()
	if err := a.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func mustAllocate(t *testing.T, a *ipam.Allocator, pool string, f ipam.Family, c ipam.Claim) netip.Addr {
	t.Helper()
	got, err := a.Allocate(pool, f, c)
	if err != nil {
		t.Fatalf("Allocate(%s, %v, %s): %v", pool, f, c.Service, err)
	}
	check(t, a)
	return got
}

func TestAllocateLowestFree(t *testing.T) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(t, "p", "192.168.1.0/29", "192.168.1.100-192.168.1.101", "2001:db8::/126"))
	var got []string
	for i := 0; i < 8; i++ {
		got = append(got, mustAllocate(t, a, "p", ipam.IPv4, ipam.Claim{Service: "ns/s" + strconv.Itoa(i)}).String())
	}
	want := []string{"192.168.1.1", "192.168.1.2", "192.168.1.3", "192.168.1.4", "192.168.1.5", "192.168.1.6",
		"192.168.1.100", "192.168.1.101"}
	if !slices.Equal(got, want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	_, err := a.Allocate("p", ipam.IPv4, ipam.Claim{Service: "ns/late"})
	var ex *ipam.PoolExhaustedError
	if !errors.As(err, &ex) || ex.Used != 8 || ex.Size.Cmp(big.NewInt(8)) != 0 || ex.Pool != "p" || ex.Family != ipam.IPv4 {
		t.Fatalf("Allocate on full pool: %#v", err)
	}
	if err.Error() != `pool "p" is exhausted: 8 of 8 IPv4 addresses in use` {
		t.Fatalf("error text %q", err)
	}
	// Releasing makes the lowest hole the next allocation.
	a.Release(addr("192.168.1.4"), "ns/s3")
	a.Release(addr("192.168.1.2"), "ns/s1")
	check(t, a)
	if got := mustAllocate(t, a, "p", ipam.IPv4, ipam.Claim{Service: "ns/x"}); got != addr("192.168.1.2") {
		t.Fatalf("got %s, want 192.168.1.2", got)
	}
	if got := mustAllocate(t, a, "p", ipam.IPv4, ipam.Claim{Service: "ns/y"}); got != addr("192.168.1.4") {
		t.Fatalf("got %s, want 192.168.1.4", got)
	}
	// IPv6 from the same pool; 2001:db8:: is the subnet-router anycast address of its /64.
	if got := mustAllocate(t, a, "p", ipam.IPv6, ipam.Claim{Service: "ns/s0"}); got != addr("2001:db8::1") {
		t.Fatalf("got %s, want 2001:db8::1", got)
	}
	if got := a.Held("ns/s0"); !slices.Equal(got, addrs("192.168.1.1", "2001:db8::1")) {
		t.Fatalf("Held = %v", got)
	}
}

func TestAllocateErrors(t *testing.T) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(t, "v4only", "10.0.0.0/30"))
	c := ipam.Claim{Service: "ns/a"}
	_, err := a.Allocate("nope", ipam.IPv4, c)
	if e := (*ipam.PoolNotFoundError)(nil); !errors.As(err, &e) || e.Pool != "nope" || err.Error() != `pool "nope" does not exist` {
		t.Errorf("unknown pool: %v", err)
	}
	_, err = a.Allocate("v4only", ipam.IPv6, c)
	if e := (*ipam.NoAddressesError)(nil); !errors.As(err, &e) || e.Family != ipam.IPv6 || err.Error() != `pool "v4only" has no IPv6 addresses` {
		t.Errorf("no IPv6: %v", err)
	}
	if _, err = a.Allocate("v4only", ipam.Family(5), c); !errors.Is(err, ipam.ErrInvalidArgument) {
		t.Errorf("bad family: %v", err)
	}
	if _, err = a.Allocate("v4only", ipam.IPv4, ipam.Claim{}); !errors.Is(err, ipam.ErrInvalidArgument) {
		t.Errorf("no service: %v", err)
	}
	for _, bad := range []netip.Addr{{}, addr("fe80::1%eth0"), addr("::ffff:10.0.0.1")} {
		if err := a.Assign(bad, c); !errors.Is(err, ipam.ErrInvalidArgument) {
			t.Errorf("Assign(%v): %v", bad, err)
		}
	}
	if err := a.Assign(addr("10.0.0.1"), ipam.Claim{}); !errors.Is(err, ipam.ErrInvalidArgument) {
		t.Errorf("Assign without service: %v", err)
	}
	check(t, a)
}

func TestSharing(t *testing.T) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(t, "p", "192.168.1.240-192.168.1.250"))
	web := ipam.Claim{Service: "default/web", SharingKey: "k", Ports: []ipam.Port{tcp80, tcp443}}
	dnsTCP := ipam.Claim{Service: "default/dns-tcp", SharingKey: "k", Ports: []ipam.Port{tcp53}}
	dnsUDP := ipam.Claim{Service: "default/dns-udp", SharingKey: "k", Ports: []ipam.Port{udp53}}
	web2 := ipam.Claim{Service: "default/web2", SharingKey: "k", Ports: []ipam.Port{tcp80}}
	other := ipam.Claim{Service: "default/other", SharingKey: "other", Ports: []ipam.Port{udp53}}
	excl := ipam.Claim{Service: "default/excl"}

	first := mustAllocate(t, a, "p", ipam.IPv4, web)
	if first != addr("192.168.1.240") {
		t.Fatalf("web got %s", first)
	}
	for _, c := range []ipam.Claim{dnsTCP, dnsUDP} {
		if got := mustAllocate(t, a, "p", ipam.IPv4, c); got != first {
			t.Fatalf("%s got %s, want shared %s", c.Service, got, first)
		}
	}
	if got := mustAllocate(t, a, "p", ipam.IPv4, web2); got != addr("192.168.1.241") {
		t.Fatalf("web2 (port clash) got %s", got)
	}
	if got := mustAllocate(t, a, "p", ipam.IPv4, other); got != addr("192.168.1.242") {
		t.Fatalf("other key got %s", got)
	}
	if got := mustAllocate(t, a, "p", ipam.IPv4, excl); got != addr("192.168.1.243") {
		t.Fatalf("exclusive got %s", got)
	}
	// A Service with the key and port 443 shares .241 (web2 has only 80), the lowest compatible.
	tls := ipam.Claim{Service: "default/tls", SharingKey: "k", Ports: []ipam.Port{tcp443}}
	if got := mustAllocate(t, a, "p", ipam.IPv4, tls); got != addr("192.168.1.241") {
		t.Fatalf("tls got %s", got)
	}
	holders := a.Holders(first)
	var names []string
	for _, h := range holders {
		names = append(names, h.Service)
	}
	if !slices.Equal(names, []string{"default/dns-tcp", "default/dns-udp", "default/web"}) {
		t.Fatalf("Holders(%s) = %v", first, names)
	}
	if u := a.Usage("p"); u.Used4 != 4 || u.Free(ipam.IPv4).Int64() != 7 {
		t.Fatalf("Usage = %+v free %s", u, u.Free(ipam.IPv4))
	}

	// Assign conflicts produce precise errors.
	for _, tc := range []struct {
		at   string
		c    ipam.Claim
		want string
	}{
		{"192.168.1.243", web2, `192.168.1.243 is held by default/excl, which has no sharing key`},
		{"192.168.1.242", web2, `192.168.1.242 is held by default/other with sharing key "other"; sharing keys differ`},
		{"192.168.1.240", ipam.Claim{Service: "ns/x", Ports: []ipam.Port{tcp80}}, `192.168.1.240 is held by default/dns-tcp with sharing key "k"; sharing keys differ`},
		{"192.168.1.240", ipam.Claim{Service: "ns/x", SharingKey: "k", Ports: []ipam.Port{udp53, tcp53}},
			`192.168.1.240 is held by default/dns-tcp with sharing key "k"; ports 53/TCP overlap`},
		{"192.168.1.240", ipam.Claim{Service: "ns/x", SharingKey: "k", Ports: []ipam.Port{tcp443, tcp80}},
			`192.168.1.240 is held by default/web with sharing key "k"; ports 80/TCP, 443/TCP overlap`},
		{"192.168.1.240", ipam.Claim{Service: "ns/x", SharingKey: "k", Ports: []ipam.Port{{Protocol: "TCP", Number: 8080}}, Backend: "app=x"},
			`192.168.1.240 is held by default/dns-tcp with sharing key "k"; with externalTrafficPolicy Local both Services must select the same pods`},
	} {
		err := a.Assign(addr(tc.at), tc.c)
		var iu *ipam.InUseError
		if !errors.As(err, &iu) || iu.Addr != addr(tc.at) {
			t.Errorf("Assign(%s, %s) = %v, want *InUseError", tc.at, tc.c.Service, err)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Assign(%s, %s):\n got %s\nwant %s", tc.at, tc.c.Service, err, tc.want)
		}
	}
	check(t, a)

	// Updating a holder's claim re-checks compatibility with the others.
	webWithDNS := web
	webWithDNS.Ports = []ipam.Port{tcp80, udp53}
	if err := a.Assign(first, webWithDNS); err == nil || err.Error() != `192.168.1.240 is held by default/dns-udp with sharing key "k"; ports 53/UDP overlap` {
		t.Fatalf("conflicting update: %v", err)
	}
	webNoKey := web
	webNoKey.SharingKey = ""
	if err := a.Assign(first, webNoKey); err == nil {
		t.Fatal("dropping the key of a shared address succeeded")
	}
	web8080 := web
	web8080.Ports = []ipam.Port{{Protocol: "TCP", Number: 8080}}
	if err := a.Assign(first, web8080); err != nil {
		t.Fatal(err)
	}
	if h := a.Holders(first); !reflect.DeepEqual(h[2], web8080) {
		t.Fatalf("claim not updated: %+v", h[2])
	}
	check(t, a)

	// The sole holder may change its key; the address then shares under the new key.
	if err := a.Assign(addr("192.168.1.243"), ipam.Claim{Service: "default/excl", SharingKey: "new"}); err != nil {
		t.Fatal(err)
	}
	check(t, a)
	if got := mustAllocate(t, a, "p", ipam.IPv4, ipam.Claim{Service: "ns/joiner", SharingKey: "new"}); got != addr("192.168.1.243") {
		t.Fatalf("joiner got %s", got)
	}
	// Once the last holder under a key leaves, the address is free again.
	a.Release(addr("192.168.1.242"), "default/other")
	if got := mustAllocate(t, a, "p", ipam.IPv4, ipam.Claim{Service: "ns/late", SharingKey: "other"}); got != addr("192.168.1.242") {
		t.Fatalf("late got %s", got)
	}
	// A Service already holding an address under its key gets it back.
	if got := mustAllocate(t, a, "p", ipam.IPv4, ipam.Claim{Service: "ns/late", SharingKey: "other"}); got != addr("192.168.1.242") {
		t.Fatalf("repeat got %s", got)
	}
	if got := a.Held("ns/late"); len(got) != 1 {
		t.Fatalf("Held = %v", got)
	}
}

func TestHoldersAreCopies(t *testing.T) {
	a := ipam.NewAllocator()
	ports := []ipam.Port{tcp80}
	if err := a.Assign(addr("10.0.0.1"), ipam.Claim{Service: "ns/a", Ports: ports}); err != nil {
		t.Fatal(err)
	}
	ports[0] = tcp443 // the caller's slice
	h := a.Holders(addr("10.0.0.1"))
	if h[0].Ports[0] != tcp80 {
		t.Fatal("Assign kept the caller's slice")
	}
	h[0].Ports[0] = tcp443
	if a.Holders(addr("10.0.0.1"))[0].Ports[0] != tcp80 {
		t.Fatal("Holders returned internal slice")
	}
	held := a.Held("ns/a")
	held[0] = addr("1.1.1.1")
	if a.Held("ns/a")[0] != addr("10.0.0.1") {
		t.Fatal("Held returned internal slice")
	}
}

func TestAssignReleaseOutsidePools(t *testing.T) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(t, "p", "10.0.0.0/29"))
	// Restored state: inside and outside the pool, idempotent.
	for _, s := range []string{"10.0.0.2", "172.16.0.1", "2001:db8::1", "10.0.0.2"} {
		if err := a.Assign(addr(s), ipam.Claim{Service: "ns/a"}); err != nil {
			t.Fatal(err)
		}
		check(t, a)
	}
	if got := a.Held("ns/a"); !slices.Equal(got, addrs("10.0.0.2", "172.16.0.1", "2001:db8::1")) {
		t.Fatalf("Held = %v", got)
	}
	if u := a.Usage("p"); u.Used4 != 1 || u.Used6 != 0 {
		t.Fatalf("Usage = %+v", u)
	}
	if got := mustAllocate(t, a, "p", ipam.IPv4, ipam.Claim{Service: "ns/b"}); got != addr("10.0.0.1") {
		t.Fatalf("got %s", got)
	}
	if got := mustAllocate(t, a, "p", ipam.IPv4, ipam.Claim{Service: "ns/c"}); got != addr("10.0.0.3") {
		t.Fatalf("got %s", got)
	}
	a.Release(addr("10.0.0.3"), "ns/nobody") // not a holder: no-op
	a.Release(addr("10.0.0.9"), "ns/c")      // not held: no-op
	check(t, a)
	if got := a.ReleaseAll("ns/a"); !slices.Equal(got, addrs("10.0.0.2", "172.16.0.1", "2001:db8::1")) {
		t.Fatalf("ReleaseAll = %v", got)
	}
	check(t, a)
	if got := a.ReleaseAll("ns/a"); len(got) != 0 {
		t.Fatalf("second ReleaseAll = %v", got)
	}
	if got := a.Held("ns/a"); len(got) != 0 {
		t.Fatalf("Held after ReleaseAll = %v", got)
	}
	if got := a.Holders(addr("172.16.0.1")); got != nil {
		t.Fatalf("Holders after release = %v", got)
	}
	if got := mustAllocate(t, a, "p", ipam.IPv4, ipam.Claim{Service: "ns/d"}); got != addr("10.0.0.2") {
		t.Fatalf("got %s", got)
	}
}

func TestPoolsAndUsage(t *testing.T) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(t, "b", "10.0.0.0/28", "2001:db8::/64"))
	a.SetPool(mustPool(t, "a", "10.0.0.8-10.0.0.20"))
	a.SetPool(mustPool(t, "c", "192.168.0.0/16"))
	if got := a.PoolNames(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("PoolNames = %v", got)
	}
	for _, s := range []string{"10.0.0.1", "10.0.0.9", "10.0.0.10", "10.0.0.16", "10.0.0.30", "2001:db8::5", "2001:db8::6"} {
		if err := a.Assign(addr(s), ipam.Claim{Service: "ns/" + s}); err != nil {
			t.Fatal(err)
		}
	}
	check(t, a)
	if got := a.PoolsContaining(addr("10.0.0.9")); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("PoolsContaining = %v", got)
	}
	if got := a.PoolsContaining(addr("10.0.0.30")); len(got) != 0 {
		t.Fatalf("PoolsContaining = %v", got)
	}
	slash64 := new(big.Int).Lsh(big.NewInt(1), 64)
	slash64.Sub(slash64, big.NewInt(129))
	for _, tc := range []struct {
		pool                string
		used4, used6        uint64
		size4, size6, free6 *big.Int
	}{
		{"a", 3, 0, big.NewInt(13), big.NewInt(0), big.NewInt(0)},
		{"b", 3, 2, big.NewInt(14), slash64, new(big.Int).Sub(slash64, big.NewInt(2))},
		{"c", 0, 0, big.NewInt(65534), big.NewInt(0), big.NewInt(0)},
	} {
		u := a.Usage(tc.pool)
		if u.Used4 != tc.used4 || u.Used6 != tc.used6 || u.Size4.Cmp(tc.size4) != 0 || u.Size6.Cmp(tc.size6) != 0 {
			t.Errorf("Usage(%s) = %+v", tc.pool, u)
		}
		if got := u.Free(ipam.IPv6); got.Cmp(tc.free6) != 0 {
			t.Errorf("Usage(%s).Free(IPv6) = %s, want %s", tc.pool, got, tc.free6)
		}
		if got, want := u.Free(ipam.IPv4), new(big.Int).Sub(tc.size4, big.NewInt(int64(tc.used4))); got.Cmp(want) != 0 {
			t.Errorf("Usage(%s).Free(IPv4) = %s, want %s", tc.pool, got, want)
		}
	}
	if u := a.Usage("zzz"); !reflect.DeepEqual(u, ipam.Usage{}) || u.Free(ipam.IPv4).Sign() != 0 {
		t.Errorf("Usage(unknown) = %+v", u)
	}

	// Replacing a pool recounts; allocations are never dropped.
	a.SetPool(mustPool(t, "a", "10.0.0.16-10.0.0.40"))
	check(t, a)
	if u := a.Usage("a"); u.Used4 != 2 {
		t.Errorf("after replace, Usage(a) = %+v", u)
	}
	a.SetPool(mustPool(t, "b", "172.16.0.0/24"))
	check(t, a)
	if got := a.Held("ns/10.0.0.1"); !slices.Equal(got, addrs("10.0.0.1")) {
		t.Errorf("allocation dropped: %v", got)
	}
	if p, ok := a.Pool("b"); !ok || p.Name() != "b" || rangesString(p.Ranges()) != "172.16.0.1-172.16.0.254" {
		t.Errorf("Pool(b) = %v, %v", p, ok)
	}
	a.DeletePool("b")
	a.DeletePool("never")
	check(t, a)
	if _, ok := a.Pool("b"); ok {
		t.Error("Pool(b) still there")
	}
	if got := a.PoolNames(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("PoolNames = %v", got)
	}
	if got := a.Held("ns/2001:db8::5"); len(got) != 1 {
		t.Error("DeletePool dropped an allocation")
	}
	if _, err := a.Allocate("b", ipam.IPv4, ipam.Claim{Service: "ns/x"}); !errors.As(err, new(*ipam.PoolNotFoundError)) {
		t.Errorf("Allocate from deleted pool: %v", err)
	}
}

func TestAddressSpaceEdges(t *testing.T) {
	// The lowest and highest usable addresses of each family: 1.0.0.0 follows this-network,
	// 255.255.255.254 precedes broadcast, ::2 follows loopback and feff:...:ffff precedes
	// multicast.
	a := ipam.NewAllocator()
	a.SetPool(mustPool(t, "top", "255.255.255.254/31", "feff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127", "0.0.0.0/7", "::/126"))
	var got []string
	for i := 0; i < 4; i++ {
		got = append(got, mustAllocate(t, a, "top", ipam.IPv4, ipam.Claim{Service: "ns/v4-" + strconv.Itoa(i)}).String())
		got = append(got, mustAllocate(t, a, "top", ipam.IPv6, ipam.Claim{Service: "ns/v6-" + strconv.Itoa(i)}).String())
	}
	want := []string{"1.0.0.0", "::2", "1.0.0.1", "::3", "1.0.0.2", "feff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
		"1.0.0.3", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := a.Allocate("top", ipam.IPv6, ipam.Claim{Service: "ns/x"}); !errors.As(err, new(*ipam.PoolExhaustedError)) {
		t.Fatalf("IPv6: %v", err)
	}
	// Restored state may hold the very last addresses; the run index copes with x.Next() being
	// invalid.
	for _, s := range []string{"255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0.0.0.0", "::"} {
		if err := a.Assign(addr(s), ipam.Claim{Service: "ns/restored"}); err != nil {
			t.Fatal(err)
		}
	}
	check(t, a)
	a.Release(addr("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "ns/v6-3")
	a.Release(addr("::2"), "ns/v6-0")
	check(t, a)
	if got := mustAllocate(t, a, "top", ipam.IPv6, ipam.Claim{Service: "ns/y"}); got != addr("::2") {
		t.Fatalf("got %s", got)
	}
	if got := mustAllocate(t, a, "top", ipam.IPv6, ipam.Claim{Service: "ns/z"}); got != addr("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") {
		t.Fatalf("got %s", got)
	}
	if u := a.Usage("top"); u.Used6 != 4 || u.Size6.Int64() != 4 || u.Used4 != 4 {
		t.Fatalf("Usage = %+v", u)
	}
}

// TestLargePools checks that huge pools cost nothing: a /64 and a /8 behave like tiny ones.
func TestLargePools(t *testing.T) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(t, "big", "2001:db8::/64", "10.0.0.0/8"))
	for i := 0; i < 1000; i++ {
		v6 := mustAllocate(t, a, "big", ipam.IPv6, ipam.Claim{Service: "ns/s" + strconv.Itoa(i)})
		if want := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte((i + 1) >> 8), 15: byte(i + 1)}); v6 != want {
			t.Fatalf("allocation %d = %s, want %s", i, v6, want)
		}
		mustAllocate(t, a, "big", ipam.IPv4, ipam.Claim{Service: "ns/s" + strconv.Itoa(i)})
	}
	if got := a.RunCount(); got != 2 {
		t.Fatalf("%d runs, want 2 (one per family)", got)
	}
	u := a.Usage("big")
	if u.Used6 != 1000 || u.Used4 != 1000 {
		t.Fatalf("Usage = %+v", u)
	}
	want := new(big.Int).Lsh(big.NewInt(1), 64)
	want.Sub(want, big.NewInt(129+1000))
	if got := u.Free(ipam.IPv6); got.Cmp(want) != 0 {
		t.Fatalf("Free(IPv6) = %s, want %s", got, want)
	}
	// Recounting on SetPool walks runs, not addresses.
	a.SetPool(mustPool(t, "big2", "2001:db8::/48"))
	if u := a.Usage("big2"); u.Used6 != 1000 {
		t.Fatalf("Usage(big2) = %+v", u)
	}
}
