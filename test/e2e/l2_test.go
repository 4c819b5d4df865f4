package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/lab"
)

// TestL2Announce: exactly one node answers ARP for the demo VIP (the real arping sees one MAC),
// traffic reaches that node (whose kube-proxy hands it to the demo pod), and the Service is
// told who announces it.
func TestL2Announce(t *testing.T) {
	vip := lab.DemoVIP.String()
	owner := waitSingleOwner(t, vip, 10*time.Second)
	for range 3 {
		if got := arpingOwners(t, vip, 3); !slices.Equal(got, []string{owner}) {
			t.Fatalf("arping %s answered from %v, want only %s", vip, got, owner)
		}
	}
	waitCurlNode(t, vip, owner)
	waitAnnouncingEvent(t, "metallb-demo", fmt.Sprintf("announcing %s from %s via ARP on eth0", vip, owner))
	// An address of the pool that no Service holds gets no answer.
	if got := arpingOwners(t, "198.18.0.250", 2); len(got) != 0 {
		t.Errorf("arping for an unallocated pool address answered from %v", got)
	}
}

// TestL2AnnounceIPv6: NDP for a dual-stack Service's IPv6 VIP, seen by the real ndisc6.
func TestL2AnnounceIPv6(t *testing.T) {
	policy := v1.IPFamilyPolicyRequireDualStack
	l2Service(t, "dual", func(s *v1.Service) {
		s.Spec.IPFamilyPolicy = &policy
		s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
	})
	ips := waitIngress(t, "dual", 2)
	v6 := ips[1]
	owner := waitSingleOwner(t, v6, 10*time.Second)
	if got := ndiscOwners(t, v6); !slices.Equal(got, []string{owner}) {
		t.Fatalf("ndisc6 %s answered from %v, want only %s", v6, got, owner)
	}
	waitCurlNode(t, v6, owner)
	waitAnnouncingEvent(t, "dual", fmt.Sprintf("announcing %s from %s via NDP on eth0", v6, owner))
}

// TestFailoverAnnouncerKilled: SIGKILL of the owner's announcer moves the VIP; the restarted
// announcer does not take it back.
func TestFailoverAnnouncerKilled(t *testing.T) {
	vip := lab.DemoVIP.String()
	owner := waitSingleOwner(t, vip, 10*time.Second)
	restart := signalAnnouncer(t, owner, syscall.SIGKILL)
	next := waitSingleOwner(t, vip, 5*time.Second, owner)
	waitCurlNode(t, vip, next)
	restart()
	assertStableOwner(t, vip, next, 3*time.Second)
}

// TestFailoverCableCut: cutting the owner's LAN cable moves the VIP, and the new owner's pod
// answers through its kube-proxy; when the cable comes back the VIP stays where it is and never
// two nodes answer. The Service has a pod on every node (externalTrafficPolicy Local): the
// demo's one pod may live on the node whose cable is cut.
func TestFailoverCableCut(t *testing.T) {
	const name = "e2e-cable-cut"
	vip := everyNodeService(t, name)
	owner := waitSingleOwner(t, vip, 10*time.Second)
	if err := env.CutCable(owner); err != nil {
		t.Fatal(err)
	}
	restored := false
	t.Cleanup(func() {
		if !restored {
			_ = env.RestoreCable(owner)
		}
	})
	next := waitSingleOwner(t, vip, 5*time.Second, owner)
	if got := waitCurlNode(t, vip, next); got.Pod != name+"-"+next {
		t.Fatalf("after the cut, %s answered by %v, want %s's own pod", vip, got, next)
	}
	if err := env.RestoreCable(owner); err != nil {
		t.Fatal(err)
	}
	restored = true
	assertStableOwner(t, vip, next, 3*time.Second)
}

// TestHandoffSIGTERM: a terminating owner hands over at once.
func TestHandoffSIGTERM(t *testing.T) {
	vip := lab.DemoVIP.String()
	owner := waitSingleOwner(t, vip, 10*time.Second)
	restart := signalAnnouncer(t, owner, syscall.SIGTERM)
	start := time.Now()
	next := waitSingleOwner(t, vip, 3*time.Second, owner)
	t.Logf("hand-off from %s to %s seen by arping after %s", owner, next, time.Since(start).Round(time.Millisecond))
	restart()
	assertStableOwner(t, vip, next, 2*time.Second)
}

// TestAnnouncerKeepsVIPWithoutAPI: an owner that loses the API server keeps announcing.
func TestAnnouncerKeepsVIPWithoutAPI(t *testing.T) {
	vip := lab.DemoVIP.String()
	owner := waitSingleOwner(t, vip, 10*time.Second)
	if err := env.CutManagement(owner); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.RestoreManagement(owner) })
	assertStableOwner(t, vip, owner, 3*time.Second)
	waitCurlNode(t, vip, owner)
}

// TestLocalTrafficPolicy: with externalTrafficPolicy Local only a node with a local endpoint
// announces, and the VIP follows the pod.
func TestLocalTrafficPolicy(t *testing.T) {
	pod := func(name, node string) {
		p := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "local-demo"}},
			Spec: v1.PodSpec{
				NodeName:    node,
				Containers:  []v1.Container{{Name: "web", Image: "nginx:1.27-alpine"}},
				Tolerations: []v1.Toleration{{Operator: v1.TolerationOpExists}},
			},
		}
		if _, err := env.Client.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deletePod(name) })
	}
	pod("local-a", "lab-node-3")
	l2Service(t, "local", func(s *v1.Service) {
		s.Spec.Selector = map[string]string{"app": "local-demo"}
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	})
	vip := waitIngress(t, "local", 1)[0]
	if got := waitSingleOwner(t, vip, 15*time.Second); got != "lab-node-3" {
		t.Fatalf("Local Service with its pod on lab-node-3 is announced by %s", got)
	}
	pod("local-b", "lab-node-1")
	deletePod("local-a")
	if got := waitSingleOwner(t, vip, 15*time.Second, "lab-node-3"); got != "lab-node-1" {
		t.Fatalf("after the pod moved to lab-node-1 the VIP is announced by %s", got)
	}
}

func deletePod(name string) {
	zero := int64(0)
	_ = env.Client.CoreV1().Pods("default").Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
}

// assertStableOwner checks for a while that exactly the given node answers.
func assertStableOwner(t *testing.T, vip, owner string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var got []string
		if strings.Contains(vip, ":") {
			got = ndiscOwners(t, vip)
		} else {
			got = arpingOwners(t, vip, 2)
		}
		if !slices.Equal(got, []string{owner}) {
			t.Fatalf("%s answered from %v, want only %s", vip, got, owner)
		}
	}
}
