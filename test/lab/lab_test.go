package lab

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The lab's shape is a contract (docs and tests rely on it): pin it.
func TestTopology(t *testing.T) {
	want := map[string]Host{
		"lab-node-1": {Namespace: "lab-node-1", IPv4: netip.MustParseAddr("198.18.0.11"), IPv6: netip.MustParseAddr("2001:db8:0:1::11"),
			MAC: "02:18:00:00:00:11", Cable: "lan-node-1", Management: netip.MustParseAddr("198.18.254.11"),
			ManagementCable: "mgmt-node-1", ManagementMAC: "02:18:fe:00:00:11"},
		"lab-node-3": {Namespace: "lab-node-3", IPv4: netip.MustParseAddr("198.18.0.13"), IPv6: netip.MustParseAddr("2001:db8:0:1::13"),
			MAC: "02:18:00:00:00:13", Cable: "lan-node-3", Management: netip.MustParseAddr("198.18.254.13"),
			ManagementCable: "mgmt-node-3", ManagementMAC: "02:18:fe:00:00:13"},
	}
	for name, w := range want {
		got, err := Node(name)
		if err != nil || got != w {
			t.Errorf("Node(%q) = %+v, %v; want %+v", name, got, err, w)
		}
	}
	if _, err := Node("lab-node-4"); err == nil {
		t.Error("Node(lab-node-4) did not fail")
	}
	if got, want := strings.Join(Namespaces(), " "), "lab-lan lab-node-1 lab-node-2 lab-node-3 lab-router lab-client lab-remote"; got != want {
		t.Errorf("Namespaces() = %s, want %s", got, want)
	}
	if r := RouterHost(); r.IPv4 != netip.MustParseAddr("198.18.0.1") || r.IPv6 != netip.MustParseAddr("2001:db8:0:1::1") {
		t.Errorf("router %+v", r)
	}
	if c := ClientHost(); c.IPv4 != netip.MustParseAddr("198.18.0.100") || c.IPv6 != netip.MustParseAddr("2001:db8:0:1::100") {
		t.Errorf("client %+v", c)
	}
	if got := RouterAddr(RouterSubnet4).String() + " " + RouterAddr(RouterSubnet6).String(); got != "198.18.1.1 2001:db8:0:2::1" {
		t.Errorf("router subnet addresses %s", got)
	}
	rem := RemoteHost()
	if rem.Namespace != "lab-remote" || rem.IPv4 != netip.MustParseAddr("198.18.1.100") || rem.IPv6 != netip.MustParseAddr("2001:db8:0:2::100") || rem.Cable != "" {
		t.Errorf("remote %+v", rem)
	}
	if !RouterSubnet4.Contains(rem.IPv4) || !RouterSubnet6.Contains(rem.IPv6) {
		t.Errorf("remote %s, %s outside the subnet behind the router", rem.IPv4, rem.IPv6)
	}
	// The BGP pool is reachable only through BGP: on no subnet of the lab.
	for _, p := range []netip.Prefix{LANPrefix4, LANPrefix6, RouterSubnet4, RouterSubnet6, ManagementPrefix, PodPrefix, PodPrefix6} {
		if p.Overlaps(BGPPool4) || p.Overlaps(BGPPool6) {
			t.Errorf("%s overlaps the BGP pool %s, %s", p, BGPPool4, BGPPool6)
		}
	}
	lab15, doc32 := netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("2001:db8::/32")
	for _, p := range []netip.Prefix{RouterSubnet4, BGPPool4, RouterSubnet6, BGPPool6} {
		if !lab15.Contains(p.Addr()) && !doc32.Contains(p.Addr()) {
			t.Errorf("%s is outside the lab's address space", p)
		}
	}
	for _, h := range Hosts() {
		// Interface names are at most 15 bytes.
		for _, name := range []string{h.Cable, h.ManagementCable} {
			if len(name) > 15 {
				t.Errorf("interface name %q is too long", name)
			}
		}
		if !LANPrefix4.Contains(h.IPv4) || !LANPrefix6.Contains(h.IPv6) {
			t.Errorf("%s: %s, %s outside the LAN", h.Namespace, h.IPv4, h.IPv6)
		}
	}
	for _, n := range Nodes {
		p := netip.MustParsePrefix(podCIDRs(n)[0])
		if !PodPrefix.Contains(p.Addr()) || p.Bits() < PodPrefix.Bits() {
			t.Errorf("pod CIDR %s of %s outside %s", p, n, PodPrefix)
		}
		p6 := netip.MustParsePrefix(podCIDRs(n)[1])
		if !PodPrefix6.Contains(p6.Addr()) || p6.Bits() < PodPrefix6.Bits() {
			t.Errorf("pod CIDR %s of %s outside %s", p6, n, PodPrefix6)
		}
	}
}

