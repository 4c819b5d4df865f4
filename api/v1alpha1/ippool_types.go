package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The CEL rules below make the API server reject what the allocator would refuse, so that
// "kubectl apply" shows the mistake at once. CEL has no ordering on IP values, so the range-order
// rule finds, by binary lifting over prefix lengths (each .map over a one-element list binds the
// length found so far), the longest prefix of start that still contains end; end is above start
// exactly when start has a 0 in the next bit. Prefix lengths are turned into strings by indexing
// a literal list: string(int) has no size bound, and the CRD cost estimator would refuse the rule.
//
// The last four rules refuse an entry none of whose addresses could be a VIP: a single address, a
// CIDR, or a range with both ends, inside one of the blocks the allocator always skips
// (provider/ipam keeps the same list; ::ffff:0:0/96 is not in the map because isIP and isCIDR
// already refuse IPv4-mapped addresses), or a single IPv6 address whose low 64 bits are zero (the
// subnet-router anycast address of its /64). The map gives each block the reason the message
// names; the blocks are disjoint, and containsIP and containsCIDR are false across families, so
// exactly one reason matches. Entries only partly inside a block (0.0.0.0/0, 10.0.0.0/8,
// 223.255.255.250-224.0.0.3) stay accepted: the allocator skips what is unusable. The estimator
// gives != on IP values and string(cidr) no cost bound, hence !(a == b) and no prefix in the text.

