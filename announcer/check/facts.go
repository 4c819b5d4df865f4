package check

import (
	"net"
	"net/netip"
	"slices"
)

// Facts is what Run found on this node and asked the API server: the whole input of Evaluate.
// Strings hold errors in words (Facts is plain data, so that tests can write it out).
type Facts struct {
	// NodeName is this node's Kubernetes name.
	NodeName string
	// API is what the API server said.
	API APIFacts
	// NodeIPs are the node's addresses when the API cannot tell (--node-ip); the API's
	// InternalIPs win when the Node was read.
	NodeIPs []netip.Addr
	// InterfaceOverride is the interface the operator named (--interface); "" means the one
	// holding the node's InternalIP, as the announcer picks it.
	InterfaceOverride string
	// ExtraVIPs are VIPs to check beyond those of the API (--vip), on the default interface.
	ExtraVIPs []netip.Addr

	// Interfaces are the host's network interfaces.
	Interfaces []Interface
	// AllARPIgnore and AllARPAnnounce are net.ipv4.conf.all.arp_ignore and arp_announce; -1
	// when they could not be read.
	AllARPIgnore, AllARPAnnounce int
	// NoIPv6 is true when the kernel has no IPv6 at all (no /proc/sys/net/ipv6).
	NoIPv6 bool

	// Sockets are the raw sockets the speakers need, as this process could open them.
	Sockets []SocketResult
	// BGPBind is the listening socket passive BGP peers need; nil when no passive BGPPeer
	// selects this node (or the API was not reached).
	BGPBind *BindResult
	// Heartbeat is what could be checked of the membership heartbeats from this node.
	Heartbeat HeartbeatFacts
	// Answers are the other MACs that answered the probes of VIPs and of other nodes' addresses.
	Answers []Answer
	// Probed are the addresses probed, by link; ProbeErrors why some could not be.
	Probed      map[Link][]netip.Addr
	ProbeErrors []string
}

// APIFacts is what the API server said about this node, kube-proxy and the VIPs.
type APIFacts struct {
	// Reached is false when there was no client or the API server did not answer; Err says why.
	Reached bool
	Err     string
	// NodeFound is false when this node's Node object does not exist.
	NodeFound bool
	// InternalIPs are the Node's InternalIP addresses.
	InternalIPs []netip.Addr
	// KubeProxy is kube-system/kube-proxy's config.conf; nil when the ConfigMap does not exist
	// (KubeProxyErr empty: not a kubeadm cluster, or kube-proxy replaced) or could not be read
	// or parsed (KubeProxyErr says why).
	KubeProxy    *KubeProxyConfig
	KubeProxyErr string
	// VIPs are the addresses in the status of LoadBalancer Services whose pool is announced at
	// layer 2; VIPsErr says why they could not be listed.
	VIPs    []VIP
	VIPsErr string
	// Peers are the other nodes that run an announcer (the members), with their InternalIPs.
	Peers []Peer
	// PassiveBGPPeers are the BGPPeers with passive: true that select this node.
	PassiveBGPPeers []string
}

// VIP is one VIP to check.
type VIP struct {
	Addr netip.Addr
	// Pool is the IPPool it came from ("" for --vip).
	Pool string
	// Interfaces are the pool's l2.interfaces; empty means the default interface.
	Interfaces []string
	// Services using it, "namespace/name".
	Services []string
}

// Peer is another member node.
type Peer struct {
	Name  string
	Addrs []netip.Addr
}

// Interface is one network interface of the host, with its sysctls.
type Interface struct {
	Name    string
	Index   int
	MAC     net.HardwareAddr
	Up      bool // administratively up
	Running bool // carrier (operationally up)
	Addrs   []netip.Prefix
	// ARPIgnore and ARPAnnounce are net.ipv4.conf.<name>.arp_ignore and arp_announce; -1 when
	// unread.
	ARPIgnore, ARPAnnounce int
	// IPv6Disabled is net.ipv6.conf.<name>.disable_ipv6 = 1.
	IPv6Disabled bool
}

// Link is a protocol on an interface, as a speaker opens it.
type Link struct {
	Protocol  string // "ARP" or "NDP"
	Interface string
}

func (l Link) String() string {
	if l.Interface == "" {
		return l.Protocol + " (no interface)"
	}
	return l.Protocol + "/" + l.Interface
}

