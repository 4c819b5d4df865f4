package election

import (
	"net/netip"
	"strings"
)

// Node is a node as the election sees it.
type Node struct {
	// Name is the Kubernetes node name; a node without a name is never eligible.
	Name string
	// Labels are the node's labels, matched by ExcludeLabel and VIP.NodeSelector.
	Labels map[string]string
	// Unschedulable is spec.unschedulable: the node is cordoned.
	Unschedulable bool
	// NetworkUnavailable is true when the NodeNetworkUnavailable condition is True.
	NetworkUnavailable bool
	// Healthy reports that the node is alive according to the failure detector. The local node
	// counts itself healthy only when its link is up and it has finished joining.
	Healthy bool
}

// ExcludeLabel marks nodes that never announce, whatever the label's value (the label the
// upstream service controller also honours for external load balancers).
const ExcludeLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// Selector chooses nodes by labels. The caller adapts a Kubernetes label selector to it.
type Selector interface {
	Matches(labels map[string]string) bool
}

// VIP is one address to place.
type VIP struct {
	// Addr is the VIP. An invalid (zero) address has no owner.
	Addr netip.Addr
	// NodeSelector restricts the owner to matching nodes (the pool's l2.nodeSelector); nil means
	// every node.
	NodeSelector Selector
	// Candidates restricts the owner to the named nodes (externalTrafficPolicy: Local, the nodes
	// with a local serving endpoint; for several Services sharing the VIP, the intersection). A
	// node is a candidate when its name maps to true. Nil means any node; an empty, non-nil map
	// means none.
	Candidates map[string]bool
}

// Claim says that node Node currently answers for a VIP.
type Claim struct {
	// Node is the claiming node's name.
	Node string
	// Gen is the claim's generation: every takeover claims one more than the highest generation
	// its taker has seen for the VIP. When claims meet (after a partition heals) the highest Gen
	// wins: the latest takeover, made with a quorum and with the wire showing the old owner
	// silent, keeps the VIP, whatever order the messages arrive in.
	Gen int
}

// Reasons returned by Eligible for a node that may not own a VIP. Callers may compare against
// them; the texts are meant for logs and events.
const (
	ReasonInvalidVIP         = "VIP address is invalid"
	ReasonNoName             = "node has no name"
	ReasonUnhealthy          = "node is not healthy"
	ReasonUnschedulable      = "node is cordoned (unschedulable)"
	ReasonNetworkUnavailable = "node network is unavailable"
	ReasonExcluded           = "node has label " + ExcludeLabel
	ReasonNotCandidate       = "node has no local endpoint for the VIP (externalTrafficPolicy: Local)"
	ReasonNotSelected        = "node does not match the pool's L2 node selector"
)

// Eligible reports whether the node may own the VIP and, if not, why (one of the Reason
// constants; the first that applies in the order they are declared).
func Eligible(v VIP, n Node) (bool, string) {
	if !v.Addr.IsValid() {
		return false, ReasonInvalidVIP
	}
	if reason := nodeReason(&n); reason != "" {
		return false, reason
	}
	if reason := vipReason(&v, &n); reason != "" {
		return false, reason
	}
	return true, ""
}

// nodeReason holds the checks that do not depend on the VIP.
func nodeReason(n *Node) string {
	switch {
	case n.Name == "":
		return ReasonNoName
	case !n.Healthy:
		return ReasonUnhealthy
	case n.Unschedulable:
		return ReasonUnschedulable
	case n.NetworkUnavailable:
		return ReasonNetworkUnavailable
	}
	if _, ok := n.Labels[ExcludeLabel]; ok {
		return ReasonExcluded
	}
	return ""
}

// vipReason holds the checks that depend on the VIP.
func vipReason(v *VIP, n *Node) string {
	if v.Candidates != nil && !v.Candidates[n.Name] {
		return ReasonNotCandidate
	}
	if v.NodeSelector != nil && !v.NodeSelector.Matches(n.Labels) {
		return ReasonNotSelected
	}
	return ""
}

// Owner returns the node that must answer for the VIP, or ok=false if no node is eligible.
//
// Rules: 1) eligible = Healthy && !Unschedulable && !NetworkUnavailable && no ExcludeLabel &&
// NodeSelector matches && (Candidates nil or contains the name), see Eligible. 2) If some
// eligible node holds a claim, the owner is the claimer with the highest Gen, ties broken by
// the Score (highest wins), then by name (smallest wins); claims by ineligible or unknown nodes
// are ignored. 3) Otherwise the owner is the eligible node with the highest Score for
// (Addr, Name), ties by name (smallest wins).
//
// A name listed more than once in nodes is eligible only if every listing is; several claims by
// one node count as its highest Gen. The result does not depend on the order of nodes or
// claims, and the inputs are not modified.
func Owner(v VIP, nodes []Node, claims []Claim) (owner string, ok bool) {
	r := newRoster(nodes)
	return r.owner([]VIP{v}, claims)
}

