package integration

import (
	"testing"

	v1alpha1 "github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider"
)

// TestPoolAttribution: a VIP's address tells its pool without a write; where it would tell the
// wrong one, the CCM pins the pool in the allocated-pool annotation: at allocation (a Service
// that asked for an overlapping, lower-priority pool) and after a pool edit (a higher-priority
// pool created over a held VIP).
func TestPoolAttribution(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "attr-home", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.24.1-198.18.24.6")})
	createService(t, newService(ns, "early"))
	if got := waitIngress(t, ns, "early", 1, waitTimeout); got[0] != "198.18.24.1" {
		t.Fatalf("early got %v, want 198.18.24.1", got)
	}
	expectNoPin(t, getService(t, ns, "early"))

	// Over it, first by priority, handing out nothing by itself.
	createPool(t, ns, "attr-over", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.24.0/29"), Priority: -10, AutoAssign: ptrTo(false)})
	waitFor(t, "early's VIP pinned to attr-home", func() bool {
		return getService(t, ns, "early").Annotations[provider.AnnotationAllocatedPool] == "198.18.24.1=attr-home"
	})
	if got := attributedPool(t, getService(t, ns, "early"), "198.18.24.1"); got != "attr-home" {
		t.Errorf("early's VIP is attributed to %q, want attr-home", got)
	}

	asks := newService(ns, "asks")
	asks.Annotations = map[string]string{provider.AnnotationPool: "attr-home"}
	createService(t, asks)
	if got := waitIngress(t, ns, "asks", 1, waitTimeout); got[0] != "198.18.24.2" {
		t.Fatalf("asks got %v, want 198.18.24.2", got)
	}
	held := getService(t, ns, "asks")
	if got := held.Annotations[provider.AnnotationAllocatedPool]; got != "198.18.24.2=attr-home" {
		t.Errorf("asks has allocated-pool %q, want 198.18.24.2=attr-home (the address alone tells attr-over)", got)
	}
	if got := attributedPool(t, held, "198.18.24.2"); got != "attr-home" {
		t.Errorf("asks' VIP is attributed to %q, want attr-home", got)
	}
	// The home pool still counts both.
	waitPool(t, "attr-home", "2 used", func(p *v1alpha1.IPPool) bool { return p.Status.IPv4 != nil && p.Status.IPv4.Used == 2 })
}