// AddressBlock is one entry of an IPPool's addresses: a single address ("192.168.1.5"), a CIDR
// ("192.168.1.0/24", "2001:db8:1::/120") or an inclusive range ("192.168.1.240-192.168.1.250").
// The network and broadcast addresses of an IPv4 CIDR wider than /31 are never handed out.
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=100
// +kubebuilder:validation:XValidation:rule="self.contains('-') ? (size(self.split('-')) == 2 && isIP(self.split('-')[0].trim()) && isIP(self.split('-')[1].trim())) : (isIP(self) || isCIDR(self))",messageExpression="'\"' + self + '\" is not an IP address, a CIDR (192.168.1.0/24) or a range (192.168.1.240-192.168.1.250)'"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",messageExpression="'\"' + self + '\" has host bits set; write the network address of the prefix'"
// +kubebuilder:validation:XValidation:rule="!self.contains('-') || size(self.split('-')) != 2 || !isIP(self.split('-')[0].trim()) || !isIP(self.split('-')[1].trim()) || ip(self.split('-')[0].trim()).family() == ip(self.split('-')[1].trim()).family()",messageExpression="'range \"' + self + '\" mixes IPv4 and IPv6'"
// +kubebuilder:validation:XValidation:rule="!self.contains('-') || size(self.split('-')) != 2 || !isIP(self.split('-')[0].trim()) || !isIP(self.split('-')[1].trim()) || ip(self.split('-')[0].trim()).family() != ip(self.split('-')[1].trim()).family() || ip(self.split('-')[0].trim()) == ip(self.split('-')[1].trim()) || [0].map(a, a + 64 < (ip(self.split('-')[0].trim()).family() == 4 ? 32 : 128) && cidr(self.split('-')[0].trim() + '/' + ['0','1','2','3','4','5','6','7','8','9','10','11','12','13','14','15','16','17','18','19','20','21','22','23','24','25','26','27','28','29','30','31','32','33','34','35','36','37','38','39','40','41','42','43','44','45','46','47','48','49','50','51','52','53','54','55','56','57','58','59','60','61','62','63','64','65','66','67','68','69','70','71','72','73','74','75','76','77','78','79','80','81','82','83','84','85','86','87','88','89','90','91','92','93','94','95','96','97','98','99','100','101','102','103','104','105','106','107','108','109','110','111','112','113','114','115','116','117','118','119','120','121','122','123','124','125','126','127','128'][a + 64]).containsIP(self.split('-')[1].trim()) ? a + 64 : a).map(b, b + 32 < (ip(self.split('-')[0].trim()).family() == 4 ? 32 : 128) && cidr(self.split('-')[0].trim() + '/' + ['0','1','2','3','4','5','6','7','8','9','10','11','12','13','14','15','16','17','18','19','20','21','22','23','24','25','26','27','28','29','30','31','32','33','34','35','36','37','38','39','40','41','42','43','44','45','46','47','48','49','50','51','52','53','54','55','56','57','58','59','60','61','62','63','64','65','66','67','68','69','70','71','72','73','74','75','76','77','78','79','80','81','82','83','84','85','86','87','88','89','90','91','92','93','94','95','96','97','98','99','100','101','102','103','104','105','106','107','108','109','110','111','112','113','114','115','116','117','118','119','120','121','122','123','124','125','126','127','128'][b + 32]).containsIP(self.split('-')[1].trim()) ? b + 32 : b).map(c, c + 16 < (ip(self.split('-')[0].trim()).family() == 4 ? 32 : 128) && cidr(self.split('-')[0].trim() + '/' + ['0','1','2','3','4','5','6','7','8','9','10','11','12','13','14','15','16','17','18','19','20','21','22','23','24','25','26','27','28','29','30','31','32','33','34','35','36','37','38','39','40','41','42','43','44','45','46','47','48','49','50','51','52','53','54','55','56','57','58','59','60','61','62','63','64','65','66','67','68','69','70','71','72','73','74','75','76','77','78','79','80','81','82','83','84','85','86','87','88','89','90','91','92','93','94','95','96','97','98','99','100','101','102','103','104','105','106','107','108','109','110','111','112','113','114','115','116','117','118','119','120','121','122','123','124','125','126','127','128'][c + 16]).containsIP(self.split('-')[1].trim()) ? c + 16 : c).map(d, d + 8 < (ip(self.split('-')[0].trim()).family() == 4 ? 32 : 128) && cidr(self.split('-')[0].trim() + '/' + ['0','1','2','3','4','5','6','7','8','9','10','11','12','13','14','15','16','17','18','19','20','21','22','23','24','25','26','27','28','29','30','31','32','33','34','35','36','37','38','39','40','41','42','43','44','45','46','47','48','49','50','51','52','53','54','55','56','57','58','59','60','61','62','63','64','65','66','67','68','69','70','71','72','73','74','75','76','77','78','79','80','81','82','83','84','85','86','87','88','89','90','91','92','93','94','95','96','97','98','99','100','101','102','103','104','105','106','107','108','109','110','111','112','113','114','115','116','117','118','119','120','121','122','123','124','125','126','127','128'][d + 8]).containsIP(self.split('-')[1].trim()) ? d + 8 : d).map(e, e + 4 < (ip(self.split('-')[0].trim()).family() == 4 ? 32 : 128) && cidr(self.split('-')[0].trim() + '/' + ['0','1','2','3','4','5','6','7','8','9','10','11','12','13','14','15','16','17','18','19','20','21','22','23','24','25','26','27','28','29','30','31','32','33','34','35','36','37','38','39','40','41','42','43','44','45','46','47','48','49','50','51','52','53','54','55','56','57','58','59','60','61','62','63','64','65','66','67','68','69','70','71','72','73','74','75','76','77','78','79','80','81','82','83','84','85','86','87','88','89','90','91','92','93','94','95','96','97','98','99','100','101','102','103','104','105','106','107','108','109','110','111','112','113','114','115','116','117','118','119','120','121','122','123','124','125','126','127','128'][e + 4]).containsIP(self.split('-')[1].trim()) ? e + 4 : e).map(f, f + 2 < (ip(self.split('-')[0].trim()).family() == 4 ? 32 : 128) && cidr(self.split('-')[0].trim() + '/' + ['0','1','2','3','4','5','6','7','8','9','10','11','12','13','14','15','16','17','18','19','20','21','22','23','24','25','26','27','28','29','30','31','32','33','34','35','36','37','38','39','40','41','42','43','44','45','46','47','48','49','50','51','52','53','54','55','56','57','58','59','60','61','62','63','64','65','66','67','68','69','70','71','72','73','74','75','76','77','78','79','80','81','82','83','84','85','86','87','88','89','90','91','92','93','94','95','96','97','98','99','100','101','102','103','104','105','106','107','108','109','110','111','112','113','114','115','116','117','118','119','120','121','122','123','124','125','126','127','128'][f + 2]).containsIP(self.split('-')[1].trim()) ? f + 2 : f).map(g, g + 1 < (ip(self.split('-')[0].trim()).family() == 4 ? 32 : 128) && cidr(self.split('-')[0].trim() + '/' + ['0','1','2','3','4','5','6','7','8','9','10','11','12','13','14','15','16','17','18','19','20','21','22','23','24','25','26','27','28','29','30','31','32','33','34','35','36','37','38','39','40','41','42','43','44','45','46','47','48','49','50','51','52','53','54','55','56','57','58','59','60','61','62','63','64','65','66','67','68','69','70','71','72','73','74','75','76','77','78','79','80','81','82','83','84','85','86','87','88','89','90','91','92','93','94','95','96','97','98','99','100','101','102','103','104','105','106','107','108','109','110','111','112','113','114','115','116','117','118','119','120','121','122','123','124','125','126','127','128'][g + 1]).containsIP(self.split('-')[1].trim()) ? g + 1 : g).all(l, cidr(self.split('-')[0].trim() + '/' + ['0','1','2','3','4','5','6','7','8','9','10','11','12','13','14','15','16','17','18','19','20','21','22','23','24','25','26','27','28','29','30','31','32','33','34','35','36','37','38','39','40','41','42','43','44','45','46','47','48','49','50','51','52','53','54','55','56','57','58','59','60','61','62','63','64','65','66','67','68','69','70','71','72','73','74','75','76','77','78','79','80','81','82','83','84','85','86','87','88','89','90','91','92','93','94','95','96','97','98','99','100','101','102','103','104','105','106','107','108','109','110','111','112','113','114','115','116','117','118','119','120','121','122','123','124','125','126','127','128'][l + 1]).masked().ip() == cidr(self.split('-')[0].trim() + '/' + ['0','1','2','3','4','5','6','7','8','9','10','11','12','13','14','15','16','17','18','19','20','21','22','23','24','25','26','27','28','29','30','31','32','33','34','35','36','37','38','39','40','41','42','43','44','45','46','47','48','49','50','51','52','53','54','55','56','57','58','59','60','61','62','63','64','65','66','67','68','69','70','71','72','73','74','75','76','77','78','79','80','81','82','83','84','85','86','87','88','89','90','91','92','93','94','95','96','97','98','99','100','101','102','103','104','105','106','107','108','109','110','111','112','113','114','115','116','117','118','119','120','121','122','123','124','125','126','127','128'][l]).masked().ip())",messageExpression="'range \"' + self + '\" ends below its start'"
// +kubebuilder:validation:XValidation:rule="!isIP(self) || !{'0.0.0.0/8': 'in 0.0.0.0/8 (\"this network\", RFC 1122)', '127.0.0.0/8': 'loopback', '169.254.0.0/16': 'link-local', '224.0.0.0/4': 'multicast', '255.255.255.255/32': 'the IPv4 broadcast address', '::/128': 'the unspecified address', '::1/128': 'loopback', 'fe80::/10': 'link-local', 'ff00::/8': 'multicast'}.exists(b, cidr(b).containsIP(self))",messageExpression="'\"' + self + '\" is ' + {'0.0.0.0/8': 'in 0.0.0.0/8 (\"this network\", RFC 1122)', '127.0.0.0/8': 'loopback', '169.254.0.0/16': 'link-local', '224.0.0.0/4': 'multicast', '255.255.255.255/32': 'the IPv4 broadcast address', '::/128': 'the unspecified address', '::1/128': 'loopback', 'fe80::/10': 'link-local', 'ff00::/8': 'multicast'}.transformList(b, why, cidr(b).containsIP(self), why)[0] + '; it cannot be a VIP'"
// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).family() != 6 || !ip(self).isGlobalUnicast() || !(cidr(self + '/64').masked().ip() == ip(self))",messageExpression="'\"' + self + '\" is the subnet-router anycast address of its /64 (its low 64 bits are zero); it cannot be a VIP'"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || !{'0.0.0.0/8': 'in 0.0.0.0/8 (\"this network\", RFC 1122)', '127.0.0.0/8': 'loopback', '169.254.0.0/16': 'link-local', '224.0.0.0/4': 'multicast', '255.255.255.255/32': 'the IPv4 broadcast address', '::/128': 'the unspecified address', '::1/128': 'loopback', 'fe80::/10': 'link-local', 'ff00::/8': 'multicast'}.exists(b, cidr(b).containsCIDR(self))",messageExpression="'\"' + self + '\" is ' + {'0.0.0.0/8': 'in 0.0.0.0/8 (\"this network\", RFC 1122)', '127.0.0.0/8': 'loopback', '169.254.0.0/16': 'link-local', '224.0.0.0/4': 'multicast', '255.255.255.255/32': 'the IPv4 broadcast address', '::/128': 'the unspecified address', '::1/128': 'loopback', 'fe80::/10': 'link-local', 'ff00::/8': 'multicast'}.transformList(b, why, cidr(b).containsCIDR(self), why)[0] + '; no address in it can be a VIP'"
// +kubebuilder:validation:XValidation:rule="!self.contains('-') || size(self.split('-')) != 2 || !isIP(self.split('-')[0].trim()) || !isIP(self.split('-')[1].trim()) || !{'0.0.0.0/8': 'in 0.0.0.0/8 (\"this network\", RFC 1122)', '127.0.0.0/8': 'loopback', '169.254.0.0/16': 'link-local', '224.0.0.0/4': 'multicast', '255.255.255.255/32': 'the IPv4 broadcast address', '::/128': 'the unspecified address', '::1/128': 'loopback', 'fe80::/10': 'link-local', 'ff00::/8': 'multicast'}.exists(b, cidr(b).containsIP(self.split('-')[0].trim()) && cidr(b).containsIP(self.split('-')[1].trim()))",messageExpression="'range \"' + self + '\" is ' + {'0.0.0.0/8': 'in 0.0.0.0/8 (\"this network\", RFC 1122)', '127.0.0.0/8': 'loopback', '169.254.0.0/16': 'link-local', '224.0.0.0/4': 'multicast', '255.255.255.255/32': 'the IPv4 broadcast address', '::/128': 'the unspecified address', '::1/128': 'loopback', 'fe80::/10': 'link-local', 'ff00::/8': 'multicast'}.transformList(b, why, cidr(b).containsIP(self.split('-')[0].trim()) && cidr(b).containsIP(self.split('-')[1].trim()), why)[0] + '; no address in it can be a VIP'"
type AddressBlock string

