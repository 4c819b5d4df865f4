package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/lab"
)

// TestKubeProxyLocal: externalTrafficPolicy Local is enforced by the real kube-proxy itself, not
// only by which node announces. With lab-client's neighbour entry pointing the VIP at a node
// without a local endpoint, the request is not answered (that node's kube-proxy drops it rather
// than forwarding it); pointed at the pod's node, the pod answers and sees lab-client's own
// address (no masquerade). The Service's healthCheckNodePort answers on every node's address:
// 200 and one local endpoint on the pod's node, 503 and none elsewhere. Both follow the pod
// when it moves.
func TestKubeProxyLocal(t *testing.T) {
	const name = "kp-local"
	kwokPod(t, name+"-a", "lab-node-2", name)
	svc := l2Service(t, name, func(s *v1.Service) {
		s.Spec.Selector = map[string]string{"app": name}
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	})
	hc := int(svc.Spec.HealthCheckNodePort)
	if hc == 0 {
		t.Fatalf("Service %s has no healthCheckNodePort", name)
	}
	vip := netip.MustParseAddr(waitIngress(t, name, 1)[0])

	check := func(podNode, pod string) {
		t.Helper()
		for _, node := range lab.Nodes {
			want := 0
			if node == podNode {
				want = 1
			}
			// Once a node's health check answers with the new count, its kube-proxy has the
			// Service's current endpoints in its rules.
			waitHealthCheck(t, node, hc, want)
			pointNeighbour(t, vip, node)
			if node == podNode {
				got := waitAnswer(t, vip, func(a lab.Answer) bool { return a.Pod == pod })
				if got.Node != node || got.Client != lab.ClientHost().IPv4 {
					t.Errorf("via %s: answered by %v, want %s on %s seeing lab-client's %s", node, got, pod, node, lab.ClientHost().IPv4)
				}
				continue
			}
			if got, err := curl(vip); err == nil {
				t.Fatalf("via %s, which has no local endpoint of Local Service %s: answered by %v, want no answer", node, name, got)
			}
		}
	}
	check("lab-node-2", name+"-a")
	kwokPod(t, name+"-b", "lab-node-1", name)
	deletePod(name + "-a")
	check("lab-node-1", name+"-b")
}

// waitAnswer waits until lab-client's request to vip gets an answer that ok accepts.
func waitAnswer(t *testing.T, vip netip.Addr, ok func(lab.Answer) bool) lab.Answer {
	t.Helper()
	var got lab.Answer
	var err error
	deadline := time.Now().Add(waitShort)
	for time.Now().Before(deadline) {
		if got, err = curl(vip); err == nil && ok(got) {
			return got
		}
		time.Sleep(poll)
	}
	t.Fatalf("curl http://%s/ from lab-client: last answer %v (%v)", vip, got, err)
	return got
}

// healthCheck is what kube-proxy's health check server answers for a Service.
type healthCheck struct {
	Code           int
	LocalEndpoints int `json:"localEndpoints"`
}

// getHealthCheck asks a node's kube-proxy, from lab-client, for a Service's health on its
// healthCheckNodePort (kube-proxy listens on the node's addresses).
func getHealthCheck(node string, port int) (healthCheck, error) {
	h, err := lab.Node(node)
	if err != nil {
		return healthCheck{}, err
	}
	url := "http://" + netip.AddrPortFrom(h.IPv4, uint16(port)).String() + "/"
	out, err := env.Exec(lab.ClientNamespace, "curl", "-s", "--max-time", "2", "-w", "\n%{http_code}", url)
	if err != nil {
		return healthCheck{}, err
	}
	out = strings.TrimSpace(out)
	i := strings.LastIndexByte(out, '\n')
	if i < 0 {
		return healthCheck{}, fmt.Errorf("%s answered %q", url, out)
	}
	body, code := out[:i], out[i+1:]
	var hc healthCheck
	if err := json.Unmarshal([]byte(body), &hc); err != nil {
		return healthCheck{}, fmt.Errorf("%s answered %q: %w", url, out, err)
	}
	hc.Code, _ = strconv.Atoi(code)
	return hc, nil
}

// waitHealthCheck waits until a node's kube-proxy reports want local endpoints on the health
// check port, with the status code that goes with it (200 with endpoints, 503 without).
func waitHealthCheck(t *testing.T, node string, port, want int) {
	t.Helper()
	wantCode := 503
	if want > 0 {
		wantCode = 200
	}
	var got healthCheck
	var err error
	deadline := time.Now().Add(waitShort)
	for time.Now().Before(deadline) {
		if got, err = getHealthCheck(node, port); err == nil && got.LocalEndpoints == want && got.Code == wantCode {
			return
		}
		time.Sleep(poll)
	}
	t.Fatalf("health check port %d of %s: %+v (%v), want %d local endpoints and status %d", port, node, got, err, want, wantCode)
}
