//go:build linux

package check

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/l2engine/labnet"
)

// The privileged test runs the whole check (Gather on real sockets, then Evaluate) in a
// two-namespace LAN built by labnet and deleted at the end, with every link it adds inside those
// namespaces. "node" is the checked node; "client" plays node-b, whose kernel holds VIPs, and
// a stranger (a macvlan with its own MAC). Addresses come only from 198.18.0.0/15 and
// 2001:db8::/32. The API is a fake clientset: it only feeds the adapter the objects (the Node,
// Services, the kube-proxy ConfigMap) that it reads.

var (
	labNode  = netip.MustParsePrefix("2001:db8::1/64")
	labPeer  = netip.MustParsePrefix("2001:db8::2/64")
	labNode4 = netip.MustParsePrefix("198.18.0.1/24")
	labPeer4 = netip.MustParsePrefix("198.18.0.2/24")

	vipNode     = netip.MustParseAddr("198.18.0.240")  // held by node-b's kernel: its owner
	vipStranger = netip.MustParseAddr("198.18.0.241")  // held by the stranger only
	vipTwo      = netip.MustParseAddr("198.18.0.242")  // held by both
	vipLocal    = netip.MustParseAddr("198.18.0.250")  // on the checked node's lo
	vipNode6    = netip.MustParseAddr("2001:db8::240") // held by node-b's kernel
)

