package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/migrate/metallb"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

// TestMetalLBMigrationKeepsVIPs follows docs/migrate-from-metallb.md on a real API server: the
// Services MetalLB served (its annotations, the VIPs its allocator chose, not ours: the last of the
// pool, a shared one) are left as they are while no CCM runs; the converter's IPPool is applied;
// our CCM starts and serves every Service on the VIP it had, never re-allocating, and records the
// pool each VIP came from.
func TestMetalLBMigrationKeepsVIPs(t *testing.T) {
	ns := testNamespace(t)
	pool := "mlb-" + ns // pool names are cluster-wide; one per test namespace
	metallbYAML := fmt.Sprintf(`apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: %s, namespace: metallb-system}
spec:
  addresses: ["198.18.32.240-198.18.32.250"]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec:
  ipAddressPools: [%s]
`, pool, pool)
	res, err := metallb.Convert(strings.NewReader(metallbYAML))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pools) != 1 {
		t.Fatalf("converted %d pools, want 1: %+v", len(res.Pools), res.Findings)
	}

	// MetalLB's controller is gone and ours is not running yet.
	env.StopCCM()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = env.StartCCM(framework.CCMArgs()...)
		}
	})
	served := map[string][]string{ // Service -> the VIP MetalLB gave it
		"last":     {"198.18.32.250"},
		"middle":   {"198.18.32.244"},
		"shared-a": {"198.18.32.247"},
		"shared-b": {"198.18.32.247"},
	}
	ctx := context.Background()
	for name, ips := range served {
		svc := newService(ns, name)
		svc.Annotations = map[string]string{"metallb.io/address-pool": pool}
		if strings.HasPrefix(name, "shared-") {
			svc.Annotations["metallb.io/allow-shared-ip"] = "k"
			if name == "shared-b" {
				svc.Spec.Ports[0].Port = 443
			}
		}
		created := createService(t, svc)
		for _, ip := range ips {
			created.Status.LoadBalancer.Ingress = append(created.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip})
		}
		if _, err := env.Client.CoreV1().Services(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	converted := res.Pools[0]
	converted.ResourceVersion = ""
	if err := createPoolObject(&converted); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deletePool(converted.Name) })

	if err := env.StartCCM(framework.CCMArgs()...); err != nil {
		t.Fatal(err)
	}
	restarted = true
	for name, ips := range served {
		waitEventCountAbove(t, ns, name, 0, waitTimeout, "EnsuredLoadBalancer")
		svc := getService(t, ns, name)
		if got := ingressIPs(svc); !slices.Equal(got, ips) {
			t.Errorf("%s: MetalLB had given it %v, after the migration it has %v", name, ips, got)
		}
		if got := attributedPool(t, svc, ips[0]); got != pool {
			t.Errorf("%s: %s is attributed to pool %q (allocated-pool %q), want %q", name, ips[0], got, svc.Annotations[provider.AnnotationAllocatedPool], pool)
		}
		for _, e := range serviceEvents(ns, name) {
			if e.Reason == "VIPMoved" || e.Reason == "VIPConflict" {
				t.Errorf("%s: event %s: %s", name, e.Reason, e.Message)
			}
		}
	}
	// The pool counts what MetalLB handed out (3 addresses), and the next Service gets a free one.
	waitPool(t, pool, "3 addresses used", func(p *v1alpha1.IPPool) bool { return p.Status.IPv4 != nil && p.Status.IPv4.Used == 3 })
	fresh := newService(ns, "new")
	fresh.Annotations = map[string]string{"metallb.io/address-pool": pool}
	createService(t, fresh)
	got := waitIngress(t, ns, "new", 1, waitTimeout)
	if slices.Contains([]string{"198.18.32.250", "198.18.32.244", "198.18.32.247"}, got[0]) {
		t.Errorf("a new Service got %s, which a migrated Service holds", got[0])
	}
	requireCCMAlive(t)
}
