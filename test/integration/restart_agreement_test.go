package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

// A shared VIP is an agreement: its holders' statuses say which ports each took, the pool's
// status says on which sharing key (and Local pod selector). A restart rebuilds the agreement, so
// the Service whose own later change broke it is the one that moves or waits, never its partner.

// TestRestartKeepsPartnerOfSharerWithBrokenAnnotation: a and b share a VIP under one key; a's
// baremetal.dev/load-balancer-ips then goes bad. A restart (SIGTERM, then SIGKILL) leaves both on
// the VIP and b never hears of a conflict. The old code restored a, the older Service, with a
// plain exclusive claim (no sharing key), so b's claim on the same VIP failed: VIPConflict on b,
// and b moved to another address.
func TestRestartKeepsPartnerOfSharerWithBrokenAnnotation(t *testing.T) {
	ns := testNamespace(t)
	createPool(t, ns, "broken-share", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.30.1-198.18.30.4")})
	createService(t, sharer(ns, "a", "k", 80))
	x := waitIngress(t, ns, "a", 1, waitTimeout)[0]
	createService(t, sharer(ns, "b", "k", 443))
	if got := waitIngress(t, ns, "b", 1, waitTimeout); got[0] != x {
		t.Fatalf("b (key k, port 443) got %v, want a's %s", got, x)
	}
	// The share is recorded before b's EnsureLoadBalancer returns, so before its status shows it.
	assertSharedRecord(t, "broken-share", x, "k", ns+"/a", ns+"/b")
	assertIngressPorts(t, ns, "a", "80/TCP")
	assertIngressPorts(t, ns, "b", "443/TCP")

	updateService(t, ns, "a", func(s *v1.Service) { s.Annotations[provider.AnnotationLoadBalancerIPs] = "garbage" })
	waitEvent(t, ns, "a", v1.EventTypeWarning, `annotation baremetal.dev/load-balancer-ips="garbage" is invalid`)

	for _, kill := range []bool{false, true} {
		failed := eventCount(ns, "a", "SyncLoadBalancerFailed")
		synced := eventCount(ns, "b", syncOutcomes...)
		restartCCMBy(t, kill)
		// Both are synced by the new CCM, after its restore.
		waitEventCountAbove(t, ns, "b", synced, waitTimeout, syncOutcomes...)
		waitEventCountAbove(t, ns, "a", failed, waitTimeout, "SyncLoadBalancerFailed")
		time.Sleep(time.Second) // events are recorded asynchronously
		how := map[bool]string{false: "SIGTERM", true: "SIGKILL"}[kill]
		if got := ingressIPs(getService(t, ns, "b")); !slices.Equal(got, []string{x}) {
			t.Errorf("after a restart by %s, b has %v, want to keep %s", how, got, x)
		}
		if got := ingressIPs(getService(t, ns, "a")); !slices.Equal(got, []string{x}) {
			t.Errorf("after a restart by %s, a (unparsable annotation) has %v, want to keep %s", how, got, x)
		}
		assertNoEvent(t, ns, "b", "VIPConflict")
		assertNoEvent(t, ns, "b", "SyncLoadBalancerFailed")
		assertNoEvent(t, ns, "a", "VIPConflict")
	}

	// Fixing the annotation: a is served again on the VIP it shares with b.
	ensured := eventCount(ns, "a", "EnsuredLoadBalancer")
	updateService(t, ns, "a", func(s *v1.Service) { delete(s.Annotations, provider.AnnotationLoadBalancerIPs) })
	waitEventCountAbove(t, ns, "a", ensured, retryTimeout, "EnsuredLoadBalancer")
	for _, name := range []string{"a", "b"} {
		if got := ingressIPs(getService(t, ns, name)); !slices.Equal(got, []string{x}) {
			t.Errorf("after a's annotation was fixed, %s has %v, want %s", name, got, x)
		}
	}
	assertSharedRecord(t, "broken-share", x, "k", ns+"/a", ns+"/b")
	requireCCMAlive(t)
}

// TestRestartMovesTheServiceThatBrokeTheShare: a (the older) and b share a VIP; a's own change
// breaks the share. Whether its change was seen before the restart (pool full: a waits on the
// VIP) or only after it (no CCM was leading), a is the one that moves and b keeps the VIP. The
// old code rebuilt the state from the current specs, oldest Service first: a took the VIP on its
// new terms and b, whose terms never changed, got VIPConflict and was moved.
func TestRestartMovesTheServiceThatBrokeTheShare(t *testing.T) {
	t.Run("pool-full", func(t *testing.T) {
		ns := testNamespace(t)
		createPool(t, ns, "broken-full", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.31.1-198.18.31.2")})
		createService(t, sharer(ns, "a", "k", 80))
		x := waitIngress(t, ns, "a", 1, waitTimeout)[0]
		createService(t, sharer(ns, "b", "k", 443))
		if got := waitIngress(t, ns, "b", 1, waitTimeout); got[0] != x {
			t.Fatalf("b got %v, want a's %s", got, x)
		}
		assertSharedRecord(t, "broken-full", x, "k", ns+"/a", ns+"/b")
		createService(t, newService(ns, "c"))
		free := waitIngress(t, ns, "c", 1, waitTimeout)[0]

		// a now also wants 443/TCP, which b has on the VIP: a must move, but the pool is full.
		updateService(t, ns, "a", func(s *v1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "https", Protocol: v1.ProtocolTCP, Port: 443})
		})
		waitEventCountAbove(t, ns, "a", 0, waitTimeout, "SyncLoadBalancerFailed")
		if ev := lastEvent(ns, "a", "SyncLoadBalancerFailed"); !containsAll(ev, []string{"needs a new VIP (", "but cannot get one, so it keeps its current VIP until it can"}) {
			t.Errorf("a's sync fails with %q, want it to say a needs a new VIP but keeps its current one until it can get one", ev)
		}
		assertIPs(t, ns, "a", x)
		assertIPs(t, ns, "b", x)
		assertIngressPorts(t, ns, "a", "80/TCP")

		aSynced := eventCount(ns, "a", syncOutcomes...)
		failed := eventCount(ns, "a", "SyncLoadBalancerFailed")
		synced := eventCount(ns, "b", syncOutcomes...)
		restartCCMBy(t, false)
		waitEventCountAbove(t, ns, "b", synced, waitTimeout, syncOutcomes...)
		waitEventCountAbove(t, ns, "a", aSynced, waitTimeout, syncOutcomes...)
		time.Sleep(time.Second)
		assertIPs(t, ns, "b", x)
		assertIPs(t, ns, "a", x)
		assertNoEvent(t, ns, "b", "VIPConflict")
		assertNoEvent(t, ns, "b", "SyncLoadBalancerFailed")
		if eventCount(ns, "a", "SyncLoadBalancerFailed") == failed {
			t.Errorf("after the restart a's sync succeeded; want it to fail: a needs a new VIP and the pool is full")
		} else if ev := lastEvent(ns, "a", "SyncLoadBalancerFailed"); !strings.Contains(ev, "needs a new VIP (") {
			t.Errorf("after the restart a's sync fails with %q, want it to say a needs a new VIP", ev)
		}

		// Freeing an address lets a move; b stays.
		deleteService(t, ns, "c")
		waitIPs(t, ns, "a", retryTimeout, free)
		waitEvent(t, ns, "a", v1.EventTypeNormal, "moved to "+free+" because of the Service's own change: ")
		assertIPs(t, ns, "b", x)
		assertNoEvent(t, ns, "b", "VIPConflict")
		waitPool(t, "broken-full", "the share of "+x+" forgotten once a left it", func(p *v1alpha1.IPPool) bool {
			return !slices.ContainsFunc(p.Status.SharedVIPs, func(s v1alpha1.SharedVIP) bool { return s.Address == x })
		})
	})

	t.Run("no-leader", func(t *testing.T) {
		ns := testNamespace(t)
		createPool(t, ns, "broken-offline", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.32.1-198.18.32.4")})
		createService(t, sharer(ns, "a", "k", 80))
		x := waitIngress(t, ns, "a", 1, waitTimeout)[0]
		createService(t, sharer(ns, "b", "k", 443))
		if got := waitIngress(t, ns, "b", 1, waitTimeout); got[0] != x {
			t.Fatalf("b got %v, want a's %s", got, x)
		}
		assertSharedRecord(t, "broken-offline", x, "k", ns+"/a", ns+"/b")

		env.StopCCM()
		started := false
		defer func() {
			if !started {
				_ = env.StartCCM(framework.CCMArgs()...)
			}
		}()
		updateService(t, ns, "a", func(s *v1.Service) { s.Annotations[provider.AnnotationSharingKey] = "other-key" })
		if err := env.StartCCM(framework.CCMArgs()...); err != nil {
			t.Fatal(err)
		}
		started = true

		waitFor(t, "a to move off "+x, func() bool {
			got := ingressIPs(getService(t, ns, "a"))
			return len(got) == 1 && got[0] != x
		})
		moved := ingressIPs(getService(t, ns, "a"))[0]
		waitEvent(t, ns, "a", v1.EventTypeNormal, "moved to "+moved+" because of the Service's own change: ")
		assertIPs(t, ns, "b", x)
		time.Sleep(time.Second)
		assertNoEvent(t, ns, "b", "VIPConflict")
		assertIPs(t, ns, "b", x)
	})
}

// sharer is a LoadBalancer Service with one TCP port and a sharing key.
func sharer(ns, name, key string, port int32) *v1.Service {
	svc := withPorts(newService(ns, name), v1.ServicePort{Name: fmt.Sprintf("p%d", port), Protocol: v1.ProtocolTCP, Port: port})
	svc.Annotations = map[string]string{provider.AnnotationSharingKey: key}
	return svc
}

// assertSharedRecord checks, without waiting, that the pool's status records addr as shared under
// key by exactly the given Services.
func assertSharedRecord(t *testing.T, pool, addr, key string, services ...string) {
	t.Helper()
	p := getPool(t, pool)
	for _, rec := range p.Status.SharedVIPs {
		if rec.Address != addr {
			continue
		}
		if rec.SharingKey != key || !slices.Equal(rec.Services, services) {
			t.Errorf("IPPool %s records %s as %+v, want key %q and Services %v", pool, addr, rec, key, services)
		}
		return
	}
	t.Errorf("IPPool %s status.sharedVIPs = %+v: no record of %s, shared by %v", pool, p.Status.SharedVIPs, addr, services)
}

// assertIngressPorts checks every ingress of the Service lists exactly these ports ("80/TCP").
func assertIngressPorts(t *testing.T, ns, name string, ports ...string) {
	t.Helper()
	svc := getService(t, ns, name)
	if len(svc.Status.LoadBalancer.Ingress) == 0 {
		t.Errorf("Service %s/%s has no ingress", ns, name)
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		var got []string
		for _, p := range ing.Ports {
			got = append(got, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
		}
		if !slices.Equal(got, ports) {
			t.Errorf("Service %s/%s ingress %s lists ports %v, want %v", ns, name, ing.IP, got, ports)
		}
	}
}

// waitIPs waits until the Service's status lists exactly these VIPs.
func waitIPs(t *testing.T, ns, name string, timeout time.Duration, want ...string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), poll, timeout, true, func(context.Context) (bool, error) {
		return slices.Equal(ingressIPs(getService(t, ns, name)), want), nil
	})
	if err != nil {
		t.Fatalf("Service %s/%s has %v, want %v: %v; events:\n  %s", ns, name, ingressIPs(getService(t, ns, name)), want, err, eventSummary(ns, name))
	}
}

