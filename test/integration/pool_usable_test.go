package integration

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// TestPoolsSkipUnusableAddresses: a pool's range that runs into addresses no VIP can be (IPv4
// multicast, an IPv6 /64's subnet-router anycast address) hands out only the usable ones, and
// its status counts only those. The addresses are API data only: nothing is sent to them. The
// old code handed out 224.0.0.0 to the third IPv4 Service, and counted the /126 as 4 usable
// addresses starting with 2001:db8:0:1::.
func TestPoolsSkipUnusableAddresses(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "usable-v4", v1alpha1.IPPoolSpec{Addresses: addrs("223.255.255.254-224.0.0.2")})
	createPool(t, ns, "usable-v6", v1alpha1.IPPoolSpec{Addresses: addrs("2001:db8:0:1::/126")})

	for i, want := range []string{"223.255.255.254", "223.255.255.255"} {
		name := fmt.Sprintf("v4-%d", i)
		createService(t, newService(ns, name))
		if got := waitIngress(t, ns, name, 1, waitTimeout); got[0] != want {
			t.Errorf("%s got %v, want %s", name, got, want)
		}
	}
	createService(t, newService(ns, "v4-multicast"))
	waitEvent(t, ns, "v4-multicast", v1.EventTypeWarning, `pool "usable-v4" is exhausted: 2 of 2 IPv4 addresses in use`)
	assertStaysPending(t, ns, "v4-multicast", time.Second)

	for i, want := range []string{"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1::3"} {
		name := fmt.Sprintf("v6-%d", i)
		createService(t, withFamilies(newService(ns, name), v1.IPFamilyPolicySingleStack, v1.IPv6Protocol))
		if got := waitIngress(t, ns, name, 1, waitTimeout); got[0] != want {
			t.Errorf("%s got %v, want %s", name, got, want)
		}
	}
	createService(t, withFamilies(newService(ns, "v6-anycast"), v1.IPFamilyPolicySingleStack, v1.IPv6Protocol))
	waitEvent(t, ns, "v6-anycast", v1.EventTypeWarning, `pool "usable-v6" is exhausted: 3 of 3 IPv6 addresses in use`)
	assertStaysPending(t, ns, "v6-anycast", time.Second)

	waitPool(t, "usable-v4", "2 IPv4 addresses, both used", func(p *v1alpha1.IPPool) bool {
		return p.Status.IPv4 != nil && p.Status.IPv4.Total == "2" && p.Status.IPv4.Used == 2 && p.Status.IPv4.Free == "0"
	})
	waitPool(t, "usable-v6", "3 IPv6 addresses, all used", func(p *v1alpha1.IPPool) bool {
		return p.Status.IPv6 != nil && p.Status.IPv6.Total == "3" && p.Status.IPv6.Used == 3 && p.Status.IPv6.Free == "0"
	})
	requireCCMAlive(t)
}

// TestIPv6RangeAcrossMappedBlock: an IPv6 range spanning ::ffff:0:0/96 (IPv4-mapped addresses,
// which are no VIPs) hands out the addresses on both sides of it, in order. The old code failed
// every allocation once the next free address fell into the mapped block: the third Service got
// "invalid argument: ::ffff:0.0.0.0 is an IPv4-mapped IPv6 address" and stayed pending.
func TestIPv6RangeAcrossMappedBlock(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "across-mapped", v1alpha1.IPPoolSpec{Addresses: addrs("::fffe:ffff:fffe-::1:0:0:1")})
	for i, want := range []string{"::fffe:ffff:fffe", "::fffe:ffff:ffff", "::1:0:0:0", "::1:0:0:1"} {
		name := fmt.Sprintf("v6-%d", i)
		createService(t, withFamilies(newService(ns, name), v1.IPFamilyPolicySingleStack, v1.IPv6Protocol))
		if got := waitIngress(t, ns, name, 1, waitTimeout); got[0] != want {
			t.Errorf("%s got %v, want %s", name, got, want)
		}
	}
	createService(t, withFamilies(newService(ns, "v6-none-left"), v1.IPFamilyPolicySingleStack, v1.IPv6Protocol))
	waitEvent(t, ns, "v6-none-left", v1.EventTypeWarning, `pool "across-mapped" is exhausted: 4 of 4 IPv6 addresses in use`)
	waitPool(t, "across-mapped", "4 IPv6 addresses", func(p *v1alpha1.IPPool) bool {
		return p.Status.IPv6 != nil && p.Status.IPv6.Total == "4" && p.Status.IPv6.Used == 4
	})
	requireCCMAlive(t)
}
