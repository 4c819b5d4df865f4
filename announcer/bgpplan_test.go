package announcer

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/bgpspeaker"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/desired"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

func planNode(name string, mutate ...func(*v1.Node)) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"rack": "a"}},
		Status: v1.NodeStatus{Addresses: []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: "198.18.0.11"},
			{Type: v1.NodeInternalIP, Address: "2001:db8:0:1::11"},
		}}}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func planPeer(name, addr string, peerASN, myASN uint32, mutate ...func(*v1alpha1.BGPPeer)) *v1alpha1.BGPPeer {
	p := &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"peer": name}},
		Spec: v1alpha1.BGPPeerSpec{PeerAddress: addr, PeerASN: peerASN, MyASN: myASN, PeerPort: 179}}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func bgpVIP(addr string, s *v1alpha1.BGPAnnounce, candidates ...string) desired.BGPVIP {
	v := desired.BGPVIP{Addr: netip.MustParseAddr(addr), Pool: "p", Settings: s, Services: []string{"default/svc"}}
	if candidates != nil {
		v.Candidates = map[string]bool{}
		for _, c := range candidates {
			v.Candidates[c] = true
		}
	}
	return v
}

func u32(v uint32) *uint32 { return &v }

// netipEqual compares netip values, whose fields cmp cannot see.
var netipEqual = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

