package lab

import (
	"fmt"
	"net/netip"
	"slices"
)

// Network namespaces and interface names. They are fixed: docs, tests and scripts rely on them.
const (
	// LANNamespace holds the two bridges and the bridge-side end of every cable.
	LANNamespace = "lab-lan"
	// RouterNamespace is the router between the LAN and the subnet behind it.
	RouterNamespace = "lab-router"
	// ClientNamespace is a host on the LAN that is not a node: where curl, arping and ndisc6 run.
	ClientNamespace = "lab-client"
	// RemoteNamespace is a host behind the router, off the LAN (RouterSubnet4, RouterSubnet6):
	// only routed traffic reaches it, so it is where BGP-announced VIPs are tested from.
	RemoteNamespace = "lab-remote"

	// LANBridge is the LAN switch, in LANNamespace.
	LANBridge = "br-lan"
	// ManagementBridge joins the host and every node's management interface, in LANNamespace.
	ManagementBridge = "br-mgmt"
	// HostManagementLink is the host end of the management link; the API server binds its address.
	HostManagementLink = "lab-mgmt"
	// hostManagementPort is the bridge-side end of HostManagementLink, in LANNamespace.
	hostManagementPort = "mgmt-host"

	// LANInterface is the LAN interface inside every node, router and client namespace.
	LANInterface = "eth0"
	// ManagementInterface is the management interface inside every node namespace.
	ManagementInterface = "mgmt0"
	// RouterSubnetInterface holds the subnet behind the router, in RouterNamespace: one end of a
	// veth whose other end is RemoteInterface in RemoteNamespace (down it to cut lab-remote off).
	RouterSubnetInterface = "eth1"
	// RemoteInterface is lab-remote's only interface, on the subnet behind the router.
	RemoteInterface = "eth0"
)

// Nodes are the names of the node namespaces, which are also the names of their Node objects.
var Nodes = []string{"lab-node-1", "lab-node-2", "lab-node-3"}

// Addresses and prefixes of the lab. Everything is inside 198.18.0.0/15 and 2001:db8::/32.
var (
	LANPrefix4 = netip.MustParsePrefix("198.18.0.0/24")
	LANPrefix6 = netip.MustParsePrefix("2001:db8:0:1::/64")
	// Subnet behind the router, where lab-remote lives; nodes and the client route it via the
	// router.
	RouterSubnet4 = netip.MustParsePrefix("198.18.1.0/24")
	RouterSubnet6 = netip.MustParsePrefix("2001:db8:0:2::/64")
	// BGPPool4 and BGPPool6 are the addresses of examples/bgp.yaml's IPPool bgp-pool: off the
	// LAN and off every connected subnet, so only a BGP route in the router delivers them.
	BGPPool4 = netip.MustParsePrefix("198.18.2.0/24")
	BGPPool6 = netip.MustParsePrefix("2001:db8:0:3::/120")
	// ManagementPrefix is the management link's subnet; the host end holds APIServerAddr.
	ManagementPrefix = netip.MustParsePrefix("198.18.254.0/24")
	APIServerAddr    = netip.MustParseAddr("198.18.254.1")
	// PodPrefix and PodPrefix6 hold the pod CIDRs of the Nodes (podCIDRs): kwok hands pod IPs
	// out of them, each node's pod host puts its pods' IPs on its lo, and every node routes the
	// other nodes' pod CIDRs to their LAN addresses. Nothing else routes them: the router and
	// the client reach pods only through VIPs (kube-proxy on the node that gets the traffic).
	PodPrefix  = netip.MustParsePrefix("198.18.64.0/18")
	PodPrefix6 = netip.MustParsePrefix("2001:db8:64::/48")
	// DemoVIP is the address examples/demo.yaml's Service gets: the first of its IPPool.
	DemoVIP = netip.MustParseAddr("198.18.0.240")
)

