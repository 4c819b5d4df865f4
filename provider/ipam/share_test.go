package ipam_test

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

func mustShare(t *testing.T, a *ipam.Allocator, pool string, f ipam.Family, c ipam.Claim) (netip.Addr, bool) {
	t.Helper()
	got, ok, err := a.Share(pool, f, c)
	if err != nil {
		t.Fatalf("Share(%s, %v, %s): %v", pool, f, c.Service, err)
	}
	if ok != got.IsValid() {
		t.Fatalf("Share(%s, %v, %s) = %v, %v", pool, f, c.Service, got, ok)
	}
	check(t, a)
	return got, ok
}

// TestShareAcrossPools is the case Allocate alone gets wrong: the compatible sharer is in the
// second candidate pool, and the first has free addresses.
func TestShareAcrossPools(t *testing.T) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(t, "first", "192.168.1.0/29"))
	a.SetPool(mustPool(t, "second", "192.168.2.0/29", "2001:db8::/120"))
	dnsTCP := ipam.Claim{Service: "ns/dns-tcp", SharingKey: "dns", Ports: []ipam.Port{tcp53}}
	dnsUDP := ipam.Claim{Service: "ns/dns-udp", SharingKey: "dns", Ports: []ipam.Port{udp53}}
	held := mustAllocate(t, a, "second", ipam.IPv4, dnsTCP)

	if got, ok := mustShare(t, a, "first", ipam.IPv4, dnsUDP); ok {
		t.Fatalf("Share(first) = %s, want none", got)
	}
	if got := a.Held(dnsUDP.Service); len(got) != 0 {
		t.Fatalf("a failed Share assigned %v", got)
	}
	got, ok := mustShare(t, a, "second", ipam.IPv4, dnsUDP)
	if !ok || got != held {
		t.Fatalf("Share(second) = %s, %v; want %s", got, ok, held)
	}
	if h := a.Holders(held); len(h) != 2 || !reflect.DeepEqual(h[1], dnsUDP) {
		t.Fatalf("Holders(%s) = %+v", held, h)
	}
	// Again for the same Service: its own hold does not stand in its way.
	if again, ok := mustShare(t, a, "second", ipam.IPv4, dnsUDP); !ok || again != held {
		t.Fatalf("Share again = %s, %v", again, ok)
	}
	// A third Service with an overlapping port cannot share; one under another key neither.
	for _, c := range []ipam.Claim{
		{Service: "ns/dns-udp2", SharingKey: "dns", Ports: []ipam.Port{udp53}},
		{Service: "ns/web", SharingKey: "web", Ports: []ipam.Port{tcp80}},
		{Service: "ns/excl", Ports: []ipam.Port{tcp80}},
	} {
		if got, ok := mustShare(t, a, "second", ipam.IPv4, c); ok {
			t.Errorf("Share(%+v) = %s, want none", c, got)
		}
	}
	// No address of the family is no error.
	if got, ok := mustShare(t, a, "first", ipam.IPv6, dnsUDP); ok {
		t.Fatalf("Share(first, IPv6) = %s", got)
	}
}

func TestShareLowestCompatible(t *testing.T) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(t, "p", "2001:db8::/120"))
	// A held hole under the key (restored state) is not the pool's to share.
	if err := a.Assign(addr("2001:db8::"), ipam.Claim{Service: "ns/restored", SharingKey: "k"}); err != nil {
		t.Fatal(err)
	}
	web := ipam.Claim{Service: "ns/web", SharingKey: "k", Ports: []ipam.Port{tcp80}}
	if got, ok := mustShare(t, a, "p", ipam.IPv6, web); ok {
		t.Fatalf("Share = %s, a hole", got)
	}
	if got := mustAllocate(t, a, "p", ipam.IPv6, web); got != addr("2001:db8::1") {
		t.Fatalf("Allocate = %s, want 2001:db8::1", got)
	}
	web2 := ipam.Claim{Service: "ns/web2", SharingKey: "k", Ports: []ipam.Port{tcp80}}
	if got := mustAllocate(t, a, "p", ipam.IPv6, web2); got != addr("2001:db8::2") {
		t.Fatalf("Allocate = %s, want 2001:db8::2", got)
	}
	tls := ipam.Claim{Service: "ns/tls", SharingKey: "k", Ports: []ipam.Port{tcp443}}
	if got, ok := mustShare(t, a, "p", ipam.IPv6, tls); !ok || got != addr("2001:db8::1") {
		t.Fatalf("Share = %s, %v; want 2001:db8::1", got, ok)
	}
	// Port 443 of the lowest is taken now; the next compatible address is ::2.
	tls2 := ipam.Claim{Service: "ns/tls2", SharingKey: "k", Ports: []ipam.Port{tcp443}}
	if got, ok := mustShare(t, a, "p", ipam.IPv6, tls2); !ok || got != addr("2001:db8::2") {
		t.Fatalf("Share = %s, %v; want 2001:db8::2", got, ok)
	}
}

func TestShareErrors(t *testing.T) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(t, "p", "10.0.0.0/30"))
	c := ipam.Claim{Service: "ns/a", SharingKey: "k"}
	if _, err := a.Allocate("p", ipam.IPv4, ipam.Claim{Service: "ns/holder", SharingKey: "k"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pool string
		f    ipam.Family
		c    ipam.Claim
		want func(error) bool
	}{
		{"nope", ipam.IPv4, c, func(err error) bool {
			var e *ipam.PoolNotFoundError
			return errors.As(err, &e) && e.Pool == "nope"
		}},
		{"p", ipam.Family(5), c, func(err error) bool { return errors.Is(err, ipam.ErrInvalidArgument) }},
		{"p", ipam.IPv4, ipam.Claim{SharingKey: "k"}, func(err error) bool { return errors.Is(err, ipam.ErrInvalidArgument) }},
		{"p", ipam.IPv4, ipam.Claim{}, func(err error) bool { return errors.Is(err, ipam.ErrInvalidArgument) }},
	} {
		got, ok, err := a.Share(tc.pool, tc.f, tc.c)
		if !tc.want(err) || ok || got.IsValid() {
			t.Errorf("Share(%s, %v, %+v) = %v, %v, %v", tc.pool, tc.f, tc.c, got, ok, err)
		}
	}
	// Without a sharing key there is nothing to share, and no error.
	if got, ok, err := a.Share("p", ipam.IPv4, ipam.Claim{Service: "ns/a"}); ok || err != nil || got.IsValid() {
		t.Errorf("Share without key = %v, %v, %v", got, ok, err)
	}
	check(t, a)
}