// IPPool is a set of addresses that load-balancer VIPs are allocated from, and how they are
// announced to the network.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ipp,categories=baremetal
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=".spec.addresses"
// +kubebuilder:printcolumn:name="Auto",type=boolean,JSONPath=".spec.autoAssign"
// +kubebuilder:printcolumn:name="Priority",type=integer,JSONPath=".spec.priority",priority=1
// +kubebuilder:printcolumn:name="IPv4 Used",type=integer,JSONPath=".status.ipv4.used"
// +kubebuilder:printcolumn:name="IPv4 Free",type=string,JSONPath=".status.ipv4.free"
// +kubebuilder:printcolumn:name="IPv6 Used",type=integer,JSONPath=".status.ipv6.used"
// +kubebuilder:printcolumn:name="IPv6 Free",type=string,JSONPath=".status.ipv6.free"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IPPoolSpec   `json:"spec"`
	Status IPPoolStatus `json:"status,omitempty"`
}

// IPPoolSpec is what an operator declares about a pool.
type IPPoolSpec struct {
	// Addresses the pool hands out: single addresses, CIDRs and ranges, IPv4 and IPv6 mixed.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	Addresses []AddressBlock `json:"addresses"`

	// AutoAssign lets Services that ask for no particular pool or address get VIPs from this pool.
	// When false, only Services that name the pool (baremetal.dev/pool) or request one of its
	// addresses get one.
	// +kubebuilder:default=true
	// +optional
	AutoAssign *bool `json:"autoAssign,omitempty"`

	// Priority orders the pools a Service may get an address from: lower first, ties by name.
	// The same order attributes a VIP to a pool: the first pool containing it, unless the
	// Service's baremetal.dev/allocated-pool annotation names another.
	// +kubebuilder:default=0
	// +optional
	Priority int32 `json:"priority,omitempty"`

	// ServiceSelector limits the pool to Services whose labels match. Empty or omitted: all Services.
	// +optional
	ServiceSelector *metav1.LabelSelector `json:"serviceSelector,omitempty"`

	// NamespaceSelector limits the pool to Services in namespaces whose labels match. Empty or
	// omitted: all namespaces.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// Announce says how the pool's VIPs reach the network. Omitted means layer 2 on every node;
	// {} (neither l2 nor bgp) announces nothing: the VIPs are allocated, and something else (a
	// router's static routes, another speaker) must deliver them.
	// +optional
	Announce *Announce `json:"announce,omitempty"`
}

