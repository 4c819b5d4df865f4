package provider

// Stability: a Service's VIPs change only when its own spec or annotations ask (invariant 2).

import (
	"net/netip"
	"slices"
	"testing"
)

func TestAllocateIdempotent(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.0/28", "2001:db8::/120"))
	a := testService("a", withFamilies(pds, v4, v6))
	first := mustEnsure(t, c, a, nil)
	expectVIPs(t, first, "192.0.2.1", "2001:db8::1")
	withStatus(first...)(a)
	for range 5 {
		expectVIPs(t, mustEnsure(t, c, a, nil), "192.0.2.1", "2001:db8::1")
	}
	// Other Services coming and going do not move it.
	b, d := testService("b"), testService("d")
	mustEnsure(t, c, b, nil)
	mustEnsure(t, c, d, nil)
	release(c, b)
	expectVIPs(t, mustEnsure(t, c, a, nil), "192.0.2.1", "2001:db8::1")
	expectVIPs(t, mustEnsure(t, c, d, nil), "192.0.2.3")
	// Neither does an ensure before the status is written, nor a change of ports or sharing key.
	expectVIPs(t, mustEnsure(t, c, testService("a", withFamilies(pds, v4, v6)), nil), "192.0.2.1", "2001:db8::1")
	a2 := testService("a", withFamilies(pds, v4, v6), withPorts(tcp(443), udp(443)), withAnnotation(AnnotationSharingKey, "k"), withStatus(first...))
	expectVIPs(t, mustEnsure(t, c, a2, nil), "192.0.2.1", "2001:db8::1")
	// Dropping to single-stack releases the other family, and only that.
	a3 := testService("a", withFamilies(ss, v4), withStatus(first...))
	expectVIPs(t, mustEnsure(t, c, a3, nil), "192.0.2.1")
	if h := holdersOf(c, netip.MustParseAddr("2001:db8::")); len(h) != 0 {
		t.Errorf("IPv6 VIP still held by %v", h)
	}
}

func TestAllocateKeepsVIPWhenPoolEdited(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.4"))
	a := testService("a")
	b := testService("b", withAnnotation(AnnotationPool, "p"))
	expectVIPs(t, mustEnsure(t, c, a, nil), "192.0.2.1")
	expectVIPs(t, mustEnsure(t, c, b, nil), "192.0.2.2")

	setPool(c, testPool("p", "192.0.2.3-192.0.2.6"))
	for range 3 {
		vips, err := ensure(c, a, nil)
		if err != nil || len(vips) != 1 || vips[0].addr != netip.MustParseAddr("192.0.2.1") || vips[0].pool != "p" {
			t.Fatalf("a after the edit: %+v, %v", vips, err)
		}
		expectVIPs(t, mustEnsure(t, c, b, nil), "192.0.2.2")
	}
	// The kept VIPs are not handed out again.
	expectVIPs(t, mustEnsure(t, c, testService("c"), nil), "192.0.2.3")

	// The pool is deleted and recreated elsewhere: still kept.
	deletePool(c, "p")
	setPool(c, testPool("p", "198.51.100.0/30"))
	expectVIPs(t, mustEnsure(t, c, a, nil), "192.0.2.1")
	expectVIPs(t, mustEnsure(t, c, b, nil), "192.0.2.2")

	// The pool turns invalid: kept.
	setPool(c, testPool("p", "garbage"))
	expectVIPs(t, mustEnsure(t, c, a, nil), "192.0.2.1")
	expectVIPs(t, mustEnsure(t, c, b, nil), "192.0.2.2")
}

// A Service naming pool p keeps a VIP that an edit removed from p, as the comment in
// allocateFamily promises, even when another pool happens to contain the address.
func TestAllocateKeepsVIPRemovedFromNamedPoolThatAnotherPoolContains(t *testing.T) {
	q := testPool("q", "192.0.2.1-192.0.2.20")
	q.Spec.Priority = 1
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.4"), q)
	svc := testService("a", withAnnotation(AnnotationPool, "p"))
	expectVIPs(t, mustEnsure(t, c, svc, nil), "192.0.2.1")

	setPool(c, testPool("p", "192.0.2.3-192.0.2.4"))
	withStatus(addrs("192.0.2.1")...)(svc)
	for i := range 3 {
		vips, err := ensure(c, svc, nil)
		if err != nil {
			t.Fatalf("ensure %d: %v", i, err)
		}
		if got := vipAddrs(vips); !slices.Equal(got, addrs("192.0.2.1")) {
			t.Fatalf("ensure %d after the edit: VIP %v (pool %q), want 192.0.2.1 kept", i, got, vips[0].pool)
		}
	}
}

