package integration

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider"
)

func TestDualStack(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "dual", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.10.0/30", "2001:db8:10::/126")})

	require := createService(t, withFamilies(newService(ns, "require"), v1.IPFamilyPolicyRequireDualStack, v1.IPv6Protocol, v1.IPv4Protocol))
	if got := waitIngress(t, ns, require.Name, 2, waitTimeout); got[0] != "2001:db8:10::1" || got[1] != "198.18.10.1" {
		// 2001:db8:10:: is the subnet-router anycast address of its /64: never a VIP.
		t.Errorf("RequireDualStack (IPv6 first) got %v, want [2001:db8:10::1 198.18.10.1] in ipFamilies order", got)
	}
	held := getService(t, ns, require.Name)
	expectNoPin(t, held)
	for _, vip := range []string{"2001:db8:10::1", "198.18.10.1"} {
		if got := attributedPool(t, held, vip); got != "dual" {
			t.Errorf("%s is attributed to pool %q, want dual", vip, got)
		}
	}
	prefer := createService(t, withFamilies(newService(ns, "prefer"), v1.IPFamilyPolicyPreferDualStack, v1.IPv4Protocol, v1.IPv6Protocol))
	if got := waitIngress(t, ns, prefer.Name, 2, waitTimeout); got[0] != "198.18.10.2" || got[1] != "2001:db8:10::2" {
		t.Errorf("PreferDualStack got %v, want [198.18.10.2 2001:db8:10::2]", got)
	}
	single6 := createService(t, withFamilies(newService(ns, "single6"), v1.IPFamilyPolicySingleStack, v1.IPv6Protocol))
	if got := waitIngress(t, ns, single6.Name, 1, waitTimeout); got[0] != "2001:db8:10::3" {
		t.Errorf("SingleStack IPv6 got %v, want [2001:db8:10::3]", got)
	}
	waitPool(t, "dual", "usage counted per family", func(p *v1alpha1.IPPool) bool {
		return p.Status.IPv4 != nil && p.Status.IPv6 != nil && p.Status.IPv4.Used == 2 && p.Status.IPv6.Used == 3 &&
			p.Status.IPv4.Total == "2" && p.Status.IPv6.Total == "3" && p.Status.IPv6.Free == "0"
	})
}

func TestDualStackWithOneFamilyOfPools(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "only-v4", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.11.10-198.18.11.12")})

	prefer := createService(t, withFamilies(newService(ns, "prefer"), v1.IPFamilyPolicyPreferDualStack, v1.IPv4Protocol, v1.IPv6Protocol))
	if got := waitIngress(t, ns, prefer.Name, 1, waitTimeout); got[0] != "198.18.11.10" {
		t.Errorf("PreferDualStack with only IPv4 pools got %v, want [198.18.11.10]", got)
	}
	require := createService(t, withFamilies(newService(ns, "require"), v1.IPFamilyPolicyRequireDualStack, v1.IPv4Protocol, v1.IPv6Protocol))
	waitEvent(t, ns, require.Name, v1.EventTypeWarning, "no IPPool can give Service "+ns+"/require an IPv6 address")
	assertStaysPending(t, ns, require.Name, 500*time.Millisecond)
	// The failed dual-stack attempt holds nothing: the next IPv4 Service gets .11.
	next := createService(t, newService(ns, "next"))
	if got := waitIngress(t, ns, next.Name, 1, waitTimeout); got[0] != "198.18.11.11" {
		t.Errorf("after a refused RequireDualStack, the next Service got %v, want [198.18.11.11]", got)
	}
}

