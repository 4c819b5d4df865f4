package integration

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider"
)

// TestNewNamespaceIsJudgedOnItsLabels: a Service created in a brand-new namespace, before the
// CCM's namespace cache has it, is judged on the namespace's real labels. The "excluding" pool
// (first by priority) refuses namespaces labelled excluded; the one namespaceSelector that a
// namespace without labels passes is NotIn/DoesNotExist, so that is what it uses. A
// serviceSelector on a label only this test's Services carry keeps the pool away from other
// tests' Services. The old code took a namespace missing from the cache for one without labels:
// the excluding pool's NotIn matched and the fallback pool's matchLabels did not, so a Service
// synced before its namespace reached the cache got a VIP from the pool meant to exclude it.
//
// The CCM's namespace watch delivers a new namespace within milliseconds, well before the service
// controller (which first patches in its finalizer) asks for a VIP, so the race is hardly ever
// lost by timing alone. The test makes the cache lag for certain: the CCM may list and get
// namespaces but not watch them, so its cache learns of new namespaces only at relists, seconds
// apart.
func TestNewNamespaceIsJudgedOnItsLabels(t *testing.T) {
	ns := testNamespace(t)
	restrictCCMRole(t, "", "namespaces", "watch")
	const (
		nsLabel        = "baremetal-test-nsjudge"
		exclusionLabel = "baremetal-test-nsjudge-exclusion"
		serviceLabel   = "baremetal-test-nsjudge-service"
	)
	onlyOurs := &metav1.LabelSelector{MatchLabels: map[string]string{serviceLabel: ns}}
	createPool(t, ns, "nsjudge-excluding", v1alpha1.IPPoolSpec{
		Addresses: addrs("198.18.41.0/26"), Priority: -10, ServiceSelector: onlyOurs,
		NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: exclusionLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"excluded"}},
		}},
	})
	createPool(t, ns, "nsjudge-fallback", v1alpha1.IPPoolSpec{
		Addresses: addrs("198.18.42.0/26"), ServiceSelector: onlyOurs,
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{nsLabel: ns}},
	})
	fallback := netip.MustParsePrefix("198.18.42.0/26")
	// The CCM serves Services again (the test namespace has no exclusion label).
	ready := newService(ns, "ready")
	ready.Labels = map[string]string{serviceLabel: ns}
	createService(t, ready)
	waitIngress(t, ns, "ready", 1, retryTimeout)

	const n = 20
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("%s-%02d", ns, i)
		newNS := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: names[i], Labels: map[string]string{
			nsLabel: ns, exclusionLabel: "excluded",
		}}}
		if _, err := env.Client.CoreV1().Namespaces().Create(context.Background(), newNS, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating namespace %s: %v", names[i], err)
		}
		t.Cleanup(func() { deleteNamespaceAndServices(names[i]) })
		// At once: the CCM must not have seen the namespace yet.
		svc := newService(names[i], "svc")
		svc.Labels = map[string]string{serviceLabel: ns}
		createService(t, svc)
	}
	for _, name := range names {
		got := waitIngress(t, name, "svc", 1, waitTimeout)
		if addr, err := netip.ParseAddr(got[0]); err != nil || !fallback.Contains(addr) {
			t.Errorf("Service %s/svc in a namespace labelled %s=excluded got %v from pool %q, want an address of nsjudge-fallback (%s)",
				name, exclusionLabel, got, attributedPool(t, getService(t, name, "svc"), got[0]), fallback)
		}
	}
	requireCCMAlive(t)
}

// TestSharingKeyFindsSharerInAnyPool: a Service with a sharing key joins a compatible sharer of
// its key in any pool it may allocate from, before it takes a free address of the first pool. The
// old code looked for a sharer only in the pool it was allocating from, so b took p's first free
// address instead of joining a in q.
func TestSharingKeyFindsSharerInAnyPool(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "anypool-p", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.39.0/29")})
	createPool(t, ns, "anypool-q", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.40.0/29"), Priority: 1})

	a := sharer(ns, "a", "k", 80)
	a.Annotations[provider.AnnotationPool] = "anypool-q"
	createService(t, a)
	shared := waitIngress(t, ns, "a", 1, waitTimeout)[0]
	if !netip.MustParsePrefix("198.18.40.0/29").Contains(netip.MustParseAddr(shared)) {
		t.Fatalf("a (baremetal.dev/pool: anypool-q) got %s, want an address of anypool-q", shared)
	}

	createService(t, sharer(ns, "b", "k", 443))
	if got := waitIngress(t, ns, "b", 1, waitTimeout); got[0] != shared {
		t.Errorf("b (key k, port 443, no pool named) got %v, want a's %s from anypool-q", got, shared)
	}
	assertSharedRecord(t, "anypool-q", shared, "k", ns+"/a", ns+"/b")

	// A Service of the key whose ports clash with the sharers takes a free address of the first
	// pool instead.
	createService(t, sharer(ns, "clash", "k", 80))
	if got := waitIngress(t, ns, "clash", 1, waitTimeout); !netip.MustParsePrefix("198.18.39.0/29").Contains(netip.MustParseAddr(got[0])) {
		t.Errorf("clash (key k, port 80 as a) got %v, want a free address of anypool-p", got)
	}
	requireCCMAlive(t)
}

// deleteNamespaceAndServices deletes the Services first, so the CCM releases their VIPs while
// their pools still exist, then the namespace.
func deleteNamespaceAndServices(name string) {
	ctx := context.Background()
	if list, err := env.Client.CoreV1().Services(name).List(ctx, metav1.ListOptions{}); err == nil {
		for _, svc := range list.Items {
			_ = env.Client.CoreV1().Services(name).Delete(ctx, svc.Name, metav1.DeleteOptions{})
		}
	}
	_ = env.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
}