// A VIP in the Service's status that the allocator does not hold is taken back when free (see
// allocate). A Service that names its pool must get it back too.
func TestAllocateTakesBackStatusVIP(t *testing.T) {
	for _, opts := range [][]svcOption{nil, {withAnnotation(AnnotationPool, "p")}} {
		c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.4"))
		svc := testService("a", append(opts, withStatus(addrs("192.0.2.3")...))...)
		vips, err := ensure(c, svc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := vipAddrs(vips); !slices.Equal(got, addrs("192.0.2.3")) {
			t.Errorf("annotations %v: VIP %v, want the status VIP 192.0.2.3 back", svc.Annotations, got)
		}
	}
}

func TestAllocateStatusVIPHeldByOtherIsNotTaken(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.4"))
	expectVIPs(t, mustEnsure(t, c, testService("owner"), nil), "192.0.2.1")
	expectVIPs(t, mustEnsure(t, c, testService("a", withStatus(addrs("192.0.2.1")...)), nil), "192.0.2.2")
}

func TestAllocatePoolAnnotationMovesVIP(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.4"), testPool("q", "198.51.100.1-198.51.100.4"))
	svc := testService("a")
	expectVIPs(t, mustEnsure(t, c, svc, nil), "192.0.2.1")

	svc = testService("a", withAnnotation(AnnotationPool, "p"), withStatus(addrs("192.0.2.1")...))
	expectVIPs(t, mustEnsure(t, c, svc, nil), "192.0.2.1") // already from p: stays

	svc = testService("a", withAnnotation(AnnotationPool, "q"), withStatus(addrs("192.0.2.1")...))
	vips, err := ensure(c, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(vips) != 1 || vips[0].addr != netip.MustParseAddr("198.51.100.1") || vips[0].pool != "q" {
		t.Errorf("vips = %+v, want 198.51.100.1 from q", vips)
	}
	statusWritten(c, svc, "198.51.100.1")
	if h := holdersOf(c, netip.MustParseAddr("192.0.2.1")); len(h) != 0 {
		t.Errorf("old VIP held by %v", h)
	}
	if _, ok := c.allocatedFrom[netip.MustParseAddr("192.0.2.1")]; ok {
		t.Error("allocatedFrom still records the released VIP")
	}
	withStatus(addrs("198.51.100.1")...)(svc)
	expectVIPs(t, mustEnsure(t, c, svc, nil), "198.51.100.1")

	// Removing the annotation asks for nothing: the VIP stays.
	svc = testService("a", withStatus(addrs("198.51.100.1")...))
	expectVIPs(t, mustEnsure(t, c, svc, nil), "198.51.100.1")

	// A move into a full pool fails and keeps the old VIP.
	mustEnsure(t, c, testService("f1", withAnnotation(AnnotationPool, "p")), nil)
	mustEnsure(t, c, testService("f2", withAnnotation(AnnotationPool, "p")), nil)
	mustEnsure(t, c, testService("f3", withAnnotation(AnnotationPool, "p")), nil)
	mustEnsure(t, c, testService("f4", withAnnotation(AnnotationPool, "p")), nil)
	svc = testService("a", withAnnotation(AnnotationPool, "p"), withStatus(addrs("198.51.100.1")...))
	if _, err := ensure(c, svc, nil); err == nil {
		t.Error("moved into a full pool")
	}
	expectVIPs(t, heldBy(c, svc), "198.51.100.1")
}

func TestAllocateNewObjectWithSameName(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.8"))
	old := testService("a", withUID("uid-1"), withAnnotation(AnnotationLoadBalancerIPs, "192.0.2.5"))
	expectVIPs(t, mustEnsure(t, c, old, nil), "192.0.2.5")
	renewed := testService("a", withUID("uid-2"))
	expectVIPs(t, mustEnsure(t, c, renewed, nil), "192.0.2.1")
	if h := holdersOf(c, netip.MustParseAddr("192.0.2.5")); len(h) != 0 {
		t.Errorf("the old object's VIP is still held by %v", h)
	}
	if c.owners["default/a"] != "uid-2" {
		t.Errorf("owner = %q", c.owners["default/a"])
	}
}
