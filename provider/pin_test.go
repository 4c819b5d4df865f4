package provider

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1/poolindex"
)

// attributed is the pool the announcer and a restarted CCM attribute a VIP of svc to.
func attributed(svc *v1.Service, vip string, pools ...*v1alpha1.IPPool) string {
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == vip {
			return poolindex.New(pools).PoolOf(svc.Annotations, vip, i)
		}
	}
	return ""
}

// The annotation is written only where the address alone would name another pool than the one
// the VIP came from; everywhere else the status write is the only write.
func TestAllocatedPoolAnnotationOnlyWhereTheAddressDoesNotTell(t *testing.T) {
	wide := testPool("wide", "192.0.2.0/24")
	narrow := testPool("narrow", "192.0.2.8/29")
	narrow.Spec.Priority = 5
	v6 := testPool("v6", "2001:db8::/120")
	pools := []*v1alpha1.IPPool{wide, narrow, v6}
	for _, tc := range []struct {
		name        string
		svc         *v1.Service
		wantWrite   bool
		wantValue   string
		wantPoolFor map[string]string
	}{
		{
			name:        "first pool by priority",
			svc:         testService("plain"),
			wantPoolFor: map[string]string{"192.0.2.1": "wide"},
		},
		{
			name:        "dual-stack, each address tells its pool",
			svc:         testService("dual", withFamilies(v1.IPFamilyPolicyRequireDualStack, v1.IPv4Protocol, v1.IPv6Protocol)),
			wantPoolFor: map[string]string{"192.0.2.1": "wide", "2001:db8::1": "v6"},
		},
		{
			name:        "asked for the lower-priority overlapping pool",
			svc:         testService("asks", withAnnotation(AnnotationPool, "narrow")),
			wantWrite:   true,
			wantValue:   "192.0.2.9=narrow",
			wantPoolFor: map[string]string{"192.0.2.9": "narrow"},
		},
		{
			name:        "an annotation from an older CCM that tells the truth is left alone",
			svc:         testService("upgraded", withStatus(addrs("192.0.2.1")...), withAnnotation(AnnotationAllocatedPool, "192.0.2.1=wide")),
			wantPoolFor: map[string]string{"192.0.2.1": "wide"},
		},
		{
			name:        "an annotation naming another pool is removed",
			svc:         testService("edited", withStatus(addrs("192.0.2.1")...), withAnnotation(AnnotationAllocatedPool, "192.0.2.1=narrow")),
			wantWrite:   true,
			wantValue:   "<none>",
			wantPoolFor: map[string]string{"192.0.2.1": "wide"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := freshCloud(t, pools)
			vips, err := ensure(c, tc.svc, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			value, write := c.pinnedPools(tc.svc, vips)
			c.mu.Unlock()
			if write != tc.wantWrite {
				t.Fatalf("write = %v, want %v (value %v)", write, tc.wantWrite, value)
			}
			if got := ptrString(value); write && got != tc.wantValue {
				t.Errorf("annotation = %q, want %q", got, tc.wantValue)
			}
			out := syncAndWrite(t, c, tc.svc)
			for vip, want := range tc.wantPoolFor {
				if got := attributed(out, vip, pools...); got != want {
					t.Errorf("%s is attributed to %q, want %q (annotations %v)", vip, got, want, out.Annotations)
				}
			}
		})
	}
}

func ptrString(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

// A pool edit that makes an address tell another pool (a higher-priority pool added over it, or
// its own pool shrunk away from it) pins the pool it came from, so a restarted CCM and the
// announcer keep attributing it there.
func TestPoolChangePinsTheVIPsItWouldReattribute(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *Cloud) []*v1alpha1.IPPool
		// outside: the VIP is in no pool after the edit.
		outside bool
	}{
		{"higher-priority pool added over it", func(c *Cloud) []*v1alpha1.IPPool {
			over := testPool("over", "192.0.2.0/28")
			over.Spec.Priority = -1
			setPool(c, over)
			return []*v1alpha1.IPPool{testPool("home", "192.0.2.1-192.0.2.4"), over}
		}, false},
		{"its pool shrunk away from it", func(c *Cloud) []*v1alpha1.IPPool {
			shrunk := testPool("home", "192.0.2.3-192.0.2.4")
			setPool(c, shrunk)
			return []*v1alpha1.IPPool{shrunk}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := testPool("home", "192.0.2.1-192.0.2.4")
			c, _ := freshCloud(t, []*v1alpha1.IPPool{home})
			svc := testService("held", func(s *v1.Service) { s.Namespace = "default" })
			svc = syncAndWrite(t, c, svc)
			if _, ok := svc.Annotations[AnnotationAllocatedPool]; ok {
				t.Fatalf("annotation written on a plain allocation: %v", svc.Annotations)
			}
			client := fake.NewClientset(svc)
			c.client = client
			restoreFrom(t, c, svc) // the lister now serves the Service
			pools := tc.edit(c)

			pending := queuedPins(c)
			if pending != 1 {
				t.Fatalf("%d Services queued for a pin, want 1", pending)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := c.writePin(ctx, "default/held"); err != nil {
				t.Fatal(err)
			}
			got, err := client.CoreV1().Services("default").Get(ctx, "held", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if want := "192.0.2.1=home"; got.Annotations[AnnotationAllocatedPool] != want {
				t.Fatalf("annotation = %q, want %q", got.Annotations[AnnotationAllocatedPool], want)
			}
			if p := attributed(got, "192.0.2.1", pools...); p != "home" {
				t.Errorf("after the pin the VIP is attributed to %q, want home", p)
			}

			// A restarted CCM reads the pin: the VIP is still home's, in its status' count or
			// in its report of addresses in use outside the pool.
			restarted, rec := freshCloud(t, pools, got)
			restarted.mu.Lock()
			from := restarted.allocatedFrom[netip.MustParseAddr("192.0.2.1")]
			restarted.mu.Unlock()
			if from != "home" {
				t.Errorf("after a restart the VIP came from %q, want home", from)
			}
			if tc.outside {
				var events []string
				for len(rec.Events) > 0 {
					events = append(events, <-rec.Events)
				}
				found := false
				for _, e := range events {
					found = found || (strings.Contains(e, "VIPOutsidePools") && strings.Contains(e, `pool "home"`))
				}
				if !found {
					t.Errorf("events %v, want VIPOutsidePools naming pool home", events)
				}
			}
		})
	}
}

// A Service that moves its baremetal.dev/pool to an overlapping pool that contains its VIP keeps
// the VIP under the new pool; a pool event afterwards must not pin the old one (which its next
// sync would unpin again, on every pool event).
func TestNoPinLoopAfterTheServiceNamesAnotherOverlappingPool(t *testing.T) {
	wide := testPool("wide", "192.0.2.0/24")
	narrow := testPool("narrow", "192.0.2.8/29")
	narrow.Spec.Priority = 5
	c, _ := freshCloud(t, []*v1alpha1.IPPool{wide, narrow})
	svc := syncAndWrite(t, c, testService("held", withAnnotation(AnnotationPool, "narrow")))
	if got := svc.Annotations[AnnotationAllocatedPool]; got != "192.0.2.9=narrow" {
		t.Fatalf("allocated-pool = %q, want 192.0.2.9=narrow", got)
	}
	withAnnotation(AnnotationPool, "wide")(svc)
	svc = syncAndWrite(t, c, svc)
	if got, ok := svc.Annotations[AnnotationAllocatedPool]; ok {
		t.Fatalf("allocated-pool = %q after the Service named wide, which its address tells", got)
	}
	restoreFrom(t, c, svc)
	pending := queuedPins(c)
	if pending != 0 {
		t.Errorf("%d Services queued for a pin, want none: the next sync would unpin it", pending)
	}
	if got := attributed(svc, "192.0.2.9", wide, narrow); got != "wide" {
		t.Errorf("VIP attributed to %q, want wide", got)
	}
}

// A pool shrunk away from a VIP that another pool contains: the Service's next sync reports the
// other pool, which its address tells, so nothing is pinned.
func TestNoPinWhenAnotherPoolTakesTheVIPOver(t *testing.T) {
	home := testPool("home", "192.0.2.1-192.0.2.4")
	other := testPool("other", "192.0.2.0/28")
	other.Spec.Priority = 5
	c, _ := freshCloud(t, []*v1alpha1.IPPool{home, other})
	svc := syncAndWrite(t, c, testService("held"))
	restoreFrom(t, c, svc)
	shrunk := testPool("home", "192.0.2.3-192.0.2.4")
	setPool(c, shrunk)
	pending := queuedPins(c)
	if pending != 0 {
		t.Errorf("%d Services queued for a pin, want none", pending)
	}
	after := syncAndWrite(t, c, svc)
	if got, ok := after.Annotations[AnnotationAllocatedPool]; ok {
		t.Errorf("allocated-pool = %q, want none", got)
	}
	if got := attributed(after, "192.0.2.1", shrunk, other); got != "other" {
		t.Errorf("VIP attributed to %q, want other", got)
	}
}

// A pool edited between a sync and its status write cannot be judged on the Service yet (its
// status does not show the VIP); the status' arrival is, and pins the pool the VIP came from.
func TestPoolEditedBeforeTheStatusLandsIsPinnedWhenItDoes(t *testing.T) {
	home := testPool("home", "192.0.2.1-192.0.2.4")
	c, _ := freshCloud(t, []*v1alpha1.IPPool{home})
	svc := testService("held")
	vips, err := ensure(c, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	restoreFrom(t, c) // lister without the Service's new status
	over := testPool("over", "192.0.2.0/28")
	over.Spec.Priority = -1
	setPool(c, over)
	early := queuedPins(c)
	if early != 0 {
		t.Fatalf("%d Services queued before their status shows the VIP", early)
	}

	landed := svc.DeepCopy()
	landed.Status.LoadBalancer = *loadBalancerStatus(svc, vips)
	c.onServiceUpdated(landed)
	c.mu.Lock()
	value, write := c.pinFor(landed)
	queued := c.pinPending["default/held"]
	c.mu.Unlock()
	if !queued || !write || ptrString(value) != "192.0.2.1=home" {
		t.Errorf("after the status landed: queued %v, pin %v %q; want queued, 192.0.2.1=home", queued, write, ptrString(value))
	}
}

// queuedPins runs a pool change's pin pass and counts the Services it queued.
func queuedPins(c *Cloud) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pinAfterPoolChange()
	return len(c.pinPending)
}