// Announce chooses the announcement protocols of a pool.
type Announce struct {
	// L2 answers ARP (IPv4) and NDP (IPv6) for a VIP from one node at a time.
	// +optional
	L2 *L2Announce `json:"l2,omitempty"`

	// BGP advertises each VIP as a host route from every eligible node to the selected peers.
	// +optional
	BGP *BGPAnnounce `json:"bgp,omitempty"`
}

// L2Announce configures layer-2 announcement.
type L2Announce struct {
	// Interfaces to answer on. Empty: the interface that holds the node's IP.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=15
	Interfaces []string `json:"interfaces,omitempty"`

	// NodeSelector limits the nodes that may answer for this pool's VIPs.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`
}

// BGPAnnounce configures BGP announcement.
type BGPAnnounce struct {
	// PeerSelector chooses the BGPPeers to advertise to. Empty: all peers.
	// +optional
	PeerSelector *metav1.LabelSelector `json:"peerSelector,omitempty"`

	// NodeSelector limits the nodes that advertise this pool's VIPs.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// Communities attached to the routes (RFC 1997), as "65000:100" (two numbers up to 65535)
	// or a well-known name: no-export, no-advertise, no-export-subconfed, no-peer, blackhole.
	// GRACEFUL_SHUTDOWN (65535:0) is refused: the announcer adds it while a node drains.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=32
	// +kubebuilder:validation:items:XValidation:rule="self in ['no-export', 'no-advertise', 'no-export-subconfed', 'no-peer', 'blackhole', 'graceful-shutdown'] || self.matches('^[0-9]{1,5}:[0-9]{1,5}$')",messageExpression="'community \"' + self + '\" is neither asn:value (two numbers from 0 to 65535, such as 65000:100) nor one of no-export, no-advertise, no-export-subconfed, no-peer, blackhole'"
	// +kubebuilder:validation:items:XValidation:rule="!self.matches('^[0-9]{1,5}:[0-9]{1,5}$') || (int(self.split(':')[0]) <= 65535 && int(self.split(':')[1]) <= 65535)",messageExpression="'community \"' + self + '\" is out of range: both numbers must be at most 65535'"
	// +kubebuilder:validation:items:XValidation:rule="self != 'graceful-shutdown' && !(self.matches('^[0-9]{1,5}:[0-9]{1,5}$') && int(self.split(':')[0]) == 65535 && int(self.split(':')[1]) == 0)",messageExpression="'community \"' + self + '\" is GRACEFUL_SHUTDOWN (65535:0, RFC 8326): the announcer adds it itself while a node drains; remove it from the pool'"
	Communities []string `json:"communities,omitempty"`

	// LargeCommunities attached to the routes (RFC 8092), as "global:local1:local2", three
	// numbers up to 4294967295.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=32
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$')",messageExpression="'large community \"' + self + '\" is not global:local1:local2 (three numbers from 0 to 4294967295, such as 65000:1:1)'"
	// +kubebuilder:validation:items:XValidation:rule="!self.matches('^[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') || self.split(':').all(n, int(n) <= 4294967295)",messageExpression="'large community \"' + self + '\" is out of range: each number must be at most 4294967295'"
	LargeCommunities []string `json:"largeCommunities,omitempty"`

	// LocalPref sets LOCAL_PREF on routes sent to iBGP peers. Omitted leaves it to the router.
	// eBGP peers never receive it; a pool that sets it for one is reported in the BGPPeer's status.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	LocalPref *uint32 `json:"localPref,omitempty"`

	// MED sets the MULTI_EXIT_DISC of the routes. Omitted: none.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	MED *uint32 `json:"med,omitempty"`

	// Aggregate also advertises the prefixes covering the pool's addresses (each CIDR entry as
	// written, each range as its smallest covering prefixes) from every node advertising one of
	// its VIPs, for routers that filter host routes.
	// +optional
	Aggregate bool `json:"aggregate,omitempty"`
}