func assertIPs(t *testing.T, ns, name string, want ...string) {
	t.Helper()
	if got := ingressIPs(getService(t, ns, name)); !slices.Equal(got, want) {
		t.Errorf("Service %s/%s has %v, want %v", ns, name, got, want)
	}
}

// updateService applies mutate to the Service, retrying on conflicts.
func updateService(t *testing.T, ns, name string, mutate func(*v1.Service)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), poll, waitTimeout, true, func(ctx context.Context) (bool, error) {
		svc, err := env.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		mutate(svc)
		_, err = env.Client.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("updating Service %s/%s: %v", ns, name, err)
	}
}

// touchService changes an annotation nobody reads, so the service controller syncs the Service
// now instead of at its next retry.
func touchService(t *testing.T, ns, name string) {
	t.Helper()
	updateService(t, ns, name, func(s *v1.Service) { s.Annotations["baremetal-test/touched"] = time.Now().Format(time.RFC3339Nano) })
}

// restartCCMBy stops the CCM with SIGTERM (or SIGKILL, as a crash) and starts it again.
func restartCCMBy(t *testing.T, kill bool) {
	t.Helper()
	if kill {
		env.KillCCM()
	} else {
		env.StopCCM()
	}
	if err := env.StartCCM(framework.CCMArgs()...); err != nil {
		t.Fatalf("restarting the CCM: %v", err)
	}
}

