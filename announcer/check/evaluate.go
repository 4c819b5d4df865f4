package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// ipvsInterface is the dummy interface kube-proxy in IPVS mode puts every Service IP on.
const ipvsInterface = "kube-ipvs0"

// Evaluate turns what Run found into findings, most serious first. It is pure: it reads only f.
func Evaluate(f Facts) []Finding {
	var out []Finding
	for _, check := range []func(*Facts) []Finding{
		apiFindings, interfaceFindings, kubeProxyFindings, localVIPFindings,
		socketFindings, heartbeatFindings, answerFindings,
	} {
		out = append(out, check(&f)...)
	}
	sortFindings(out)
	return out
}

func apiFindings(f *Facts) []Finding {
	a := &f.API
	if !a.Reached {
		return []Finding{{
			Severity: Warning, Reason: "APIUnreachable",
			Message: fmt.Sprintf("the API server could not be read (%s): the kube-proxy ConfigMap, the node's InternalIP, the VIPs of Services, the other nodes and passive BGPPeers were not checked", a.Err),
			Fix:     "run the check in the announcer's pod (in-cluster credentials) or with --kubeconfig; without the API, give --node-ip and --vip",
			Data:    data("error", a.Err),
		}}
	}
	var out []Finding
	switch {
	case !a.NodeFound:
		out = append(out, Finding{
			Severity: Error, Reason: "NodeNotFound",
			Message: fmt.Sprintf("node %q does not exist in the API: the announcer waits for it and announces nothing", f.NodeName),
			Fix:     "pass this node's Kubernetes name (--node-name; the DaemonSet passes spec.nodeName)",
			Data:    data("node", f.NodeName),
		})
	case len(a.InternalIPs) == 0:
		out = append(out, Finding{
			Severity: Error, Reason: "NoInternalIP",
			Message: fmt.Sprintf("node %s has no InternalIP: the announcer waits for one and announces nothing", f.NodeName),
			Fix:     "run the cloud-controller-manager (it initialises nodes started with --cloud-provider=external) and give the kubelet --node-ip",
			Data:    data("node", f.NodeName),
		})
	}
	if a.KubeProxyErr != "" {
		out = append(out, Finding{
			Severity: Info, Reason: "KubeProxyConfigUnreadable",
			Message: fmt.Sprintf("the kube-system/kube-proxy ConfigMap could not be read (%s): kube-proxy's mode is judged from this node's kernel only", a.KubeProxyErr),
			Data:    data("error", a.KubeProxyErr),
		})
	}
	if a.VIPsErr != "" {
		out = append(out, Finding{
			Severity: Warning, Reason: "VIPsUnlisted",
			Message: fmt.Sprintf("the Services and IPPools could not be listed (%s): only --vip addresses were checked", a.VIPsErr),
			Fix:     "give the check the announcer's RBAC (its ServiceAccount) or a kubeconfig that can list Services and IPPools",
			Data:    data("error", a.VIPsErr),
		})
	}
	return out
}