func TestRequestedIPs(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "requested", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.12.0/28", "2001:db8:12::/124")})

	byAnnotation := newService(ns, "by-annotation")
	byAnnotation.Annotations = map[string]string{provider.AnnotationLoadBalancerIPs: "198.18.12.7"}
	createService(t, byAnnotation)
	if got := waitIngress(t, ns, byAnnotation.Name, 1, waitTimeout); got[0] != "198.18.12.7" {
		t.Errorf("annotation request got %v, want [198.18.12.7]", got)
	}

	bySpec := newService(ns, "by-spec")
	bySpec.Spec.LoadBalancerIP = "198.18.12.9"
	createService(t, bySpec)
	if got := waitIngress(t, ns, bySpec.Name, 1, waitTimeout); got[0] != "198.18.12.9" {
		t.Errorf("spec.loadBalancerIP request got %v, want [198.18.12.9]", got)
	}

	dual := withFamilies(newService(ns, "dual"), v1.IPFamilyPolicyRequireDualStack, v1.IPv4Protocol, v1.IPv6Protocol)
	dual.Annotations = map[string]string{provider.AnnotationLoadBalancerIPs: "2001:db8:12::5, 198.18.12.5"}
	createService(t, dual)
	if got := waitIngress(t, ns, dual.Name, 2, waitTimeout); got[0] != "198.18.12.5" || got[1] != "2001:db8:12::5" {
		t.Errorf("dual-stack request got %v, want [198.18.12.5 2001:db8:12::5]", got)
	}

	outside := newService(ns, "outside")
	outside.Annotations = map[string]string{provider.AnnotationLoadBalancerIPs: "198.18.250.1"}
	createService(t, outside)
	waitEvent(t, ns, outside.Name, v1.EventTypeWarning, "requested IP 198.18.250.1 is not in any IPPool")

	taken := newService(ns, "taken")
	taken.Annotations = map[string]string{provider.AnnotationLoadBalancerIPs: "198.18.12.7"}
	createService(t, taken)
	waitEvent(t, ns, taken.Name, v1.EventTypeWarning, "198.18.12.7 is held by "+ns+"/by-annotation, which has no sharing key")

	// Auto-allocation skips requested addresses: lowest free is .1.
	auto := createService(t, newService(ns, "auto"))
	if got := waitIngress(t, ns, auto.Name, 1, waitTimeout); got[0] != "198.18.12.1" {
		t.Errorf("auto allocation got %v, want [198.18.12.1]", got)
	}
	requireCCMAlive(t)
}

func TestSharing(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "shared", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.13.0/29")})

	dnsTCP := withPorts(newService(ns, "dns-tcp"), v1.ServicePort{Name: "dns", Protocol: v1.ProtocolTCP, Port: 53})
	dnsTCP.Annotations = map[string]string{provider.AnnotationSharingKey: "dns"}
	createService(t, dnsTCP)
	first := waitIngress(t, ns, dnsTCP.Name, 1, waitTimeout)

	dnsUDP := withPorts(newService(ns, "dns-udp"), v1.ServicePort{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53})
	dnsUDP.Annotations = map[string]string{provider.AnnotationSharingKey: "dns"}
	createService(t, dnsUDP)
	if got := waitIngress(t, ns, dnsUDP.Name, 1, waitTimeout); got[0] != first[0] {
		t.Errorf("same sharing key, disjoint ports: got %v, want the shared %v", got, first)
	}

	// Same key, overlapping port, requesting the shared address: refused with the reason.
	clash := withPorts(newService(ns, "clash"), v1.ServicePort{Name: "dns", Protocol: v1.ProtocolTCP, Port: 53})
	clash.Annotations = map[string]string{provider.AnnotationSharingKey: "dns", provider.AnnotationLoadBalancerIPs: first[0]}
	createService(t, clash)
	waitEvent(t, ns, clash.Name, v1.EventTypeWarning, first[0]+" is held by "+ns+"/dns-tcp with sharing key \"dns\"; ports 53/TCP overlap")

	// Different key asking for the shared address: refused.
	other := newService(ns, "other-key")
	other.Annotations = map[string]string{provider.AnnotationSharingKey: "web", provider.AnnotationLoadBalancerIPs: first[0]}
	createService(t, other)
	waitEvent(t, ns, other.Name, v1.EventTypeWarning, "with sharing key \"dns\"; sharing keys differ")

	// Same key, overlapping port, automatic: gets an address of its own.
	auto := withPorts(newService(ns, "auto-clash"), v1.ServicePort{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53})
	auto.Annotations = map[string]string{provider.AnnotationSharingKey: "dns"}
	createService(t, auto)
	if got := waitIngress(t, ns, auto.Name, 1, waitTimeout); got[0] == first[0] {
		t.Errorf("overlapping ports under one key share %v; want a separate address", got)
	}

	// externalTrafficPolicy Local needs the same pods.
	local1 := withPorts(newService(ns, "local-a"), v1.ServicePort{Name: "a", Protocol: v1.ProtocolTCP, Port: 8001})
	local1.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	local1.Annotations = map[string]string{provider.AnnotationSharingKey: "local"}
	createService(t, local1)
	localIP := waitIngress(t, ns, local1.Name, 1, waitTimeout)
	local2 := withPorts(newService(ns, "local-b"), v1.ServicePort{Name: "b", Protocol: v1.ProtocolTCP, Port: 8002})
	local2.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	local2.Annotations = map[string]string{provider.AnnotationSharingKey: "local", provider.AnnotationLoadBalancerIPs: localIP[0]}
	createService(t, local2)
	waitEvent(t, ns, local2.Name, v1.EventTypeWarning, "with externalTrafficPolicy Local both Services must select the same pods")

	// Releasing one sharer keeps the address for the other.
	deleteService(t, ns, dnsTCP.Name)
	if got := ingressIPs(getService(t, ns, dnsUDP.Name)); len(got) != 1 || got[0] != first[0] {
		t.Errorf("after its co-holder left, dns-udp has %v, want %v", got, first)
	}
	requireCCMAlive(t)
}

