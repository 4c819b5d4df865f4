package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

// KubeProxyUser is kube-proxy's ServiceAccount, bound to the system:node-proxier ClusterRole
// as kubeadm binds it: every node's kube-proxy runs with a token the API server issues for it.
const KubeProxyUser = "system:serviceaccount:kube-system:kube-proxy"

// kubeProxyHealthzPort is kube-proxy's --healthz-bind-address port (its default), in every node
// namespace: the lab's readiness check reads it over the management link.
const kubeProxyHealthzPort = 10256

// kubeProxyRBAC is what kubeadm installs for kube-proxy: a ServiceAccount bound to the
// bootstrap ClusterRole system:node-proxier (Services, EndpointSlices, Nodes, Events).
const kubeProxyRBAC = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: kube-proxy
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: lab:node-proxier
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:node-proxier
subjects:
  - kind: ServiceAccount
    name: kube-proxy
    namespace: kube-system
`

// KubeProxyComponent is the name (log .lab/kube-proxy-<node>.log) of a node's kube-proxy.
func KubeProxyComponent(node string) string { return "kube-proxy-" + node }

// PodHostComponent is the name (log .lab/pods-<node>.log) of a node's pod host (RunPodHost).
func PodHostComponent(node string) string { return "pods-" + node }

// nodeComponents are what runs in a node namespace besides the announcer: the pod host (TEST
// SCAFFOLDING: the pods' servers) and the real kube-proxy.
func (l *Lab) nodeComponents(node, labBin, kubeProxy string) []component {
	h, _ := Node(node)
	return []component{
		{
			// TEST SCAFFOLDING: the node's pods (RunPodHost).
			name: PodHostComponent(node), bin: labBin, netns: node,
			args: []string{
				"pods", "--node=" + node,
				"--kubeconfig=" + l.kubeconfigFor(framework.AdminUser),
				"--status-address=" + netip.AddrPortFrom(h.Management, PodHostStatusPort).String(),
			},
			ready: func(ctx context.Context, exited func() (bool, error)) error {
				url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(h.Management, PodHostStatusPort))
				return framework.WaitHTTP(ctx, url, "", 30*time.Second, exited)
			},
		},
		{
			// The real kube-proxy, in nftables mode, inside the node's namespace only: its
			// tables, conntrack entries and listeners are the namespace's.
			name: KubeProxyComponent(node), bin: kubeProxy, netns: node,
			args: l.kubeProxyArgs(node),
			// kube-proxy reads its Node's addresses once at start (and exits when they
			// change): start it after the CCM has initialised the Node.
			before: func(ctx context.Context) error { return l.waitNode(ctx, node) },
			ready: func(ctx context.Context, exited func() (bool, error)) error {
				url := fmt.Sprintf("http://%s/healthz", netip.AddrPortFrom(h.Management, kubeProxyHealthzPort))
				return framework.WaitHTTP(ctx, url, "", 60*time.Second, exited)
			},
		},
	}
}

// kubeProxyArgs run kube-proxy as a kubeadm node would (nftables mode, its node's name, its
// ServiceAccount), with every flag that would write a host-wide setting turned off:
// conntrack-max-per-core=0 leaves nf_conntrack_max and the conntrack hash size (global, not
// per namespace) alone, the conntrack timeouts 0 leave the namespace's as they are, and
// oom-score-adj=0 leaves the process's OOM score at the default.
func (l *Lab) kubeProxyArgs(node string) []string {
	return []string{
		"--kubeconfig=" + l.kubeconfigFor(KubeProxyUser),
		"--hostname-override=" + node,
		"--proxy-mode=nftables",
		"--cluster-cidr=" + PodPrefix.String() + "," + PodPrefix6.String(),
		"--healthz-bind-address=0.0.0.0:" + strconv.Itoa(kubeProxyHealthzPort),
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0",
		"--conntrack-tcp-timeout-close-wait=0",
		"--oom-score-adj=0",
		"--v=2",
	}
}

// waitNode waits until the CCM has initialised a Node (its addresses set) and it is Ready.
func (l *Lab) waitNode(ctx context.Context, name string) error {
	var why string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		node, err := l.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		why = NodeProblem(node)
		return why == "", nil
	})
	if err != nil {
		return fmt.Errorf("node %s not initialised and Ready (see .lab/%s.log and .lab/kwok.log): %s: %w", name, CCMComponent, why, err)
	}
	return nil
}

// applyKubeProxyRBAC installs kube-proxy's ServiceAccount and ClusterRoleBinding.
func (l *Lab) applyKubeProxyRBAC(ctx context.Context) error {
	objs, err := framework.DecodeYAML([]byte(kubeProxyRBAC))
	if err != nil {
		return err
	}
	return framework.Apply(ctx, l.Config, objs...)
}

// waitDemoAnswered waits until lab-client's HTTP request to the demo VIP is answered by a demo
// pod: the announcer owning the VIP answers ARP, kube-proxy on that node DNATs to the pod.
func (l *Lab) waitDemoAnswered(ctx context.Context) error {
	vip, err := netip.ParseAddr(l.DemoVIP)
	if err != nil {
		return err
	}
	start := time.Now()
	var answer Answer
	var last error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		answer, last = l.Get(ctx, ClientNamespace, netip.AddrPortFrom(vip, 80), 2*time.Second)
		if last == nil && !strings.HasPrefix(answer.Pod, "metallb-demo-") {
			last = fmt.Errorf("answered by %v", answer)
		}
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("http://%s/ from lab-client is not answered by a demo pod (see .lab/announcer-*.log, kube-proxy-*.log, pods-*.log): %w",
			vip, errors.Join(last, err))
	}
	l.printf("%-36s answered by pod %s on %s (through kube-proxy on %s), in %.1fs\n", "http://"+vip.String()+"/", answer.Pod, answer.Node, answer.ReceivedBy(), time.Since(start).Seconds())
	return nil
}