// IPPoolStatus is what the cloud-controller-manager observes about a pool.
type IPPoolStatus struct {
	// ObservedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// IPv4 counts the pool's IPv4 addresses.
	// +optional
	IPv4 *AddressCounts `json:"ipv4,omitempty"`

	// IPv6 counts the pool's IPv6 addresses.
	// +optional
	IPv6 *AddressCounts `json:"ipv6,omitempty"`

	// Conditions: Valid (the addresses parse), Overlapping (another pool shares addresses; the
	// message names it), Exhausted (a family has no free address left), RemovedAddressesInUse
	// (VIPs removed from spec.addresses are still held by Services).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// SharedVIPs lists the pool's VIPs held by several Services, with the terms they agreed to
	// share them on. The CCM reads it back when it restarts: a Service whose own later change
	// broke the agreement is the one that moves, never its partner.
	// +optional
	// +listType=map
	// +listMapKey=address
	// +kubebuilder:validation:MaxItems=10000
	SharedVIPs []SharedVIP `json:"sharedVIPs,omitempty"`
}

// AddressCounts counts one family's addresses in a pool. Totals are decimal strings because an
// IPv6 pool can hold more than 2^63 addresses.
type AddressCounts struct {
	// Total usable addresses.
	Total string `json:"total"`
	// Used addresses held by Services.
	Used int64 `json:"used"`
	// Free addresses left.
	Free string `json:"free"`
}

// Condition types of IPPool.status.conditions.
const (
	ConditionValid       = "Valid"
	ConditionOverlapping = "Overlapping"
	ConditionExhausted   = "Exhausted"
	// ConditionRemovedAddressesInUse is True while VIPs allocated from the pool, since removed
	// from its spec.addresses, are still held by Services (they keep them).
	ConditionRemovedAddressesInUse = "RemovedAddressesInUse"
)

// IPPoolList is a list of IPPools.
//
// +kubebuilder:object:root=true
type IPPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPPool `json:"items"`
}
