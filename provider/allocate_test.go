package provider

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// newTestCloud returns a provider with no API server: only the allocation state is used.
func newTestCloud(t *testing.T, pools ...*v1alpha1.IPPool) *Cloud {
	t.Helper()
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.recorder = &record.FakeRecorder{}
	for _, p := range pools {
		setPool(c, p)
	}
	return c
}

// setPool installs or replaces an IPPool exactly as onPool does after decoding it.
func setPool(c *Cloud, p *v1alpha1.IPPool) *poolConfig {
	cfg := newPoolConfig(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pools[cfg.name] = cfg
	if cfg.addresses != nil {
		c.alloc.SetPool(cfg.addresses)
	} else {
		c.alloc.DeletePool(cfg.name)
	}
	return cfg
}

// deletePool forgets an IPPool as onPoolDeleted does.
func deletePool(c *Cloud, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pools, name)
	c.alloc.DeletePool(name)
}

// ensure runs the allocation part of EnsureLoadBalancer.
func ensure(c *Cloud, svc *v1.Service, ns *v1.Namespace) ([]vip, error) {
	req, err := parseRequest(svc)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.allocate(svc, ns, req)
}

// mustEnsure ensures svc and returns its VIPs in the order allocate gives them.
func mustEnsure(t *testing.T, c *Cloud, svc *v1.Service, ns *v1.Namespace) []netip.Addr {
	t.Helper()
	vips, err := ensure(c, svc, ns)
	if err != nil {
		t.Fatalf("ensuring %s: %v", serviceKey(svc), err)
	}
	return vipAddrs(vips)
}

// release frees the Service's VIPs as EnsureLoadBalancerDeleted does.
func release(c *Cloud, svc *v1.Service) []netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.releaseLocked(serviceKey(svc))
}

// statusWritten is the service controller writing the Service's status and the informer
// delivering it: VIPs the Service gave up are freed then.
func statusWritten(c *Cloud, svc *v1.Service, vips ...string) {
	withAgreedStatus(vips...)(svc)
	c.onServiceUpdated(svc)
}

func heldBy(c *Cloud, svc *v1.Service) []netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.activeHeld(serviceKey(svc))
}

func holdersOf(c *Cloud, addr netip.Addr) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, h := range c.alloc.Holders(addr) {
		out = append(out, h.Service)
	}
	return out
}

