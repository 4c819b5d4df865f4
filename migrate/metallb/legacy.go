package metallb

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// readLegacy reads the "config" key of MetalLB's ConfigMap (before 0.13) into the same objects
// the CRDs give, so one conversion serves both. Each made object names its place in the
// ConfigMap in findings.
func (c *converter) readLegacy(who, namespace, text string) {
	// Any ConfigMap may have a "config" key: only one that holds MetalLB's sections is read.
	data, err := utilyaml.ToJSON([]byte(text))
	var sections map[string]any
	if err == nil {
		err = utiljson.Unmarshal(data, &sections)
	}
	if err != nil || (sections["address-pools"] == nil && sections["peers"] == nil) {
		c.ignore(who, "a ConfigMap without MetalLB's address-pools or peers")
		return
	}
	c.noteNamespace(namespace)
	var cfg legacyConfig
	if err := utiljson.Unmarshal(data, &cfg); err != nil {
		c.notConverted(who, "data.config", "cannot be read: "+err.Error())
		return
	}
	for _, path := range unknownFields(data, reflect.TypeFor[legacyConfig](), "data.config") {
		c.notConverted(who, path, "not a field this converter knows")
	}
	if len(cfg.BFDProfiles) > 0 {
		c.notConverted(who, "data.config.bfd-profiles", "BFD is not supported yet: sessions rely on the BGP hold time to detect a dead peer")
	}

	if len(cfg.BGPCommunities) > 0 {
		names := make([]string, 0, len(cfg.BGPCommunities))
		for name := range cfg.BGPCommunities {
			names = append(names, name)
		}
		slices.Sort(names)
		aliases := communitySpec{}
		for _, name := range names {
			aliases.Communities = append(aliases.Communities, communityAlias{Name: name, Value: cfg.BGPCommunities[name]})
		}
		c.in.communities = append(c.in.communities, object[communitySpec]{where: who + " bgp-communities", name: "bgp-communities", spec: aliases})
	}

	used := map[string]bool{}
	for i, p := range cfg.Peers {
		where := fmt.Sprintf("%s peers[%d]", who, i)
		name := legacyPeerName(p.PeerAddress, used)
		c.decide(where, "", fmt.Sprintf("peers have no names before MetalLB 0.13; this one becomes BGPPeer %q", name))
		spec := bgpPeerSpec{
			MyASN: p.MyASN, PeerASN: p.PeerASN, PeerAddress: p.PeerAddress, PeerPort: p.PeerPort,
			SourceAddress: p.SourceAddress, RouterID: p.RouterID, Password: p.Password,
			BFDProfile: p.BFDProfile, EBGPMultiHop: p.EBGPMultiHop,
		}
		spec.HoldTime = c.legacyDuration(where, "hold-time", p.HoldTime)
		spec.KeepaliveTime = c.legacyDuration(where, "keepalive-time", p.KeepaliveTime)
		for _, ns := range p.NodeSelectors {
			sel := metav1.LabelSelector{MatchLabels: ns.MatchLabels}
			for _, r := range ns.MatchExpressions {
				sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{Key: r.Key, Operator: metav1.LabelSelectorOperator(r.Operator), Values: r.Values})
			}
			spec.NodeSelectors = append(spec.NodeSelectors, sel)
		}
		c.in.peers = append(c.in.peers, object[bgpPeerSpec]{where: where, name: name, spec: spec})
	}

	for i, p := range cfg.AddressPools {
		where := fmt.Sprintf("%s address-pools[%d] (%s)", who, i, p.Name)
		if p.Name == "" {
			c.notConverted(where, "name", "the pool has no name; not converted")
			continue
		}
		c.in.pools = append(c.in.pools, object[ipAddressPoolSpec]{where: where, name: p.Name, spec: ipAddressPoolSpec{
			Addresses: p.Addresses, AutoAssign: p.AutoAssign, AvoidBuggyIPs: p.AvoidBuggyIPs,
		}})
		switch p.Protocol {
		case "layer2":
			c.in.l2 = append(c.in.l2, object[l2AdvertisementSpec]{where: where, name: p.Name, spec: l2AdvertisementSpec{IPAddressPools: []string{p.Name}}})
		case "bgp":
			advs := p.BGPAdvertisements
			if len(advs) == 0 {
				advs = []legacyAdvertisement{{}} // MetalLB's default: host routes to every peer
			}
			for j, a := range advs {
				c.in.bgp = append(c.in.bgp, object[bgpAdvertisementSpec]{
					where: fmt.Sprintf("%s bgp-advertisements[%d]", where, j),
					name:  p.Name,
					spec: bgpAdvertisementSpec{
						AggregationLength: a.AggregationLength, AggregationLengthV6: a.AggregationLengthV6,
						LocalPref: a.LocalPref, Communities: a.Communities, IPAddressPools: []string{p.Name},
					},
				})
			}
		default:
			c.notConverted(where, "protocol", fmt.Sprintf("%q is neither layer2 nor bgp; the pool is converted without announcement", p.Protocol))
		}
		if p.Protocol != "bgp" && len(p.BGPAdvertisements) > 0 {
			c.notConverted(where, "bgp-advertisements", "given for a pool whose protocol is not bgp; MetalLB ignored them, and so does this conversion")
		}
	}
}

func (c *converter) legacyDuration(where, field, s string) *metav1.Duration {
	if s == "" {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		c.notConverted(where, field, fmt.Sprintf("%q is not a duration; the default is used", s))
		return nil
	}
	return &metav1.Duration{Duration: d}
}

// legacyPeerName names a peer after its address ("peer-192-0-2-1"), unique among used.
func legacyPeerName(addr string, used map[string]bool) string {
	base := "peer-" + strings.Trim(strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, addr), "-")
	if len(base) > 60 {
		base = base[:60]
	}
	base = strings.TrimRight(base, "-")
	name := base
	for n := 2; used[name]; n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	used[name] = true
	return name
}
