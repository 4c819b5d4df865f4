package check

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

func socketFindings(f *Facts) []Finding {
	var out []Finding
	var denied []string
	var deniedErrs []string
	for _, s := range f.Sockets {
		switch {
		case s.Err == "":
		case s.Denied:
			denied = append(denied, s.Link.String())
			deniedErrs = append(deniedErrs, s.Err)
		default:
			sev := Warning
			if s.Needed {
				sev = Error
			}
			out = append(out, Finding{
				Severity: sev, Reason: "SocketFailed",
				Message: fmt.Sprintf("opening the %s speaker's socket on %s failed: %s", s.Link.Protocol, s.Link.Interface, s.Err),
				Fix:     "see the error; the announcer fails the same way on this link, and other nodes take its VIPs",
				Data:    data("interface", s.Link.Interface, "protocol", s.Link.Protocol, "error", s.Err),
			})
		}
	}
	if len(denied) > 0 {
		out = append(out, Finding{
			Severity: Error, Reason: "MissingNetRaw",
			Message: fmt.Sprintf("the kernel refused the raw sockets the speakers need (AF_PACKET, for ARP and for NDP) on %s: %s; the process lacks the NET_RAW capability",
				strings.Join(denied, ", "), deniedErrs[0]),
			Fix:  "add NET_RAW to the container's securityContext.capabilities.add (the announcer needs NET_RAW, not privileged: true)",
			Data: data("links", strings.Join(denied, ","), "error", deniedErrs[0]),
		})
	}
	if b := f.BGPBind; b != nil && b.Err != "" {
		peers := strings.Join(f.API.PassiveBGPPeers, ", ")
		d := data("address", b.Addr.String(), "peers", peers, "error", b.Err)
		switch {
		case b.Denied:
			out = append(out, Finding{
				Severity: Error, Reason: "MissingNetBindService",
				Message: fmt.Sprintf("passive BGPPeers %s select this node, and binding TCP %s was refused (%s): the announcer cannot accept their sessions", peers, b.Addr, b.Err),
				Fix:     "add NET_BIND_SERVICE to the container's securityContext.capabilities.add, or make the peers active (passive: false)",
				Data:    d,
			})
		case b.InUse && f.Heartbeat.Metrics != nil:
			out = append(out, Finding{
				Severity: Info, Reason: "BGPPortHeld",
				Message: fmt.Sprintf("TCP %s is in use, presumably by the announcer running on this node (its metrics answer at %s)", b.Addr, f.Heartbeat.MetricsURL),
				Data:    d,
			})
		case b.InUse:
			out = append(out, Finding{
				Severity: Warning, Reason: "BGPPortInUse",
				Message: fmt.Sprintf("passive BGPPeers %s select this node, and another process holds TCP %s (a routing daemon on the host?): their sessions reach it, not the announcer", peers, b.Addr),
				Fix:     "find it with `ss -tlpn 'sport = :179'` and stop it, or make the peers active (passive: false)",
				Data:    d,
			})
		default:
			out = append(out, Finding{
				Severity: Warning, Reason: "BGPPortBindFailed",
				Message: fmt.Sprintf("passive BGPPeers %s select this node, and binding TCP %s failed: %s", peers, b.Addr, b.Err),
				Fix:     "see the error: the announcer's listening socket fails the same way",
				Data:    d,
			})
		}
	}
	return out
}