// Host is one namespace attached to the LAN (or, for RemoteHost, behind the router).
type Host struct {
	// Namespace is the network namespace's name (for a node, also its Node's name).
	Namespace string
	// IPv4 and IPv6 are the addresses of its LANInterface.
	IPv4, IPv6 netip.Addr
	// MAC is the hardware address the lab gives its LANInterface.
	MAC string
	// Cable is the bridge-side end of its LAN veth, in LANNamespace: down it to cut the cable.
	Cable string
	// Management is the address of a node's ManagementInterface (invalid for other hosts), and
	// ManagementCable the bridge-side end of that veth in LANNamespace.
	Management      netip.Addr
	ManagementCable string
	ManagementMAC   string
}

// RouterHost is the lab-router namespace.
func RouterHost() Host {
	return Host{
		Namespace: RouterNamespace,
		IPv4:      netip.MustParseAddr("198.18.0.1"), IPv6: netip.MustParseAddr("2001:db8:0:1::1"),
		MAC: "02:18:00:00:00:01", Cable: "lan-router",
	}
}

// ClientHost is the lab-client namespace.
func ClientHost() Host {
	return Host{
		Namespace: ClientNamespace,
		IPv4:      netip.MustParseAddr("198.18.0.100"), IPv6: netip.MustParseAddr("2001:db8:0:1::100"),
		MAC: "02:18:00:00:01:00", Cable: "lan-client",
	}
}

// RemoteHost is the lab-remote namespace: .100 and ::100 behind the router, default routes via
// the router's RouterAddr. It has no LAN cable (Cable is empty); its link is RouterSubnetInterface.
func RemoteHost() Host {
	return Host{
		Namespace: RemoteNamespace,
		IPv4:      netip.MustParseAddr("198.18.1.100"), IPv6: netip.MustParseAddr("2001:db8:0:2::100"),
		MAC: "02:18:01:00:01:00",
	}
}

// Node returns the node namespace name (lab-node-1 ... lab-node-3): .1N and ::1N on the LAN,
// 198.18.254.1N on the management link.
func Node(name string) (Host, error) {
	i := slices.Index(Nodes, name)
	if i < 0 {
		return Host{}, fmt.Errorf("no lab node %q (the lab nodes are %v)", name, Nodes)
	}
	n := 11 + i
	return Host{
		Namespace:       name,
		IPv4:            netip.AddrFrom4([4]byte{198, 18, 0, byte(n)}),
		IPv6:            netip.MustParseAddr(fmt.Sprintf("2001:db8:0:1::%d", n)),
		MAC:             fmt.Sprintf("02:18:00:00:00:%d", n),
		Cable:           "lan-" + name[len("lab-"):],
		Management:      netip.AddrFrom4([4]byte{198, 18, 254, byte(n)}),
		ManagementCable: "mgmt-" + name[len("lab-"):],
		ManagementMAC:   fmt.Sprintf("02:18:fe:00:00:%d", n),
	}, nil
}

// Hosts are every namespace attached to the LAN: the nodes, the router and the client.
func Hosts() []Host {
	var hosts []Host
	for _, name := range Nodes {
		h, _ := Node(name)
		hosts = append(hosts, h)
	}
	return append(hosts, RouterHost(), ClientHost())
}

// Namespaces are all the lab's network namespaces, the LAN's first, lab-remote last.
func Namespaces() []string {
	names := []string{LANNamespace}
	for _, h := range Hosts() {
		names = append(names, h.Namespace)
	}
	return append(names, RemoteNamespace)
}

// podCIDRs are a node's spec.podCIDRs, IPv4 then IPv6: kwok hands pod IPs out of them, and the
// other nodes route them to the node.
func podCIDRs(node string) []string {
	i := slices.Index(Nodes, node)
	return []string{
		fmt.Sprintf("198.18.%d.0/24", 65+i),
		fmt.Sprintf("2001:db8:64:%d::/64", 1+i),
	}
}
