package ipam_test

import (
	"errors"
	"math/big"
	"net/netip"
	"reflect"
	"testing"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

func TestErrorTexts(t *testing.T) {
	vip := netip.MustParseAddr("192.168.1.246")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&ipam.PoolExhaustedError{Pool: "first-pool", Family: ipam.IPv4, Used: 11, Size: big.NewInt(11)},
			`pool "first-pool" is exhausted: 11 of 11 IPv4 addresses in use`},
		{&ipam.PoolExhaustedError{Pool: "p", Family: ipam.IPv6, Used: 3}, `pool "p" is exhausted: 3 of 0 IPv6 addresses in use`},
		{&ipam.NoAddressesError{Pool: "p", Family: ipam.IPv6}, `pool "p" has no IPv6 addresses`},
		{&ipam.NoAddressesError{Pool: "p", Family: ipam.IPv4}, `pool "p" has no IPv4 addresses`},
		{&ipam.PoolNotFoundError{Pool: "p"}, `pool "p" does not exist`},
		{&ipam.InUseError{Addr: vip, Holder: "default/web"},
			`192.168.1.246 is held by default/web, which has no sharing key`},
		{&ipam.InUseError{Addr: vip, Holder: "default/web", HolderSharingKey: "a"},
			`192.168.1.246 is held by default/web with sharing key "a"; sharing keys differ`},
		{&ipam.InUseError{Addr: vip, Holder: "default/web", HolderSharingKey: "a", Overlap: []ipam.Port{{"TCP", 80}}},
			`192.168.1.246 is held by default/web with sharing key "a"; ports 80/TCP overlap`},
		{&ipam.InUseError{Addr: vip, Holder: "default/web", HolderSharingKey: "a", Overlap: []ipam.Port{{"TCP", 53}, {"UDP", 53}}},
			`192.168.1.246 is held by default/web with sharing key "a"; ports 53/TCP, 53/UDP overlap`},
		{&ipam.InUseError{Addr: vip, Holder: "default/web", HolderSharingKey: "a", BackendMismatch: true},
			`192.168.1.246 is held by default/web with sharing key "a"; with externalTrafficPolicy Local both Services must select the same pods`},
		{&ipam.InUseError{Addr: vip, Holder: "default/web", HolderSharingKey: "a", Overlap: []ipam.Port{{"TCP", 80}}, BackendMismatch: true},
			`192.168.1.246 is held by default/web with sharing key "a"; ports 80/TCP overlap; with externalTrafficPolicy Local both Services must select the same pods`},
		{&ipam.InUseError{Holder: "default/web"}, `the address is held by default/web, which has no sharing key`},
		{&ipam.ParseError{Input: "x", Reason: "bad"}, `invalid address "x": bad`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%#v.Error():\n got %s\nwant %s", tc.err, got, tc.want)
		}
	}
}

func TestCompatible(t *testing.T) {
	web := func(key string, backend string, ports ...ipam.Port) ipam.Claim {
		return ipam.Claim{Service: "default/web", SharingKey: key, Ports: ports, Backend: backend}
	}
	dns := func(key string, backend string, ports ...ipam.Port) ipam.Claim {
		return ipam.Claim{Service: "default/dns", SharingKey: key, Ports: ports, Backend: backend}
	}
	tcp80, tcp443 := ipam.Port{Protocol: "TCP", Number: 80}, ipam.Port{Protocol: "TCP", Number: 443}
	tcp53, udp53 := ipam.Port{Protocol: "TCP", Number: 53}, ipam.Port{Protocol: "UDP", Number: 53}
	for _, tc := range []struct {
		name         string
		held, wanted ipam.Claim
		want         *ipam.InUseError // nil: compatible
	}{
		{"both exclusive", web("", "", tcp80), dns("", "", tcp53),
			&ipam.InUseError{Holder: "default/web"}},
		{"held exclusive", web("", "", tcp80), dns("a", "", tcp53),
			&ipam.InUseError{Holder: "default/web"}},
		{"wanted exclusive", web("a", "", tcp80), dns("", "", tcp53),
			&ipam.InUseError{Holder: "default/web", HolderSharingKey: "a"}},
		{"keys differ", web("a", "", tcp80), dns("b", "", tcp53),
			&ipam.InUseError{Holder: "default/web", HolderSharingKey: "a"}},
		{"keys differ, ports overlap too", web("a", "", tcp80), dns("b", "", tcp80),
			&ipam.InUseError{Holder: "default/web", HolderSharingKey: "a"}},
		{"disjoint ports", web("a", "", tcp80, tcp443), dns("a", "", tcp53, udp53), nil},
		{"same number, other protocol", web("a", "", tcp53), dns("a", "", udp53), nil},
		{"no ports", web("a", ""), dns("a", ""), nil},
		{"one overlap", web("a", "", tcp80, tcp443), dns("a", "", tcp80, tcp53),
			&ipam.InUseError{Holder: "default/web", HolderSharingKey: "a", Overlap: []ipam.Port{tcp80}}},
		{"overlaps sorted and deduplicated", web("a", "", udp53, tcp53, tcp80), dns("a", "", udp53, tcp80, tcp53, udp53),
			&ipam.InUseError{Holder: "default/web", HolderSharingKey: "a", Overlap: []ipam.Port{tcp53, udp53, tcp80}}},
		{"same backend", web("a", "app=web", tcp80), dns("a", "app=web", tcp53), nil},
		{"different backends", web("a", "app=web", tcp80), dns("a", "app=dns", tcp53),
			&ipam.InUseError{Holder: "default/web", HolderSharingKey: "a", BackendMismatch: true}},
		{"local and cluster", web("a", "app=web", tcp80), dns("a", "", tcp53),
			&ipam.InUseError{Holder: "default/web", HolderSharingKey: "a", BackendMismatch: true}},
		{"cluster and local", web("a", "", tcp80), dns("a", "app=web", tcp53),
			&ipam.InUseError{Holder: "default/web", HolderSharingKey: "a", BackendMismatch: true}},
		{"ports and backends", web("a", "app=web", tcp80), dns("a", "", tcp80),
			&ipam.InUseError{Holder: "default/web", HolderSharingKey: "a", Overlap: []ipam.Port{tcp80}, BackendMismatch: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ipam.Compatible(tc.held, tc.wanted)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Compatible = %v, want nil", err)
				}
				return
			}
			var got *ipam.InUseError
			if !errors.As(err, &got) {
				t.Fatalf("Compatible = %v (%T), want *InUseError", err, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Compatible = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestPortString(t *testing.T) {
	if got := (ipam.Port{Protocol: "UDP", Number: 53}).String(); got != "53/UDP" {
		t.Errorf("Port.String() = %q", got)
	}
}
