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

			c.mu.Lock()
			c.pinAfterPoolChange()
			pending := len(c.pinPending)
			c.mu.Unlock()
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
