package integration

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider"
)

// TestMalformedServices: bad annotations give a Warning event naming the value; the CCM lives on
// and other Services are served.
func TestMalformedServices(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "malformed", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.21.0/29", "2001:db8:21::/125")})
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		lbIP        string
		want        string
	}{
		{"garbage-ip", map[string]string{provider.AnnotationLoadBalancerIPs: "not-an-ip"}, "", `annotation baremetal.dev/load-balancer-ips="not-an-ip" is invalid: "not-an-ip" is not an IP address`},
		{"two-v4", map[string]string{provider.AnnotationLoadBalancerIPs: "198.18.21.1,198.18.21.2"}, "", "request at most one address per family"},
		{"wrong-family", map[string]string{provider.AnnotationLoadBalancerIPs: "2001:db8:21::1"}, "", "2001:db8:21::1 is IPv6 but the Service's ipFamilies are [IPv4]"},
		{"disagreeing", map[string]string{provider.AnnotationLoadBalancerIPs: "198.18.21.1"}, "198.18.21.2", "disagrees with baremetal.dev/load-balancer-ips"},
		{"alias-conflict", map[string]string{provider.AnnotationPool: "malformed", "metallb.io/address-pool": "other"}, "", `annotation metallb.io/address-pool="other" is invalid: it disagrees with baremetal.dev/pool="malformed"`},
	} {
		svc := newService(ns, tc.name)
		svc.Annotations = tc.annotations
		svc.Spec.LoadBalancerIP = tc.lbIP
		createService(t, svc)
		waitEvent(t, ns, tc.name, v1.EventTypeWarning, tc.want)
	}
	createService(t, newService(ns, "fine"))
	waitIngress(t, ns, "fine", 1, waitTimeout)
	requireCCMAlive(t)
}

// TestPoolConditions: an invalid pool and overlapping pools are reported in status conditions.
func TestPoolConditions(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "bad-selector", v1alpha1.IPPoolSpec{
		Addresses: addrs("198.18.22.0/30"),
		ServiceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: metav1.LabelSelectorOpIn},
		}},
	})
	waitPool(t, "bad-selector", "Valid=False", hasCondition(v1alpha1.ConditionValid, metav1.ConditionFalse, "spec.serviceSelector"))

	createPool(t, ns, "overlap-a", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.23.0/29")})
	createPool(t, ns, "overlap-b", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.23.4-198.18.23.20")})
	waitPool(t, "overlap-a", "Overlapping=True", hasCondition(v1alpha1.ConditionOverlapping, metav1.ConditionTrue, `198.18.23.4-198.18.23.6 overlaps pool "overlap-b"`))
	waitPool(t, "overlap-b", "Overlapping=True", hasCondition(v1alpha1.ConditionOverlapping, metav1.ConditionTrue, `overlaps pool "overlap-a"`))

	// Overlap never double-books: fill both pools, every address once.
	seen := map[string]bool{}
	for i := range 20 {
		name := "o" + string(rune('a'+i))
		createService(t, newService(ns, name))
		ip := waitIngress(t, ns, name, 1, waitTimeout)[0]
		if seen[ip] {
			t.Fatalf("%s got %s twice", name, ip)
		}
		seen[ip] = true
	}
	if len(seen) != 20 {
		t.Fatalf("got %d distinct addresses, want 20 (6 in overlap-a, 14 more in overlap-b)", len(seen))
	}
	requireCCMAlive(t)
}
