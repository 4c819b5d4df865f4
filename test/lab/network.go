package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// netnsDir is where `ip netns` keeps its namespaces.
const netnsDir = "/run/netns"

// ensureNetwork creates whatever part of the lab's network is missing and (re)applies the
// configuration of every part, so it both builds a new lab and repairs a damaged one. A cable cut
// with CutCable is restored by it.
func ensureNetwork(ctx context.Context) error {
	existing, err := listNamespaces()
	if err != nil {
		return err
	}
	for _, ns := range Namespaces() {
		if !slices.Contains(existing, ns) {
			if _, err := run(ctx, "ip", "netns", "add", ns); err != nil {
				return err
			}
		}
		if err := configureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	if err := ensureBridges(ctx); err != nil {
		return err
	}
	for _, h := range Hosts() {
		if err := ensureVeth(ctx, veth{LANNamespace, h.Cable, h.Namespace, LANInterface}); err != nil {
			return err
		}
		if err := configureLANPort(ctx, h); err != nil {
			return err
		}
		if h.Management.IsValid() {
			if err := ensureVeth(ctx, veth{LANNamespace, h.ManagementCable, h.Namespace, ManagementInterface}); err != nil {
				return err
			}
			if err := configureManagementPort(ctx, h); err != nil {
				return err
			}
			if err := configurePodRouting(ctx, h); err != nil {
				return err
			}
		}
	}
	if err := ensureVeth(ctx, veth{LANNamespace, hostManagementPort, "", HostManagementLink}); err != nil {
		return err
	}
	if err := configureHostManagement(ctx); err != nil {
		return err
	}
	return configureRouter(ctx)
}

// configureNamespace brings lo up and turns DAD and router advertisements off, for the interfaces
// to come (default) and those that exist (all). The LAN namespace gets no IPv6 at all.
func configureNamespace(ctx context.Context, ns string) error {
	if _, err := run(ctx, "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
		return err
	}
	kv := []string{
		"net.ipv6.conf.all.accept_dad", "0",
		"net.ipv6.conf.default.accept_dad", "0",
		"net.ipv6.conf.all.accept_ra", "0",
		"net.ipv6.conf.default.accept_ra", "0",
		// No reverse-path filter anywhere (a namespace may inherit the host's): ECMP and
		// BGP-routed VIPs make asymmetric paths normal, and the lab must not drop them silently.
		"net.ipv4.conf.all.rp_filter", "0",
		"net.ipv4.conf.default.rp_filter", "0",
	}
	if ns == LANNamespace {
		// The switch has no address of its own: its bridges and ports stay silent on the LAN
		// (no MLD reports, no link-local traffic), so packet captures show the hosts only.
		kv = append(kv, "net.ipv6.conf.all.disable_ipv6", "1", "net.ipv6.conf.default.disable_ipv6", "1")
	}
	return writeSysctls(ctx, ns, kv...)
}

// ensureBridges makes the LAN and management bridges in LANNamespace: STP off, forwarding at once,
// and multicast snooping off so the LAN floods multicast (NDP solicitations) like a plain switch.
func ensureBridges(ctx context.Context) error {
	for _, br := range []string{LANBridge, ManagementBridge} {
		if !linkExists(ctx, LANNamespace, br) {
			if _, err := run(ctx, "ip", "-n", LANNamespace, "link", "add", br, "type", "bridge"); err != nil {
				return err
			}
		}
		if _, err := run(ctx, "ip", "-n", LANNamespace, "link", "set", br, "type", "bridge",
			"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
			return err
		}
		if _, err := run(ctx, "ip", "-n", LANNamespace, "link", "set", br, "up"); err != nil {
			return err
		}
	}
	return nil
}

// veth is a veth pair: end a (named aName) in namespace aNS, end b in bNS ("" is the host).
type veth struct {
	aNS, aName string
	bNS, bName string
}

// ensureVeth creates the pair unless both ends exist; a lone end (its peer's namespace was
// deleted and the kernel has not finished tearing it down) is removed first.
func ensureVeth(ctx context.Context, v veth) error {
	aOK, bOK := linkExists(ctx, v.aNS, v.aName), linkExists(ctx, v.bNS, v.bName)
	if aOK && bOK {
		return nil
	}
	if aOK {
		_, _ = run(ctx, ipCmd(v.aNS, "link", "del", v.aName)...)
	}
	if bOK {
		_, _ = run(ctx, ipCmd(v.bNS, "link", "del", v.bName)...)
	}
	argv := []string{"ip", "link", "add", v.aName}
	if v.aNS != "" {
		argv = append(argv, "netns", v.aNS)
	}
	argv = append(argv, "type", "veth", "peer", "name", v.bName)
	if v.bNS != "" {
		argv = append(argv, "netns", v.bNS)
	}
	_, err := run(ctx, argv...)
	return err
}

func ipCmd(ns string, args ...string) []string {
	if ns == "" {
		return append([]string{"ip"}, args...)
	}
	return append([]string{"ip", "-n", ns}, args...)
}

func linkExists(ctx context.Context, ns, name string) bool {
	_, err := run(ctx, ipCmd(ns, "link", "show", "dev", name)...)
	return err == nil
}

// configureLANPort plugs a host's cable into the LAN bridge and configures its end: fixed MAC,
// addresses without DAD, routes to the subnet behind the router (except on the router itself).
func configureLANPort(ctx context.Context, h Host) error {
	ns := h.Namespace
	cmds := [][]string{
		{"ip", "-n", LANNamespace, "link", "set", h.Cable, "master", LANBridge, "up"},
		{"ip", "-n", ns, "link", "set", LANInterface, "address", h.MAC},
	}
	if err := runAll(ctx, cmds); err != nil {
		return err
	}
	if err := writeSysctls(ctx, ns, "net.ipv6.conf."+LANInterface+".accept_dad", "0",
		"net.ipv6.conf."+LANInterface+".accept_ra", "0",
		"net.ipv4.conf."+LANInterface+".rp_filter", "0"); err != nil {
		return err
	}
	cmds = [][]string{
		{"ip", "-n", ns, "link", "set", LANInterface, "up"},
		{"ip", "-n", ns, "addr", "replace", prefixed(h.IPv4.String(), LANPrefix4.Bits()), "dev", LANInterface},
		{"ip", "-n", ns, "addr", "replace", prefixed(h.IPv6.String(), LANPrefix6.Bits()), "dev", LANInterface, "nodad"},
	}
	if ns != RouterNamespace {
		r := RouterHost()
		cmds = append(cmds,
			[]string{"ip", "-n", ns, "route", "replace", RouterSubnet4.String(), "via", r.IPv4.String(), "dev", LANInterface},
			[]string{"ip", "-n", ns, "-6", "route", "replace", RouterSubnet6.String(), "via", r.IPv6.String(), "dev", LANInterface},
		)
	}
	return runAll(ctx, cmds)
}

// configureManagementPort plugs a node's management cable into the management bridge.
func configureManagementPort(ctx context.Context, h Host) error {
	ns := h.Namespace
	if err := writeSysctls(ctx, ns, "net.ipv6.conf."+ManagementInterface+".disable_ipv6", "1"); err != nil {
		return err
	}
	return runAll(ctx, [][]string{
		{"ip", "-n", LANNamespace, "link", "set", h.ManagementCable, "master", ManagementBridge, "up"},
		{"ip", "-n", ns, "link", "set", ManagementInterface, "address", h.ManagementMAC},
		{"ip", "-n", ns, "link", "set", ManagementInterface, "up"},
		{"ip", "-n", ns, "addr", "replace", prefixed(h.Management.String(), ManagementPrefix.Bits()), "dev", ManagementInterface},
	})
}

// configurePodRouting makes a node forward, as kube-proxy needs: traffic to a VIP that it
// DNATs to a pod on another node leaves again through eth0 (masqueraded, so the answer comes
// back through it). Forwarding is on for both families, ICMP redirects are off (a node
// forwarding out of the interface a packet came in on must not redirect the client to a pod's
// node), and the other nodes' pod CIDRs are routed to their LAN addresses. The reverse-path
// filter is already off (configureNamespace).
func configurePodRouting(ctx context.Context, h Host) error {
	ns := h.Namespace
	if err := writeSysctls(ctx, ns,
		"net.ipv4.ip_forward", "1",
		"net.ipv6.conf.all.forwarding", "1",
		"net.ipv4.conf.all.send_redirects", "0",
		"net.ipv4.conf.default.send_redirects", "0",
		"net.ipv4.conf."+LANInterface+".send_redirects", "0",
	); err != nil {
		return err
	}
	var cmds [][]string
	for _, other := range Nodes {
		if other == ns {
			continue
		}
		o, _ := Node(other)
		cidrs := podCIDRs(other)
		cmds = append(cmds,
			[]string{"ip", "-n", ns, "route", "replace", cidrs[0], "via", o.IPv4.String(), "dev", LANInterface},
			[]string{"ip", "-n", ns, "-6", "route", "replace", cidrs[1], "via", o.IPv6.String(), "dev", LANInterface},
		)
	}
	return runAll(ctx, cmds)
}

// configureHostManagement gives the host end of the management link the API server's address.
// It is the only host interface the lab configures, and one it created.
func configureHostManagement(ctx context.Context) error {
	if err := writeSysctls(ctx, "", "net.ipv6.conf."+HostManagementLink+".disable_ipv6", "1"); err != nil {
		return err
	}
	return runAll(ctx, [][]string{
		{"ip", "-n", LANNamespace, "link", "set", hostManagementPort, "master", ManagementBridge, "up"},
		{"ip", "link", "set", HostManagementLink, "up"},
		{"ip", "addr", "replace", prefixed(APIServerAddr.String(), ManagementPrefix.Bits()), "dev", HostManagementLink},
	})
}

// configureRouter links lab-router to lab-remote (eth1 in the router, eth0 in the remote) and
// makes the router route: forwarding on, and ECMP hashing on the 5-tuple
// (fib_multipath_hash_policy=1), so that flows from lab-remote to a VIP with several BGP next
// hops spread over the nodes rather than all following the one hash of their addresses.
func configureRouter(ctx context.Context) error {
	ns, remote := RouterNamespace, RemoteHost()
	if err := ensureVeth(ctx, veth{ns, RouterSubnetInterface, remote.Namespace, RemoteInterface}); err != nil {
		return err
	}
	if err := writeSysctls(ctx, ns,
		"net.ipv6.conf."+RouterSubnetInterface+".accept_dad", "0",
		"net.ipv4.conf."+RouterSubnetInterface+".rp_filter", "0",
		"net.ipv4.ip_forward", "1",
		"net.ipv6.conf.all.forwarding", "1",
		"net.ipv4.fib_multipath_hash_policy", "1",
		"net.ipv6.fib_multipath_hash_policy", "1",
	); err != nil {
		return err
	}
	if err := writeSysctls(ctx, remote.Namespace,
		"net.ipv6.conf."+RemoteInterface+".accept_dad", "0",
		"net.ipv6.conf."+RemoteInterface+".accept_ra", "0",
		"net.ipv4.conf."+RemoteInterface+".rp_filter", "0",
	); err != nil {
		return err
	}
	return runAll(ctx, [][]string{
		{"ip", "-n", ns, "link", "set", RouterSubnetInterface, "up"},
		{"ip", "-n", ns, "addr", "replace", prefixed(RouterAddr(RouterSubnet4).String(), RouterSubnet4.Bits()), "dev", RouterSubnetInterface},
		{"ip", "-n", ns, "addr", "replace", prefixed(RouterAddr(RouterSubnet6).String(), RouterSubnet6.Bits()), "dev", RouterSubnetInterface, "nodad"},
		{"ip", "-n", remote.Namespace, "link", "set", RemoteInterface, "address", remote.MAC},
		{"ip", "-n", remote.Namespace, "link", "set", RemoteInterface, "up"},
		{"ip", "-n", remote.Namespace, "addr", "replace", prefixed(remote.IPv4.String(), RouterSubnet4.Bits()), "dev", RemoteInterface},
		{"ip", "-n", remote.Namespace, "addr", "replace", prefixed(remote.IPv6.String(), RouterSubnet6.Bits()), "dev", RemoteInterface, "nodad"},
		{"ip", "-n", remote.Namespace, "route", "replace", "default", "via", RouterAddr(RouterSubnet4).String(), "dev", RemoteInterface},
		{"ip", "-n", remote.Namespace, "-6", "route", "replace", "default", "via", RouterAddr(RouterSubnet6).String(), "dev", RemoteInterface},
	})
}

// RouterAddr is the router's address in one of its subnets: the first after the prefix's base.
func RouterAddr(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

func prefixed(addr string, bits int) string { return fmt.Sprintf("%s/%d", addr, bits) }

func runAll(ctx context.Context, cmds [][]string) error {
	for _, argv := range cmds {
		if _, err := run(ctx, argv...); err != nil {
			return err
		}
	}
	return nil
}

// listNamespaces are the names `ip netns` knows.
func listNamespaces() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// labNamespacesPresent are the lab namespaces that exist now.
func labNamespacesPresent() []string {
	existing, _ := listNamespaces()
	var out []string
	for _, ns := range Namespaces() {
		if slices.Contains(existing, ns) {
			out = append(out, ns)
		}
	}
	return out
}

// netnsID identifies a network namespace: the device and inode of its nsfs file.
type netnsID struct{ dev, ino uint64 }

func statNetns(path string) (netnsID, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return netnsID{}, false
	}
	return netnsID{st.Dev, st.Ino}, true
}

// namespaceID is the identity of the lab namespace ns, if it exists.
func namespaceID(ns string) (netnsID, bool) { return statNetns(filepath.Join(netnsDir, ns)) }

// processNamespace is the identity of the network namespace process pid is in.
func processNamespace(pid int) (netnsID, bool) {
	return statNetns(fmt.Sprintf("/proc/%d/ns/net", pid))
}

// teardownNetwork deletes the host end of the management link and every lab namespace (with
// them go their interfaces, addresses, routes and nftables tables). Processes inside must have
// been stopped first, or a namespace lives on in them.
func teardownNetwork(ctx context.Context) error {
	var errs []error
	if linkExists(ctx, "", HostManagementLink) {
		if _, err := run(ctx, "ip", "link", "del", HostManagementLink); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range labNamespacesPresent() {
		if _, err := run(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func setLink(ns, name, state string) error {
	_, err := run(context.Background(), "ip", "-n", ns, "link", "set", "dev", name, state)
	return err
}

// CutCable unplugs a node's LAN cable: it downs the bridge-side end of its veth (lan-node-N in
// lab-lan). The node keeps its addresses and sees its link go down, as with a real cable.
func (l *Lab) CutCable(node string) error {
	h, err := Node(node)
	if err != nil {
		return err
	}
	return setLink(LANNamespace, h.Cable, "down")
}

// RestoreCable plugs a node's LAN cable back in.
func (l *Lab) RestoreCable(node string) error {
	h, err := Node(node)
	if err != nil {
		return err
	}
	return setLink(LANNamespace, h.Cable, "up")
}

// CutManagement unplugs a node's management cable (mgmt-node-N in lab-lan): processes in the node
// lose the API server while its LAN stays up.
func (l *Lab) CutManagement(node string) error {
	h, err := Node(node)
	if err != nil {
		return err
	}
	return setLink(LANNamespace, h.ManagementCable, "down")
}

// RestoreManagement plugs a node's management cable back in.
func (l *Lab) RestoreManagement(node string) error {
	h, err := Node(node)
	if err != nil {
		return err
	}
	return setLink(LANNamespace, h.ManagementCable, "up")
}

// SetNodeMAC changes the hardware address of a node's LAN interface (eth0) while it stays up, as
// a bond failing over with fail_over_mac=active does. RestoreNodeMAC gives it back the lab's.
func (l *Lab) SetNodeMAC(node string, mac net.HardwareAddr) error {
	h, err := Node(node)
	if err != nil {
		return err
	}
	_, err = run(context.Background(), "ip", "-n", h.Namespace, "link", "set", "dev", LANInterface, "address", mac.String())
	return err
}

// RestoreNodeMAC gives a node's LAN interface back the address the lab gives it (Host.MAC).
func (l *Lab) RestoreNodeMAC(node string) error {
	h, err := Node(node)
	if err != nil {
		return err
	}
	mac, err := net.ParseMAC(h.MAC)
	if err != nil {
		return err
	}
	return l.SetNodeMAC(node, mac)
}

// NodeMAC is the hardware address of a node's LAN interface (eth0), read from the interface.
func (l *Lab) NodeMAC(node string) (net.HardwareAddr, error) {
	h, err := Node(node)
	if err != nil {
		return nil, err
	}
	return interfaceMAC(h.Namespace, LANInterface)
}

// interfaceMAC reads an interface's hardware address inside a namespace.
func interfaceMAC(ns, ifname string) (net.HardwareAddr, error) {
	out, err := run(context.Background(), "ip", "-n", ns, "-j", "link", "show", "dev", ifname)
	if err != nil {
		return nil, err
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return nil, fmt.Errorf("reading the address of %s in %s: unexpected output %q", ifname, ns, out)
	}
	return net.ParseMAC(links[0].Address)
}
