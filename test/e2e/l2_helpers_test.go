package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/lab"
)

var (
	arpingMAC = regexp.MustCompile(`from ([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})`)
	ndiscMAC  = regexp.MustCompile(`Target link-layer address: ([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})`)
)

// arpingOwners asks from lab-client, with the real arping, who has vip, and maps the MACs that
// answered to node names (unknown MACs are returned as they are).
func arpingOwners(t testing.TB, vip string, count int) []string {
	t.Helper()
	out, _ := env.Exec(lab.ClientNamespace, "arping", "-c", fmt.Sprint(count), "-W", "0.05", "-i", lab.LANInterface, vip)
	return macsToNodes(t, arpingMAC.FindAllStringSubmatch(out, -1))
}

// ndiscOwners asks from lab-client, with the real ndisc6, who has vip.
func ndiscOwners(t testing.TB, vip string) []string {
	t.Helper()
	out, _ := env.Exec(lab.ClientNamespace, "ndisc6", "-m", "-n", "-r", "2", "-w", "300", vip, lab.LANInterface)
	return macsToNodes(t, ndiscMAC.FindAllStringSubmatch(out, -1))
}

func macsToNodes(t testing.TB, matches [][]string) []string {
	t.Helper()
	byMAC := map[string]string{}
	for _, n := range lab.Nodes {
		mac, err := env.NodeMAC(n)
		if err != nil {
			t.Fatal(err)
		}
		byMAC[strings.ToLower(mac.String())] = n
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range matches {
		mac := strings.ToLower(m[1])
		name, ok := byMAC[mac]
		if !ok {
			name = mac
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// waitSingleOwner waits until ARP (IPv4) or NDP (IPv6) shows exactly one answering node, other
// than any in not, and returns it.
func waitSingleOwner(t testing.TB, vip string, timeout time.Duration, not ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []string
	for time.Now().Before(deadline) {
		if strings.Contains(vip, ":") {
			last = ndiscOwners(t, vip)
		} else {
			last = arpingOwners(t, vip, 2)
		}
		if len(last) == 1 && !slices.Contains(not, last[0]) {
			return last[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: waiting for one owner (not %v): last answers from %v", vip, not, last)
	return ""
}

// curlNode fetches http://vip/ from lab-client. A pod answers through kube-proxy: its name, its
// node, and the address it saw, from which Answer.ReceivedBy tells the node that got the
// request from the LAN (kube-proxy masquerades what it forwards to another node's pod).
func curlNode(vip string) (lab.Answer, error) {
	addr, err := netip.ParseAddr(vip)
	if err != nil {
		return lab.Answer{}, err
	}
	return env.Get(context.Background(), lab.ClientNamespace, netip.AddrPortFrom(addr, 80), 2*time.Second)
}

// waitCurlNode waits until lab-client's request to vip is received by node want (and answered
// by a pod, through want's kube-proxy), and returns the answer.
func waitCurlNode(t testing.TB, vip, want string) lab.Answer {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got lab.Answer
	var err error
	for time.Now().Before(deadline) {
		if got, err = curlNode(vip); err == nil && got.ReceivedBy() == want {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("curl http://%s/ from lab-client: got %v (%v), want it received by %s", vip, got, err, want)
	return got
}

// everyNodeService makes a pod on every lab node (named <name>-<node>, label app=<name>) and a
// LoadBalancer Service in front of them with externalTrafficPolicy Local; it returns the
// Service's VIP once the owner's own pod answers it. Every node is then eligible, and
// kube-proxy delivers what a node receives to that node's pod and keeps the client's address:
// the answering pod names the node that got the traffic, and no node's failure takes the
// Service's only pod with it (as it would the demo's). Everything is deleted when the test ends.
func everyNodeService(t testing.TB, name string) string {
	t.Helper()
	ctx := context.Background()
	pods := env.Client.CoreV1().Pods("default")
	for _, node := range lab.Nodes {
		p := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + "-" + node, Labels: map[string]string{"app": name}},
			Spec: v1.PodSpec{
				NodeName:    node,
				Containers:  []v1.Container{{Name: "web", Image: "nginx:1.27-alpine", Ports: []v1.ContainerPort{{ContainerPort: 80}}}},
				Tolerations: []v1.Toleration{{Operator: v1.TolerationOpExists}},
			},
		}
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod %s: %v", p.Name, err)
		}
		t.Cleanup(func() { deletePod(p.Name) })
	}
	services := env.Client.CoreV1().Services("default")
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: v1.ServiceSpec{
			Type:                  v1.ServiceTypeLoadBalancer,
			ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyLocal,
			Selector:              map[string]string{"app": name},
			Ports:                 []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(80)}},
		},
	}
	if _, err := services.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Service %s: %v", name, err)
	}
	t.Cleanup(func() { _ = services.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	var vip string
	deadline := time.Now().Add(30 * time.Second)
	for vip == "" && time.Now().Before(deadline) {
		if s, err := services.Get(ctx, name, metav1.GetOptions{}); err == nil && len(s.Status.LoadBalancer.Ingress) > 0 {
			vip = s.Status.LoadBalancer.Ingress[0].IP
		}
		time.Sleep(100 * time.Millisecond)
	}
	if vip == "" {
		t.Fatalf("Service %s got no VIP", name)
	}
	owner := waitSingleOwner(t, vip, 15*time.Second)
	if got := waitCurlNode(t, vip, owner); got.Pod != name+"-"+owner {
		t.Fatalf("curl http://%s/ via %s answered by %v, want pod %s-%s (externalTrafficPolicy Local)", vip, owner, got, name, owner)
	}
	return vip
}

// signalAnnouncer sends sig to a node's announcer and, when it is fatal, waits for it to exit;
// the returned function starts it again (and is also registered as cleanup).
func signalAnnouncer(t *testing.T, node string, sig syscall.Signal) (restart func()) {
	t.Helper()
	if err := env.Kill(lab.AnnouncerComponent(node), sig, 5*time.Second); err != nil {
		t.Fatalf("signalling the announcer of %s: %v", node, err)
	}
	restarted := false
	restart = func() {
		if restarted {
			return
		}
		restarted = true
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := env.Start(ctx, lab.AnnouncerComponent(node)); err != nil {
			t.Errorf("restarting the announcer of %s: %v", node, err)
		}
	}
	t.Cleanup(restart)
	return restart
}

// l2Service creates a LoadBalancer Service selecting the demo pods (so it has endpoints).
func l2Service(t *testing.T, name string, mutate func(*v1.Service)) *v1.Service {
	t.Helper()
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: v1.ServiceSpec{
			Type:     v1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": "metallb-demo"},
			Ports:    []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(80)}},
		},
	}
	if mutate != nil {
		mutate(svc)
	}
	created, err := env.Client.CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Service %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Services("default").Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return created
}

func waitIngress(t *testing.T, name string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		svc, err := env.Client.CoreV1().Services("default").Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && len(svc.Status.LoadBalancer.Ingress) >= n {
			var ips []string
			for _, ing := range svc.Status.LoadBalancer.Ingress {
				ips = append(ips, ing.IP)
			}
			return ips
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("Service %s got no %d ingress IPs", name, n)
	return nil
}

// waitAnnouncingEvent waits for the owner's "announcing ..." event on the Service.
func waitAnnouncingEvent(t *testing.T, service, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		list, err := env.Client.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{
			FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + service,
		})
		if err == nil {
			seen = seen[:0]
			for _, ev := range list.Items {
				if ev.Reason == "Announcing" {
					seen = append(seen, ev.Message)
					if ev.Message == want {
						return
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("Service %s: no event %q; Announcing events: %q", service, want, seen)
}
