package metallb

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// ebgpMultihopTTL is the TTL given to a peer MetalLB marked ebgpMultiHop: MetalLB's flag names
// no hop count, and 255 is what FRR uses for a bare "ebgp-multihop".
const ebgpMultihopTTL = 255

// convertPeers makes one BGPPeer per MetalLB BGPPeer, labelled with its MetalLB name.
func (c *converter) convertPeers() {
	seen := map[string]string{}
	for _, src := range c.in.peers {
		if first, dup := seen[src.name]; dup {
			c.notConverted(src.where, "metadata.name", fmt.Sprintf("a BGPPeer named %q already comes from %s; BGPPeers are cluster-wide, so rename one", src.name, first))
			continue
		}
		seen[src.name] = src.where
		if peer, ok := c.convertPeer(src); ok {
			c.res.Peers = append(c.res.Peers, peer)
			c.peerNames = append(c.peerNames, src.name)
		}
	}
}

func (c *converter) convertPeer(src object[bgpPeerSpec]) (v1alpha1.BGPPeer, bool) {
	s, where := src.spec, src.where
	out := v1alpha1.BGPPeer{}
	out.APIVersion = v1alpha1.SchemeGroupVersion.String()
	out.Kind = "BGPPeer"
	out.Name = src.name
	out.Labels = map[string]string{}
	for k, v := range src.labels {
		out.Labels[k] = v
	}
	out.Labels[PeerLabel] = peerLabelValue(src.name)
	if out.Labels[PeerLabel] != src.name {
		c.decide(where, "metadata.name", fmt.Sprintf("longer than a label value may be; labelled %s=%s", PeerLabel, out.Labels[PeerLabel]))
	}

	// Fields without which there is no session to convert.
	switch {
	case s.VRF != "":
		c.notConverted(where, "spec.vrf", fmt.Sprintf("%q: sessions run in the default VRF only; converting the peer would send its routes through the wrong table, so it is not converted", s.VRF))
		return out, false
	case s.Interface != "" || s.PeerAddress == "":
		c.notConverted(where, "spec.interface", "unnumbered BGP (a session over an interface, without peerAddress) is not supported; the peer is not converted")
		return out, false
	case s.PeerASN == 0:
		c.notConverted(where, "spec.dynamicASN", fmt.Sprintf("%q: the peer's AS number must be given; set peerASN and convert again. The peer is not converted", s.DynamicASN))
		return out, false
	case s.MyASN == 0:
		c.notConverted(where, "spec.myASN", "missing; the peer is not converted")
		return out, false
	}
	peerAddr, err := netip.ParseAddr(s.PeerAddress)
	if err != nil {
		c.notConverted(where, "spec.peerAddress", fmt.Sprintf("%q is not an IP address; the peer is not converted", s.PeerAddress))
		return out, false
	}
	out.Spec.PeerAddress = peerAddr.String()
	out.Spec.PeerASN, out.Spec.MyASN = s.PeerASN, s.MyASN
	out.Spec.PeerPort = s.PeerPort
	if s.DynamicASN != "" {
		c.decide(where, "spec.dynamicASN", fmt.Sprintf("%q ignored: peerASN %d is set", s.DynamicASN, s.PeerASN))
	}
	if s.SourceAddress != "" {
		if a, err := netip.ParseAddr(s.SourceAddress); err != nil || a.Is4() != peerAddr.Is4() {
			c.notConverted(where, "spec.sourceAddress", fmt.Sprintf("%q is not an address of the peer's family; the node's InternalIP of that family is used", s.SourceAddress))
		} else {
			out.Spec.SourceAddress = a.String()
		}
	}
	out.Spec.NodeSelector = c.selector(where, "spec.nodeSelectors", s.NodeSelectors, "only the nodes of the first peer with this router")
	out.Spec.HoldTime = c.duration(where, "spec.holdTime", s.HoldTime, func(d time.Duration) bool { return d >= 3*time.Second && d <= 65535*time.Second }, "3s to 65535s (0s, no hold timer, cannot be configured with the announcer's GoBGP)")
	out.Spec.KeepaliveTime = c.duration(where, "spec.keepaliveTime", s.KeepaliveTime, func(d time.Duration) bool { return d >= time.Second && d <= 65535*time.Second }, "1s to 65535s")
	if out.Spec.KeepaliveTime != nil {
		hold := 90 * time.Second
		if out.Spec.HoldTime != nil {
			hold = out.Spec.HoldTime.Duration
		}
		if hold != 0 && out.Spec.KeepaliveTime.Duration >= hold {
			c.notConverted(where, "spec.keepaliveTime", fmt.Sprintf("%v is not shorter than the hold time %v; a third of the hold time is used", out.Spec.KeepaliveTime.Duration, hold))
			out.Spec.KeepaliveTime = nil
		}
	}
	out.Spec.ConnectTime = c.duration(where, "spec.connectTime", s.ConnectTime, func(d time.Duration) bool { return d >= time.Second && d <= 65535*time.Second }, "1s to 65535s")
	c.password(src, &out)
	if s.RouterID != "" {
		c.notConverted(where, "spec.routerID", fmt.Sprintf("%q: the announcer uses the node's IPv4 address as router ID; a fixed one has no equivalent", s.RouterID))
	}
	if s.BFDProfile != "" {
		c.notConverted(where, "spec.bfdProfile", fmt.Sprintf("%q: BFD is not supported yet; a dead router is detected by the hold time", s.BFDProfile))
	}
	if s.EnableGracefulRestart {
		out.Spec.GracefulRestart = &v1alpha1.GracefulRestart{Enabled: ptr(true)}
	} else {
		c.noGracefulRestart = append(c.noGracefulRestart, src.name)
	}
	if s.EBGPMultiHop {
		if s.PeerASN == s.MyASN {
			c.decide(where, "spec.ebgpMultiHop", "set on an iBGP peer, where it means nothing; left out")
		} else {
			out.Spec.EBGPMultihop = ebgpMultihopTTL
			c.decide(where, "spec.ebgpMultiHop", fmt.Sprintf("became ebgpMultihop: %d (MetalLB's flag names no hop count); lower it to the real number of hops", ebgpMultihopTTL))
		}
	}
	if s.DisableMP && s.DualStackAddressFamily {
		c.decide(where, "spec.dualStackAddressFamily", "set with disableMP; each session here carries its own family only, as disableMP asks")
	}
	return out, true
}

