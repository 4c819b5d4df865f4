package announcer

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go4.org/netipx"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/bgpspeaker"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/desired"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// Session defaults where a BGPPeer leaves a timer out. Hold and keepalive are what routers use
// by default; connect is short because GoBGP's 120 s would leave a node without routes for
// minutes after the router comes back.
const (
	defaultHoldTime    = 90 * time.Second
	defaultConnectTime = time.Second
	defaultRestartTime = 120 * time.Second
)

// bgpInputs is everything one node's BGP plan depends on.
type bgpInputs struct {
	self  *v1.Node
	vips  []desired.BGPVIP
	peers []*v1alpha1.BGPPeer
	// pools by name, for aggregate routes.
	pools map[string]*v1alpha1.IPPool
	// passwords by BGPPeer name: the MD5 password, or why it could not be read.
	passwords map[string]secretValue
	// drain is the drain phase: advertise with GRACEFUL_SHUTDOWN, or withdraw everything.
	drain drainPhase
}

type secretValue struct {
	value string
	err   error
	// stale: err says why the Secret could not be read now; value is the last one read.
	stale bool
}

// drainPhase is where a node is in leaving BGP: advertising, advertising de-preferred
// (GRACEFUL_SHUTDOWN, RFC 8326) while the router moves traffic away, or withdrawn.
type drainPhase int

const (
	notDraining drainPhase = iota
	drainAdvertising
	drainWithdrawn
)

// bgpPlan is what one node should do over BGP now.
type bgpPlan struct {
	desired bgpspeaker.Desired
	// peers are the BGPPeers that select this node (sessions wanted, or refused with a problem).
	peers []string
	// problems by BGPPeer name: what this node refuses to do with that peer, in words.
	problems map[string][]string
	// objects are the BGPPeers the plan was made from, for the status.
	objects []*v1alpha1.BGPPeer
}

func (p *bgpPlan) problem(peer, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !slices.Contains(p.problems[peer], msg) {
		p.problems[peer] = append(p.problems[peer], msg)
	}
}

// drainReason says why a node must leave BGP ("" when it may advertise): the node-level
// reasons of layer 2's eligibility (cordoned, excluded, network unavailable).
func drainReason(n *v1.Node) string {
	en := desired.ElectionNode(n, true)
	probe := election.VIP{Addr: netip.IPv4Unspecified()}
	if ok, reason := election.Eligible(probe, en); !ok {
		return reason
	}
	return ""
}

