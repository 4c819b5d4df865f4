package metallb

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The shapes below are the MetalLB fields this converter reads, written from MetalLB's documented
// API (metallb.io v1beta1/v1beta2) and its pre-0.13 ConfigMap. They are not MetalLB's Go types:
// MetalLB is not a dependency. Their JSON tags double as the list of fields the converter knows:
// any other field found in the input is reported (see unknownFields), so a field added by a
// newer MetalLB is never lost without a word.

type ipAddressPoolSpec struct {
	Addresses         []string           `json:"addresses"`
	AutoAssign        *bool              `json:"autoAssign"`
	AvoidBuggyIPs     bool               `json:"avoidBuggyIPs"`
	ServiceAllocation *serviceAllocation `json:"serviceAllocation"`
}

type serviceAllocation struct {
	Priority           int32                  `json:"priority"`
	Namespaces         []string               `json:"namespaces"`
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors"`
	ServiceSelectors   []metav1.LabelSelector `json:"serviceSelectors"`
}

type l2AdvertisementSpec struct {
	IPAddressPools         []string               `json:"ipAddressPools"`
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors"`
	NodeSelectors          []metav1.LabelSelector `json:"nodeSelectors"`
	Interfaces             []string               `json:"interfaces"`
}

type bgpAdvertisementSpec struct {
	AggregationLength      *int32                 `json:"aggregationLength"`
	AggregationLengthV6    *int32                 `json:"aggregationLengthV6"`
	LocalPref              *uint32                `json:"localPref"`
	Communities            []string               `json:"communities"`
	IPAddressPools         []string               `json:"ipAddressPools"`
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors"`
	NodeSelectors          []metav1.LabelSelector `json:"nodeSelectors"`
	Peers                  []string               `json:"peers"`
}

type communitySpec struct {
	Communities []communityAlias `json:"communities"`
}

type communityAlias struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// bgpPeerSpec is v1beta2's BGPPeer; v1beta1's is a subset with the same JSON names (its
// nodeSelectors have the label selector's shape too).
type bgpPeerSpec struct {
	MyASN                  uint32                 `json:"myASN"`
	PeerASN                uint32                 `json:"peerASN"`
	DynamicASN             string                 `json:"dynamicASN"`
	PeerAddress            string                 `json:"peerAddress"`
	SourceAddress          string                 `json:"sourceAddress"`
	PeerPort               uint16                 `json:"peerPort"`
	HoldTime               *metav1.Duration       `json:"holdTime"`
	KeepaliveTime          *metav1.Duration       `json:"keepaliveTime"`
	ConnectTime            *metav1.Duration       `json:"connectTime"`
	RouterID               string                 `json:"routerID"`
	NodeSelectors          []metav1.LabelSelector `json:"nodeSelectors"`
	Password               string                 `json:"password"`
	PasswordSecret         *secretReference       `json:"passwordSecret"`
	BFDProfile             string                 `json:"bfdProfile"`
	EnableGracefulRestart  bool                   `json:"enableGracefulRestart"`
	EBGPMultiHop           bool                   `json:"ebgpMultiHop"`
	VRF                    string                 `json:"vrf"`
	DisableMP              bool                   `json:"disableMP"`
	DualStackAddressFamily bool                   `json:"dualStackAddressFamily"`
	Interface              string                 `json:"interface"`
}

type secretReference struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// legacyConfig is the "config" key of MetalLB's ConfigMap before 0.13.
type legacyConfig struct {
	Peers          []legacyPeer      `json:"peers"`
	BGPCommunities map[string]string `json:"bgp-communities"`
	AddressPools   []legacyPool      `json:"address-pools"`
	BFDProfiles    []map[string]any  `json:"bfd-profiles"`
}

type legacyPeer struct {
	MyASN         uint32               `json:"my-asn"`
	PeerASN       uint32               `json:"peer-asn"`
	PeerAddress   string               `json:"peer-address"`
	PeerPort      uint16               `json:"peer-port"`
	SourceAddress string               `json:"source-address"`
	HoldTime      string               `json:"hold-time"`
	KeepaliveTime string               `json:"keepalive-time"`
	RouterID      string               `json:"router-id"`
	Password      string               `json:"password"`
	BFDProfile    string               `json:"bfd-profile"`
	EBGPMultiHop  bool                 `json:"ebgp-multihop"`
	NodeSelectors []legacyNodeSelector `json:"node-selectors"`
}

type legacyNodeSelector struct {
	MatchLabels      map[string]string   `json:"match-labels"`
	MatchExpressions []legacyRequirement `json:"match-expressions"`
}

type legacyRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values"`
}

type legacyPool struct {
	Name              string                `json:"name"`
	Protocol          string                `json:"protocol"`
	Addresses         []string              `json:"addresses"`
	AutoAssign        *bool                 `json:"auto-assign"`
	AvoidBuggyIPs     bool                  `json:"avoid-buggy-ips"`
	BGPAdvertisements []legacyAdvertisement `json:"bgp-advertisements"`
}

type legacyAdvertisement struct {
	AggregationLength   *int32   `json:"aggregation-length"`
	AggregationLengthV6 *int32   `json:"aggregation-length-v6"`
	LocalPref           *uint32  `json:"localpref"`
	Communities         []string `json:"communities"`
}