// duration checks a MetalLB duration against our CRD's range; one outside it is reported and
// left out, so our default applies.
func (c *converter) duration(where, field string, d *metav1.Duration, ok func(time.Duration) bool, want string) *metav1.Duration {
	if d == nil {
		return nil
	}
	if !ok(d.Duration) {
		c.notConverted(where, field, fmt.Sprintf("%v is outside %s, which the BGPPeer CRD accepts; the default is used", d.Duration, want))
		return nil
	}
	return &metav1.Duration{Duration: d.Duration}
}

// password moves a plain-text password into a Secret in PasswordNamespace, and points a
// passwordSecret at the copy the operator must make there.
func (c *converter) password(src object[bgpPeerSpec], out *v1alpha1.BGPPeer) {
	s, where := src.spec, src.where
	switch {
	case s.PasswordSecret != nil && s.PasswordSecret.Name != "":
		if s.Password != "" {
			c.notConverted(where, "spec.password", "set together with passwordSecret; the Secret is used, this password is not")
		}
		// MetalLB reads the Secret in its own namespace, the BGPPeer's.
		from := s.PasswordSecret.Namespace
		if from == "" {
			from = src.namespace
		}
		if from == "" {
			from = "metallb-system"
		}
		out.Spec.PasswordSecretRef = &v1alpha1.SecretKeyRef{Namespace: PasswordNamespace, Name: s.PasswordSecret.Name, Key: "password"}
		c.decide(where, "spec.passwordSecret", fmt.Sprintf("the announcer reads passwords only in namespace %s: copy Secret %s/%s there (key password) before applying; docs/migrate-from-metallb.md shows how", PasswordNamespace, from, s.PasswordSecret.Name))
	case s.Password != "":
		name := secretName(src.name)
		out.Spec.PasswordSecretRef = &v1alpha1.SecretKeyRef{Namespace: PasswordNamespace, Name: name, Key: "password"}
		c.res.Secrets = append(c.res.Secrets, corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: PasswordNamespace, Labels: map[string]string{PeerLabel: peerLabelValue(src.name)}},
			Type:       corev1.SecretTypeOpaque,
			StringData: map[string]string{"password": s.Password},
		})
		c.decide(where, "spec.password", fmt.Sprintf("moved into Secret %s/%s: a BGPPeer never holds a password. The output holds it in plain text, as the input did: keep it private", PasswordNamespace, name))
	}
}

// secretName names the Secret holding a peer's password: the peer's name and "-password",
// shortened with a hash when that would exceed a Secret name's 253 characters.
func secretName(peer string) string {
	name := peer + "-password"
	if len(validation.IsDNS1123Subdomain(name)) == 0 {
		return name
	}
	return peerLabelValue(peer) + "-password"
}

// checkFamilies reports routes MetalLB sent over multiprotocol BGP that ours will not: a
// session here carries only its own family, so an IPv6 VIP needs an IPv6 BGPPeer.
func (c *converter) checkFamilies() {
	for _, p := range c.res.Pools {
		if p.Spec.Announce == nil || p.Spec.Announce.BGP == nil {
			continue
		}
		v4, v6 := families(p)
		var has4, has6 []string
		for _, peer := range c.res.Peers {
			if !selects(p.Spec.Announce.BGP.PeerSelector, peer) {
				continue
			}
			if netip.MustParseAddr(peer.Spec.PeerAddress).Is4() {
				has4 = append(has4, peer.Name)
			} else {
				has6 = append(has6, peer.Name)
			}
		}
		where := c.poolWhere[p.Name]
		if v6 && len(has6) == 0 && len(has4) > 0 {
			c.notConverted(where, "announce.bgp", fmt.Sprintf("its IPv6 VIPs went to %s over multiprotocol BGP; here a session carries only its own family: add an IPv6 BGPPeer for the router", strings.Join(has4, ", ")))
		}
		if v4 && len(has4) == 0 && len(has6) > 0 {
			c.notConverted(where, "announce.bgp", fmt.Sprintf("its IPv4 VIPs went to %s over multiprotocol BGP; here a session carries only its own family: add an IPv4 BGPPeer for the router", strings.Join(has6, ", ")))
		}
	}
}

// selects reports whether a pool's peerSelector (nil: every peer) selects the peer.
func selects(sel *metav1.LabelSelector, peer v1alpha1.BGPPeer) bool {
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(peer.Labels))
}
