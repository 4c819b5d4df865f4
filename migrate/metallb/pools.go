package metallb

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// pool is one IPAddressPool on its way to an IPPool.
type pool struct {
	src     object[ipAddressPoolSpec]
	out     v1alpha1.IPPool
	entries []entry
	l2      []object[l2AdvertisementSpec]
	bgp     []object[bgpAdvertisementSpec]
}

// convertPools makes one IPPool per IPAddressPool, announced by every advertisement that
// selects it: several advertisements of one protocol merge into one setting, L2 and BGP
// advertisements of one pool into announce.l2 and announce.bgp side by side.
func (c *converter) convertPools() {
	var pools []*pool
	seen := map[string]string{}
	for _, src := range c.in.pools {
		if first, dup := seen[src.name]; dup {
			c.notConverted(src.where, "metadata.name", fmt.Sprintf("an IPPool named %q already comes from %s; IPPools are cluster-wide, so rename one", src.name, first))
			continue
		}
		seen[src.name] = src.where
		if p := c.newPool(src); p != nil {
			pools = append(pools, p)
		}
	}
	for _, adv := range c.in.l2 {
		for _, p := range c.selectedPools(adv.where, pools, adv.spec.IPAddressPools, adv.spec.IPAddressPoolSelectors) {
			p.l2 = append(p.l2, adv)
		}
	}
	for _, adv := range c.in.bgp {
		for _, p := range c.selectedPools(adv.where, pools, adv.spec.IPAddressPools, adv.spec.IPAddressPoolSelectors) {
			p.bgp = append(p.bgp, adv)
		}
	}
	c.priorities(pools)
	for _, p := range pools {
		announce := &v1alpha1.Announce{L2: c.l2Announce(p), BGP: c.bgpAnnounce(p)}
		if announce.L2 == nil && announce.BGP == nil {
			c.decide(p.src.where, "", "no L2Advertisement or BGPAdvertisement selects it: MetalLB handed out its addresses without announcing them, and so will this IPPool (announce: {})")
		}
		p.out.Spec.Announce = announce
		c.poolWhere[p.out.Name] = p.src.where
		c.res.Pools = append(c.res.Pools, p.out)
	}
}

