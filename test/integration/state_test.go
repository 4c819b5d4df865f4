package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

// TestConcurrentAllocationsAreUnique: with --concurrent-service-syncs=8 a burst of Services
// never gets a duplicate VIP (invariant 1).
func TestConcurrentAllocationsAreUnique(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "burst", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.17.0/25")})
	const n = 100
	createServicesConcurrently(t, ns, "burst", n)
	seen := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("burst-%03d", i)
		ip := waitIngress(t, ns, name, 1, waitTimeout)[0]
		if other, dup := seen[ip]; dup {
			t.Errorf("%s and %s both got %s", other, name, ip)
		}
		seen[ip] = name
	}
	waitPool(t, "burst", fmt.Sprintf("%d used", n), func(p *v1alpha1.IPPool) bool { return p.Status.IPv4 != nil && p.Status.IPv4.Used == n })
}

// TestRestartKeepsVIPs restarts the CCM (SIGKILL, then SIGTERM) while Services are created and
// deleted, and checks that no VIP ever moves and none is handed out twice (invariants 1-3).
func TestRestartKeepsVIPs(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "restart", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.18.0/24")})
	const initial = 40
	createServicesConcurrently(t, ns, "old", initial)
	before := map[string]string{}
	for i := range initial {
		name := fmt.Sprintf("old-%03d", i)
		before[name] = waitIngress(t, ns, name, 1, waitTimeout)[0]
	}

	// Churn while the CCM goes down and comes back twice.
	var wg sync.WaitGroup
	deleted := map[string]bool{}
	wg.Go(func() {
		for i := range 20 {
			svc := newService(ns, fmt.Sprintf("new-%03d", i))
			if _, err := env.Client.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
				t.Errorf("creating %s: %v", svc.Name, err)
			}
			time.Sleep(150 * time.Millisecond)
		}
	})
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("old-%03d", i*4)
		deleted[name] = true
	}
	wg.Go(func() {
		for name := range deleted {
			if err := env.Client.CoreV1().Services(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
				t.Errorf("deleting %s: %v", name, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	time.Sleep(300 * time.Millisecond)
	env.KillCCM()
	time.Sleep(time.Second)
	if err := env.StartCCM(framework.CCMArgs()...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := env.RestartCCM(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	holders := map[string]string{}
	for i := range initial {
		name := fmt.Sprintf("old-%03d", i)
		if deleted[name] {
			continue
		}
		got := waitIngress(t, ns, name, 1, retryTimeout)[0]
		if got != before[name] {
			t.Errorf("%s moved from %s to %s across CCM restarts", name, before[name], got)
		}
		holders[got] = name
	}
	for i := range 20 {
		name := fmt.Sprintf("new-%03d", i)
		got := waitIngress(t, ns, name, 1, retryTimeout)[0]
		if other, dup := holders[got]; dup {
			t.Errorf("%s got %s, already held by %s", name, got, other)
		}
		holders[got] = name
	}
	for name := range deleted {
		waitFor(t, name+" gone", func() bool {
			_, err := env.Client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
			return err != nil
		})
	}
	waitPool(t, "restart", "usage matches the live Services", func(p *v1alpha1.IPPool) bool {
		return p.Status.IPv4 != nil && p.Status.IPv4.Used == int64(len(holders))
	})
	requireCCMAlive(t)
}

// TestStateRebuiltBeforeFirstSync: a Service created while the CCM is down never gets a VIP that
// another Service's status already holds, even if the service controller syncs it first.
func TestStateRebuiltBeforeFirstSync(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "rebuild", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.19.1-198.18.19.3")})
	env.StopCCM()
	started := false
	defer func() {
		if !started {
			_ = env.StartCCM(framework.CCMArgs()...)
		}
	}()
	// A Service whose VIP was allocated by an earlier CCM run: .1, the lowest address.
	holder := createService(t, newService(ns, "holder"))
	mode := v1.LoadBalancerIPModeVIP
	holder.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.18.19.1", IPMode: &mode}}
	if _, err := env.Client.CoreV1().Services(ns).UpdateStatus(context.Background(), holder, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	createService(t, newService(ns, "newcomer"))
	if err := env.StartCCM(framework.CCMArgs()...); err != nil {
		t.Fatal(err)
	}
	started = true
	if got := waitIngress(t, ns, "newcomer", 1, retryTimeout); got[0] != "198.18.19.2" {
		t.Errorf("newcomer got %v, want 198.18.19.2 (198.18.19.1 belongs to holder)", got)
	}
	if got := waitIngress(t, ns, "holder", 1, waitTimeout); got[0] != "198.18.19.1" {
		t.Errorf("holder has %v, want to keep 198.18.19.1", got)
	}
	waitEventCountAbove(t, ns, "holder", 0, waitTimeout, "EnsuredLoadBalancer")
	rebuilt := getService(t, ns, "holder")
	expectNoPin(t, rebuilt)
	if got := attributedPool(t, rebuilt, "198.18.19.1"); got != "rebuild" {
		t.Errorf("holder's VIP is attributed to pool %q, want rebuild", got)
	}
}

// TestPoolEditedAway: a VIP whose address is removed from its pool stays with its Service, which
// is warned; the pool reports it (invariant 2).
func TestPoolEditedAway(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "shrinking", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.20.1-198.18.20.4")})
	createService(t, newService(ns, "keeper"))
	kept := waitIngress(t, ns, "keeper", 1, waitTimeout)
	if kept[0] != "198.18.20.1" {
		t.Fatalf("keeper got %v, want 198.18.20.1", kept)
	}
	updatePool(t, "shrinking", func(p *v1alpha1.IPPool) { p.Spec.Addresses = addrs("198.18.20.2-198.18.20.4") })
	waitEvent(t, ns, "keeper", v1.EventTypeWarning, "VIP 198.18.20.1 is no longer in any IPPool", `pool "shrinking"`)
	waitPool(t, "shrinking", "RemovedAddressesInUse", hasCondition(v1alpha1.ConditionRemovedAddressesInUse, metav1.ConditionTrue, "198.18.20.1"))

	// A change to the Service itself that does not ask for another VIP keeps it.
	syncs := ensuredCount(ns, "keeper")
	svc := getService(t, ns, "keeper")
	svc.Labels = map[string]string{"touched": "yes"}
	svc.Annotations[provider.AnnotationSharingKey] = "new-key"
	if _, err := env.Client.CoreV1().Services(ns).Update(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the update to be synced", func() bool { return ensuredCount(ns, "keeper") > syncs })
	if got := ingressIPs(getService(t, ns, "keeper")); len(got) != 1 || got[0] != kept[0] {
		t.Errorf("after its own unrelated update keeper has %v, want %v", got, kept)
	}
	// Nothing else gets the removed address, and a new Service gets the lowest one left.
	createService(t, newService(ns, "next"))
	if got := waitIngress(t, ns, "next", 1, waitTimeout); got[0] != "198.18.20.2" {
		t.Errorf("next got %v, want 198.18.20.2", got)
	}
	// Adding the address back clears the condition.
	updatePool(t, "shrinking", func(p *v1alpha1.IPPool) { p.Spec.Addresses = addrs("198.18.20.1-198.18.20.4") })
	waitPool(t, "shrinking", "RemovedAddressesInUse cleared", hasCondition(v1alpha1.ConditionRemovedAddressesInUse, metav1.ConditionFalse, ""))
}

func createServicesConcurrently(t *testing.T, ns, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			svc := newService(ns, fmt.Sprintf("%s-%03d", prefix, i))
			if _, err := env.Client.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
				t.Errorf("creating %s: %v", svc.Name, err)
			}
		})
	}
	wg.Wait()
}

// ensuredCount is how many times the service controller reported the Service's load balancer
// ensured: a way to know a sync after an update has happened.
func ensuredCount(ns, name string) int32 {
	var n int32
	for _, ev := range serviceEvents(ns, name) {
		if ev.Reason == "EnsuredLoadBalancer" {
			n += ev.Count
		}
	}
	return n
}
