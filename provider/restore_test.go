package provider

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// restoreFrom runs restore over the given Services as the informer cache would list them.
func restoreFrom(t *testing.T, c *Cloud, services ...*v1.Service) int {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, svc := range services {
		if err := idx.Add(svc); err != nil {
			t.Fatal(err)
		}
	}
	c.services = corelisters.NewServiceLister(idx)
	_, ctx := ktesting.NewTestContext(t)
	return c.restore(ctx)
}

func createdAt(minute int) svcOption {
	return func(svc *v1.Service) {
		svc.CreationTimestamp = metav1.NewTime(time.Date(2025, 1, 1, 0, minute, 0, 0, time.UTC))
	}
}

func TestRestoreRebuildsFromStatus(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.8", "2001:db8::1-2001:db8::8"))
	s1 := testService("s1", withStatus(addrs("192.0.2.3")...), withAnnotation(AnnotationAllocatedPool, "p"))
	s2 := testService("s2", withFamilies(pds, v4, v6), withStatus(addrs("192.0.2.5", "2001:db8::5")...),
		withAnnotation(AnnotationAllocatedPool, "p,p"))
	notLB := testService("cluster-ip", withStatus(addrs("192.0.2.1")...), func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeClusterIP })
	otherClass := testService("other-class", withStatus(addrs("192.0.2.2")...), func(s *v1.Service) {
		class := "example.com/other"
		s.Spec.LoadBalancerClass = &class
	})
	pending := testService("pending")
	if n := restoreFrom(t, c, s1, s2, notLB, otherClass, pending); n != 2 {
		t.Errorf("restored %d Services, want 2", n)
	}
	expectVIPs(t, heldBy(c, s1), "192.0.2.3")
	expectVIPs(t, heldBy(c, s2), "192.0.2.5", "2001:db8::5")
	if len(heldBy(c, notLB)) != 0 || len(heldBy(c, otherClass)) != 0 {
		t.Error("restored VIPs of Services that are not ours")
	}
	if c.allocatedFrom[netip.MustParseAddr("2001:db8::5")] != "p" {
		t.Errorf("allocatedFrom = %v", c.allocatedFrom)
	}
	// Pending Services get free addresses, restored ones keep theirs.
	expectVIPs(t, mustEnsure(t, c, pending, nil), "192.0.2.1")
	expectVIPs(t, mustEnsure(t, c, testService("new"), nil), "192.0.2.2")
	expectVIPs(t, mustEnsure(t, c, testService("new2"), nil), "192.0.2.4")
	expectVIPs(t, mustEnsure(t, c, s1, nil), "192.0.2.3")
	expectVIPs(t, mustEnsure(t, c, s2, nil), "192.0.2.5", "2001:db8::5")
}

func TestRestoreSharedAndBrokenServices(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.8"))
	a := testService("a", withAnnotation(AnnotationSharingKey, "k"), withPorts(tcp(80)), withStatus(addrs("192.0.2.4")...), createdAt(1))
	b := testService("b", withAnnotation(AnnotationSharingKey, "k"), withPorts(tcp(443)), withStatus(addrs("192.0.2.4")...), createdAt(2))
	// Annotations that went bad while the Service held a VIP: it keeps the VIP.
	broken := testService("broken", withAnnotation(AnnotationLoadBalancerIPs, "garbage"), withStatus(addrs("192.0.2.6")...), createdAt(3))
	restoreFrom(t, c, b, broken, a)
	expectVIPs(t, heldBy(c, a), "192.0.2.4")
	expectVIPs(t, heldBy(c, b), "192.0.2.4")
	expectVIPs(t, heldBy(c, broken), "192.0.2.6")
	if _, err := ensure(c, broken, nil); err == nil {
		t.Error("ensure of a Service with a bad annotation succeeded")
	}
	expectVIPs(t, heldBy(c, broken), "192.0.2.6")
	expectVIPs(t, mustEnsure(t, c, a, nil), "192.0.2.4")
	expectVIPs(t, mustEnsure(t, c, b, nil), "192.0.2.4")
}