// SocketResult is the outcome of opening a speaker's raw socket.
type SocketResult struct {
	Link Link
	// Err is the error in words, "" when the socket opened.
	Err string
	// Denied is true when the kernel said EPERM or EACCES: the process lacks NET_RAW.
	Denied bool
	// Needed is true when VIPs are announced on this link (false: opened only to test the
	// capability).
	Needed bool
}

// BindResult is the outcome of binding a port.
type BindResult struct {
	Addr netip.AddrPort
	// Err is the error in words, "" when the bind worked.
	Err string
	// InUse is EADDRINUSE; Denied is EACCES or EPERM (a port below 1024 without
	// NET_BIND_SERVICE).
	InUse, Denied bool
}

// HeartbeatFacts is what one node can check of the membership heartbeats.
type HeartbeatFacts struct {
	// Bind is binding the heartbeat port on the node's address; nil when not tried (the
	// caller holds the port itself, or the node's address is unknown).
	Bind *BindResult
	// MetricsURL is where the running announcer's metrics were read; Metrics is nil when they
	// could not be (MetricsErr says why; MetricsURL "" means not tried).
	MetricsURL string
	Metrics    *AnnouncerMetrics
	MetricsErr string
}

// Answer is a MAC other than this node's that spoke for an address after it was probed.
type Answer struct {
	Link Link
	Addr netip.Addr
	MAC  string
}

// nodeIPs are the node's addresses: the Node's InternalIPs, else NodeIPs.
func (f *Facts) nodeIPs() []netip.Addr {
	if f.API.NodeFound && len(f.API.InternalIPs) > 0 {
		return f.API.InternalIPs
	}
	return f.NodeIPs
}

// iface returns the interface named name.
func (f *Facts) iface(name string) *Interface {
	for i := range f.Interfaces {
		if f.Interfaces[i].Name == name {
			return &f.Interfaces[i]
		}
	}
	return nil
}

// DefaultInterface is the interface VIPs without a pool interface are announced on: the
// override, else the one holding one of the node's addresses (the announcer's rule). It returns
// "" when there is none.
func (f *Facts) DefaultInterface() string {
	if f.InterfaceOverride != "" {
		return f.InterfaceOverride
	}
	if i := f.holding(f.nodeIPs()); i != nil {
		return i.Name
	}
	return ""
}

// holding returns the first interface that holds one of addrs.
func (f *Facts) holding(addrs []netip.Addr) *Interface {
	for _, a := range addrs {
		for i := range f.Interfaces {
			if slices.ContainsFunc(f.Interfaces[i].Addrs, func(p netip.Prefix) bool { return p.Addr() == a }) {
				return &f.Interfaces[i]
			}
		}
	}
	return nil
}

// AllVIPs are the API's VIPs and the extra ones, one entry per address.
func (f *Facts) AllVIPs() []VIP {
	out := slices.Clone(f.API.VIPs)
	for _, a := range f.ExtraVIPs {
		if !slices.ContainsFunc(out, func(v VIP) bool { return v.Addr == a }) {
			out = append(out, VIP{Addr: a})
		}
	}
	slices.SortFunc(out, func(a, b VIP) int { return a.Addr.Compare(b.Addr) })
	return out
}

// Links are the links the VIPs are announced on (protocol by family, the pool's interfaces
// or the default one), with the VIPs of each.
func (f *Facts) Links() map[Link][]netip.Addr {
	def := f.DefaultInterface()
	out := map[Link][]netip.Addr{}
	for _, v := range f.AllVIPs() {
		protocol := "ARP"
		if v.Addr.Is6() && !v.Addr.Is4In6() {
			protocol = "NDP"
		}
		ifaces := v.Interfaces
		if len(ifaces) == 0 {
			ifaces = []string{def}
		}
		for _, name := range ifaces {
			if name == "" {
				continue
			}
			l := Link{Protocol: protocol, Interface: name}
			out[l] = append(out[l], v.Addr.Unmap())
		}
	}
	return out
}

// localMACs are the MACs of this host's interfaces.
func (f *Facts) localMACs() map[string]bool {
	m := map[string]bool{}
	for _, i := range f.Interfaces {
		if len(i.MAC) > 0 {
			m[i.MAC.String()] = true
		}
	}
	return m
}

// effective is the value the kernel applies on an interface for the arp_ignore and
// arp_announce sysctls: the larger of "all" and the interface's own (IN_DEV_ARP_IGNORE,
// IN_DEV_ARP_ANNOUNCE). -1 when either is unknown.
func effective(all, own int) int {
	if all < 0 || own < 0 {
		return -1
	}
	return max(all, own)
}