// planBGP turns the API's view into the sessions and routes of one node. It is pure.
func planBGP(in bgpInputs) bgpPlan {
	plan := bgpPlan{problems: map[string][]string{}}
	if in.self == nil {
		return plan
	}
	nodeAddrs := internalIPs(in.self)
	type peerInfo struct {
		peer   *v1alpha1.BGPPeer
		family int
		ebgp   bool
	}
	var selected []peerInfo
	for _, p := range sortedPeers(in.peers) {
		if !selects(p.Spec.NodeSelector, in.self.Labels) {
			continue
		}
		plan.peers = append(plan.peers, p.Name)
		sp, ok := speakerPeer(p, nodeAddrs, in.passwords[p.Name], &plan)
		if !ok {
			continue
		}
		plan.desired.Peers = append(plan.desired.Peers, sp)
		selected = append(selected, peerInfo{peer: p, family: family(sp.Address), ebgp: p.Spec.PeerASN != p.Spec.MyASN})
	}
	if in.drain == drainWithdrawn {
		return plan
	}
	aggregates := map[string][]string{} // pool -> peers that carry one of its VIPs
	aggregateSettings := map[string]*v1alpha1.BGPAnnounce{}
	for _, vip := range in.vips {
		s := vip.Settings
		if !selects(s.NodeSelector, in.self.Labels) {
			continue
		}
		if vip.Candidates != nil && !vip.Candidates[in.self.Name] {
			continue
		}
		var peers, otherFamily []string
		for _, pi := range selected {
			if !selects(s.PeerSelector, pi.peer.Labels) {
				continue
			}
			if pi.family != family(vip.Addr) {
				otherFamily = append(otherFamily, pi.peer.Name)
				continue
			}
			if s.LocalPref != nil && pi.ebgp {
				plan.problem(pi.peer.Name, "pool %s sets localPref %d, which is not sent to eBGP peers (peerASN %d, myASN %d)", vip.Pool, *s.LocalPref, pi.peer.Spec.PeerASN, pi.peer.Spec.MyASN)
			}
			peers = append(peers, pi.peer.Name)
		}
		if len(peers) == 0 {
			for _, name := range otherFamily {
				plan.problem(name, "%s VIP %s of pool %s is not advertised: no %s BGPPeer is selected for it (a route is sent only over a session of its own family)", familyName(vip.Addr), vip.Addr, vip.Pool, familyName(vip.Addr))
			}
			continue
		}
		nextHop, ok := nodeAddrs[family(vip.Addr)]
		if !ok {
			for _, name := range peers {
				plan.problem(name, "%s VIP %s of pool %s is not advertised: node %s has no %s InternalIP to use as the next hop", familyName(vip.Addr), vip.Addr, vip.Pool, in.self.Name, familyName(vip.Addr))
			}
			continue
		}
		plan.desired.Routes = append(plan.desired.Routes, route(netip.PrefixFrom(vip.Addr, vip.Addr.BitLen()), nextHop, peers, s, in.drain))
		if s.Aggregate {
			aggregates[vip.Pool] = append(aggregates[vip.Pool], peers...)
			aggregateSettings[vip.Pool] = s
		}
	}
	for _, pool := range sortedKeys(aggregates) {
		peers := slices.Compact(slices.Sorted(slices.Values(aggregates[pool])))
		for _, prefix := range poolPrefixes(in.pools[pool]) {
			nextHop, ok := nodeAddrs[family(prefix.Addr())]
			if !ok || prefix.IsSingleIP() {
				continue
			}
			var same []string
			for _, name := range peers {
				if i := slices.IndexFunc(selected, func(pi peerInfo) bool { return pi.peer.Name == name }); i >= 0 && selected[i].family == family(prefix.Addr()) {
					same = append(same, name)
				}
			}
			if len(same) > 0 {
				plan.desired.Routes = append(plan.desired.Routes, route(prefix, nextHop, same, aggregateSettings[pool], in.drain))
			}
		}
	}
	return plan
}

func route(prefix netip.Prefix, nextHop netip.Addr, peers []string, s *v1alpha1.BGPAnnounce, drain drainPhase) bgpspeaker.Route {
	return bgpspeaker.Route{
		Prefix: prefix, NextHop: nextHop, Peers: peers,
		Communities: slices.Clone(s.Communities), LargeCommunities: slices.Clone(s.LargeCommunities),
		LocalPref: s.LocalPref, MED: s.MED,
		GracefulShutdown: drain == drainAdvertising,
	}
}