func heartbeatFindings(f *Facts) []Finding {
	var out []Finding
	h := &f.Heartbeat
	port := ""
	if b := h.Bind; b != nil {
		port = strconv.Itoa(int(b.Addr.Port()))
		d := data("address", b.Addr.String(), "error", b.Err)
		switch {
		case b.Err == "":
		case b.InUse && h.Metrics != nil:
			out = append(out, Finding{
				Severity: Info, Reason: "HeartbeatPortHeld",
				Message: fmt.Sprintf("UDP %s is in use, presumably by the announcer running on this node (its metrics answer at %s)", b.Addr, h.MetricsURL),
				Data:    d,
			})
		case b.InUse:
			out = append(out, Finding{
				Severity: Error, Reason: "HeartbeatPortInUse",
				Message: fmt.Sprintf("another process holds UDP %s, the announcers' heartbeat port, and no announcer's metrics answer on this node: the announcer cannot start", b.Addr),
				Fix:     fmt.Sprintf("find it with `ss -ulpn 'sport = :%d'` and stop it, or move every announcer to another --heartbeat-port (if it is an announcer with metrics off, ignore this)", b.Addr.Port()),
				Data:    d,
			})
		case b.Denied:
			out = append(out, Finding{
				Severity: Error, Reason: "HeartbeatPortDenied",
				Message: fmt.Sprintf("binding UDP %s was refused (%s): a port below 1024 needs NET_BIND_SERVICE", b.Addr, b.Err),
				Fix:     "use the default --heartbeat-port 7473 (on every announcer), or add NET_BIND_SERVICE",
				Data:    d,
			})
		default:
			out = append(out, Finding{
				Severity: Error, Reason: "HeartbeatBindFailed",
				Message: fmt.Sprintf("binding UDP %s, where the announcer receives heartbeats, failed: %s", b.Addr, b.Err),
				Fix:     "the address must be this node's InternalIP, held by a local interface",
				Data:    d,
			})
		}
	}
	if port == "" {
		port = "the heartbeat port"
	} else {
		port = "UDP " + port
	}
	if h.MetricsURL != "" && h.Metrics == nil {
		out = append(out, Finding{
			Severity: Info, Reason: "AnnouncerNotRunning",
			Message: fmt.Sprintf("no announcer's metrics answer at %s (%s): the peers this node hears could not be read", h.MetricsURL, h.MetricsErr),
			Data:    data("url", h.MetricsURL, "error", h.MetricsErr),
		})
	}
	if m := h.Metrics; m != nil {
		out = append(out, metricsFindings(f, m, port)...)
	}
	out = append(out, Finding{
		Severity: Info, Reason: "HeartbeatLimits",
		Message: fmt.Sprintf("not checkable from one node: whether the other nodes receive this node's heartbeats (only they see it), and, before the announcers run, whether %s passes between nodes (a meaningful test needs the membership key at both ends)", port),
		Fix:     "run the check on every node once the announcers run, or compare baremetal_announcer_peers_connected across nodes: each should be the number of members minus one",
	})
	return out
}

func metricsFindings(f *Facts, m *AnnouncerMetrics, port string) []Finding {
	var out []Finding
	alive, connected := int(m.PeersAlive), int(m.PeersConnected)
	d := data("url", f.Heartbeat.MetricsURL, "peersAlive", strconv.Itoa(alive), "peersConnected", strconv.Itoa(connected))
	if f.API.Reached && m.MemberState != 1 {
		if want := len(f.API.Peers); alive < want {
			d["members"] = strconv.Itoa(want)
			out = append(out, Finding{
				Severity: Warning, Reason: "PeersNotHeard",
				Message: fmt.Sprintf("the announcer on this node hears %d of the %d other member nodes: the heartbeats of %d do not arrive (the metrics do not say which)", alive, want, want-alive),
				Fix:     fmt.Sprintf("on the other nodes, check that the announcer runs and hears this one; allow %s from every node's InternalIP to every other's (host firewall, security group) and check rp_filter", port),
				Data:    d,
			})
		}
	}
	if connected < alive {
		out = append(out, Finding{
			Severity: Warning, Reason: "PeersOneWay",
			Message: fmt.Sprintf("the announcer on this node hears %d peers but only %d hear it back: its heartbeats to %d of them are lost", alive, connected, alive-connected),
			Fix:     fmt.Sprintf("allow %s out of this node and into the others; a peer with another membership key drops them (its heartbeats_dropped_total{reason=\"unauthenticated\"} grows)", port),
			Data:    d,
		})
	}
	if n := m.Dropped["unauthenticated"]; n > 0 {
		out = append(out, Finding{
			Severity: Warning, Reason: "HeartbeatsUnauthenticated",
			Message: fmt.Sprintf("%.0f heartbeat datagrams failed authentication on this node: a sender uses another membership key, or something else sends to %s", n, port),
			Fix:     "every announcer must read the same Secret (--membership-secret); after a rotation keep the old key in data.previous until every announcer logs the new key id",
			Data:    data("dropped", strconv.FormatFloat(n, 'f', 0, 64)),
		})
	}
	if n := m.Dropped["not-member"] + m.Dropped["wrong-source"]; n > 0 {
		out = append(out, Finding{
			Severity: Warning, Reason: "HeartbeatsFromUnknownAddresses",
			Message: fmt.Sprintf("%.0f heartbeats came from addresses that are not a member node's InternalIP (not-member %.0f, wrong-source %.0f): NAT between nodes, a node sending from another address, or a --member-selector that differs between announcers",
				n, m.Dropped["not-member"], m.Dropped["wrong-source"]),
			Fix:  "each node must send to the others from its InternalIP (check its routes' source address), and every announcer needs the same --member-selector",
			Data: data("dropped", strconv.FormatFloat(n, 'f', 0, 64)),
		})
	}
	return out
}

