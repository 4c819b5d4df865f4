package provider

// Scenarios an adversarial review of the restart and sharing code found; each failed before its fix.

import (
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// syncAndWrite is EnsureLoadBalancer followed by the status write and its informer event.
func syncAndWrite(t *testing.T, c *Cloud, svc *v1.Service) *v1.Service {
	t.Helper()
	vips, err := ensure(c, svc, nil)
	if err != nil {
		t.Fatalf("ensure %s: %v", serviceKey(svc), err)
	}
	out := svc.DeepCopy()
	out.Status.LoadBalancer = *loadBalancerStatus(svc, vips)
	applyPin(c, out, vips)
	c.onServiceUpdated(out)
	return out
}

// applyPin does to svc what EnsureLoadBalancer's annotation patch does, and reports whether it
// wrote one.
func applyPin(c *Cloud, svc *v1.Service, vips []vip) bool {
	c.mu.Lock()
	value, write := c.pinnedPools(svc, vips)
	c.mu.Unlock()
	switch {
	case !write:
	case value == nil:
		delete(svc.Annotations, AnnotationAllocatedPool)
	default:
		withAnnotation(AnnotationAllocatedPool, *value)(svc)
	}
	return write
}

func recordPoolStatus(c *Cloud, p *v1alpha1.IPPool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p.Status = c.poolStatusLocked(p.Name)
	c.pools[p.Name].recorded = recordedTerms(p.Status.SharedVIPs)
}

func freshCloud(t *testing.T, pools []*v1alpha1.IPPool, svcs ...*v1.Service) (*Cloud, *record.FakeRecorder) {
	c := newTestCloud(t)
	rec := record.NewFakeRecorder(100)
	c.recorder = rec
	for _, p := range pools {
		setPool(c, p.DeepCopy())
	}
	restoreFrom(t, c, svcs...)
	return c, rec
}

// A record in IPPool status.sharedVIPs that does not name the VIP's holders (edited by hand, or
// left from an earlier share) is not believed; the holders' own terms decide, and the untouched
// ones keep the VIP.
func TestHandEditedShareRecordIsTrustedOnlyIfItNamesTheHolders(t *testing.T) {
	for _, edit := range []struct {
		name string
		do   func(*v1alpha1.SharedVIP)
	}{
		{"other services", func(r *v1alpha1.SharedVIP) { r.Services = []string{"default/x", "default/y"} }},
		{"no key", func(r *v1alpha1.SharedVIP) { r.SharingKey = "" }},
	} {
		t.Run(edit.name, func(t *testing.T) {
			p := testPool("p", "192.0.2.1-192.0.2.4")
			c, _ := freshCloud(t, []*v1alpha1.IPPool{p})
			a := testService("a", withAnnotation(AnnotationSharingKey, "k1"), withPorts(tcp(80)), createdAt(1))
			b := testService("b", withAnnotation(AnnotationSharingKey, "k1"), withPorts(tcp(443)), createdAt(2))
			a = syncAndWrite(t, c, a)
			b = syncAndWrite(t, c, b)
			recordPoolStatus(c, p)
			vip := a.Status.LoadBalancer.Ingress[0].IP
			edit.do(&p.Status.SharedVIPs[0])
			c2, rec := freshCloud(t, []*v1alpha1.IPPool{p}, a, b)
			if events := collectEvents(rec); events != "" {
				t.Errorf("restore events: %v", events)
			}
			for _, svc := range []*v1.Service{a, b} {
				vips, err := ensure(c2, svc, nil)
				if err != nil || vipAddrs(vips)[0].String() != vip {
					t.Errorf("unchanged %s: %v, %v; want %s kept", svc.Name, vipAddrs(vips), err, vip)
				}
			}
		})
	}
}

// The record of a share outlives the pool it came from: deleted, its records move to another
// pool's status, and after a restart the Service whose own change broke the share is still the
// one that moves.
func TestShareRecordOutlivesItsPool(t *testing.T) {
	p := testPool("p", "192.0.2.1-192.0.2.4")
	q := testPool("q", "198.51.100.1-198.51.100.4")
	c, _ := freshCloud(t, []*v1alpha1.IPPool{p, q})
	a := testService("a", withAnnotation(AnnotationSharingKey, "k1"), withPorts(tcp(80)), withAnnotation(AnnotationPool, "p"), createdAt(1))
	b := testService("b", withAnnotation(AnnotationSharingKey, "k1"), withPorts(tcp(443)), withAnnotation(AnnotationPool, "p"), createdAt(2))
	a = syncAndWrite(t, c, a)
	b = syncAndWrite(t, c, b)
	vip := b.Status.LoadBalancer.Ingress[0].IP
	deletePool(c, "p")
	recordPoolStatus(c, q)
	if len(q.Status.SharedVIPs) != 1 || q.Status.SharedVIPs[0].Address != vip {
		t.Fatalf("q's sharedVIPs = %+v, want the record of %s", q.Status.SharedVIPs, vip)
	}
	// a's own change (older, so the old tie-break would have let it win): it no longer fits b.
	a2 := a.DeepCopy()
	a2.Annotations[AnnotationSharingKey] = "k2"
	c2, rec := freshCloud(t, []*v1alpha1.IPPool{q}, a2, b)
	collectEvents(rec)
	vips, err := ensure(c2, b, nil)
	if err != nil || vipAddrs(vips)[0].String() != vip {
		t.Errorf("unchanged b: %v, %v; want %s kept", vipAddrs(vips), err, vip)
	}
	if _, err := ensure(c2, a2, nil); err == nil {
		if got := heldBy(c2, a2); len(got) == 1 && got[0].String() == vip {
			t.Errorf("a, whose key changed, kept %s", vip)
		}
	}
}

// A spec-change event must not drop a port that an in-flight status write (from the sync before
// the change) will still list: were another sharer to take it, two statuses would name one VIP
// on one port, and a restart would evict the untouched newcomer.
func TestPortsStayHeldWhileTheirStatusWriteIsInFlight(t *testing.T) {
	p := testPool("p", "192.0.2.1-192.0.2.4")
	c, _ := freshCloud(t, []*v1alpha1.IPPool{p})
	a := testService("a", withAnnotation(AnnotationSharingKey, "k"), withPorts(tcp(80)), createdAt(1))
	a = syncAndWrite(t, c, a)
	vip := a.Status.LoadBalancer.Ingress[0].IP
	// User adds 443; sync1 returns VIP with 80+443; the status patch is in flight.
	a1 := a.DeepCopy()
	a1.Spec.Ports = []v1.ServicePort{tcp(80), tcp(443)}
	c.onServiceUpdated(a1)
	vips1, err := ensure(c, a1, nil)
	if err != nil {
		t.Fatal(err)
	}
	inflight := loadBalancerStatus(a1, vips1)
	// User removes 443 again before the patch lands: the informer's update event.
	a2 := a1.DeepCopy()
	a2.Spec.Ports = []v1.ServicePort{tcp(80)}
	c.onServiceUpdated(a2)
	// b joins on 443.
	b := testService("b", withAnnotation(AnnotationSharingKey, "k"), withPorts(tcp(443)), createdAt(2))
	b = syncAndWrite(t, c, b)
	// sync1's status patch lands.
	a3 := a2.DeepCopy()
	a3.Status.LoadBalancer = *inflight
	c.onServiceUpdated(a3)
	t.Logf("statuses: a %v, b %v", a3.Status.LoadBalancer.Ingress, b.Status.LoadBalancer.Ingress)
	if b.Status.LoadBalancer.Ingress[0].IP == vip {
		t.Errorf("a's status lists %s on 80+443 and b's lists %s on 443", vip, vip)
	}
	c2, rec := freshCloud(t, []*v1alpha1.IPPool{p}, a3, b)
	t.Logf("restore events: %v", collectEvents(rec))
	vips, err := ensure(c2, b, nil)
	t.Logf("b (unchanged) after restart: %v err=%v", vipAddrs(vips), err)
}

// A stale cached Service (its status write done on the server, not yet in the cache) must not
// make allocate free the old VIP as "never listed".
func TestStaleCacheDoesNotFreeAListedVIP(t *testing.T) {
	p := testPool("p", "192.0.2.1-192.0.2.4")
	q := testPool("q", "192.0.2.10-192.0.2.11")
	c, _ := freshCloud(t, []*v1alpha1.IPPool{p, q})
	a := testService("a", createdAt(1))
	vips, err := ensure(c, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	onServer := a.DeepCopy()
	onServer.Status.LoadBalancer = *loadBalancerStatus(a, vips)
	// The user named pool q before the status patch landed; sync2 sees the cached spec change
	// without the status.
	cached := a.DeepCopy()
	withAnnotation(AnnotationPool, "q")(cached)
	if _, err := ensure(c, cached, nil); err != nil {
		t.Fatal(err)
	}
	other := testService("other", createdAt(2))
	got, _ := ensure(c, other, nil)
	t.Logf("server status of a: %v; other got %v", onServer.Status.LoadBalancer.Ingress[0].IP, vipAddrs(got))
	if vipAddrs(got)[0].String() == onServer.Status.LoadBalancer.Ingress[0].IP {
		t.Errorf("other took %s while a's status on the server still lists it", vipAddrs(got)[0])
	}
}

var _ = strings.Contains
var _ netip.Addr