// Assign runs Owner for many VIPs; claims maps a VIP address to its claims. It returns the owner
// by VIP address; VIPs with no eligible node are absent.
//
// When an address appears in several VIPs (one per Service sharing it), a node must be eligible
// for every one of them, as if the caller had intersected their selectors and candidates; the
// result therefore does not depend on the order of vips either.
func Assign(vips []VIP, nodes []Node, claims map[netip.Addr][]Claim) map[netip.Addr]string {
	r := newRoster(nodes)
	out := make(map[netip.Addr]string, len(vips))

	// Group VIPs by address, keeping the common one-entry case free of allocation.
	var dups map[netip.Addr][]VIP
	seen := make(map[netip.Addr]int, len(vips))
	for i := range vips {
		a := vips[i].Addr
		if j, ok := seen[a]; ok {
			if dups == nil {
				dups = make(map[netip.Addr][]VIP)
			}
			if dups[a] == nil {
				dups[a] = []VIP{vips[j]}
			}
			dups[a] = append(dups[a], vips[i])
			continue
		}
		seen[a] = i
	}
	for a, i := range seen {
		group := vips[i : i+1]
		if d, ok := dups[a]; ok {
			group = d
		}
		if name, ok := r.owner(group, claims[a]); ok {
			out[a] = name
		}
	}
	return out
}

// member is one distinct node name with every listing of it in the input.
type member struct {
	name string
	// first is the first listing; rest holds further listings of the same name (rare).
	first *Node
	rest  []*Node
	// seed is the FNV-1a state after the name (see Score).
	seed uint64
	// base reports that every listing passes the checks that do not depend on the VIP.
	base bool
}

// roster is the node list prepared once for any number of VIPs.
type roster struct {
	members []member
	byName  map[string]int
}

func newRoster(nodes []Node) *roster {
	r := &roster{
		members: make([]member, 0, len(nodes)),
		byName:  make(map[string]int, len(nodes)),
	}
	for i := range nodes {
		n := &nodes[i]
		ok := nodeReason(n) == ""
		if j, dup := r.byName[n.Name]; dup {
			m := &r.members[j]
			m.rest = append(m.rest, n)
			m.base = m.base && ok
			continue
		}
		r.byName[n.Name] = len(r.members)
		r.members = append(r.members, member{name: n.Name, first: n, seed: nameSeed(n.Name), base: ok})
	}
	return r
}

// eligible reports whether member m may own an address constrained by every VIP in group.
func (m *member) eligible(group []VIP) bool {
	if !m.base {
		return false
	}
	for i := range group {
		v := &group[i]
		if !v.Addr.IsValid() || vipReason(v, m.first) != "" {
			return false
		}
		for _, n := range m.rest {
			if vipReason(v, n) != "" {
				return false
			}
		}
	}
	return true
}

// rank orders candidates: higher gen, then higher score, then smaller name.
type rank struct {
	gen   int
	score uint64
	name  string
}

func (a rank) beats(b rank) bool {
	if a.gen != b.gen {
		return a.gen > b.gen
	}
	if a.score != b.score {
		return a.score > b.score
	}
	return strings.Compare(a.name, b.name) < 0
}

// owner elects the owner of group[0].Addr; every VIP in group has that address.
func (r *roster) owner(group []VIP, claims []Claim) (string, bool) {
	addr := group[0].Addr
	if !addr.IsValid() {
		return "", false
	}

	// Rule 2: the best claim by an eligible node.
	var best rank
	found := false
	for _, c := range claims {
		j, ok := r.byName[c.Node]
		if !ok {
			continue
		}
		m := &r.members[j]
		if found && c.Gen < best.gen {
			continue // cannot win; skip the eligibility check and the hash
		}
		if !m.eligible(group) {
			continue
		}
		cand := rank{gen: c.Gen, score: scoreFrom(m.seed, addr), name: m.name}
		if !found || cand.beats(best) {
			best, found = cand, true
		}
	}
	if found {
		return best.name, true
	}

	// Rule 3: highest rendezvous score among eligible nodes.
	for j := range r.members {
		m := &r.members[j]
		if !m.eligible(group) {
			continue
		}
		cand := rank{score: scoreFrom(m.seed, addr), name: m.name}
		if !found || cand.beats(best) {
			best, found = cand, true
		}
	}
	return best.name, found
}