func (c *converter) newPool(src object[ipAddressPoolSpec]) *pool {
	p := &pool{src: src}
	p.out.APIVersion = v1alpha1.SchemeGroupVersion.String()
	p.out.Kind = "IPPool"
	p.out.Name = src.name
	p.out.Labels = src.labels
	for i, s := range src.spec.Addresses {
		e, note, err := parseEntry(s)
		if err != nil {
			c.notConverted(src.where, fmt.Sprintf("spec.addresses[%d]", i), err.Error())
			continue
		}
		if note != "" {
			c.decide(src.where, fmt.Sprintf("spec.addresses[%d]", i), note)
		}
		p.entries = append(p.entries, e)
	}
	if len(p.entries) == 0 {
		c.notConverted(src.where, "spec.addresses", "no usable address entry: the pool is not converted")
		return nil
	}
	if len(p.entries) > maxAddressEntries {
		c.notConverted(src.where, "spec.addresses", fmt.Sprintf("%d entries; an IPPool holds at most %d: split the pool", len(p.entries), maxAddressEntries))
		return nil
	}
	if src.spec.AvoidBuggyIPs {
		switch out, changed, ok := avoidBuggy(p.entries); {
		case !ok:
			c.notConverted(src.where, "spec.avoidBuggyIPs", fmt.Sprintf("no equivalent field; excluding the addresses ending in .0 and .255 would take more than %d entries, so this pool hands them out (IPv4 CIDRs still lose their network and broadcast address)", maxAddressEntries))
		case len(out) == 0:
			c.notConverted(src.where, "spec.avoidBuggyIPs", "every address ends in .0 or .255: the pool is not converted")
			return nil
		case len(changed) > 0:
			p.entries = out
			c.decide(src.where, "spec.avoidBuggyIPs", fmt.Sprintf("no equivalent field; %s rewritten around the addresses ending in .0 and .255, so none is handed out", strings.Join(changed, ", ")))
		default:
			c.decide(src.where, "spec.avoidBuggyIPs", "no equivalent field, and none needed: no address this pool hands out ends in .0 or .255")
		}
	}
	var lost []string
	for _, e := range p.entries {
		for _, a := range lostAddresses(e, src.spec.AvoidBuggyIPs) {
			lost = append(lost, a.String())
		}
	}
	if len(lost) > 0 {
		c.decide(src.where, "spec.addresses", fmt.Sprintf("MetalLB could hand out %s; this IPPool never does (network, broadcast and IPv6 subnet-router anycast addresses). A Service holding one keeps it through the migration", strings.Join(lost, ", ")))
	}
	p.out.Spec.Addresses = blocks(p.entries)
	if src.spec.AutoAssign != nil && !*src.spec.AutoAssign {
		p.out.Spec.AutoAssign = ptr(false)
	}
	if sa := src.spec.ServiceAllocation; sa != nil {
		var ns []metav1.LabelSelector
		if len(sa.Namespaces) > 0 {
			ns = append(ns, *namesSelector(namespaceNameLabel, sa.Namespaces))
		}
		ns = append(ns, sa.NamespaceSelectors...)
		p.out.Spec.NamespaceSelector = c.selector(src.where, "spec.serviceAllocation.namespaces and namespaceSelectors", ns, "this IPPool admits only the namespaces of the first")
		p.out.Spec.ServiceSelector = c.selector(src.where, "spec.serviceAllocation.serviceSelectors", sa.ServiceSelectors, "this IPPool admits only the Services the first selects")
	}
	return p
}

// selector merges a MetalLB selector list into one, reporting what cannot be merged and
// refusing selectors that do not parse.
func (c *converter) selector(where, field string, sels []metav1.LabelSelector, narrower string) *metav1.LabelSelector {
	for _, s := range sels {
		if _, err := metav1.LabelSelectorAsSelector(&s); err != nil {
			c.notConverted(where, field, fmt.Sprintf("selector {%s} does not parse (%v); the field is not converted, which widens it to everything", metav1.FormatLabelSelector(&s), err))
			return nil
		}
	}
	merged, exact := mergeSelectors(sels)
	if !exact {
		c.notConverted(where, field, fmt.Sprintf("MetalLB matches any of %s; ours is one selector: %s. Relabel so that one selector covers them", describeSelectors(sels), narrower))
	}
	return merged
}