func interfaceFindings(f *Facts) []Finding {
	var out []Finding
	ips := f.nodeIPs()
	if len(ips) > 0 && f.InterfaceOverride == "" && f.holding(ips) == nil {
		out = append(out, Finding{
			Severity: Error, Reason: "NodeIPNotLocal",
			Message: fmt.Sprintf("no interface of this host holds node %s's address %s (local addresses: %s): the announcer waits for one and announces nothing",
				f.NodeName, addrList(ips), f.localAddrs()),
			Fix:  "set the kubelet's --node-ip to an address of this host's LAN interface, or run the check on the node --node-name names",
			Data: data("node", f.NodeName, "address", addrList(ips)),
		})
	}
	if len(ips) == 0 && f.InterfaceOverride == "" && (!f.API.Reached || !f.API.NodeFound) {
		out = append(out, Finding{
			Severity: Warning, Reason: "NodeIPUnknown",
			Message: "the node's address is unknown (the API did not give its InternalIP): the announce interface, the heartbeat port and the VIPs on the LAN were not checked",
			Fix:     "give --node-ip (or --interface), or let the check read the API",
		})
	}
	def := f.DefaultInterface()
	links := f.Links()
	seen := map[string]bool{}
	check := func(name string, sev Severity, why string) {
		if name == "" || seen[name] {
			return
		}
		seen[name] = true
		i := f.iface(name)
		switch {
		case i == nil:
			out = append(out, Finding{
				Severity: sev, Reason: "InterfaceMissing",
				Message: fmt.Sprintf("interface %s (%s) does not exist on this node: it never answers for VIPs there", name, why),
				Fix:     "name an interface this node has (--interface, or the pool's l2.interfaces), or limit the pool to nodes that have it (l2.nodeSelector)",
				Data:    data("interface", name),
			})
		case !i.Up:
			out = append(out, Finding{
				Severity: sev, Reason: "InterfaceDown",
				Message: fmt.Sprintf("interface %s (%s) is administratively down: this node answers for no VIP there", name, why),
				Fix:     fmt.Sprintf("ip link set %s up (and in the host's network configuration)", name),
				Data:    data("interface", name, "mac", i.MAC.String()),
			})
		case !i.Running:
			out = append(out, Finding{
				Severity: sev, Reason: "NoCarrier",
				Message: fmt.Sprintf("interface %s (%s) has no carrier: this node answers for no VIP there, other nodes take its VIPs", name, why),
				Fix:     "check the cable, the switch port and the bond's members",
				Data:    data("interface", name, "mac", i.MAC.String()),
			})
		}
	}
	if f.InterfaceOverride != "" {
		check(def, Error, "named by --interface")
	} else if def != "" {
		check(def, Error, "it holds the node's InternalIP")
	}
	for _, l := range sortedLinks(links) {
		check(l.Interface, Warning, "named by a pool's l2.interfaces")
	}
	// IPv6 VIPs need IPv6 on their interface.
	for _, l := range sortedLinks(links) {
		i := f.iface(l.Interface)
		if l.Protocol != "NDP" || i == nil || (!f.NoIPv6 && !i.IPv6Disabled) {
			continue
		}
		what := fmt.Sprintf("net.ipv6.conf.%s.disable_ipv6 = 1", i.Name)
		if f.NoIPv6 {
			what = "the kernel has no IPv6"
		}
		out = append(out, Finding{
			Severity: Error, Reason: "IPv6Disabled",
			Message: fmt.Sprintf("IPv6 VIPs %s are announced on %s, where IPv6 is disabled (%s): this node cannot answer NDP for them", addrList(links[l]), i.Name, what),
			Fix:     fmt.Sprintf("sysctl -w net.ipv6.conf.%s.disable_ipv6=0 (and persist it in /etc/sysctl.d), or announce them on another interface (the pool's l2.interfaces)", i.Name),
			Data:    data("interface", i.Name, "sysctl", "net.ipv6.conf."+i.Name+".disable_ipv6", "value", "1", "address", addrList(links[l])),
		})
	}
	return out
}