// speakerPeer translates a BGPPeer for this node; problems it cannot get past go into the plan.
func speakerPeer(p *v1alpha1.BGPPeer, nodeAddrs map[int]netip.Addr, password secretValue, plan *bgpPlan) (bgpspeaker.Peer, bool) {
	addr, err := netip.ParseAddr(p.Spec.PeerAddress)
	if err != nil {
		plan.problem(p.Name, "peerAddress %q is not an IP address", p.Spec.PeerAddress)
		return bgpspeaker.Peer{}, false
	}
	addr = addr.Unmap()
	sp := bgpspeaker.Peer{
		Name: p.Name, Address: addr, Port: p.Spec.PeerPort, ASN: p.Spec.PeerASN, LocalASN: p.Spec.MyASN,
		HoldTime: defaultHoldTime, ConnectTime: defaultConnectTime,
		EBGPMultihop: p.Spec.EBGPMultihop, Passive: p.Spec.Passive,
		GracefulRestart: true, RestartTime: defaultRestartTime,
	}
	if sp.Port == 0 {
		sp.Port = 179
	}
	if p.Spec.SourceAddress != "" {
		src, err := netip.ParseAddr(p.Spec.SourceAddress)
		if err != nil {
			plan.problem(p.Name, "sourceAddress %q is not an IP address", p.Spec.SourceAddress)
			return bgpspeaker.Peer{}, false
		}
		sp.SourceAddress = src.Unmap()
	} else if src, ok := nodeAddrs[family(addr)]; ok {
		sp.SourceAddress = src
	} else {
		plan.problem(p.Name, "no session: the node has no %s InternalIP to reach %s from; set sourceAddress", familyName(addr), addr)
		return bgpspeaker.Peer{}, false
	}
	if h := p.Spec.HoldTime; h != nil {
		sp.HoldTime = h.Duration
		if sp.HoldTime == 0 {
			// RFC 4271 allows 0 (no keepalives, no hold timer), but GoBGP v3 reads 0 as "unset"
			// and would use its own default: say so rather than pretend.
			plan.problem(p.Name, "holdTime 0s (no hold timer) cannot be configured with GoBGP v3: using %s", defaultHoldTime)
			sp.HoldTime = defaultHoldTime
		}
	}
	sp.KeepaliveTime = sp.HoldTime / 3
	if k := p.Spec.KeepaliveTime; k != nil {
		sp.KeepaliveTime = k.Duration
	}
	if c := p.Spec.ConnectTime; c != nil {
		sp.ConnectTime = c.Duration
	}
	if gr := p.Spec.GracefulRestart; gr != nil {
		sp.GracefulRestart = gr.Enabled == nil || *gr.Enabled
		if gr.RestartTime != nil {
			sp.RestartTime = gr.RestartTime.Duration
		}
	}
	if ref := p.Spec.PasswordSecretRef; ref != nil {
		switch {
		case password.err != nil && password.stale:
			plan.problem(p.Name, "keeping the last password read: %v", password.err)
		case password.err != nil:
			plan.problem(p.Name, "no session: %v", password.err)
			return bgpspeaker.Peer{}, false
		}
		sp.Password = password.value
	}
	return sp, true
}

// passwordRef says where a BGPPeer's password is ("namespace/name/key"), or "" for none.
func passwordRef(p *v1alpha1.BGPPeer) (namespace, name, key string, ok bool) {
	ref := p.Spec.PasswordSecretRef
	if ref == nil {
		return "", "", "", false
	}
	key = ref.Key
	if key == "" {
		key = "password"
	}
	return ref.Namespace, ref.Name, key, true
}

// poolPrefixes are the prefixes covering a pool's addresses: CIDRs as written, ranges split
// into their covering prefixes. Entries that do not parse (the CRD refuses them) are skipped.
func poolPrefixes(pool *v1alpha1.IPPool) []netip.Prefix {
	if pool == nil {
		return nil
	}
	var out []netip.Prefix
	for _, entry := range pool.Spec.Addresses {
		s := strings.TrimSpace(string(entry))
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if from, to, ok := strings.Cut(s, "-"); ok {
			a, errA := netip.ParseAddr(strings.TrimSpace(from))
			b, errB := netip.ParseAddr(strings.TrimSpace(to))
			if errA == nil && errB == nil {
				if r := netipx.IPRangeFrom(a, b); r.IsValid() {
					out = append(out, r.Prefixes()...)
				}
			}
		}
	}
	return out
}

// internalIPs are the node's first InternalIP of each family (4 and 6).
func internalIPs(n *v1.Node) map[int]netip.Addr {
	out := map[int]netip.Addr{}
	for _, a := range n.Status.Addresses {
		if a.Type != v1.NodeInternalIP {
			continue
		}
		addr, err := netip.ParseAddr(a.Address)
		if err != nil || addr.Zone() != "" {
			continue
		}
		addr = addr.Unmap()
		if _, seen := out[family(addr)]; !seen {
			out[family(addr)] = addr
		}
	}
	return out
}

func family(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 4
	}
	return 6
}

func familyName(a netip.Addr) string {
	if family(a) == 4 {
		return "IPv4"
	}
	return "IPv6"
}

// selects matches a label selector; omitted selects everything, one that does not parse nothing.
func selects(s *metav1.LabelSelector, l map[string]string) bool {
	if s == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set(l))
}

func sortedPeers(peers []*v1alpha1.BGPPeer) []*v1alpha1.BGPPeer {
	out := slices.Clone(peers)
	slices.SortFunc(out, func(a, b *v1alpha1.BGPPeer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
