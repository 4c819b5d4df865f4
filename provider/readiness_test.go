package provider

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// Defect 10: without access to IPPools, LoadBalancer calls fail at once with what to fix.
func TestWaitReadySaysWhyIPPoolsCannotBeRead(t *testing.T) {
	gr := schema.GroupResource{Group: v1alpha1.IPPoolResource.Group, Resource: v1alpha1.IPPoolResource.Resource}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"forbidden", apierrors.NewForbidden(gr, "", errors.New("RBAC: no rule")), "may not list and watch ippools.baremetal.dev: check its ClusterRole"},
		{"crd missing", apierrors.NewNotFound(gr, ""), "the IPPool CRD (ippools.baremetal.dev) is not installed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCloud(t)
			_, ctx := ktesting.NewTestContext(t)
			c.poolWatch.record(ctx, tc.err)
			start := time.Now()
			err := c.waitReady(context.Background())
			var notReady *NotReadyError
			if !errors.As(err, &notReady) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("waitReady = %v, want a *NotReadyError containing %q", err, tc.want)
			}
			if waited := time.Since(start); waited > 2*time.Second {
				t.Errorf("waited %s for an error that waiting does not fix", waited)
			}
			close(c.ready)
			if err := c.waitReady(context.Background()); err != nil {
				t.Errorf("waitReady once ready = %v", err)
			}
		})
	}
}

// Defect 4: a Namespace not in the cache yet is read from the API server, not taken for one
// without labels.
func TestNamespaceNotCachedIsReadFromTheAPI(t *testing.T) {
	c := newTestCloud(t)
	c.namespaces = corelisters.NewNamespaceLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}))
	c.client = fake.NewClientset(&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh", Labels: map[string]string{"tier": "excluded"}}})
	ns, err := c.namespace(context.Background(), "fresh")
	if err != nil || ns.Labels["tier"] != "excluded" {
		t.Fatalf("namespace = %v, %v", ns, err)
	}
	if _, err := c.namespace(context.Background(), "gone"); err == nil || !strings.Contains(err.Error(), "namespaceSelectors") {
		t.Errorf("missing namespace: %v, want an error naming namespaceSelectors", err)
	}
}

// Defect 10: the pool whose status counts and records a shared VIP is the first one recorded,
// not the last sharer's.
func TestSharedVIPKeepsFirstPool(t *testing.T) {
	q := testPool("q", "192.0.2.1-192.0.2.4")
	q.Spec.Priority = 1
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.4"), q)
	a := testService("a", withAnnotation(AnnotationSharingKey, "k"), withAnnotation(AnnotationPool, "q"))
	vips, err := ensure(c, a, nil)
	if err != nil || vips[0].pool != "q" {
		t.Fatalf("a: %+v, %v", vips, err)
	}
	b := testService("b", withAnnotation(AnnotationSharingKey, "k"), withPorts(tcp(443)), withAnnotation(AnnotationPool, "p"))
	vips, err = ensure(c, b, nil)
	if err != nil || vips[0].addr != netip.MustParseAddr("192.0.2.1") || vips[0].pool != "p" {
		t.Fatalf("b: %+v, %v; want 192.0.2.1, which b reports under its own pool p", vips, err)
	}
	if got := c.allocatedFrom[netip.MustParseAddr("192.0.2.1")]; got != "q" {
		t.Errorf("allocatedFrom = %q", got)
	}
	c.mu.Lock()
	shared := c.sharedVIPsOf("q")
	c.mu.Unlock()
	if len(shared) != 1 || shared[0].SharingKey != "k" || strings.Join(shared[0].Services, ",") != "default/a,default/b" {
		t.Errorf("q's sharedVIPs = %+v", shared)
	}
}

// Defect 10: selector-less Local Services never count as running on the same pods.
func TestSelectorlessLocalServicesDoNotShare(t *testing.T) {
	c := newTestCloud(t, testPool("p", "192.0.2.1-192.0.2.4"))
	local := func(name string, port int32) *v1.Service {
		return testService(name, withAnnotation(AnnotationSharingKey, "k"), withPorts(tcp(port)), withLocal(nil))
	}
	expectVIPs(t, mustEnsure(t, c, local("a", 80), nil), "192.0.2.1")
	expectVIPs(t, mustEnsure(t, c, local("b", 443), nil), "192.0.2.2")
}