// syncOutcomes are the reasons of the events ending a service controller sync of a Service.
var syncOutcomes = []string{"EnsuredLoadBalancer", "SyncLoadBalancerFailed"}

// eventCount is how many times events of these reasons were recorded on the Service.
func eventCount(ns, name string, reasons ...string) int32 {
	var n int32
	for _, ev := range serviceEvents(ns, name) {
		if slices.Contains(reasons, ev.Reason) {
			n += max(ev.Count, 1)
		}
	}
	return n
}

// lastEvent is the message of the latest event of this reason on the Service.
func lastEvent(ns, name, reason string) string {
	var last v1.Event
	for _, ev := range serviceEvents(ns, name) {
		if ev.Reason == reason && !ev.LastTimestamp.Before(&last.LastTimestamp) {
			last = ev
		}
	}
	return last.Message
}

// waitEventCountAbove waits until the Service has more than n events of these reasons.
func waitEventCountAbove(t *testing.T, ns, name string, n int32, timeout time.Duration, reasons ...string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), poll, timeout, true, func(context.Context) (bool, error) {
		return eventCount(ns, name, reasons...) > n, nil
	})
	if err != nil {
		t.Fatalf("Service %s/%s: no new %v event (had %d): %v; events:\n  %s", ns, name, reasons, n, err, eventSummary(ns, name))
	}
}

func assertNoEvent(t *testing.T, ns, name, reason string) {
	t.Helper()
	for _, ev := range serviceEvents(ns, name) {
		if ev.Reason == reason {
			t.Errorf("Service %s/%s got a %s event: %s", ns, name, reason, ev.Message)
		}
	}
}

// assertNoEventInNamespace checks no object in ns got an event of this reason.
func assertNoEventInNamespace(t *testing.T, ns, reason string) {
	t.Helper()
	list, err := env.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=" + reason})
	if err != nil {
		t.Fatalf("listing events in %s: %v", ns, err)
	}
	for _, ev := range list.Items {
		t.Errorf("%s %s/%s got a %s event: %s", ev.InvolvedObject.Kind, ns, ev.InvolvedObject.Name, reason, ev.Message)
	}
}
