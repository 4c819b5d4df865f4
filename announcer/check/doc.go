// Package check finds, on one node, what keeps the announcer from working there and says how to
// fix it: kube-proxy in IPVS mode without strictARP (and a kernel that answers ARP for VIPs), a
// missing capability (NET_RAW for the ARP and NDP sockets, NET_BIND_SERVICE for passive BGP
// peers), no usable interface, a heartbeat port that cannot be bound or peers that are not
// heard, and a VIP already answered by another MAC on the LAN (an RFC 5227 ARP probe or an
// RFC 4862 duplicate address detection solicitation per VIP).
//
// It has a pure core and a thin shell. Evaluate turns Facts (plain data: interfaces, sysctls,
// socket and bind results, the API's objects, the MACs that answered probes) into Findings; it
// imports nothing from Kubernetes, touches no socket and is tested with tables. Run is the
// shell: it gathers the Facts on this host (and from the API server when Config.Client is set),
// then calls Evaluate. The parsers of what it reads (sysctl values, kube-proxy's configuration,
// the announcer's metrics) are fuzzed.
//
// Run sends traffic only on the interfaces the VIPs are announced on (one probe per VIP and per
// other node's address, twice), binds the heartbeat port for an instant and reads the announcer's
// metrics on loopback. It never changes a sysctl, an address or a neighbour entry.
package check