func TestRestoreConflictOlderServiceWins(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.8"))
	recorder := record.NewFakeRecorder(10)
	c.recorder = recorder
	older := testService("older", withStatus(addrs("192.0.2.3")...), createdAt(1))
	newer := testService("newer", withStatus(addrs("192.0.2.3")...), createdAt(2))
	restoreFrom(t, c, newer, older)
	expectVIPs(t, heldBy(c, older), "192.0.2.3")
	if len(heldBy(c, newer)) != 0 {
		t.Errorf("newer holds %v", heldBy(c, newer))
	}
	select {
	case e := <-recorder.Events:
		if !strings.Contains(e, "VIPConflict") || !strings.Contains(e, "192.0.2.3") {
			t.Errorf("event %q", e)
		}
	default:
		t.Error("no VIPConflict event")
	}
	expectVIPs(t, mustEnsure(t, c, newer, nil), "192.0.2.1")
	expectVIPs(t, mustEnsure(t, c, older, nil), "192.0.2.3")
}

// A restart must not move a VIP (DESIGN.md invariant 2). A Service migrated from MetalLB names its
// pool with metallb.io/address-pool and has no allocated-pool annotation yet; its VIP is also in
// an overlapping pool of higher priority.
func TestRestoreKeepsVIPOfServiceNamingOverlappingPool(t *testing.T) {
	q := testPool("q", "192.0.2.1-192.0.2.20")
	q.Spec.Priority = 1
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.20"), q)
	svc := testService("a", withAnnotation("metallb.io/address-pool", "q"), withStatus(addrs("192.0.2.7")...))
	restoreFrom(t, c, svc)
	expectVIPs(t, heldBy(c, svc), "192.0.2.7")
	vips, err := ensure(c, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := vipAddrs(vips); len(got) != 1 || got[0] != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("first ensure after the restart: VIP %v (pool %q), want 192.0.2.7 kept", got, vips[0].pool)
	}
}

// withAgreedStatus sets a status that lists the Service's VIPs with its current ports, as
// EnsureLoadBalancer reports them.
func withAgreedStatus(vips ...string) svcOption {
	return func(svc *v1.Service) {
		vs := make([]vip, len(vips))
		for i, a := range vips {
			vs[i] = vip{addr: netip.MustParseAddr(a)}
		}
		svc.Status.LoadBalancer = *loadBalancerStatus(svc, vs)
	}
}

func sharedRecordPool(name string, addresses []string, records ...v1alpha1.SharedVIP) *v1alpha1.IPPool {
	p := testPool(name, addresses...)
	p.Status.SharedVIPs = records
	return p
}

func collectEvents(r *record.FakeRecorder) string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return strings.Join(out, "\n")
		}
	}
}

// Defect 1: a typo in one sharer's annotations must not evict its partner on restart.
func TestRestoreKeepsPartnerOfSharerWithBrokenAnnotation(t *testing.T) {
	for _, recorded := range []bool{true, false} {
		t.Run(fmt.Sprint("recorded=", recorded), func(t *testing.T) {
			var records []v1alpha1.SharedVIP
			if recorded {
				records = []v1alpha1.SharedVIP{{Address: "192.0.2.4", SharingKey: "k", Services: []string{"default/a", "default/b"}}}
			}
			c := newTestCloud(t, sharedRecordPool("p", []string{"192.0.2.1-192.0.2.8"}, records...))
			recorder := record.NewFakeRecorder(100)
			c.recorder = recorder
			a := testService("a", withAnnotation(AnnotationSharingKey, "k"), withPorts(tcp(80)), withAgreedStatus("192.0.2.4"), createdAt(1))
			withAnnotation(AnnotationLoadBalancerIPs, "192.0.2.300")(a)
			b := testService("b", withAnnotation(AnnotationSharingKey, "k"), withPorts(tcp(443)), withAgreedStatus("192.0.2.4"), createdAt(2))
			restoreFrom(t, c, a, b)
			if events := collectEvents(recorder); events != "" {
				t.Errorf("events on restore: %s", events)
			}
			expectVIPs(t, heldBy(c, a), "192.0.2.4")
			expectVIPs(t, mustEnsure(t, c, b, nil), "192.0.2.4")
			if _, err := ensure(c, a, nil); err == nil {
				t.Error("a's broken annotation was accepted")
			}
			expectVIPs(t, heldBy(c, a), "192.0.2.4")
			// Repaired, it keeps the VIP it shares.
			delete(a.Annotations, AnnotationLoadBalancerIPs)
			expectVIPs(t, mustEnsure(t, c, a, nil), "192.0.2.4")
		})
	}
}