func TestLabCheck(t *testing.T) {
	labnet.RequirePrivileges(t)
	l := labnet.New(t, labNode, labPeer)
	l.AddAddr(t, l.Node, labnet.NodeIf, labNode4)
	l.AddAddr(t, l.Client, labnet.ClientIf, labPeer4)
	run := func(args ...string) { labnet.Run(t, "ip", args...) }
	// node-b answers ARP only for its own interface's addresses (arp_ignore 1), so that the
	// stranger's MAC answers only for the stranger's addresses.
	labnet.Run(t, "ip", "netns", "exec", l.Client, "sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=1")
	run("-n", l.Client, "link", "add", "mv0", "link", labnet.ClientIf, "type", "macvlan", "mode", "bridge")
	run("-n", l.Client, "link", "set", "mv0", "up")
	for _, a := range []string{vipNode.String() + "/32", vipTwo.String() + "/32"} {
		run("-n", l.Client, "addr", "add", a, "dev", labnet.ClientIf)
	}
	for _, a := range []string{vipStranger.String() + "/32", vipTwo.String() + "/32"} {
		run("-n", l.Client, "addr", "add", a, "dev", "mv0")
	}
	run("-n", l.Client, "addr", "add", vipNode6.String()+"/128", "dev", labnet.ClientIf, "nodad")
	// On the node: kube-proxy's IPVS interface (a veth by that name: this kernel has no dummy
	// links) holding a Service IP, and a VIP on lo, both with the kernel's default sysctls.
	run("-n", l.Node, "link", "add", ipvsInterface, "type", "veth", "peer", "name", "kipvs-peer")
	run("-n", l.Node, "addr", "add", "198.18.1.10/32", "dev", ipvsInterface)
	run("-n", l.Node, "addr", "add", vipLocal.String()+"/32", "dev", "lo")

	nodeMAC, peerMAC, strangerMAC := macOf(t, l.Node, labnet.NodeIf), macOf(t, l.Client, labnet.ClientIf), macOf(t, l.Client, "mv0")
	t.Logf("node %s, node-b %s, stranger %s", nodeMAC, peerMAC, strangerMAC)

	kubeProxy := &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"},
		Data:       map[string]string{"config.conf": "kind: KubeProxyConfiguration\nmode: ipvs\nipvs:\n  strictARP: false\n"},
	}
	client := fake.NewClientset(
		labNodeObject("node-a", labNode4.Addr(), labNode.Addr()),
		labNodeObject("node-b", labPeer4.Addr(), labPeer.Addr()),
		labService("web", vipNode), labService("stranger", vipStranger), labService("two", vipTwo),
		labService("local", vipLocal), labService("web6", vipNode6),
		kubeProxy,
	)
	cfg := Config{NodeName: "node-a", Client: client, HeartbeatPort: 7473}

	t.Run("what the kernels and the LAN say", func(t *testing.T) {
		got := gatherIn(t, l.Node, cfg)
		want(t, got, "error IPVSWithoutStrictARP", "kube-ipvs0 holds 1 address: 198.18.1.10", "arp_ignore on bm0 = 0")
		want(t, got, "error KernelAnswersARP", "VIP 198.18.0.250 is configured on lo", nodeMAC)
		want(t, got, "info VIPAnsweredByNode", "VIP 198.18.0.240", peerMAC+" (node node-b")
		want(t, got, "info VIPAnsweredByNode", "VIP 2001:db8::240", peerMAC+" (node node-b")
		want(t, got, "warning VIPAnsweredByOtherMAC", "VIP 198.18.0.241", strangerMAC)
		want(t, got, "error VIPAnsweredByManyMACs", "VIP 198.18.0.242", peerMAC, strangerMAC)
		wantNone(t, got, "MissingNetRaw", "SocketFailed", "HeartbeatPortInUse", "NodeIPNotLocal", "NoCarrier", "IPv6Disabled", "APIUnreachable")
	})

	t.Run("the kernel answers as the finding says", func(t *testing.T) {
		// From node-b, probe the VIP on the node's lo: the node's kernel answers with bm0's MAC.
		f := gatherFacts(t, l.Client, Config{NodeIPs: []netip.Addr{labPeer4.Addr()}, VIPs: []netip.Addr{vipLocal}})
		if !slices.Contains(f.Answers, Answer{Link: Link{"ARP", labnet.ClientIf}, Addr: vipLocal, MAC: nodeMAC}) {
			t.Errorf("answers %+v, want %s from %s", f.Answers, vipLocal, nodeMAC)
		}
	})

	t.Run("strictARP in effect, heartbeat port taken", func(t *testing.T) {
		for _, kv := range []string{"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"} {
			labnet.Run(t, "ip", "netns", "exec", l.Node, "sysctl", "-q", "-w", kv)
		}
		kubeProxy.Data["config.conf"] = "mode: ipvs\nipvs:\n  strictARP: true\n"
		if _, err := client.CoreV1().ConfigMaps("kube-system").Update(context.Background(), kubeProxy, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		var holder *net.UDPConn
		if err := labnet.InNetns(l.Node, func() (err error) {
			holder, err = net.ListenUDP("udp", &net.UDPAddr{IP: labNode4.Addr().AsSlice(), Port: 7473})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer holder.Close()
		got := gatherIn(t, l.Node, cfg)
		wantNone(t, got, "IPVSWithoutStrictARP", "KernelAnswersARP", "ARPAnnounceLoose")
		want(t, got, "error HeartbeatPortInUse", "198.18.0.1:7473")
	})

	t.Run("without NET_RAW", func(t *testing.T) {
		var f Facts
		err := labnet.InNetns(l.Node, func() error {
			return withoutCapability(unix.CAP_NET_RAW, func() {
				f = Gather(context.Background(), Config{NodeIPs: []netip.Addr{labNode4.Addr()}, VIPs: []netip.Addr{vipNode, vipNode6}, ProbeWait: -1})
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		want(t, Evaluate(f), "error MissingNetRaw", "ARP/bm0, NDP/bm0", "operation not permitted")
	})

	t.Run("IPv6 disabled, then no carrier", func(t *testing.T) {
		labnet.Run(t, "ip", "netns", "exec", l.Node, "sysctl", "-q", "-w", "net.ipv6.conf."+labnet.NodeIf+".disable_ipv6=1")
		got := gatherIn(t, l.Node, cfg)
		want(t, got, "error IPv6Disabled", "IPv6 VIPs 2001:db8::240 are announced on bm0", "net.ipv6.conf.bm0.disable_ipv6 = 1")
		run("-n", l.Client, "link", "set", labnet.ClientIf, "down")
		// The peer's carrier loss reaches this end asynchronously (slowly on a loaded machine).
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(labnet.Run(t, "ip", "-n", l.Node, "link", "show", labnet.NodeIf), "NO-CARRIER") {
			if time.Now().After(deadline) {
				t.Fatalf("%s in %s never lost its carrier", labnet.NodeIf, l.Node)
			}
			time.Sleep(20 * time.Millisecond)
		}
		got = gatherIn(t, l.Node, cfg)
		want(t, got, "error NoCarrier", "interface bm0")
	})
}

// gatherFacts runs Gather on a thread inside namespace ns.
func gatherFacts(t *testing.T, ns string, cfg Config) Facts {
	t.Helper()
	var f Facts
	if err := labnet.InNetns(ns, func() error {
		f = Gather(context.Background(), cfg)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

// gatherIn runs the check in namespace ns and logs its findings.
func gatherIn(t *testing.T, ns string, cfg Config) []Finding {
	t.Helper()
	got := Evaluate(gatherFacts(t, ns, cfg))
	for _, f := range got {
		t.Log(f)
	}
	return got
}

// want fails unless a finding "severity Reason" says every one of says.
func want(t *testing.T, got []Finding, key string, says ...string) {
	t.Helper()
	for _, f := range got {
		if f.Severity.String()+" "+f.Reason != key {
			continue
		}
		if !slices.ContainsFunc(says, func(s string) bool { return !strings.Contains(f.String(), s) }) {
			return
		}
	}
	t.Errorf("no finding %q saying %q", key, says)
}

// wantNone fails if a finding has one of reasons.
func wantNone(t *testing.T, got []Finding, reasons ...string) {
	t.Helper()
	for _, f := range got {
		if slices.Contains(reasons, f.Reason) {
			t.Errorf("unexpected finding: %s", f)
		}
	}
}

func macOf(t *testing.T, ns, ifname string) string {
	t.Helper()
	var mac string
	if err := labnet.InNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err == nil {
			mac = ifi.HardwareAddr.String()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return mac
}

// withoutCapability runs fn with capability c out of the calling thread's effective set (the
// thread must be locked: capabilities are per thread), then puts it back. Go starts new threads
// from a clean template thread, not from a locked one, so nothing else loses c.
func withoutCapability(c int, fn func()) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	saved := data
	data[c/32].Effective &^= 1 << (c % 32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return err
	}
	fn()
	return unix.Capset(&hdr, &saved[0])
}

func labNodeObject(name string, addrs ...netip.Addr) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, a := range addrs {
		n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: a.String()})
	}
	return n
}

func labService(name string, vip netip.Addr) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer},
		Status:     v1.ServiceStatus{LoadBalancer: v1.LoadBalancerStatus{Ingress: []v1.LoadBalancerIngress{{IP: vip.String()}}}},
	}
}