func TestPlanBGPRoutes(t *testing.T) {
	v4 := planPeer("r4", "198.18.0.1", 64512, 64513)
	v6 := planPeer("r6", "2001:db8:0:1::1", 64512, 64513)
	settings := &v1alpha1.BGPAnnounce{Communities: []string{"64513:100"}, LargeCommunities: []string{"64513:1:1"}, MED: u32(10)}
	for _, tc := range []struct {
		name       string
		self       *v1.Node
		vips       []desired.BGPVIP
		peers      []*v1alpha1.BGPPeer
		drain      drainPhase
		wantRoutes []bgpspeaker.Route
		wantPeers  []string
		problem    string // a substring of some problem, if any is expected
	}{{
		name: "each family over its own session, next hop the node's address of that family",
		self: planNode("n1"), peers: []*v1alpha1.BGPPeer{v6, v4},
		vips: []desired.BGPVIP{bgpVIP("198.18.2.1", settings), bgpVIP("2001:db8:0:3::1", settings)},
		wantRoutes: []bgpspeaker.Route{
			{Prefix: netip.MustParsePrefix("198.18.2.1/32"), NextHop: netip.MustParseAddr("198.18.0.11"), Peers: []string{"r4"}, Communities: []string{"64513:100"}, LargeCommunities: []string{"64513:1:1"}, MED: u32(10)},
			{Prefix: netip.MustParsePrefix("2001:db8:0:3::1/128"), NextHop: netip.MustParseAddr("2001:db8:0:1::11"), Peers: []string{"r6"}, Communities: []string{"64513:100"}, LargeCommunities: []string{"64513:1:1"}, MED: u32(10)},
		},
		wantPeers: []string{"r4", "r6"},
	}, {
		name: "an IPv6 VIP with only an IPv4 session is refused in words, never sent with ::",
		self: planNode("n1"), peers: []*v1alpha1.BGPPeer{v4},
		vips:      []desired.BGPVIP{bgpVIP("2001:db8:0:3::1", settings)},
		wantPeers: []string{"r4"},
		problem:   "IPv6 VIP 2001:db8:0:3::1 of pool p is not advertised: no IPv6 BGPPeer",
	}, {
		name: "externalTrafficPolicy Local: only from a node with a serving endpoint",
		self: planNode("n1"), peers: []*v1alpha1.BGPPeer{v4},
		vips:      []desired.BGPVIP{bgpVIP("198.18.2.1", settings, "n2")},
		wantPeers: []string{"r4"},
	}, {
		name: "cordoned node drains with GRACEFUL_SHUTDOWN",
		self: planNode("n1"), peers: []*v1alpha1.BGPPeer{v4}, drain: drainAdvertising,
		vips: []desired.BGPVIP{bgpVIP("198.18.2.1", &v1alpha1.BGPAnnounce{})},
		wantRoutes: []bgpspeaker.Route{
			{Prefix: netip.MustParsePrefix("198.18.2.1/32"), NextHop: netip.MustParseAddr("198.18.0.11"), Peers: []string{"r4"}, GracefulShutdown: true},
		},
		wantPeers: []string{"r4"},
	}, {
		name: "drained node keeps its sessions and withdraws every route",
		self: planNode("n1"), peers: []*v1alpha1.BGPPeer{v4}, drain: drainWithdrawn,
		vips:      []desired.BGPVIP{bgpVIP("198.18.2.1", &v1alpha1.BGPAnnounce{})},
		wantPeers: []string{"r4"},
	}, {
		name: "the pool's node selector and peer selector",
		self: planNode("n1"), peers: []*v1alpha1.BGPPeer{v4, planPeer("r4b", "198.18.0.2", 64512, 64513)},
		vips: []desired.BGPVIP{
			bgpVIP("198.18.2.1", &v1alpha1.BGPAnnounce{PeerSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"peer": "r4b"}}}),
			bgpVIP("198.18.2.2", &v1alpha1.BGPAnnounce{NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"rack": "b"}}}),
		},
		wantRoutes: []bgpspeaker.Route{
			{Prefix: netip.MustParsePrefix("198.18.2.1/32"), NextHop: netip.MustParseAddr("198.18.0.11"), Peers: []string{"r4b"}},
		},
		wantPeers: []string{"r4", "r4b"},
	}, {
		name: "a peer that does not select the node gets no session",
		self: planNode("n1"),
		peers: []*v1alpha1.BGPPeer{planPeer("other-rack", "198.18.0.1", 64512, 64513, func(p *v1alpha1.BGPPeer) {
			p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"rack": "b"}}
		})},
		vips: []desired.BGPVIP{bgpVIP("198.18.2.1", &v1alpha1.BGPAnnounce{})},
	}, {
		name: "localPref towards an eBGP peer is reported",
		self: planNode("n1"), peers: []*v1alpha1.BGPPeer{v4},
		vips: []desired.BGPVIP{bgpVIP("198.18.2.1", &v1alpha1.BGPAnnounce{LocalPref: u32(200)})},
		wantRoutes: []bgpspeaker.Route{
			{Prefix: netip.MustParsePrefix("198.18.2.1/32"), NextHop: netip.MustParseAddr("198.18.0.11"), Peers: []string{"r4"}, LocalPref: u32(200)},
		},
		wantPeers: []string{"r4"},
		problem:   "pool p sets localPref 200, which is not sent to eBGP peers",
	}, {
		name: "a node without an IPv6 address cannot be an IPv6 next hop",
		self: planNode("n1", func(n *v1.Node) { n.Status.Addresses = n.Status.Addresses[:1] }),
		peers: []*v1alpha1.BGPPeer{v4, planPeer("r6", "2001:db8:0:1::1", 64512, 64513, func(p *v1alpha1.BGPPeer) {
			p.Spec.SourceAddress = "2001:db8:0:1::99"
		})},
		vips:      []desired.BGPVIP{bgpVIP("2001:db8:0:3::1", &v1alpha1.BGPAnnounce{})},
		wantPeers: []string{"r4", "r6"},
		problem:   "node n1 has no IPv6 InternalIP to use as the next hop",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			plan := planBGP(bgpInputs{self: tc.self, vips: tc.vips, peers: tc.peers, drain: tc.drain})
			if diff := cmp.Diff(tc.wantRoutes, plan.desired.Routes, netipEqual); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantPeers, plan.peers); diff != "" {
				t.Errorf("peers selecting the node (-want +got):\n%s", diff)
			}
			all := ""
			for _, ps := range plan.problems {
				all += strings.Join(ps, "\n") + "\n"
			}
			if tc.problem == "" && all != "" {
				t.Errorf("unexpected problems:\n%s", all)
			}
			if tc.problem != "" && !strings.Contains(all, tc.problem) {
				t.Errorf("problems\n%s\ndo not say %q", all, tc.problem)
			}
		})
	}
}