// Defect 2: the Service whose own change broke the share moves (or waits), whichever is older,
// and whatever order the syncs come in after the restart.
func TestRestoreMovesTheServiceThatBrokeTheShare(t *testing.T) {
	agreed := v1alpha1.SharedVIP{Address: "192.0.2.1", SharingKey: "k", Services: []string{"default/a", "default/b"}}
	for _, tc := range []struct {
		name   string
		change func(*v1.Service)
		// pool is the pool's addresses; with a single address the changer cannot move and waits.
		pool     []string
		recorded bool
	}{
		{"ports overlap, room to move", withPorts(tcp(80), tcp(443)), []string{"192.0.2.1-192.0.2.2"}, true},
		{"ports overlap, pool full", withPorts(tcp(80), tcp(443)), []string{"192.0.2.1"}, true},
		{"key changed", withAnnotation(AnnotationSharingKey, "other"), []string{"192.0.2.1-192.0.2.2"}, true},
		{"key changed, pool full", withAnnotation(AnnotationSharingKey, "other"), []string{"192.0.2.1"}, true},
		{"pods changed", withLocal(map[string]string{"app": "y"}), []string{"192.0.2.1-192.0.2.2"}, true},
		{"ports overlap, no record", withPorts(tcp(80), tcp(443)), []string{"192.0.2.1-192.0.2.2"}, false},
	} {
		for _, bFirst := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/b synced first=%v", tc.name, bFirst), func(t *testing.T) {
				var records []v1alpha1.SharedVIP
				if tc.recorded {
					records = []v1alpha1.SharedVIP{agreed}
				}
				c := newTestCloud(t, sharedRecordPool("p", tc.pool, records...))
				recorder := record.NewFakeRecorder(100)
				c.recorder = recorder
				// a, the older, agreed on port 80 and changed afterwards.
				a := testService("a", withAnnotation(AnnotationSharingKey, "k"), withPorts(tcp(80)), withAgreedStatus("192.0.2.1"), createdAt(1))
				tc.change(a)
				b := testService("b", withAnnotation(AnnotationSharingKey, "k"), withPorts(tcp(443)), withAgreedStatus("192.0.2.1"), createdAt(2))
				restoreFrom(t, c, a, b)
				if events := collectEvents(recorder); events != "" {
					t.Fatalf("events on restore: %s", events)
				}
				if bFirst {
					expectVIPs(t, mustEnsure(t, c, b, nil), "192.0.2.1")
				}
				vips, err := ensure(c, a, nil)
				if !strings.Contains(tc.pool[0], "-") {
					var blocked *MoveBlockedError
					if !errors.As(err, &blocked) {
						t.Fatalf("a's sync: %v, want a *MoveBlockedError", err)
					}
					expectVIPs(t, heldBy(c, a), "192.0.2.1")
				} else {
					if err != nil {
						t.Fatalf("a's sync: %v", err)
					}
					expectVIPs(t, vipAddrs(vips), "192.0.2.2")
					if events := collectEvents(recorder); !strings.Contains(events, "VIPMoved") {
						t.Errorf("no VIPMoved event on a: %q", events)
					}
				}
				expectVIPs(t, mustEnsure(t, c, b, nil), "192.0.2.1")
			})
		}
	}
}