func TestDesiredPods(t *testing.T) {
	pod := func(name, node string, phase v1.PodPhase, ips ...string) *v1.Pod {
		p := &v1.Pod{}
		p.Namespace, p.Name = "default", name
		p.Spec.NodeName = node
		p.Status.Phase = phase
		for _, ip := range ips {
			p.Status.PodIPs = append(p.Status.PodIPs, v1.PodIP{IP: ip})
		}
		return p
	}
	web := pod("web", "lab-node-1", v1.PodRunning, "198.18.65.3", "2001:db8:64:1::3")
	web.Spec.Containers = []v1.Container{{Ports: []v1.ContainerPort{
		{ContainerPort: 8080}, {ContainerPort: 80}, {ContainerPort: 53, Protocol: v1.ProtocolUDP},
	}}}
	deleting := pod("deleting", "lab-node-1", v1.PodRunning, "198.18.65.4")
	deleting.DeletionTimestamp = &metav1.Time{}
	host := pod("host", "lab-node-1", v1.PodRunning, "198.18.0.11")
	host.Spec.HostNetwork = true
	got := desiredPods("lab-node-1", []*v1.Pod{
		web,
		pod("a-pending", "lab-node-1", v1.PodPending, "198.18.65.5"),
		pod("other-node", "lab-node-2", v1.PodRunning, "198.18.66.3"),
		pod("no-ip", "lab-node-1", v1.PodRunning),
		pod("outside", "lab-node-1", v1.PodRunning, "198.18.0.50"), // never put a LAN address on lo
		deleting, host,
		pod("b-v4", "lab-node-1", v1.PodRunning, "198.18.65.6"),
	})
	want := []string{
		"default/b-v4 [198.18.65.6] [80]",
		"default/web [198.18.65.3 2001:db8:64:1::3] [80 8080]",
	}
	var have []string
	for _, s := range got {
		have = append(have, s.String())
	}
	if !slices.Equal(have, want) {
		t.Errorf("desiredPods = %q, want %q", have, want)
	}
}

func TestParseAnswer(t *testing.T) {
	out := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Lab-Client: 198.18.0.12\r\nX-Lab-Node: lab-node-1\r\n" +
		"Date: Mon, 30 Nov 2026 19:00:00 GMT\r\nContent-Length: 19\r\nConnection: close\r\n\r\nmetallb-demo-abc-de\n"
	a, err := parseAnswer(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Answer{Pod: "metallb-demo-abc-de", Node: "lab-node-1", Client: netip.MustParseAddr("198.18.0.12")}
	if a != want {
		t.Fatalf("parseAnswer = %+v, want %+v", a, want)
	}
	// Masqueraded by lab-node-2's kube-proxy: lab-node-2 received it.
	if got := a.ReceivedBy(); got != "lab-node-2" {
		t.Errorf("ReceivedBy = %s, want lab-node-2", got)
	}
	// The client's own address: the pod's node received it.
	a.Client = ClientHost().IPv4
	if got := a.ReceivedBy(); got != "lab-node-1" {
		t.Errorf("ReceivedBy with the client's address = %s, want lab-node-1", got)
	}
	a.Client = netip.MustParseAddr("2001:db8:0:1::13")
	if got := a.ReceivedBy(); got != "lab-node-3" {
		t.Errorf("ReceivedBy with lab-node-3's IPv6 address = %s, want lab-node-3", got)
	}
	for _, bad := range []string{
		"",
		"metallb-demo\n",
		"HTTP/1.1 503 Service Unavailable\r\n\r\nno\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nnginx welcome\n", // not a lab pod
	} {
		if a, err := parseAnswer(bad); err == nil {
			t.Errorf("parseAnswer(%q) = %+v, want an error", bad, a)
		}
	}
}

// kube-proxy must never write a host-wide setting from a lab namespace.
func TestKubeProxyArgs(t *testing.T) {
	l := newLab(nil)
	args := l.kubeProxyArgs("lab-node-2")
	for _, want := range []string{
		"--hostname-override=lab-node-2",
		"--proxy-mode=nftables",
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0",
		"--conntrack-tcp-timeout-close-wait=0",
		"--oom-score-adj=0",
		"--kubeconfig=" + l.kubeconfigFor(KubeProxyUser),
	} {
		if !slices.Contains(args, want) {
			t.Errorf("kube-proxy args %q lack %s", args, want)
		}
	}
	for _, a := range args {
		for _, bad := range []string{"--conntrack-min", "--conntrack-tcp-be-liberal", "--conntrack-udp-timeout", "--masquerade-all"} {
			if strings.HasPrefix(a, bad) {
				t.Errorf("kube-proxy arg %s would write a host-wide sysctl or change the lab's NAT", a)
			}
		}
	}
	comps := l.nodeComponents("lab-node-2", "lab", "kube-proxy")
	for _, c := range comps {
		if c.netns != "lab-node-2" {
			t.Errorf("%s runs in namespace %q, want lab-node-2", c.name, c.netns)
		}
	}
}

func TestNodeProblem(t *testing.T) {
	ready := func(n *v1.Node) *v1.Node {
		n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
		return n
	}
	node := func() *v1.Node {
		n := &v1.Node{}
		n.Name = "lab-node-2"
		n.Spec.ProviderID = "baremetal://lab-node-2"
		n.Status.Addresses = []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: "198.18.0.12"},
			{Type: v1.NodeInternalIP, Address: "2001:db8:0:1::12"},
			{Type: v1.NodeHostName, Address: "lab-node-2"},
		}
		return n
	}
	if p := NodeProblem(ready(node())); p != "" {
		t.Errorf("initialised, Ready node: %s", p)
	}
	if p := NodeProblem(node()); p == "" {
		t.Error("a node without Ready condition passed")
	}
	n := ready(node())
	n.Spec.Taints = []v1.Taint{{Key: "node.cloudprovider.kubernetes.io/uninitialized", Effect: v1.TaintEffectNoSchedule}}
	if p := NodeProblem(n); p == "" {
		t.Error("a node with the uninitialized taint passed")
	}
	n = ready(node())
	n.Status.Addresses = n.Status.Addresses[:1]
	if p := NodeProblem(n); p == "" {
		t.Error("a node with one InternalIP passed")
	}
}