func TestPlanBGPPeers(t *testing.T) {
	hold, keep, connect, restart := metav1.Duration{Duration: 9 * time.Second}, metav1.Duration{Duration: 2 * time.Second},
		metav1.Duration{Duration: 5 * time.Second}, metav1.Duration{Duration: 30 * time.Second}
	off := false
	peers := []*v1alpha1.BGPPeer{
		planPeer("defaults", "198.18.0.1", 64512, 64513),
		planPeer("tuned", "2001:db8:0:1::1", 64512, 64512, func(p *v1alpha1.BGPPeer) {
			p.Spec.HoldTime, p.Spec.KeepaliveTime, p.Spec.ConnectTime = &hold, &keep, &connect
			p.Spec.GracefulRestart = &v1alpha1.GracefulRestart{RestartTime: &restart}
			p.Spec.PasswordSecretRef = &v1alpha1.SecretKeyRef{Namespace: "baremetal-bgp", Name: "pw"}
			p.Spec.Passive = true
		}),
		planPeer("no-gr", "198.18.0.2", 64512, 64513, func(p *v1alpha1.BGPPeer) {
			p.Spec.GracefulRestart = &v1alpha1.GracefulRestart{Enabled: &off}
			p.Spec.SourceAddress = "198.18.0.99"
			p.Spec.EBGPMultihop = 3
		}),
		planPeer("unreadable", "198.18.0.3", 64512, 64513, func(p *v1alpha1.BGPPeer) {
			p.Spec.PasswordSecretRef = &v1alpha1.SecretKeyRef{Namespace: "kube-system", Name: "x"}
		}),
	}
	plan := planBGP(bgpInputs{self: planNode("n1"), peers: peers, passwords: map[string]secretValue{
		"tuned":      {value: "s3cret"},
		"unreadable": {err: errors.New("cannot read the password Secret kube-system/x: forbidden")},
	}})
	want := []bgpspeaker.Peer{{
		Name: "defaults", Address: netip.MustParseAddr("198.18.0.1"), Port: 179, ASN: 64512, LocalASN: 64513,
		SourceAddress: netip.MustParseAddr("198.18.0.11"), HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second,
		ConnectTime: time.Second, GracefulRestart: true, RestartTime: 120 * time.Second,
	}, {
		Name: "no-gr", Address: netip.MustParseAddr("198.18.0.2"), Port: 179, ASN: 64512, LocalASN: 64513,
		SourceAddress: netip.MustParseAddr("198.18.0.99"), HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second,
		ConnectTime: time.Second, EBGPMultihop: 3, RestartTime: 120 * time.Second,
	}, {
		Name: "tuned", Address: netip.MustParseAddr("2001:db8:0:1::1"), Port: 179, ASN: 64512, LocalASN: 64512,
		SourceAddress: netip.MustParseAddr("2001:db8:0:1::11"), HoldTime: 9 * time.Second, KeepaliveTime: 2 * time.Second,
		ConnectTime: 5 * time.Second, Password: "s3cret", GracefulRestart: true, RestartTime: 30 * time.Second, Passive: true,
	}}
	if diff := cmp.Diff(want, plan.desired.Peers, netipEqual); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}
	if got := plan.problems["unreadable"]; len(got) != 1 || !strings.Contains(got[0], "forbidden") {
		t.Errorf("an unreadable password must keep the session down and say why; problems %q", got)
	}
	if diff := cmp.Diff([]string{"defaults", "no-gr", "tuned", "unreadable"}, plan.peers); diff != "" {
		t.Errorf("peers selecting the node (-want +got):\n%s", diff)
	}
}

func TestPlanBGPAggregate(t *testing.T) {
	pool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: v1alpha1.IPPoolSpec{
		Addresses: []v1alpha1.AddressBlock{"198.18.2.0/24", "198.18.3.1-198.18.3.6", "198.18.4.9", "2001:db8:0:3::/120"},
	}}
	s := &v1alpha1.BGPAnnounce{Aggregate: true}
	plan := planBGP(bgpInputs{
		self: planNode("n1"), peers: []*v1alpha1.BGPPeer{planPeer("r4", "198.18.0.1", 64512, 64513)},
		pools: map[string]*v1alpha1.IPPool{"p": pool},
		vips:  []desired.BGPVIP{bgpVIP("198.18.2.7", s)},
	})
	var got []string
	for _, r := range plan.desired.Routes {
		got = append(got, r.Prefix.String())
	}
	// The IPv6 entry has no IPv6 session, and single addresses (an entry, or the ends of a
	// range) would be host routes, which only VIPs in use get.
	want := []string{"198.18.2.7/32", "198.18.2.0/24", "198.18.3.2/31", "198.18.3.4/31"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}

func TestDrainReason(t *testing.T) {
	if r := drainReason(planNode("n1")); r != "" {
		t.Errorf("a plain node drains: %q", r)
	}
	if r := drainReason(planNode("n1", func(n *v1.Node) { n.Spec.Unschedulable = true })); r != election.ReasonUnschedulable {
		t.Errorf("a cordoned node: %q", r)
	}
	if r := drainReason(planNode("n1", func(n *v1.Node) { n.Labels[election.ExcludeLabel] = "" })); r != election.ReasonExcluded {
		t.Errorf("an excluded node: %q", r)
	}
}

func TestRouterIDFromName(t *testing.T) {
	a, b := routerIDFromName("node-a"), routerIDFromName("node-b")
	if a == b || !a.Is4() || a.As4()[0]&0xf0 != 0xf0 {
		t.Errorf("router IDs %s and %s: want distinct addresses in 240.0.0.0/4", a, b)
	}
}
