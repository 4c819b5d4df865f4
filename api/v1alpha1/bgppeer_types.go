package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPPeer is a router the announcers peer with to advertise VIPs of pools announced over BGP.
// Field names follow MetalLB's BGPPeer, so that a migration is mostly a change of API group.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bgpp,categories=baremetal
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Peer",type=string,JSONPath=".spec.peerAddress"
// +kubebuilder:printcolumn:name="Peer ASN",type=integer,JSONPath=".spec.peerASN"
// +kubebuilder:printcolumn:name="My ASN",type=integer,JSONPath=".spec.myASN"
// +kubebuilder:printcolumn:name="Sessions",type=string,JSONPath=".status.summary"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BGPPeerSpec   `json:"spec"`
	Status BGPPeerStatus `json:"status,omitempty"`
}

// BGPPeerSpec is one router and how every selected node talks to it.
//
// +kubebuilder:validation:XValidation:rule="!has(self.keepaliveTime) || !self.keepaliveTime.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?([nuµμm]?s|m|h))+)$') || (has(self.holdTime) && (!self.holdTime.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?([nuµμm]?s|m|h))+)$') || duration(self.holdTime) == duration('0s'))) || duration(self.keepaliveTime) < (has(self.holdTime) ? duration(self.holdTime) : duration('90s'))",fieldPath=".keepaliveTime",messageExpression="'keepaliveTime ' + self.keepaliveTime + ' must be shorter than holdTime ' + (has(self.holdTime) ? self.holdTime : '(90s when omitted)')"
// +kubebuilder:validation:XValidation:rule="!has(self.sourceAddress) || !isIP(self.sourceAddress) || !isIP(self.peerAddress) || ip(self.sourceAddress).family() == ip(self.peerAddress).family()",fieldPath=".sourceAddress",messageExpression="'sourceAddress \"' + self.sourceAddress + '\" and peerAddress \"' + self.peerAddress + '\" are of different families; the session runs over the family of peerAddress'"
// +kubebuilder:validation:XValidation:rule="!has(self.ebgpMultihop) || self.ebgpMultihop == 0 || self.peerASN != self.myASN",fieldPath=".ebgpMultihop",message="ebgpMultihop applies to eBGP peers only (peerASN equals myASN here); remove it"
type BGPPeerSpec struct {
	// PeerAddress is the router's address; the session's family is this address's family.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).isGlobalUnicast()",messageExpression="'peerAddress \"' + self + '\" ' + (!isIP(self) ? (isCIDR(self) ? 'is a CIDR' : 'is not an IP address') : ip(self).isLoopback() ? 'is loopback' : ip(self).isUnspecified() ? 'is the unspecified address' : ip(self).isLinkLocalUnicast() ? 'is link-local' : (cidr('224.0.0.0/4').containsIP(self) || cidr('ff00::/8').containsIP(self)) ? 'is multicast' : 'is not a unicast address') + '; give the unicast address of the router'"
	PeerAddress string `json:"peerAddress"`

	// PeerASN is the router's autonomous system number (1-4294967294).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967294
	// +kubebuilder:validation:Format=int64
	PeerASN uint32 `json:"peerASN"`

	// MyASN is the nodes' autonomous system number (1-4294967294); equal to PeerASN for iBGP.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967294
	// +kubebuilder:validation:Format=int64
	MyASN uint32 `json:"myASN"`

	// PeerPort is the router's TCP port.
	// +kubebuilder:default=179
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	PeerPort uint16 `json:"peerPort,omitempty"`

	// SourceAddress is the node's address to connect from. Omitted: the node's address of the
	// peer's family (its InternalIP).
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).isGlobalUnicast()",messageExpression="'sourceAddress \"' + self + '\" ' + (!isIP(self) ? (isCIDR(self) ? 'is a CIDR' : 'is not an IP address') : ip(self).isLoopback() ? 'is loopback' : ip(self).isUnspecified() ? 'is the unspecified address' : ip(self).isLinkLocalUnicast() ? 'is link-local' : (cidr('224.0.0.0/4').containsIP(self) || cidr('ff00::/8').containsIP(self)) ? 'is multicast' : 'is not a unicast address') + '; give a unicast address of the node'"
	// +optional
	SourceAddress string `json:"sourceAddress,omitempty"`

	// NodeSelector limits the nodes that peer with this router. Omitted: every node.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// HoldTime is how long a silent session stays up: 0s (never time out) or at least 3s.
	// Omitted: 90s, what routers default to.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?([nuµμm]?s|m|h))+)$')",messageExpression="'holdTime \"' + self + '\" is not a duration such as 90s or 1m30s'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?([nuµμm]?s|m|h))+)$') || duration(self) == duration('0s') || (duration(self) >= duration('3s') && duration(self) <= duration('65535s'))",messageExpression="'holdTime ' + self + ' is out of range: give 0s (never time out) or 3s to 65535s (RFC 4271)'"
	// +optional
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// KeepaliveTime is the interval between keepalives. Omitted: a third of the hold time.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?([nuµμm]?s|m|h))+)$')",messageExpression="'keepaliveTime \"' + self + '\" is not a duration such as 90s or 1m30s'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?([nuµμm]?s|m|h))+)$') || (duration(self) >= duration('1s') && duration(self) <= duration('65535s'))",messageExpression="'keepaliveTime ' + self + ' is out of range: give 1s to 65535s'"
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// ConnectTime is how long to wait between attempts to connect. Omitted: 1s, so a session
	// comes back within seconds of the router.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?([nuµμm]?s|m|h))+)$')",messageExpression="'connectTime \"' + self + '\" is not a duration such as 90s or 1m30s'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?([nuµμm]?s|m|h))+)$') || (duration(self) >= duration('1s') && duration(self) <= duration('65535s'))",messageExpression="'connectTime ' + self + ' is out of range: give 1s to 65535s'"
	// +optional
	ConnectTime *metav1.Duration `json:"connectTime,omitempty"`

	// PasswordSecretRef names the Secret key holding the TCP MD5 password (RFC 2385). The
	// password itself is never written in a BGPPeer.
	// +optional
	PasswordSecretRef *SecretKeyRef `json:"passwordSecretRef,omitempty"`

	// EBGPMultihop is the TTL of packets to an eBGP peer that is not directly connected
	// (up to 255; 1 is the same as directly connected). Omitted or 0: the peer must be on a
	// connected network.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=255
	// +optional
	EBGPMultihop uint8 `json:"ebgpMultihop,omitempty"`

	// GracefulRestart keeps the router forwarding to a node while its announcer restarts.
	// Omitted: enabled, with a 120s restart time.
	// +optional
	GracefulRestart *GracefulRestart `json:"gracefulRestart,omitempty"`

	// Passive makes the nodes listen for the router instead of connecting to it.
	// +optional
	Passive bool `json:"passive,omitempty"`
}

