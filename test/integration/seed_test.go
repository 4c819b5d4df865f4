package integration

import (
	"testing"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// TestSeedDemo is the demo the project grew from: an nginx Service stuck in <pending> gets the
// first address of pool 192.168.1.240-192.168.1.250. The addresses are API data only here.
func TestSeedDemo(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "first-pool", v1alpha1.IPPoolSpec{Addresses: addrs("192.168.1.240-192.168.1.250")})
	createService(t, newService(ns, "nginx"))

	ips := waitIngress(t, ns, "nginx", 1, waitTimeout)
	if ips[0] != "192.168.1.240" {
		t.Fatalf("nginx got %v, want 192.168.1.240", ips)
	}
	nginx := getService(t, ns, "nginx")
	expectNoPin(t, nginx)
	if got := attributedPool(t, nginx, "192.168.1.240"); got != "first-pool" {
		t.Errorf("192.168.1.240 is attributed to pool %q, want first-pool", got)
	}
	pool := waitPool(t, "first-pool", "usage 1 of 11", func(p *v1alpha1.IPPool) bool {
		return p.Status.IPv4 != nil && p.Status.IPv4.Used == 1
	})
	if c := pool.Status.IPv4; c.Total != "11" || c.Free != "10" || pool.Status.IPv6 != nil {
		t.Errorf("pool status counts: ipv4 %+v ipv6 %+v, want total 11 free 10 and no IPv6", c, pool.Status.IPv6)
	}
	for _, cond := range []struct {
		typ, status string
	}{
		{v1alpha1.ConditionValid, "True"},
		{v1alpha1.ConditionOverlapping, "False"},
		{v1alpha1.ConditionExhausted, "False"},
	} {
		c := poolCondition(pool, cond.typ)
		if c == nil || string(c.Status) != cond.status {
			t.Errorf("condition %s = %+v, want %s", cond.typ, c, cond.status)
		}
	}
	requireCCMAlive(t)
}