func vipAddrs(vips []vip) []netip.Addr {
	out := make([]netip.Addr, len(vips))
	for i, v := range vips {
		out[i] = v.addr
	}
	return out
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func expectVIPs(t *testing.T, got []netip.Addr, want ...string) {
	t.Helper()
	if !slices.Equal(got, addrs(want...)) {
		t.Errorf("VIPs = %v, want %v", got, want)
	}
}

func TestAllocateLowestFreeFirst(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.0/29"))
	a, b, cc := testService("a"), testService("b"), testService("c")
	expectVIPs(t, mustEnsure(t, c, a, nil), "192.0.2.1") // .0 is the network address
	expectVIPs(t, mustEnsure(t, c, b, nil), "192.0.2.2")
	expectVIPs(t, mustEnsure(t, c, cc, nil), "192.0.2.3")
	if got := release(c, b); !slices.Equal(got, addrs("192.0.2.2")) {
		t.Errorf("released %v", got)
	}
	expectVIPs(t, mustEnsure(t, c, testService("d"), nil), "192.0.2.2")
	expectVIPs(t, mustEnsure(t, c, testService("e"), nil), "192.0.2.4")

	vips, err := ensure(c, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(vips) != 1 || vips[0].pool != "p" {
		t.Errorf("vips = %+v, want one from pool p", vips)
	}
	if from := c.allocatedFrom[netip.MustParseAddr("192.0.2.1")]; from != "p" {
		t.Errorf("allocatedFrom = %q", from)
	}
	if c.owners["default/a"] != a.UID {
		t.Errorf("owners[default/a] = %q", c.owners["default/a"])
	}
}

func TestAllocateDualStack(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.3", "2001:db8::10-2001:db8::12"))

	rds61 := testService("rds", withFamilies(rds, v6, v4))
	vips, err := ensure(c, rds61, nil)
	if err != nil {
		t.Fatal(err)
	}
	expectVIPs(t, vipAddrs(vips), "2001:db8::10", "192.0.2.1")
	for _, v := range vips {
		if v.pool != "p" {
			t.Errorf("%s from pool %q", v.addr, v.pool)
		}
	}
	// The status lists the VIPs in the order of ipFamilies.
	status := loadBalancerStatus(rds61, []vip{vips[1], vips[0]})
	if len(status.Ingress) != 2 || status.Ingress[0].IP != "2001:db8::10" || status.Ingress[1].IP != "192.0.2.1" {
		t.Errorf("status = %+v", status.Ingress)
	}
	for _, ing := range status.Ingress {
		if ing.IPMode == nil || *ing.IPMode != v1.LoadBalancerIPModeVIP {
			t.Errorf("ingress %s has ipMode %v", ing.IP, ing.IPMode)
		}
	}
	expectVIPs(t, heldBy(c, rds61), "192.0.2.1", "2001:db8::10")

	expectVIPs(t, mustEnsure(t, c, testService("pds", withFamilies(pds, v4, v6)), nil), "192.0.2.2", "2001:db8::11")
	expectVIPs(t, mustEnsure(t, c, testService("v6", withFamilies(ss, v6)), nil), "2001:db8::12")
	// IPv6 is exhausted: PreferDualStack settles for IPv4.
	expectVIPs(t, mustEnsure(t, c, testService("pds2", withFamilies(pds, v6, v4)), nil), "192.0.2.3")
	// Both exhausted now.
	_, err = ensure(c, testService("pds3", withFamilies(pds, v4, v6)), nil)
	var exhausted *ipam.PoolExhaustedError
	if !errors.As(err, &exhausted) {
		t.Errorf("error %v, want a *PoolExhaustedError", err)
	}
	if len(heldBy(c, testService("pds3"))) != 0 {
		t.Error("a failed allocation holds addresses")
	}
}

func TestAllocatePreferDualStackSingleFamilyPool(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.3"))
	expectVIPs(t, mustEnsure(t, c, testService("a", withFamilies(pds, v4, v6)), nil), "192.0.2.1")
	expectVIPs(t, mustEnsure(t, c, testService("b", withFamilies(pds, v6, v4)), nil), "192.0.2.2")

	c6 := newTestCloud(t, testPool("p6", "2001:db8::/126"))
	expectVIPs(t, mustEnsure(t, c6, testService("a", withFamilies(pds, v4, v6)), nil), "2001:db8::1")

	// No pool at all: both families fail, with a reason that tells what to do.
	empty := newTestCloud(t)
	_, err := ensure(empty, testService("a", withFamilies(pds, v4, v6)), nil)
	var noPool *NoPoolError
	if !errors.As(err, &noPool) || !strings.Contains(err.Error(), "no IPPool exists; create one") {
		t.Errorf("error %v, want a *NoPoolError saying no IPPool exists", err)
	}
}

// A PreferDualStack Service that got one family while the other was exhausted keeps that VIP on
// every later ensure; once an address of the other family is free it gains it as well.
func TestAllocatePreferDualStackKeepsVIPWhenGainingFamily(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.1", "2001:db8::1"))
	blocker := testService("blocker")
	expectVIPs(t, mustEnsure(t, c, blocker, nil), "192.0.2.1")
	svc := testService("a", withFamilies(pds, v4, v6))
	expectVIPs(t, mustEnsure(t, c, svc, nil), "2001:db8::1")
	withStatus(addrs("2001:db8::1")...)(svc)
	expectVIPs(t, mustEnsure(t, c, svc, nil), "2001:db8::1")
	release(c, blocker)
	got := mustEnsure(t, c, svc, nil)
	if !slices.Contains(got, netip.MustParseAddr("2001:db8::1")) {
		t.Fatalf("VIPs %v lost 2001:db8::1", got)
	}
	t.Logf("after the IPv4 address was freed: %v", got)
}

func TestAllocateRequireDualStackRollsBack(t *testing.T) {
	t.Run("no pool of the second family", func(t *testing.T) {
		c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.2"))
		svc := testService("a", withFamilies(rds, v4, v6))
		_, err := ensure(c, svc, nil)
		var noPool *NoPoolError
		if !errors.As(err, &noPool) || noPool.Family != ipam.IPv6 || noPool.Service != "default/a" {
			t.Fatalf("error %v, want a *NoPoolError for IPv6", err)
		}
		if !strings.Contains(err.Error(), "no IPPool can give Service default/a an IPv6 address") {
			t.Errorf("error %q", err)
		}
		if held := heldBy(c, svc); len(held) != 0 {
			t.Errorf("holds %v after a failed RequireDualStack allocation", held)
		}
		if h := holdersOf(c, netip.MustParseAddr("192.0.2.1")); len(h) != 0 {
			t.Errorf("192.0.2.1 held by %v", h)
		}
		if len(c.allocatedFrom) != 0 {
			t.Errorf("allocatedFrom = %v", c.allocatedFrom)
		}
		if _, ok := c.owners["default/a"]; ok {
			t.Error("owner recorded for a Service holding nothing")
		}
		expectVIPs(t, mustEnsure(t, c, testService("b"), nil), "192.0.2.1")
	})

	t.Run("requested IPv6 in use", func(t *testing.T) {
		c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.2", "2001:db8::1-2001:db8::2"))
		other := testService("other", withFamilies(ss, v6), withAnnotation(AnnotationLoadBalancerIPs, "2001:db8::1"))
		expectVIPs(t, mustEnsure(t, c, other, nil), "2001:db8::1")
		svc := testService("a", withFamilies(rds, v4, v6), withAnnotation(AnnotationLoadBalancerIPs, "192.0.2.2,2001:db8::1"))
		_, err := ensure(c, svc, nil)
		var inUse *ipam.InUseError
		if !errors.As(err, &inUse) || inUse.Holder != "default/other" {
			t.Fatalf("error %v, want an *InUseError naming default/other", err)
		}
		if held := heldBy(c, svc); len(held) != 0 {
			t.Errorf("holds %v after a failed allocation", held)
		}
		if h := holdersOf(c, netip.MustParseAddr("192.0.2.2")); len(h) != 0 {
			t.Errorf("192.0.2.2 held by %v", h)
		}
	})

	t.Run("a held VIP survives a failed upgrade to dual-stack", func(t *testing.T) {
		c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.2"))
		svc := testService("a")
		expectVIPs(t, mustEnsure(t, c, svc, nil), "192.0.2.1")
		upgraded := testService("a", withFamilies(rds, v4, v6), withStatus(addrs("192.0.2.1")...))
		if _, err := ensure(c, upgraded, nil); err == nil {
			t.Fatal("RequireDualStack without an IPv6 pool succeeded")
		}
		expectVIPs(t, heldBy(c, svc), "192.0.2.1")
		if c.allocatedFrom[netip.MustParseAddr("192.0.2.1")] != "p" {
			t.Errorf("allocatedFrom = %v", c.allocatedFrom)
		}
		expectVIPs(t, mustEnsure(t, c, svc, nil), "192.0.2.1")
	})
}

func TestAllocateRequestedIP(t *testing.T) {
	restricted := testPool("restricted", "203.0.113.0/28")
	restricted.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	manual := testPool("manual", "198.51.100.0/28")
	manual.Spec.AutoAssign = boolPtr(false)
	c := newTestCloud(t, testPool("p", "192.0.2.0/28"), manual, restricted)
	prod := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod", Labels: map[string]string{"env": "prod"}}}
	dev := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dev", Labels: map[string]string{"env": "dev"}}}
	request := func(name, ip string, opts ...svcOption) *v1.Service {
		return testService(name, append([]svcOption{withAnnotation(AnnotationLoadBalancerIPs, ip)}, opts...)...)
	}

	vips, err := ensure(c, request("in-pool", "192.0.2.9"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(vips) != 1 || vips[0].addr != netip.MustParseAddr("192.0.2.9") || vips[0].pool != "p" {
		t.Errorf("vips = %+v", vips)
	}
	expectVIPs(t, mustEnsure(t, c, testService("lbip", withLoadBalancerIP("192.0.2.12")), nil), "192.0.2.12")
	// autoAssign: false does not stop an explicit request.
	vips, err = ensure(c, request("manual", "198.51.100.5"), nil)
	if err != nil || len(vips) != 1 || vips[0].pool != "manual" {
		t.Errorf("requesting from an autoAssign: false pool: %+v, %v", vips, err)
	}

	t.Run("not in any pool", func(t *testing.T) {
		svc := request("nowhere", "10.9.9.9")
		_, err := ensure(c, svc, nil)
		var notIn *NotInPoolError
		if !errors.As(err, &notIn) || notIn.Addr != netip.MustParseAddr("10.9.9.9") {
			t.Fatalf("error %v, want a *NotInPoolError", err)
		}
		if err.Error() != "requested IP 10.9.9.9 is not in any IPPool" {
			t.Errorf("error %q", err)
		}
		if len(heldBy(c, svc)) != 0 {
			t.Error("holds an address")
		}
	})

	t.Run("namespace not selected", func(t *testing.T) {
		for _, ns := range []*v1.Namespace{dev, nil} {
			svc := request("ns", "203.0.113.5", withNamespace("dev"))
			_, err := ensure(c, svc, ns)
			var notIn *NotInPoolError
			if !errors.As(err, &notIn) {
				t.Fatalf("error %v, want a *NotInPoolError", err)
			}
			for _, s := range []string{"requested IP 203.0.113.5 cannot be used", `pool "restricted"`, "namespaceSelector", `namespace "dev"`} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		}
		expectVIPs(t, mustEnsure(t, c, request("ns", "203.0.113.5", withNamespace("prod")), prod), "203.0.113.5")
	})

	t.Run("in another pool than the Service names", func(t *testing.T) {
		_, err := ensure(c, request("other-pool", "192.0.2.10", withAnnotation(AnnotationPool, "manual")), nil)
		var notIn *NotInPoolError
		if !errors.As(err, &notIn) || !strings.Contains(err.Error(), `it is in pool "p" but the Service asks for pool "manual"`) {
			t.Errorf("error %v", err)
		}
		expectVIPs(t, mustEnsure(t, c, request("same-pool", "192.0.2.10", withAnnotation(AnnotationPool, "p")), nil), "192.0.2.10")
	})

	t.Run("held by another Service", func(t *testing.T) {
		svc := request("thief", "192.0.2.9")
		_, err := ensure(c, svc, nil)
		var inUse *ipam.InUseError
		if !errors.As(err, &inUse) || inUse.Holder != "default/in-pool" || !strings.Contains(err.Error(), "192.0.2.9") {
			t.Errorf("error %v, want an *InUseError naming default/in-pool", err)
		}
		if len(heldBy(c, svc)) != 0 {
			t.Error("holds an address")
		}
	})

	t.Run("changing the request moves the VIP, dropping it keeps it", func(t *testing.T) {
		svc := request("mover", "192.0.2.3")
		expectVIPs(t, mustEnsure(t, c, svc, nil), "192.0.2.3")
		svc = request("mover", "192.0.2.4", withStatus(addrs("192.0.2.3")...))
		expectVIPs(t, mustEnsure(t, c, svc, nil), "192.0.2.4")
		if h := holdersOf(c, netip.MustParseAddr("192.0.2.3")); !slices.Equal(h, []string{"default/mover"}) {
			t.Errorf("old VIP held by %v before the status is written, want default/mover", h)
		}
		statusWritten(c, svc, "192.0.2.4")
		if h := holdersOf(c, netip.MustParseAddr("192.0.2.3")); len(h) != 0 {
			t.Errorf("old VIP still held by %v after the status is written", h)
		}
		svc = testService("mover", withStatus(addrs("192.0.2.4")...))
		expectVIPs(t, mustEnsure(t, c, svc, nil), "192.0.2.4")
	})
}

func TestAllocateAutoAssignFalse(t *testing.T) {
	manual := testPool("manual", "198.51.100.1-198.51.100.2")
	manual.Spec.AutoAssign = boolPtr(false)
	c := newTestCloud(t, manual)

	_, err := ensure(c, testService("plain"), nil)
	var noPool *NoPoolError
	if !errors.As(err, &noPool) || !strings.Contains(err.Error(), `pool "manual" has autoAssign: false`) {
		t.Errorf("error %v, want a *NoPoolError naming the autoAssign: false pool", err)
	}
	expectVIPs(t, mustEnsure(t, c, testService("named", withAnnotation(AnnotationPool, "manual")), nil), "198.51.100.1")
	expectVIPs(t, mustEnsure(t, c, testService("alias", withAnnotation("metallb.io/address-pool", "manual")), nil), "198.51.100.2")

	// An automatic pool is used even when the manual one comes first in priority order.
	manual.Spec.Priority = -10
	setPool(c, manual)
	setPool(c, testPool("auto", "192.0.2.1-192.0.2.2"))
	expectVIPs(t, mustEnsure(t, c, testService("plain"), nil), "192.0.2.1")

	_, err = ensure(c, testService("unknown", withAnnotation(AnnotationPool, "nope")), nil)
	var notFound *ipam.PoolNotFoundError
	if !errors.As(err, &notFound) || notFound.Pool != "nope" {
		t.Errorf("error %v, want a *PoolNotFoundError", err)
	}

	picky := testPool("picky", "203.0.113.1")
	picky.Spec.ServiceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
	setPool(c, picky)
	_, err = ensure(c, testService("unselected", withAnnotation(AnnotationPool, "picky")), nil)
	if !errors.As(err, &noPool) || !strings.Contains(err.Error(), "serviceSelector") {
		t.Errorf("error %v, want a *NoPoolError about the serviceSelector", err)
	}
	expectVIPs(t, mustEnsure(t, c, testService("selected", withAnnotation(AnnotationPool, "picky"), withLabels(map[string]string{"team": "a"})), nil), "203.0.113.1")
}

func TestAllocatePriorityThenName(t *testing.T) {
	c := newTestCloud(t)
	for _, p := range []struct {
		name     string
		addr     string
		priority int32
	}{
		{"b", "192.0.2.1", 0}, {"a", "192.0.2.2", 0}, {"z", "192.0.2.3", -1}, {"c", "192.0.2.4", 5},
	} {
		pool := testPool(p.name, p.addr)
		pool.Spec.Priority = p.priority
		setPool(c, pool)
	}
	picky := testPool("0-picky", "192.0.2.100")
	picky.Spec.Priority = -100
	picky.Spec.ServiceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}
	setPool(c, picky)
	setPool(c, testPool("0-broken", "garbage"))

	want := []struct{ addr, pool string }{{"192.0.2.3", "z"}, {"192.0.2.2", "a"}, {"192.0.2.1", "b"}, {"192.0.2.4", "c"}}
	for i, w := range want {
		vips, err := ensure(c, testService(fmt.Sprint("s", i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(vips) != 1 || vips[0].addr != netip.MustParseAddr(w.addr) || vips[0].pool != w.pool {
			t.Errorf("service %d: vips %+v, want %s from %s", i, vips, w.addr, w.pool)
		}
	}
	_, err := ensure(c, testService("last"), nil)
	var exhausted *ipam.PoolExhaustedError
	if !errors.As(err, &exhausted) {
		t.Errorf("error %v, want a *PoolExhaustedError", err)
	}
	if !strings.Contains(err.Error(), "no IPv4 address is free for Service default/last") {
		t.Errorf("error %q", err)
	}
	for _, pool := range []string{`"a"`, `"b"`, `"c"`, `"z"`} {
		if !strings.Contains(err.Error(), pool) {
			t.Errorf("error %q does not name pool %s", err, pool)
		}
	}
	expectVIPs(t, mustEnsure(t, c, testService("x", withLabels(map[string]string{"team": "x"})), nil), "192.0.2.100")
}

func TestAllocateSharingKey(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.0/28"))
	shared := func(name, key string, opts ...svcOption) *v1.Service {
		return testService(name, append([]svcOption{withAnnotation(AnnotationSharingKey, key)}, opts...)...)
	}
	a := shared("a", "k", withPorts(tcp(80)))
	b := shared("b", "k", withPorts(tcp(443)))
	expectVIPs(t, mustEnsure(t, c, a, nil), "192.0.2.1")
	expectVIPs(t, mustEnsure(t, c, b, nil), "192.0.2.1")
	// Overlapping ports: another address.
	expectVIPs(t, mustEnsure(t, c, shared("c", "k", withPorts(tcp(80))), nil), "192.0.2.2")
	// Another key, or none: another address.
	expectVIPs(t, mustEnsure(t, c, shared("d", "k2", withPorts(udp(53))), nil), "192.0.2.3")
	expectVIPs(t, mustEnsure(t, c, testService("e", withPorts(udp(53))), nil), "192.0.2.4")
	// Same port number, other protocol: shares.
	expectVIPs(t, mustEnsure(t, c, shared("f", "k", withPorts(udp(80)), withAnnotation(AnnotationLoadBalancerIPs, "192.0.2.1")), nil), "192.0.2.1")

	_, err := ensure(c, shared("g", "k", withPorts(tcp(80)), withAnnotation(AnnotationLoadBalancerIPs, "192.0.2.1")), nil)
	var inUse *ipam.InUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("error %v, want an *InUseError", err)
	}
	if inUse.Holder != "default/a" || !slices.Equal(inUse.Overlap, []ipam.Port{{Protocol: "TCP", Number: 80}}) {
		t.Errorf("InUseError = %+v", inUse)
	}
	if !strings.Contains(err.Error(), "ports 80/TCP overlap") {
		t.Errorf("error %q", err)
	}
	_, err = ensure(c, testService("h", withPorts(tcp(8080)), withAnnotation(AnnotationLoadBalancerIPs, "192.0.2.1")), nil)
	if !errors.As(err, &inUse) || inUse.HolderSharingKey != "k" {
		t.Errorf("error %v, want an *InUseError from a holder with key k", err)
	}
	if got := holdersOf(c, netip.MustParseAddr("192.0.2.1")); !slices.Equal(got, []string{"default/a", "default/b", "default/f"}) {
		t.Errorf("holders = %v", got)
	}

	// A sharer that changes its ports into a conflict moves; the others stay.
	b2 := shared("b", "k", withPorts(tcp(80)), withStatus(addrs("192.0.2.1")...))
	moved := mustEnsure(t, c, b2, nil)
	if slices.Equal(moved, addrs("192.0.2.1")) {
		t.Errorf("b kept 192.0.2.1 with ports overlapping a's")
	}
	expectVIPs(t, mustEnsure(t, c, a, nil), "192.0.2.1")
	statusWritten(c, b2, moved[0].String())

	// The address becomes free only when the last sharer lets go.
	release(c, a)
	release(c, shared("f", "k"))
	if got := holdersOf(c, netip.MustParseAddr("192.0.2.1")); len(got) != 0 {
		t.Errorf("holders after release = %v", got)
	}
	expectVIPs(t, mustEnsure(t, c, testService("next"), nil), "192.0.2.1")

	// externalTrafficPolicy Local: sharing needs the same pods.
	l1 := shared("l1", "l", withPorts(tcp(80)), withLocal(map[string]string{"app": "x"}))
	l2 := shared("l2", "l", withPorts(tcp(81)), withLocal(map[string]string{"app": "y"}))
	l3 := shared("l3", "l", withPorts(tcp(82)), withLocal(map[string]string{"app": "x"}))
	v1s := mustEnsure(t, c, l1, nil)
	v2s := mustEnsure(t, c, l2, nil)
	v3s := mustEnsure(t, c, l3, nil)
	if slices.Equal(v1s, v2s) {
		t.Errorf("Local Services with different selectors share %v", v1s)
	}
	if !slices.Equal(v1s, v3s) {
		t.Errorf("Local Services with the same selector got %v and %v", v1s, v3s)
	}
}

func TestAllocateExhausted(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.2"))
	a := testService("a")
	expectVIPs(t, mustEnsure(t, c, a, nil), "192.0.2.1")
	expectVIPs(t, mustEnsure(t, c, testService("b"), nil), "192.0.2.2")
	for _, svc := range []*v1.Service{testService("c"), testService("c", withAnnotation(AnnotationPool, "p"))} {
		_, err := ensure(c, svc, nil)
		if err == nil {
			t.Fatal("allocated from an exhausted pool")
		}
		if got, want := err.Error(), `pool "p" is exhausted: 2 of 2 IPv4 addresses in use`; got != want {
			t.Errorf("error %q, want %q", got, want)
		}
		var exhausted *ipam.PoolExhaustedError
		if !errors.As(err, &exhausted) || exhausted.Used != 2 || exhausted.Size.Int64() != 2 || exhausted.Pool != "p" {
			t.Errorf("error %+v", err)
		}
		if len(heldBy(c, svc)) != 0 {
			t.Error("holds an address")
		}
	}
	// A full pool does not disturb the Services holding its addresses.
	expectVIPs(t, mustEnsure(t, c, a, nil), "192.0.2.1")
	release(c, a)
	expectVIPs(t, mustEnsure(t, c, testService("c"), nil), "192.0.2.1")
}
