package announcer

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/desired"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/l2"
)

// linkName names a link the core reasons about: the protocol of the VIP's family and an
// interface ("" for the interface holding the node's IP).
func linkName(addr netip.Addr, iface string) string {
	if addr.Is4() {
		return "ARP/" + iface
	}
	return "NDP/" + iface
}

// l2Members translates the Nodes into the core's members: the Nodes that run an announcer
// (matching the member selector, or all of them when there is none) and this node. Every member
// gets heartbeats, so a node the API has just excluded still hears the others contest its VIPs;
// only Ready members that may own VIPs (no exclude label) vote in the quorum.
func l2Members(self string, nodes []*v1.Node, selector labels.Selector) []l2.Member {
	out := make([]l2.Member, 0, len(nodes))
	for _, n := range nodes {
		if n.Name != self && selector != nil && !selector.Empty() && !selector.Matches(labels.Set(n.Labels)) {
			continue
		}
		_, excluded := n.Labels[election.ExcludeLabel]
		m := l2.Member{Node: desired.ElectionNode(n, false), Voter: !excluded && nodeReady(n)}
		for _, a := range n.Status.Addresses {
			if a.Type != v1.NodeInternalIP {
				continue
			}
			if addr, err := netip.ParseAddr(a.Address); err == nil {
				m.Addrs = append(m.Addrs, addr.Unmap())
			}
		}
		out = append(out, m)
	}
	return out
}

// nodeReady reports whether the API says the node is Ready; a node without the condition (not
// reported yet) counts as ready, so that a fresh cluster does not lose its quorum.
func nodeReady(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return true
}

// l2VIPs translates the desired VIPs into the core's.
func l2VIPs(vips []desired.VIP) []l2.VIP {
	out := make([]l2.VIP, 0, len(vips))
	for _, v := range vips {
		ifaces := v.Interfaces
		if len(ifaces) == 0 {
			ifaces = []string{""}
		}
		lv := l2.VIP{VIP: v.VIP}
		for _, i := range ifaces {
			lv.Links = append(lv.Links, linkName(v.Addr, i))
		}
		slices.Sort(lv.Links)
		lv.Links = slices.Compact(lv.Links)
		out = append(out, lv)
	}
	return out
}