// kubeProxyFindings finds kube-proxy in IPVS mode without strictARP, from the kernel (the
// kube-ipvs0 dummy interface, the ARP sysctls) and from the kube-proxy ConfigMap.
func kubeProxyFindings(f *Facts) []Finding {
	ipvs := f.iface(ipvsInterface)
	cm := f.API.KubeProxy
	cmIPVS := cm != nil && cm.IsIPVS()
	if ipvs == nil && !cmIPVS {
		return nil
	}
	y := f.iface(f.DefaultInterface())
	ignore, announce, sysctls := arpSysctls(f, y)
	kernelAnswers := ignore == 0
	kernelLeaks := announce >= 0 && announce < 2
	d := data("interface", ifaceName(y), "sysctl", "net.ipv4.conf.all.arp_ignore,net.ipv4.conf.all.arp_announce",
		"value", fmt.Sprintf("%d,%d", f.AllARPIgnore, f.AllARPAnnounce))
	var cmSays string
	switch {
	case cm == nil:
		cmSays = "the kube-system/kube-proxy ConfigMap was not read"
	case cmIPVS && cm.IPVS.StrictARP:
		cmSays = "the kube-proxy ConfigMap has strictARP: true, but it is not in effect on this node"
	case cmIPVS:
		cmSays = "the kube-proxy ConfigMap has mode: ipvs without strictARP: true"
	default:
		cmSays = fmt.Sprintf("the kube-proxy ConfigMap says mode %q", cm.Mode)
	}
	fixConfig := "set ipvs.strictARP: true in config.conf of the kube-system/kube-proxy ConfigMap and restart kube-proxy (kubectl -n kube-system rollout restart daemonset kube-proxy): it sets net.ipv4.conf.all.arp_ignore=1 and arp_announce=2 on every node"
	if ipvs != nil && (kernelAnswers || kernelLeaks) {
		held := make([]netip.Addr, 0, len(ipvs.Addrs))
		for _, p := range ipvs.Addrs {
			held = append(held, p.Addr())
		}
		effect := "the kernel may send ARP requests with a Service IP as sender, teaching neighbours this node's MAC for it"
		if kernelAnswers {
			effect = fmt.Sprintf("the kernel answers ARP on %s for every Service IP on %s, so every such node answers for every VIP", ifaceName(y), ipvsInterface)
		}
		fix := fixConfig
		if cmIPVS && cm.IPVS.StrictARP {
			fix = "restart kube-proxy on this node, and look for what resets the sysctls (a file in /etc/sysctl.d, a CNI plugin)"
		}
		d["address"] = addrList(held)
		return []Finding{{
			Severity: Error, Reason: "IPVSWithoutStrictARP",
			Message: fmt.Sprintf("kube-proxy runs in IPVS mode on this node (%s holds %s) and strictARP is not in effect (%s): %s; %s",
				ipvsInterface, countAddrs(held), sysctls, effect, cmSays),
			Fix: fix, Data: d,
		}}
	}
	if !cmIPVS || cm.IPVS.StrictARP {
		return nil // kube-ipvs0 with the right sysctls, and no ConfigMap that says otherwise
	}
	if ipvs != nil {
		return []Finding{{
			Severity: Warning, Reason: "IPVSWithoutStrictARP",
			Message: fmt.Sprintf("%s, yet this node's kernel is safe (%s), presumably set by hand: any node without these sysctls answers ARP for every VIP", cmSays, sysctls),
			Fix:     fixConfig, Data: d,
		}}
	}
	return []Finding{{
		Severity: Error, Reason: "IPVSWithoutStrictARP",
		Message: fmt.Sprintf("%s (%s is not on this node yet: kube-proxy has not started here, or runs another mode): the nodes where it runs answer ARP for every VIP", cmSays, ipvsInterface),
		Fix:     fixConfig, Data: d,
	}}
}

// arpSysctls returns the effective arp_ignore and arp_announce on interface y (the "all" values
// when y is nil; -1 when unknown) and their values in words.
func arpSysctls(f *Facts, y *Interface) (ignore, announce int, words string) {
	if y == nil {
		return f.AllARPIgnore, f.AllARPAnnounce, fmt.Sprintf("net.ipv4.conf.all.arp_ignore = %s (want 1), arp_announce = %s (want 2)",
			sysctlWord(f.AllARPIgnore), sysctlWord(f.AllARPAnnounce))
	}
	ignore, announce = effective(f.AllARPIgnore, y.ARPIgnore), effective(f.AllARPAnnounce, y.ARPAnnounce)
	return ignore, announce, fmt.Sprintf("arp_ignore on %s = %s (all %s, %s %s; want 1), arp_announce = %s (all %s, %s %s; want 2)",
		y.Name, sysctlWord(ignore), sysctlWord(f.AllARPIgnore), y.Name, sysctlWord(y.ARPIgnore),
		sysctlWord(announce), sysctlWord(f.AllARPAnnounce), y.Name, sysctlWord(y.ARPAnnounce))
}

// localVIPFindings finds VIPs configured on this host in a way that makes its kernel answer
// ARP or NDP for them on an announce interface, whoever owns them. kube-ipvs0 is left to
// kubeProxyFindings.
func localVIPFindings(f *Facts) []Finding {
	var out []Finding
	for _, l := range sortedLinks(f.Links()) {
		y := f.iface(l.Interface)
		if y == nil {
			continue
		}
		for _, vip := range f.Links()[l] {
			for _, x := range f.Interfaces {
				if x.Name == ipvsInterface || !slices.ContainsFunc(x.Addrs, func(p netip.Prefix) bool { return p.Addr().Unmap() == vip }) {
					continue
				}
				out = append(out, localVIPFinding(f, l, y, &x, vip)...)
			}
		}
	}
	return out
}