// answerFindings reports the VIPs other MACs answered for. A single MAC of another member node
// is the owner answering, as it should; a MAC no node has, or several MACs, is a conflict.
func answerFindings(f *Facts) []Finding {
	var out []Finding
	local := f.localMACs()
	nodeOf := map[netip.Addr]string{}
	for _, p := range f.API.Peers {
		for _, a := range p.Addrs {
			nodeOf[a] = p.Name
		}
	}
	nodeByMAC := map[string]string{}
	answered := map[netip.Addr]map[string][]string{} // VIP -> MAC -> links
	for _, a := range f.Answers {
		if local[a.MAC] {
			continue
		}
		if name, ok := nodeOf[a.Addr]; ok {
			nodeByMAC[a.MAC] = name
		}
		if answered[a.Addr] == nil {
			answered[a.Addr] = map[string][]string{}
		}
		if l := a.Link.String(); !slices.Contains(answered[a.Addr][a.MAC], l) {
			answered[a.Addr][a.MAC] = append(answered[a.Addr][a.MAC], l)
		}
	}
	vips := f.AllVIPs()
	for _, v := range vips {
		macs := answered[v.Addr.Unmap()]
		if len(macs) == 0 {
			continue
		}
		var who []string
		nodes, strangers := 0, 0
		sortedMACs := slices.Sorted(maps.Keys(macs))
		for _, mac := range sortedMACs {
			if name, ok := nodeByMAC[mac]; ok {
				nodes++
				who = append(who, fmt.Sprintf("%s (node %s, on %s)", mac, name, strings.Join(macs[mac], ",")))
			} else {
				strangers++
				who = append(who, fmt.Sprintf("%s (no node's address answered from it; on %s)", mac, strings.Join(macs[mac], ",")))
			}
		}
		d := data("address", v.Addr.String(), "mac", strings.Join(sortedMACs, ","), "pool", v.Pool, "services", strings.Join(v.Services, ","))
		vipWords := describeVIP(v)
		switch {
		case len(macs) == 1 && nodes == 1:
			out = append(out, Finding{
				Severity: Info, Reason: "VIPAnsweredByNode",
				Message: fmt.Sprintf("%s is answered by %s: that node's announcer owns it (or its kernel holds the address: then the check there says so)", vipWords, who[0]),
				Data:    d,
			})
		case len(macs) == 1:
			out = append(out, Finding{
				Severity: Warning, Reason: "VIPAnsweredByOtherMAC",
				Message: fmt.Sprintf("%s is answered by MAC %s: another host may use the address (a static address, a DHCP lease, another load balancer such as MetalLB still running), unless it is a node's announcer on an interface other than its InternalIP's", vipWords, who[0]),
				Fix:     "find the host by its MAC (the switch's MAC table, `ip neigh`) and remove the address there, or take the address out of the pool",
				Data:    d,
			})
		default:
			fix := "find the hosts by their MACs (the switch's MAC table) and remove the address from all but the owner, or take it out of the pool"
			if nodes > 1 {
				fix = "several nodes answer: their kernels hold the VIP (kube-proxy in IPVS mode without strictARP: true, or the VIP configured on an interface); run the check on those nodes"
			}
			out = append(out, Finding{
				Severity: Error, Reason: "VIPAnsweredByManyMACs",
				Message: fmt.Sprintf("%s is answered by %d MACs: %s; clients reach whichever answered last", vipWords, len(macs), strings.Join(who, ", ")),
				Fix:     fix, Data: d,
			})
		}
	}
	for _, e := range f.ProbeErrors {
		out = append(out, Finding{
			Severity: Warning, Reason: "ProbeFailed",
			Message: "probing VIPs failed: " + e + ": other MACs answering for them were not looked for",
			Fix:     "see the error (a missing capability is reported on its own)",
			Data:    data("error", e),
		})
	}
	if len(vips) == 0 && f.API.Reached && f.API.VIPsErr == "" {
		out = append(out, Finding{
			Severity: Info, Reason: "NoVIPs",
			Message: "no LoadBalancer Service has a VIP from a layer-2 pool yet, and no --vip was given: no VIP was probed",
		})
	}
	return out
}

// describeVIP names a VIP with its pool and Services, for messages.
func describeVIP(v VIP) string {
	s := "VIP " + v.Addr.String()
	var extra []string
	if v.Pool != "" {
		extra = append(extra, "pool "+v.Pool)
	}
	if len(v.Services) > 0 {
		svcs := v.Services
		if len(svcs) > 3 {
			svcs = append(slices.Clone(svcs[:3]), fmt.Sprintf("%d more", len(v.Services)-3))
		}
		extra = append(extra, "Services "+strings.Join(svcs, ", "))
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, "; ") + ")"
	}
	return s
}