// lab-router's FRR configuration is what docs and tests rely on: pin its parts.
func TestRouterConfig(t *testing.T) {
	conf := RouterConfig()
	for _, want := range []string{
		"router bgp 64512\n",
		" bgp router-id 198.18.0.1\n",
		" no bgp ebgp-requires-policy\n",
		" no bgp default ipv4-unicast\n",
		" bgp bestpath as-path multipath-relax\n",
		" bgp graceful-restart\n",
		" neighbor NODES4 remote-as external\n",
		" neighbor NODES6 remote-as external\n",
		" bgp listen range 198.18.0.0/24 peer-group NODES4\n",
		" bgp listen range 2001:db8:0:1::/64 peer-group NODES6\n",
		" address-family ipv4 unicast\n  neighbor NODES4 activate\n  neighbor NODES4 route-map NOTHING out\n  maximum-paths 16\n exit-address-family\n",
		" address-family ipv6 unicast\n  neighbor NODES6 activate\n  neighbor NODES6 route-map NOTHING out\n  maximum-paths 16\n exit-address-family\n",
		"route-map NOTHING deny 10\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("lab-router's configuration lacks %q:\n%s", want, conf)
		}
	}
	for _, never := range []string{"password", "timers"} {
		if strings.Contains(conf, never) {
			t.Errorf("lab-router's configuration has %q:\n%s", never, conf)
		}
	}
	// Each peer group is active in its own family only.
	v4 := conf[strings.Index(conf, "address-family ipv4"):strings.Index(conf, "address-family ipv6")]
	v6 := conf[strings.Index(conf, "address-family ipv6"):]
	if strings.Contains(v4, "NODES6") || strings.Contains(v6, "NODES4") {
		t.Errorf("a peer group is active in the other family:\n%s", conf)
	}
}

func TestCountSessions(t *testing.T) {
	summary := `{"ipv4Unicast":{"routerId":"198.18.0.1","peers":{"198.18.0.11":{"state":"Established"},"198.18.0.12":{"state":"Active"}}},
"ipv6Unicast":{"peers":{"2001:db8:0:1::11":{"state":"Established"}}}}`
	up, total, err := countSessions([]byte(summary))
	if err != nil || up != 2 || total != 3 {
		t.Errorf("countSessions = %d, %d, %v; want 2, 3", up, total, err)
	}
	if up, total, err := countSessions([]byte(`{}`)); err != nil || up != 0 || total != 0 {
		t.Errorf("countSessions({}) = %d, %d, %v", up, total, err)
	}
}

func TestHostRoute(t *testing.T) {
	for in, want := range map[string]string{"198.18.2.1": "198.18.2.1/32", "2001:db8:0:3::1": "2001:db8:0:3::1/128", "::ffff:198.18.2.7": "198.18.2.7/32"} {
		if got := HostRoute(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("HostRoute(%s) = %s, want %s", in, got, want)
		}
	}
}