// SecretKeyRef is one key of a Secret.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",messageExpression="'passwordSecretRef.name \"' + self + '\" is not a Secret name (lower-case letters, digits, - and .)'"
	Name string `json:"name"`
	// Namespace of the Secret. The shipped RBAC lets the announcer read Secrets in the namespace
	// baremetal-bgp only, so that it cannot read every Secret of kube-system.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",messageExpression="'passwordSecretRef.namespace \"' + self + '\" is not a namespace name (lower-case letters, digits and -)'"
	Namespace string `json:"namespace"`
	// Key in the Secret's data. Omitted: "password".
	// +kubebuilder:default=password
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z0-9]+$')",messageExpression="'passwordSecretRef.key \"' + self + '\" is not a Secret key (letters, digits, -, _ and .)'"
	// +optional
	Key string `json:"key,omitempty"`
}

// GracefulRestart configures BGP graceful restart (RFC 4724, with RFC 8538's notification bit).
type GracefulRestart struct {
	// Enabled turns graceful restart on.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// RestartTime is how long the router keeps a restarting node's routes (1s-4095s).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?([nuµμm]?s|m|h))+)$')",messageExpression="'restartTime \"' + self + '\" is not a duration such as 90s or 1m30s'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(0|([0-9]{1,6}([.][0-9]{1,9})?([nuµμm]?s|m|h))+)$') || (duration(self) >= duration('1s') && duration(self) <= duration('4095s'))",messageExpression="'restartTime ' + self + ' is out of range: give 1s to 4095s (RFC 4724)'"
	// +optional
	RestartTime *metav1.Duration `json:"restartTime,omitempty"`
}

// BGPPeerStatus is what the announcers observe about their sessions with the router.
type BGPPeerStatus struct {
	// Summary is "Established <up>/<nodes>", such as "Established 3/3", or "No nodes".
	// +optional
	Summary string `json:"summary,omitempty"`

	// Nodes holds one entry per node that peers with the router; each node's announcer writes
	// its own entry.
	// +optional
	// +listType=map
	// +listMapKey=node
	// +kubebuilder:validation:MaxItems=5000
	Nodes []BGPSessionStatus `json:"nodes,omitempty"`

	// Conditions: Established (every selected node's session is up; the message names those
	// that are not).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BGPSessionStatus is one node's session with the router.
type BGPSessionStatus struct {
	// Node is the node's name.
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node"`
	// State is the BGP session state: Idle, Connect, Active, OpenSent, OpenConfirm, Established.
	// +kubebuilder:validation:MaxLength=32
	State string `json:"state"`
	// Since is when the session entered State.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// PrefixesAdvertised counts the routes this node advertises to the router.
	// +optional
	PrefixesAdvertised int32 `json:"prefixesAdvertised,omitempty"`
	// LastError says in words what last went wrong ("no answer from 198.18.0.1:179",
	// "notification: bad peer AS").
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastError string `json:"lastError,omitempty"`
	// Problems lists configuration this node refuses to apply, in words (an IPv6 VIP with no
	// IPv6 next hop over an IPv4 session, localPref towards an eBGP peer).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Problems []string `json:"problems,omitempty"`
}

// Condition types of BGPPeer.status.conditions.
const (
	ConditionEstablished = "Established"
)

// BGPPeerList is a list of BGPPeers.
//
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}