// selectedPools resolves an advertisement's ipAddressPools and ipAddressPoolSelectors to pools.
// With neither, MetalLB applies the advertisement to every pool.
func (c *converter) selectedPools(where string, pools []*pool, names []string, sels []metav1.LabelSelector) []*pool {
	if len(names) == 0 && len(sels) == 0 {
		return pools
	}
	var selectors []labels.Selector
	for _, s := range sels {
		sel, err := metav1.LabelSelectorAsSelector(&s)
		if err != nil {
			c.notConverted(where, "spec.ipAddressPoolSelectors", fmt.Sprintf("selector {%s} does not parse: %v", metav1.FormatLabelSelector(&s), err))
			continue
		}
		selectors = append(selectors, sel)
	}
	var out []*pool
	for _, p := range pools {
		hit := slices.Contains(names, p.src.name)
		for _, sel := range selectors {
			hit = hit || sel.Matches(labels.Set(p.src.labels))
		}
		if hit {
			out = append(out, p)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(pools, func(p *pool) bool { return p.src.name == n }) {
			c.decide(where, "spec.ipAddressPools", fmt.Sprintf("names pool %q, which is not in the input (or was not converted)", n))
		}
	}
	if len(sels) > 0 && len(out) == 0 {
		c.decide(where, "spec.ipAddressPoolSelectors", "selects no pool of the input")
	}
	return out
}

// priorities reproduces MetalLB's pool order with ours (lower priority first, then name).
// MetalLB tries first the pools with a serviceAllocation that admits the Service, those with a
// priority in ascending order and then those without; the pools without serviceAllocation come
// last. Ours orders every admitting pool by priority alone, so the pools MetalLB puts behind get
// priorities above every priority in use.
func (c *converter) priorities(pools []*pool) {
	var top int32
	pinned := false
	for _, p := range pools {
		if sa := p.src.spec.ServiceAllocation; sa != nil {
			pinned = true
			top = max(top, sa.Priority)
		}
	}
	if !pinned {
		return
	}
	for _, p := range pools {
		sa := p.src.spec.ServiceAllocation
		switch {
		case sa != nil && sa.Priority > 0:
			p.out.Spec.Priority = sa.Priority
		case sa != nil:
			p.out.Spec.Priority = top + 1
			c.decide(p.src.where, "spec.serviceAllocation.priority", fmt.Sprintf("unset: MetalLB tried it after the pools with a priority; here that is priority %d", top+1))
		default:
			p.out.Spec.Priority = top + 2
			c.decide(p.src.where, "spec.serviceAllocation", fmt.Sprintf("unset: MetalLB tried it only after every pool with a serviceAllocation admitting the Service; here that is priority %d", top+2))
		}
	}
}

// l2Announce merges the pool's L2Advertisements into announce.l2, or nil without one.
func (c *converter) l2Announce(p *pool) *v1alpha1.L2Announce {
	if len(p.l2) == 0 {
		return nil
	}
	l2 := &v1alpha1.L2Announce{}
	var interfaces []string
	allInterfaces, allNodes := false, false
	var nodes []metav1.LabelSelector
	var names []string
	for _, adv := range p.l2 {
		names = append(names, adv.name)
		if len(adv.spec.Interfaces) == 0 {
			allInterfaces = true
		}
		interfaces = append(interfaces, adv.spec.Interfaces...)
		if len(adv.spec.NodeSelectors) == 0 {
			allNodes = true
		}
		nodes = append(nodes, adv.spec.NodeSelectors...)
	}
	if len(p.l2) > 1 {
		c.decide(p.src.where, "", fmt.Sprintf("announced at layer 2 by %s; an IPPool has one layer-2 setting: the union of their interfaces and nodes", strings.Join(names, ", ")))
	}
	if allInterfaces {
		c.anyInterface = append(c.anyInterface, p.src.name)
	} else {
		slices.Sort(interfaces)
		l2.Interfaces = slices.Compact(interfaces)
		for _, name := range l2.Interfaces {
			if len(name) > 15 {
				c.notConverted(p.src.where, "announce.l2.interfaces", fmt.Sprintf("%q is longer than an interface name can be (15); the CRD refuses it", name))
			}
		}
	}
	if !allNodes {
		l2.NodeSelector = c.selector(p.src.where, "announce.l2.nodeSelector (from the L2Advertisements' nodeSelectors)", nodes, "only the nodes of the first answer")
	}
	return l2
}

// bgpSettings are the route attributes of one BGPAdvertisement, which ours has once per pool.
type bgpSettings struct {
	communities, large []string
	localPref          *uint32
}

func (s bgpSettings) equal(o bgpSettings) bool {
	return slices.Equal(s.communities, o.communities) && slices.Equal(s.large, o.large) &&
		(s.localPref == nil) == (o.localPref == nil) && (s.localPref == nil || *s.localPref == *o.localPref)
}

// bgpAnnounce merges the pool's BGPAdvertisements into announce.bgp, or nil without one. The
// advertisements with the route attributes of the first merge (peers and nodes united); one
// with other attributes cannot be expressed in the same pool and is reported.
func (c *converter) bgpAnnounce(p *pool) *v1alpha1.BGPAnnounce {
	if len(p.bgp) == 0 {
		return nil
	}
	var first bgpSettings
	var peers []string
	var nodes []metav1.LabelSelector
	allPeers, allNodes := false, false
	var accepted []object[bgpAdvertisementSpec]
	for i, adv := range p.bgp {
		s := c.bgpSettings(adv)
		if i == 0 {
			first = s
		} else if !s.equal(first) {
			c.notConverted(adv.where, "spec", fmt.Sprintf("advertises pool %q with other communities or localPref than %s; an IPPool has one set: this advertisement is not converted (split the addresses into two pools if both are needed)", p.src.name, p.bgp[0].where))
			continue
		}
		c.aggregation(adv)
		accepted = append(accepted, adv)
		if len(adv.spec.Peers) == 0 {
			allPeers = true
		}
		peers = append(peers, adv.spec.Peers...)
		if len(adv.spec.NodeSelectors) == 0 {
			allNodes = true
		}
		nodes = append(nodes, adv.spec.NodeSelectors...)
	}
	if merged := mergedBGP(accepted); len(merged) > 1 {
		// MetalLB pairs each advertisement's peers with its own nodes; one IPPool has one peer
		// selector and one node selector, so every listed node advertises to every listed peer.
		c.decide(p.src.where, "announce.bgp", fmt.Sprintf("advertised over BGP by %s with different peers or nodes; an IPPool has one peerSelector and one nodeSelector: their union, so every one of those nodes advertises to every one of those peers (split the addresses into pools to keep the pairs)", strings.Join(merged, ", ")))
	}
	bgp := &v1alpha1.BGPAnnounce{Communities: first.communities, LargeCommunities: first.large, LocalPref: first.localPref}
	if !allPeers {
		values := make([]string, len(peers))
		for i, name := range peers {
			values[i] = peerLabelValue(name)
			if !slices.Contains(c.peerNames, name) {
				c.decide(p.src.where, "announce.bgp.peerSelector", fmt.Sprintf("peer %q is named by a BGPAdvertisement but not converted from the input; the selector still names it (label %s=%s)", name, PeerLabel, values[i]))
			}
		}
		bgp.PeerSelector = namesSelector(PeerLabel, values)
	}
	if !allNodes {
		bgp.NodeSelector = c.selector(p.src.where, "announce.bgp.nodeSelector (from the BGPAdvertisements' nodeSelectors)", nodes, "only the nodes of the first advertise")
	}
	return bgp
}

// aggregation reports aggregation lengths other than host routes: ours advertises /32 and /128
// only.
func (c *converter) aggregation(adv object[bgpAdvertisementSpec]) {
	if l := adv.spec.AggregationLength; l != nil && *l != 32 {
		c.notConverted(adv.where, "spec.aggregationLength", fmt.Sprintf("%d: the announcer advertises each VIP as a /32, never a /%d covering it (announce.bgp.aggregate is another thing: it adds the pool's own prefixes)", *l, *l))
	}
	if l := adv.spec.AggregationLengthV6; l != nil && *l != 128 {
		c.notConverted(adv.where, "spec.aggregationLengthV6", fmt.Sprintf("%d: the announcer advertises each VIP as a /128, never a /%d covering it (announce.bgp.aggregate is another thing: it adds the pool's own prefixes)", *l, *l))
	}
}

// bgpSettings resolves an advertisement's communities (Community aliases included) and
// localPref.
func (c *converter) bgpSettings(adv object[bgpAdvertisementSpec]) bgpSettings {
	var s bgpSettings
	aliases := c.aliasMap
	for i, raw := range adv.spec.Communities {
		field := fmt.Sprintf("spec.communities[%d]", i)
		value := strings.TrimSpace(raw)
		if v, ok := aliases[value]; ok {
			value = v
		}
		standard, large, err := parseCommunity(value)
		switch {
		case err != nil:
			c.notConverted(adv.where, field, err.Error())
		case large != "":
			s.large = append(s.large, large)
		default:
			s.communities = append(s.communities, standard)
		}
	}
	slices.Sort(s.communities)
	s.communities = slices.Compact(s.communities)
	slices.Sort(s.large)
	s.large = slices.Compact(s.large)
	if lp := adv.spec.LocalPref; lp != nil && *lp != 0 {
		s.localPref = ptr(*lp) // MetalLB's 0 means unset
	}
	return s
}

// aliases maps Community alias names to their values; the first definition of a name wins.
func (c *converter) aliases() map[string]string {
	out := map[string]string{}
	for _, o := range c.in.communities {
		for i, a := range o.spec.Communities {
			if prev, dup := out[a.Name]; dup && prev != a.Value {
				c.notConverted(o.where, fmt.Sprintf("spec.communities[%d]", i), fmt.Sprintf("alias %q is already %q; this value, %q, is not used", a.Name, prev, a.Value))
				continue
			}
			out[a.Name] = strings.TrimSpace(a.Value)
		}
	}
	return out
}

// parseCommunity reads a MetalLB community value, "asn:value" or "large:global:local1:local2",
// and writes it the way our CRD takes it (decimal, no leading zeros).
func parseCommunity(v string) (standard, large string, err error) {
	if rest, ok := strings.CutPrefix(v, "large:"); ok {
		n, ok := numbers(rest, 3, 1<<32-1)
		if !ok {
			return "", "", fmt.Errorf("large community %q is not large:global:local1:local2 with numbers up to 4294967295", v)
		}
		return "", fmt.Sprintf("%d:%d:%d", n[0], n[1], n[2]), nil
	}
	n, ok := numbers(v, 2, 1<<16-1)
	if !ok {
		return "", "", fmt.Errorf("%q is neither asn:value (numbers up to 65535), large:global:local1:local2, nor a Community alias in the input", v)
	}
	if n[0] == 65535 && n[1] == 0 {
		return "", "", fmt.Errorf("%q is GRACEFUL_SHUTDOWN (RFC 8326), which the announcer adds itself while a node drains; not converted", v)
	}
	return fmt.Sprintf("%d:%d", n[0], n[1]), "", nil
}

// numbers parses count colon-separated decimal numbers, each at most maximum.
func numbers(s string, count int, maximum uint64) ([]uint64, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != count {
		return nil, false
	}
	out := make([]uint64, count)
	for i, p := range parts {
		if p == "" || len(p) > 10 || strings.Trim(p, "0123456789") != "" {
			return nil, false
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || n > maximum {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// families reports which address families the pool's entries hold.
func families(p v1alpha1.IPPool) (v4, v6 bool) {
	for _, b := range p.Spec.Addresses {
		s, _, _ := strings.Cut(string(b), "-")
		s, _, _ = strings.Cut(s, "/")
		if a, err := netip.ParseAddr(s); err == nil {
			v4 = v4 || a.Is4()
			v6 = v6 || a.Is6()
		}
	}
	return v4, v6
}

// mergedBGP names the BGPAdvertisements merged into one announce.bgp when they do not all name
// the same peers and nodes; nil when the merge changes nothing.
func mergedBGP(advs []object[bgpAdvertisementSpec]) []string {
	if len(advs) < 2 {
		return nil
	}
	firstPeers := slices.Sorted(slices.Values(advs[0].spec.Peers))
	firstNodes := fmt.Sprint(advs[0].spec.NodeSelectors)
	names := make([]string, 0, len(advs))
	differ := false
	for _, adv := range advs {
		if !slices.Equal(slices.Sorted(slices.Values(adv.spec.Peers)), firstPeers) || fmt.Sprint(adv.spec.NodeSelectors) != firstNodes {
			differ = true
		}
		names = append(names, adv.where)
	}
	if !differ {
		return nil
	}
	return names
}
