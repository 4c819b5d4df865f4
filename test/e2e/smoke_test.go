package e2e

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/lab"
)

const (
	demo      = "metallb-demo"
	waitLong  = 60 * time.Second
	waitShort = 10 * time.Second
	poll      = 100 * time.Millisecond
	// curlTimeout is curl's exit status when --max-time passes.
	curlTimeout = 28
)

// TestSmoke checks the lab itself, without the announcer: the control plane initialises the
// nodes and runs the demo, the CCM gives it its VIP, and, with the client's neighbour entry set by
// hand where an announcer would answer ARP/NDP, the VIP's traffic reaches the chosen node, whose
// kube-proxy hands it to the demo pod (masqueraded when the pod runs on another node), until
// its cable is cut.
func TestSmoke(t *testing.T) {
	ctx := context.Background()
	client := env.Client

	t.Run("nodes initialised by the CCM and Ready", func(t *testing.T) {
		for _, name := range lab.Nodes {
			node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p := lab.NodeProblem(node); p != "" {
				t.Errorf("node %s: %s", name, p)
			}
		}
	})

	var podIP string
	t.Run("demo pod Running with an EndpointSlice", func(t *testing.T) {
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + demo})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if lab.PodReady(&p) {
				podIP = p.Status.PodIP
			}
		}
		if podIP == "" {
			t.Fatalf("no Running, Ready demo pod with an IP among %d pods", len(pods.Items))
		}
		if !lab.PodPrefix.Contains(netip.MustParseAddr(podIP)) {
			t.Errorf("pod IP %s is outside the lab's pod range %s", podIP, lab.PodPrefix)
		}
		err = wait.PollUntilContextTimeout(ctx, poll, waitShort, true, func(ctx context.Context) (bool, error) {
			slices, err := client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{
				LabelSelector: discoveryv1.LabelServiceName + "=" + demo,
			})
			if err != nil {
				return false, err
			}
			for _, s := range slices.Items {
				for _, ep := range s.Endpoints {
					ready := ep.Conditions.Ready != nil && *ep.Conditions.Ready
					if ready && len(ep.Addresses) > 0 && ep.Addresses[0] == podIP {
						return true, nil
					}
				}
			}
			return false, nil
		})
		if err != nil {
			t.Errorf("no EndpointSlice of Service %s with ready endpoint %s: %v", demo, podIP, err)
		}
	})

	t.Run("demo Service has the first VIP of the pool", func(t *testing.T) {
		svc, err := client.CoreV1().Services("default").Get(ctx, demo, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ingress(svc); len(got) != 1 || got[0] != lab.DemoVIP {
			t.Fatalf("Service %s ingress is %v, want [%s]", demo, got, lab.DemoVIP)
		}
	})

	t.Run("each node forwards the VIP to the demo pod when the client's neighbour entry points at it", func(t *testing.T) {
		for _, node := range lab.Nodes {
			pointNeighbour(t, lab.DemoVIP, node)
			got := waitCurl(t, lab.DemoVIP, node)
			// kube-proxy masquerades what it sends to another node's pod (so the answer comes
			// back through it), and delivers to its own pod with the client's address.
			want := lab.ClientHost().IPv4
			if got.Node != node {
				h, _ := lab.Node(node)
				want = h.IPv4
			}
			if got.Client != want {
				t.Errorf("via %s: the pod on %s saw %s, want %s", node, got.Node, got.Client, want)
			}
		}
	})

	t.Run("IPv6: a dual-stack Service", func(t *testing.T) {
		svc := dualStackService(t)
		var v6 netip.Addr
		for _, a := range ingress(svc) {
			if a.Is6() {
				v6 = a
			}
		}
		if !v6.IsValid() || !lab.LANPrefix6.Contains(v6) {
			t.Fatalf("dual-stack Service ingress %v has no IPv6 VIP in %s", ingress(svc), lab.LANPrefix6)
		}
		pointNeighbour(t, v6, "lab-node-2")
		waitCurl(t, v6, "lab-node-2")
	})

	t.Run("cutting lab-node-2's cable stops the traffic, restoring it brings it back", func(t *testing.T) {
		pointNeighbour(t, lab.DemoVIP, "lab-node-2")
		waitCurl(t, lab.DemoVIP, "lab-node-2")
		if err := env.CutCable("lab-node-2"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.RestoreCable("lab-node-2") })
		// The neighbour entry stays, so the frames go out and nobody takes them: a timeout.
		out, err := curl(lab.DemoVIP)
		var cmdErr *lab.CommandError
		if !errors.As(err, &cmdErr) || cmdErr.ExitCode() != curlTimeout {
			t.Fatalf("curl %s with lab-node-2's cable cut: %v, %v; want curl's timeout (exit status %d)", lab.DemoVIP, out, err, curlTimeout)
		}
		if err := env.RestoreCable("lab-node-2"); err != nil {
			t.Fatal(err)
		}
		waitCurl(t, lab.DemoVIP, "lab-node-2")
	})

	t.Run("a killed component comes back with Start", func(t *testing.T) {
		// The demo pod's server (the pod host of its node) stands in for the container.
		pointNeighbour(t, lab.DemoVIP, "lab-node-3")
		node := waitCurl(t, lab.DemoVIP, "lab-node-3").Node
		host := lab.PodHostComponent(node)
		if err := env.Kill(host, syscall.SIGKILL, waitShort); err != nil {
			t.Fatal(err)
		}
		if out, err := curl(lab.DemoVIP); err == nil {
			t.Fatalf("curl %s answered %v with the pod host of %s killed", lab.DemoVIP, out, node)
		}
		if err := env.Start(context.Background(), host); err != nil {
			t.Fatal(err)
		}
		waitCurl(t, lab.DemoVIP, "lab-node-3")
	})

	t.Run("cutting lab-node-1's management link cuts its API access only", func(t *testing.T) {
		readyz := []string{"curl", "-sk", "--max-time", "2", lab.APIServerURL() + "/readyz"}
		if out, err := env.Exec("lab-node-1", readyz...); err != nil || out != "ok" {
			t.Fatalf("API server from lab-node-1: %q, %v", out, err)
		}
		if err := env.CutManagement("lab-node-1"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.RestoreManagement("lab-node-1") })
		if out, err := env.Exec("lab-node-1", readyz...); err == nil {
			t.Fatalf("API server answered %q from lab-node-1 with its management link cut", out)
		}
		pointNeighbour(t, lab.DemoVIP, "lab-node-1")
		waitCurl(t, lab.DemoVIP, "lab-node-1")
		if err := env.RestoreManagement("lab-node-1"); err != nil {
			t.Fatal(err)
		}
		// The link is back at once, but the node's neighbour entry for the API server may still
		// be failed from the cut: allow it a few seconds to resolve again.
		deadline := time.Now().Add(5 * time.Second)
		for {
			out, err := env.Exec("lab-node-1", readyz...)
			if err == nil && out == "ok" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("API server from lab-node-1 after restoring its management link: %q, %v", out, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func ingress(svc *v1.Service) []netip.Addr {
	var out []netip.Addr
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(ing.IP); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// pointNeighbour stands in for the announcer: a permanent neighbour entry in lab-client sending
// vip's traffic to node's LAN MAC. It is removed when the test ends.
func pointNeighbour(t *testing.T, vip netip.Addr, node string) {
	t.Helper()
	mac, err := env.NodeMAC(node)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Exec(lab.ClientNamespace, "ip", "neigh", "replace", vip.String(), "lladdr", mac.String(),
		"dev", lab.LANInterface, "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = env.Exec(lab.ClientNamespace, "ip", "neigh", "del", vip.String(), "dev", lab.LANInterface)
	})
}

// curl fetches http://vip/ from lab-client, giving up after 2 s: a pod's answer (a failure is
// a *lab.CommandError with curl's exit status).
func curl(vip netip.Addr) (lab.Answer, error) {
	return env.Get(context.Background(), lab.ClientNamespace, netip.AddrPortFrom(vip, 80), 2*time.Second)
}

// waitCurl waits until lab-client's request to vip is received by node and answered by a demo
// pod (kube-proxy applies a new VIP's rules within moments of the CCM's status update).
func waitCurl(t *testing.T, vip netip.Addr, node string) lab.Answer {
	t.Helper()
	var out lab.Answer
	var err error
	deadline := time.Now().Add(waitShort)
	for time.Now().Before(deadline) {
		if out, err = curl(vip); err == nil && out.ReceivedBy() == node && strings.HasPrefix(out.Pod, demo+"-") {
			return out
		}
		time.Sleep(poll)
	}
	var cmdErr *lab.CommandError
	if errors.As(err, &cmdErr) {
		t.Fatalf("curl http://%s/ from lab-client: exit status %d, want an answer of a demo pod received by %s", vip, cmdErr.ExitCode(), node)
	}
	t.Fatalf("curl http://%s/ from lab-client answered %v (%v), want a demo pod, received by %s", vip, out, err, node)
	return out
}

// dualStackService creates a RequireDualStack LoadBalancer Service in front of the demo pod and
// waits for both its VIPs; it is deleted when the test ends.
func dualStackService(t *testing.T) *v1.Service {
	t.Helper()
	ctx := context.Background()
	policy := v1.IPFamilyPolicyRequireDualStack
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke-dual-stack", Namespace: "default"},
		Spec: v1.ServiceSpec{
			Type:           v1.ServiceTypeLoadBalancer,
			IPFamilyPolicy: &policy,
			Selector:       map[string]string{"app": demo},
			Ports:          []v1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(80), Protocol: v1.ProtocolTCP}},
		},
	}
	services := env.Client.CoreV1().Services("default")
	if _, err := services.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = services.Delete(context.Background(), svc.Name, metav1.DeleteOptions{}) })
	var got *v1.Service
	err := wait.PollUntilContextTimeout(ctx, poll, waitLong, true, func(ctx context.Context) (bool, error) {
		s, err := services.Get(ctx, svc.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = s
		return len(s.Status.LoadBalancer.Ingress) == 2, nil
	})
	if err != nil {
		t.Fatalf("Service %s did not get two VIPs (ingress %v): %v", svc.Name, got.Status.LoadBalancer.Ingress, err)
	}
	return got
}