func TestExhaustionThenRelease(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "small", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.14.1-198.18.14.2")})
	createService(t, newService(ns, "a"))
	waitIngress(t, ns, "a", 1, waitTimeout)
	createService(t, newService(ns, "b"))
	waitIngress(t, ns, "b", 1, waitTimeout)

	createService(t, newService(ns, "pending"))
	waitEvent(t, ns, "pending", v1.EventTypeWarning, `pool "small" is exhausted: 2 of 2 IPv4 addresses in use`)
	waitPool(t, "small", "Exhausted=True", hasCondition(v1alpha1.ConditionExhausted, metav1.ConditionTrue, "all 2 IPv4 addresses are in use"))

	released := ingressIPs(getService(t, ns, "a"))
	deleteService(t, ns, "a")
	if got := waitIngress(t, ns, "pending", 1, retryTimeout); got[0] != released[0] {
		t.Errorf("pending Service got %v, want the released %v", got, released)
	}
	waitPool(t, "small", "Exhausted=True again", hasCondition(v1alpha1.ConditionExhausted, metav1.ConditionTrue, "in use"))
}

func TestPoolSelection(t *testing.T) {
	ns := testNamespace(t)
	// Same priority: by name. Lower priority number wins over name.
	createPool(t, ns, "sel-b", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.15.20/32")})
	createPool(t, ns, "sel-a", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.15.10/32")})
	createPool(t, ns, "sel-urgent", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.15.30/32"), Priority: -1})
	createPool(t, ns, "sel-manual", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.15.40/32"), AutoAssign: ptrTo(false)})
	createPool(t, ns, "sel-frontend", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.15.50/32"), Priority: -5,
		ServiceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "frontend"}}})

	order := []struct{ name, want, pool string }{
		{"first", "198.18.15.30", "sel-urgent"},
		{"second", "198.18.15.10", "sel-a"},
		{"third", "198.18.15.20", "sel-b"},
	}
	for _, o := range order {
		createService(t, newService(ns, o.name))
		if got := waitIngress(t, ns, o.name, 1, waitTimeout); got[0] != o.want {
			t.Errorf("%s got %v, want %s from %s", o.name, got, o.want, o.pool)
		}
		svc := getService(t, ns, o.name)
		expectNoPin(t, svc)
		if got := attributedPool(t, svc, o.want); got != o.pool {
			t.Errorf("%s: %s is attributed to pool %q, want %s", o.name, o.want, got, o.pool)
		}
	}
	// Every automatic pool is full; the manual one is not offered.
	createService(t, newService(ns, "fourth"))
	waitEvent(t, ns, "fourth", v1.EventTypeWarning, `pool "sel-a" is exhausted`, `pool "sel-urgent" is exhausted`)

	manual := newService(ns, "manual")
	manual.Annotations = map[string]string{provider.AnnotationPool: "sel-manual"}
	createService(t, manual)
	if got := waitIngress(t, ns, "manual", 1, waitTimeout); got[0] != "198.18.15.40" {
		t.Errorf("baremetal.dev/pool=sel-manual got %v, want 198.18.15.40", got)
	}
	frontend := newService(ns, "frontend")
	frontend.Labels = map[string]string{"tier": "frontend"}
	createService(t, frontend)
	if got := waitIngress(t, ns, "frontend", 1, waitTimeout); got[0] != "198.18.15.50" {
		t.Errorf("serviceSelector pool got %v, want 198.18.15.50", got)
	}
	missing := newService(ns, "missing-pool")
	missing.Annotations = map[string]string{provider.AnnotationPool: "no-such-pool"}
	createService(t, missing)
	waitEvent(t, ns, "missing-pool", v1.EventTypeWarning, `pool "no-such-pool" does not exist`)

	// MetalLB's annotation works, with a deprecation event.
	legacy := newService(ns, "legacy")
	legacy.Annotations = map[string]string{"metallb.io/address-pool": "sel-manual", "metallb.io/allow-shared-ip": "k"}
	createService(t, legacy)
	waitEvent(t, ns, "legacy", v1.EventTypeWarning, "metallb.io/address-pool is deprecated, use baremetal.dev/pool")
	waitEvent(t, ns, "legacy", v1.EventTypeWarning, `pool "sel-manual" is exhausted: 1 of 1 IPv4 addresses in use`)
}

func TestDeletionReleases(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "churn", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.16.0/29")})
	createService(t, newService(ns, "one"))
	first := waitIngress(t, ns, "one", 1, waitTimeout)
	createService(t, newService(ns, "two"))
	waitIngress(t, ns, "two", 1, waitTimeout)
	waitPool(t, "churn", "2 used", func(p *v1alpha1.IPPool) bool { return p.Status.IPv4 != nil && p.Status.IPv4.Used == 2 })

	deleteService(t, ns, "one")
	waitPool(t, "churn", "1 used", func(p *v1alpha1.IPPool) bool { return p.Status.IPv4 != nil && p.Status.IPv4.Used == 1 })
	createService(t, newService(ns, "three"))
	if got := waitIngress(t, ns, "three", 1, waitTimeout); got[0] != first[0] {
		t.Errorf("after deleting one (%v), the next Service got %v; want the lowest free address back", first, got)
	}

	// Turning a Service into ClusterIP releases its VIP too.
	svc := getService(t, ns, "two")
	svc.Spec.Type = v1.ServiceTypeClusterIP
	svc.Spec.Ports[0].NodePort = 0
	if _, err := env.Client.CoreV1().Services(ns).Update(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPool(t, "churn", "1 used after type change", func(p *v1alpha1.IPPool) bool { return p.Status.IPv4 != nil && p.Status.IPv4.Used == 1 })
}

func withFamilies(svc *v1.Service, policy v1.IPFamilyPolicy, families ...v1.IPFamily) *v1.Service {
	svc.Spec.IPFamilyPolicy = &policy
	svc.Spec.IPFamilies = families
	return svc
}

func withPorts(svc *v1.Service, ports ...v1.ServicePort) *v1.Service {
	svc.Spec.Ports = ports
	return svc
}