func localVIPFinding(f *Facts, l Link, y, x *Interface, vip netip.Addr) []Finding {
	d := data("address", vip.String(), "interface", y.Name, "mac", y.MAC.String(), "heldOn", x.Name)
	removeFix := fmt.Sprintf("remove it (ip addr del %s dev %s); to accept its traffic, put it on lo with net.ipv4.conf.all.arp_ignore=1 and arp_announce=2, or let kube-proxy deliver it", vip, x.Name)
	if x.Name == y.Name {
		ignore := effective(f.AllARPIgnore, y.ARPIgnore)
		if l.Protocol == "ARP" && ignore == 8 {
			return nil // arp_ignore 8: the kernel answers no ARP on y at all
		}
		reason := "KernelAnswersARP"
		if l.Protocol == "NDP" {
			reason = "KernelAnswersNDP"
		}
		return []Finding{{
			Severity: Error, Reason: reason,
			Message: fmt.Sprintf("VIP %s is configured on %s itself: the kernel answers %s for it with %s's MAC %s whether or not this node owns it, so two nodes may answer",
				vip, y.Name, l.Protocol, y.Name, y.MAC),
			Fix: removeFix, Data: d,
		}}
	}
	if l.Protocol != "ARP" {
		return nil // Linux answers Neighbor Solicitations only for the receiving interface's addresses
	}
	ignore, announce, words := arpSysctls(f, y)
	var out []Finding
	if ignore == 0 {
		d["sysctl"], d["value"] = "net.ipv4.conf."+y.Name+".arp_ignore", "0"
		out = append(out, Finding{
			Severity: Error, Reason: "KernelAnswersARP",
			Message: fmt.Sprintf("VIP %s is configured on %s and %s: the kernel answers ARP on %s for it with MAC %s whether or not this node owns it", vip, x.Name, words, y.Name, y.MAC),
			Fix:     "sysctl -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 (persist them in /etc/sysctl.d), or " + removeFix,
			Data:    d,
		})
	} else if announce >= 0 && announce < 2 {
		d["sysctl"], d["value"] = "net.ipv4.conf."+y.Name+".arp_announce", strconv.Itoa(announce)
		out = append(out, Finding{
			Severity: Warning, Reason: "ARPAnnounceLoose",
			Message: fmt.Sprintf("VIP %s is configured on %s and %s: the kernel may send ARP requests on %s from the VIP, teaching neighbours MAC %s for it", vip, x.Name, words, y.Name, y.MAC),
			Fix:     "sysctl -w net.ipv4.conf.all.arp_announce=2 (persist it in /etc/sysctl.d)",
			Data:    d,
		})
	}
	return out
}

// localAddrs lists the host's addresses by interface, for messages.
func (f *Facts) localAddrs() string {
	var parts []string
	for _, i := range f.Interfaces {
		if i.Name == ipvsInterface || len(i.Addrs) == 0 {
			continue
		}
		as := make([]string, len(i.Addrs))
		for k, p := range i.Addrs {
			as[k] = p.String()
		}
		parts = append(parts, i.Name+" "+strings.Join(as, " "))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// addrList joins addresses, at most 8 of them, for messages.
func addrList(addrs []netip.Addr) string {
	const most = 8
	s := make([]string, 0, min(len(addrs), most))
	for i, a := range addrs {
		if i == most {
			return strings.Join(s, ", ") + fmt.Sprintf(" and %d more", len(addrs)-most)
		}
		s = append(s, a.String())
	}
	return strings.Join(s, ", ")
}

// countAddrs is "no address", "1 address: a" or "n addresses: a, b, ...".
func countAddrs(addrs []netip.Addr) string {
	switch len(addrs) {
	case 0:
		return "no address"
	case 1:
		return "1 address: " + addrs[0].String()
	}
	return fmt.Sprintf("%d addresses: %s", len(addrs), addrList(addrs))
}

func sysctlWord(v int) string {
	if v < 0 {
		return "unknown"
	}
	return strconv.Itoa(v)
}

func ifaceName(i *Interface) string {
	if i == nil {
		return ""
	}
	return i.Name
}

func sortedLinks(m map[Link][]netip.Addr) []Link {
	out := make([]Link, 0, len(m))
	for l := range m {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Link) int { return strings.Compare(a.String(), b.String()) })
	return out
}
