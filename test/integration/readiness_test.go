package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

// TestRestoreWaitsForEveryPool: with 2,000 IPPools, the state a restart rebuilds includes the
// last pools too. The old code rebuilt it once the IPPool informer's store had the first list,
// before its event handler had seen every pool: VIPs of the late pools were reported outside
// every pool (VIPOutsidePools) and a Service asking for an address of a late pool right after the
// restart was told it is "not in any IPPool".
func TestRestoreWaitsForEveryPool(t *testing.T) {
	ns := testNamespace(t)
	const (
		pools    = 2000
		workers  = 32
		services = 5
		label    = "baremetal-test-bulk"
	)
	t.Cleanup(func() {
		err := env.Dynamic.Resource(v1alpha1.IPPoolResource).DeleteCollection(context.Background(), metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: label + "=" + ns})
		if err != nil {
			t.Errorf("deleting the bulk IPPools: %v", err)
		}
	})
	// Pool i holds the /30 at 198.19.(i/64).(4*(i%64)); a Service asks for its second address.
	poolName := func(i int) string { return fmt.Sprintf("bulk-%04d", i) }
	requested := func(i int) string { return fmt.Sprintf("198.19.%d.%d", i/64, 4*(i%64)+1) }

	start := time.Now()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				pool := &v1alpha1.IPPool{
					ObjectMeta: metav1.ObjectMeta{Name: poolName(i), Labels: map[string]string{label: ns}},
					Spec: v1alpha1.IPPoolSpec{
						Addresses:         addrs(fmt.Sprintf("198.19.%d.%d/30", i/64, 4*(i%64))),
						AutoAssign:        ptrTo(false),
						NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"baremetal-test": ns}},
					},
				}
				if err := createPoolObject(pool); err != nil {
					t.Errorf("creating IPPool %s: %v", pool.Name, err)
				}
			}
		})
	}
	for i := range pools {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("created %d IPPools in %s", pools, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	want := map[string]string{}
	for j := range services {
		i := pools - 1 - j
		name := fmt.Sprintf("late-%d", j)
		svc := newService(ns, name)
		svc.Annotations = map[string]string{provider.AnnotationLoadBalancerIPs: requested(i)}
		createService(t, svc)
		want[name] = requested(i)
	}
	for name, ip := range want {
		waitIPs(t, ns, name, retryTimeout, ip)
	}
	t.Logf("%d Services got addresses of the last pools in %s", services, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	env.StopCCM()
	if err := env.StartCCM(framework.CCMArgs()...); err != nil {
		t.Fatal(err)
	}
	// At once: its first sync may come the moment the state is rebuilt.
	after := newService(ns, "after-restart")
	after.Annotations = map[string]string{provider.AnnotationLoadBalancerIPs: requested(pools - 1 - services)}
	createService(t, after)
	want[after.Name] = requested(pools - 1 - services)
	waitIPs(t, ns, after.Name, waitTimeout, want[after.Name])
	t.Logf("restart with %d IPPools: the new Service got its VIP %s after the CCM was stopped", pools, time.Since(start).Round(time.Millisecond))

	time.Sleep(time.Second) // events are recorded asynchronously
	assertNoEvent(t, ns, after.Name, "SyncLoadBalancerFailed")
	for name, ip := range want {
		assertIPs(t, ns, name, ip)
		assertNoEvent(t, ns, name, "VIPOutsidePools")
	}
	requireCCMAlive(t)
}

// TestCCMWithoutIPPoolAccessSaysWhy: when RBAC forbids the CCM to list IPPools, LoadBalancer
// calls fail quickly with what to fix, instead of waiting for a state that cannot be rebuilt. The
// old code waited in every call until the service controller gave up, recording no reason.
func TestCCMWithoutIPPoolAccessSaysWhy(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "no-access", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.38.0/30")})
	restore := restrictCCMRole(t, "baremetal.dev", "ippools", "get", "list", "watch")

	start := time.Now()
	createService(t, newService(ns, "blind"))
	waitEventWithin(t, ns, "blind", 20*time.Second, "SyncLoadBalancerFailed",
		"the VIP state is not rebuilt from the API server yet",
		"may not list and watch ippools.baremetal.dev: check its ClusterRole")
	t.Logf("the reason was reported %s after the Service was created", time.Since(start).Round(time.Millisecond))
	assertStaysPending(t, ns, "blind", 500*time.Millisecond)

	restore()
	waitIngress(t, ns, "blind", 1, retryTimeout)
	requireCCMAlive(t)
}

// restrictCCMRole removes verbs on one resource from the CCM's ClusterRole, waits until the API
// server enforces that, and restarts the CCM. The returned function, also registered as a
// cleanup so that a failing test never leaves the shared CCM crippled, applies
// manifests/ccm/rbac.yaml again and restarts the CCM.
func restrictCCMRole(t *testing.T, group, resource string, verbs ...string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	roles := env.Client.RbacV1().ClusterRoles()
	role, err := roles.Get(ctx, "baremetal-cloud-controller-manager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	changed := false
	for _, r := range role.Rules {
		if slices.Equal(r.APIGroups, []string{group}) && slices.Equal(r.Resources, []string{resource}) {
			r.Verbs = slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return slices.Contains(verbs, v) })
			changed = true
			if len(r.Verbs) == 0 {
				continue
			}
		}
		rules = append(rules, r)
	}
	if !changed {
		t.Fatalf("the CCM's ClusterRole has no rule for %s.%s alone: %+v", resource, group, role.Rules)
	}
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		if err := framework.ApplyFiles(ctx, env.Config(framework.AdminUser), filepath.Join(framework.RepoRoot(), "manifests/ccm/rbac.yaml")); err != nil {
			t.Errorf("restoring the CCM's RBAC: %v", err)
		}
		waitCCMMay(t, group, resource, true, verbs...)
		restartCCMBy(t, false)
	}
	t.Cleanup(restore)
	role.Rules = rules
	if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating the CCM's ClusterRole: %v", err)
	}
	waitCCMMay(t, group, resource, false, verbs...)
	restartCCMBy(t, false)
	return restore
}

// waitCCMMay waits until the API server's answer to "may the CCM <verb> <resource>?" is allowed,
// for every verb.
func waitCCMMay(t *testing.T, group, resource string, allowed bool, verbs ...string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), poll, waitTimeout, true, func(ctx context.Context) (bool, error) {
		for _, verb := range verbs {
			review, err := env.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{
					User:               framework.CCMUser,
					Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
					ResourceAttributes: &authorizationv1.ResourceAttributes{Group: group, Resource: resource, Verb: verb},
				},
			}, metav1.CreateOptions{})
			if err != nil {
				return false, err
			}
			if review.Status.Allowed != allowed {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("waiting for the CCM's access to %s.%s (%v) to be allowed=%t: %v", resource, group, verbs, allowed, err)
	}
}

// waitEventWithin waits up to timeout for an event of this reason whose message contains every
// fragment.
func waitEventWithin(t *testing.T, ns, name string, timeout time.Duration, reason string, fragments ...string) v1.Event {
	t.Helper()
	var found v1.Event
	err := wait.PollUntilContextTimeout(context.Background(), poll, timeout, true, func(context.Context) (bool, error) {
		for _, ev := range serviceEvents(ns, name) {
			if ev.Reason == reason && containsAll(ev.Message, fragments) {
				found = ev
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("Service %s/%s: no %s event within %s containing %q; events:\n  %s", ns, name, reason, timeout, fragments, eventSummary(ns, name))
	}
	return found
}
