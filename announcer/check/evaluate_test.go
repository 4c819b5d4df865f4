package check

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/tools/record"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01} // this node's eth0
	macB = "02:00:00:00:00:02"                      // node-b
	macX = "02:00:00:00:00:99"                      // a stranger

	vip4 = netip.MustParseAddr("198.18.0.240")
	vip6 = netip.MustParseAddr("2001:db8::240")
)

// healthy is a node as it should be, checked from an init container (no announcer running yet):
// only the notes about what cannot be checked.
func healthy() Facts {
	mp := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	return Facts{
		NodeName: "node-a",
		API: APIFacts{
			Reached: true, NodeFound: true,
			InternalIPs: []netip.Addr{netip.MustParseAddr("198.18.0.1")},
			KubeProxy:   &KubeProxyConfig{Mode: "iptables"},
			VIPs: []VIP{
				{Addr: vip4, Pool: "first-pool", Services: []string{"default/web"}},
				{Addr: vip6, Pool: "v6-pool", Services: []string{"default/web6"}},
			},
			Peers: []Peer{
				{Name: "node-b", Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.2")}},
				{Name: "node-c", Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.3")}},
			},
		},
		Interfaces: []Interface{
			{Name: "lo", Index: 1, Up: true, Running: true, Addrs: []netip.Prefix{mp("127.0.0.1/8"), mp("::1/128")}},
			{Name: "eth0", Index: 2, MAC: macA, Up: true, Running: true, Addrs: []netip.Prefix{mp("198.18.0.1/24"), mp("2001:db8::1/64")}},
		},
		Sockets: []SocketResult{
			{Link: Link{"ARP", "eth0"}, Needed: true},
			{Link: Link{"NDP", "eth0"}, Needed: true},
		},
		Heartbeat: HeartbeatFacts{
			Bind:       &BindResult{Addr: netip.MustParseAddrPort("198.18.0.1:7473")},
			MetricsURL: DefaultMetricsURL, MetricsErr: "connection refused",
		},
	}
}

// baseline are the findings of healthy().
var baseline = []string{"info AnnouncerNotRunning", "info HeartbeatLimits"}

func TestEvaluate(t *testing.T) {
	mp := netip.MustParsePrefix
	running := &AnnouncerMetrics{MemberState: 2, PeersAlive: 2, PeersConnected: 2, Dropped: map[string]float64{}}
	for _, tc := range []struct {
		name string
		edit func(*Facts)
		// want are the findings beyond the baseline ("severity Reason"); gone are baseline
		// findings that must not be there.
		want, gone []string
		// says are substrings the findings' messages must hold (the data the operator needs).
		says []string
	}{
		{name: "healthy", edit: func(*Facts) {}},

		// kube-proxy and the kernel.
		{
			name: "IPVS without strictARP, from the kernel and the ConfigMap",
			edit: func(f *Facts) {
				f.API.KubeProxy = &KubeProxyConfig{Mode: "ipvs"}
				f.Interfaces = append(f.Interfaces, Interface{Name: "kube-ipvs0", Addrs: []netip.Prefix{mp("10.96.0.1/32"), mp("198.18.0.240/32")}})
			},
			want: []string{"error IPVSWithoutStrictARP"},
			says: []string{"kube-ipvs0 holds 2 addresses: 10.96.0.1, 198.18.0.240", "arp_ignore on eth0 = 0", "mode: ipvs without strictARP", "every such node answers for every VIP"},
		},
		{
			name: "IPVS with strictARP in effect",
			edit: func(f *Facts) {
				f.API.KubeProxy = &KubeProxyConfig{Mode: "ipvs"}
				f.API.KubeProxy.IPVS.StrictARP = true
				f.AllARPIgnore, f.AllARPAnnounce = 1, 2
				f.Interfaces = append(f.Interfaces, Interface{Name: "kube-ipvs0", Addrs: []netip.Prefix{mp("198.18.0.240/32")}})
			},
		},
		{
			name: "IPVS strictARP configured but not in effect here",
			edit: func(f *Facts) {
				f.API.KubeProxy = &KubeProxyConfig{Mode: "IPVS"}
				f.API.KubeProxy.IPVS.StrictARP = true
				f.Interfaces = append(f.Interfaces, Interface{Name: "kube-ipvs0"})
			},
			want: []string{"error IPVSWithoutStrictARP"},
			says: []string{"strictARP: true, but it is not in effect"},
		},
		{
			name: "IPVS without strictARP, sysctls set by hand on this node",
			edit: func(f *Facts) {
				f.API.KubeProxy = &KubeProxyConfig{Mode: "ipvs"}
				f.AllARPIgnore, f.AllARPAnnounce = 1, 2
				f.Interfaces = append(f.Interfaces, Interface{Name: "kube-ipvs0"})
			},
			want: []string{"warning IPVSWithoutStrictARP"},
			says: []string{"presumably set by hand"},
		},
		{
			name: "IPVS in the ConfigMap, not started on this node",
			edit: func(f *Facts) { f.API.KubeProxy = &KubeProxyConfig{Mode: "ipvs"} },
			want: []string{"error IPVSWithoutStrictARP"},
			says: []string{"kube-ipvs0 is not on this node yet"},
		},
		{
			name: "IPVS seen in the kernel only, ConfigMap unreadable",
			edit: func(f *Facts) {
				f.API.KubeProxy, f.API.KubeProxyErr = nil, "forbidden"
				f.Interfaces = append(f.Interfaces, Interface{Name: "kube-ipvs0"})
			},
			want: []string{"error IPVSWithoutStrictARP", "info KubeProxyConfigUnreadable"},
			says: []string{"ConfigMap was not read"},
		},
		{
			name: "IPVS with per-interface sysctls that make it safe",
			edit: func(f *Facts) {
				f.API.KubeProxy = nil
				f.Interfaces[1].ARPIgnore, f.Interfaces[1].ARPAnnounce = 1, 2
				f.Interfaces = append(f.Interfaces, Interface{Name: "kube-ipvs0"})
			},
		},
		{
			name: "IPVS with unknown sysctls is not judged",
			edit: func(f *Facts) {
				f.API.KubeProxy = nil
				f.AllARPIgnore, f.AllARPAnnounce = -1, -1
				f.Interfaces = append(f.Interfaces, Interface{Name: "kube-ipvs0"})
			},
		},
		{
			name: "a VIP on lo with arp_ignore 0: the kernel answers ARP for it",
			edit: func(f *Facts) { f.Interfaces[0].Addrs = append(f.Interfaces[0].Addrs, mp("198.18.0.240/32")) },
			want: []string{"error KernelAnswersARP"},
			says: []string{"VIP 198.18.0.240 is configured on lo", "MAC 02:00:00:00:00:01", "arp_ignore on eth0 = 0"},
		},
		{
			name: "a VIP on lo with arp_ignore 1, arp_announce 0",
			edit: func(f *Facts) {
				f.AllARPIgnore = 1
				f.Interfaces[0].Addrs = append(f.Interfaces[0].Addrs, mp("198.18.0.240/32"))
			},
			want: []string{"warning ARPAnnounceLoose"},
			says: []string{"arp_announce = 0"},
		},
		{
			name: "a VIP on lo done right",
			edit: func(f *Facts) {
				f.AllARPIgnore, f.AllARPAnnounce = 1, 2
				f.Interfaces[0].Addrs = append(f.Interfaces[0].Addrs, mp("198.18.0.240/32"))
			},
		},
		{
			name: "a VIP on the announce interface itself: arp_ignore does not help",
			edit: func(f *Facts) {
				f.AllARPIgnore, f.AllARPAnnounce = 1, 2
				f.Interfaces[1].Addrs = append(f.Interfaces[1].Addrs, mp("198.18.0.240/32"), mp("2001:db8::240/128"))
			},
			want: []string{"error KernelAnswersARP", "error KernelAnswersNDP"},
			says: []string{"VIP 198.18.0.240 is configured on eth0 itself", "VIP 2001:db8::240 is configured on eth0 itself", "ip addr del 198.18.0.240 dev eth0"},
		},
		{
			name: "an IPv6 VIP on lo is not answered on eth0",
			edit: func(f *Facts) { f.Interfaces[0].Addrs = append(f.Interfaces[0].Addrs, mp("2001:db8::240/128")) },
		},

		// Capabilities.
		{
			name: "no NET_RAW",
			edit: func(f *Facts) {
				for i := range f.Sockets {
					f.Sockets[i].Err, f.Sockets[i].Denied = "socket: operation not permitted", true
				}
			},
			want: []string{"error MissingNetRaw"},
			says: []string{"ARP/eth0, NDP/eth0", "operation not permitted", "NET_RAW"},
		},
		{
			name: "a socket fails otherwise",
			edit: func(f *Facts) {
				f.Sockets[0].Err = "no such device"
				f.Sockets[1].Err, f.Sockets[1].Needed = "address family not supported", false
			},
			want: []string{"error SocketFailed", "warning SocketFailed"},
			says: []string{"ARP speaker's socket on eth0 failed: no such device"},
		},
		{
			name: "passive BGP peers without NET_BIND_SERVICE",
			edit: func(f *Facts) {
				f.API.PassiveBGPPeers = []string{"tor-a"}
				f.BGPBind = &BindResult{Addr: netip.MustParseAddrPort("0.0.0.0:179"), Err: "bind: permission denied", Denied: true}
			},
			want: []string{"error MissingNetBindService"},
			says: []string{"tor-a", "0.0.0.0:179"},
		},
		{
			name: "passive BGP port held by another process",
			edit: func(f *Facts) {
				f.API.PassiveBGPPeers = []string{"tor-a"}
				f.BGPBind = &BindResult{Addr: netip.MustParseAddrPort("0.0.0.0:179"), Err: "address already in use", InUse: true}
			},
			want: []string{"warning BGPPortInUse"},
		},

		// Interfaces.
		{
			name: "the node's InternalIP is on no interface",
			edit: func(f *Facts) { f.API.InternalIPs = []netip.Addr{netip.MustParseAddr("198.18.9.9")} },
			want: []string{"error NodeIPNotLocal"},
			says: []string{"198.18.9.9", "eth0 198.18.0.1/24 2001:db8::1/64"},
		},
		{
			name: "the interface is down",
			edit: func(f *Facts) { f.Interfaces[1].Up, f.Interfaces[1].Running = false, false },
			want: []string{"error InterfaceDown"},
			says: []string{"interface eth0 (it holds the node's InternalIP) is administratively down"},
		},
		{
			name: "no carrier",
			edit: func(f *Facts) { f.Interfaces[1].Running = false },
			want: []string{"error NoCarrier"},
		},
		{
			name: "a pool names an interface this node lacks",
			edit: func(f *Facts) { f.API.VIPs[0].Interfaces = []string{"eth9"} },
			want: []string{"warning InterfaceMissing"},
			says: []string{"interface eth9 (named by a pool's l2.interfaces) does not exist"},
		},
		{
			name: "--interface names an interface that does not exist",
			edit: func(f *Facts) { f.InterfaceOverride = "bond0" },
			want: []string{"error InterfaceMissing"},
		},
		{
			name: "IPv6 disabled where IPv6 VIPs are announced",
			edit: func(f *Facts) { f.Interfaces[1].IPv6Disabled = true },
			want: []string{"error IPv6Disabled"},
			says: []string{"IPv6 VIPs 2001:db8::240 are announced on eth0", "disable_ipv6 = 1"},
		},
		{
			name: "IPv6 disabled without IPv6 VIPs",
			edit: func(f *Facts) {
				f.Interfaces[1].IPv6Disabled = true
				f.API.VIPs = f.API.VIPs[:1]
			},
		},
		{
			name: "no IPv6 in the kernel",
			edit: func(f *Facts) { f.NoIPv6 = true },
			want: []string{"error IPv6Disabled"},
			says: []string{"the kernel has no IPv6"},
		},

		// The API.
		{
			name: "API unreachable, no node address",
			edit: func(f *Facts) { f.API = APIFacts{Err: "connection refused"} },
			want: []string{"warning APIUnreachable", "warning NodeIPUnknown"},
		},
		{
			name: "API unreachable, --node-ip and --vip given",
			edit: func(f *Facts) {
				f.API = APIFacts{Err: "connection refused"}
				f.NodeIPs, f.ExtraVIPs = []netip.Addr{netip.MustParseAddr("198.18.0.1")}, []netip.Addr{vip4}
			},
			want: []string{"warning APIUnreachable"},
		},
		{
			name: "node not found",
			edit: func(f *Facts) { f.API.NodeFound, f.API.InternalIPs = false, nil },
			want: []string{"error NodeNotFound", "warning NodeIPUnknown"},
		},
		{
			name: "node without InternalIP",
			edit: func(f *Facts) { f.API.InternalIPs = nil },
			want: []string{"error NoInternalIP"},
		},
		{
			name: "no VIPs yet",
			edit: func(f *Facts) { f.API.VIPs = nil },
			want: []string{"info NoVIPs"},
		},

		// Heartbeats.
		{
			name: "heartbeat port held by another process",
			edit: func(f *Facts) {
				f.Heartbeat.Bind.Err, f.Heartbeat.Bind.InUse = "bind: address already in use", true
			},
			want: []string{"error HeartbeatPortInUse"},
			says: []string{"198.18.0.1:7473", "ss -ulpn 'sport = :7473'"},
		},
		{
			name: "heartbeat port held by the running announcer, which hears everyone",
			edit: func(f *Facts) {
				f.Heartbeat.Bind.Err, f.Heartbeat.Bind.InUse = "bind: address already in use", true
				f.Heartbeat.Metrics, f.Heartbeat.MetricsErr = running, ""
			},
			want: []string{"info HeartbeatPortHeld"},
			gone: []string{"info AnnouncerNotRunning"},
		},
		{
			name: "heartbeat address not local",
			edit: func(f *Facts) {
				f.Heartbeat.Bind.Err = "bind: cannot assign requested address"
			},
			want: []string{"error HeartbeatBindFailed"},
		},
		{
			name: "peers not heard, one way, wrong key",
			edit: func(f *Facts) {
				f.Heartbeat.Metrics, f.Heartbeat.MetricsErr = &AnnouncerMetrics{
					MemberState: 2, PeersAlive: 1, PeersConnected: 0,
					Dropped: map[string]float64{"unauthenticated": 40, "not-member": 3},
				}, ""
			},
			want: []string{"warning PeersNotHeard", "warning PeersOneWay", "warning HeartbeatsUnauthenticated", "warning HeartbeatsFromUnknownAddresses"},
			gone: []string{"info AnnouncerNotRunning"},
			says: []string{"hears 1 of the 2 other member nodes", "hears 1 peers but only 0 hear it back", "40 heartbeat datagrams failed authentication", "UDP 7473"},
		},
		{
			name: "a joining announcer is not blamed for peers it has not heard yet",
			edit: func(f *Facts) {
				f.Heartbeat.Metrics, f.Heartbeat.MetricsErr = &AnnouncerMetrics{MemberState: 1, Dropped: map[string]float64{}}, ""
			},
			gone: []string{"info AnnouncerNotRunning"},
		},

		// The wire.
		{
			name: "a VIP answered by its owner, another node",
			edit: func(f *Facts) {
				f.Answers = []Answer{
					{Link: Link{"ARP", "eth0"}, Addr: netip.MustParseAddr("198.18.0.2"), MAC: macB},
					{Link: Link{"ARP", "eth0"}, Addr: vip4, MAC: macB},
				}
			},
			want: []string{"info VIPAnsweredByNode"},
			says: []string{"VIP 198.18.0.240 (pool first-pool; Services default/web) is answered by 02:00:00:00:00:02 (node node-b"},
		},
		{
			name: "a VIP answered by a stranger",
			edit: func(f *Facts) { f.Answers = []Answer{{Link: Link{"NDP", "eth0"}, Addr: vip6, MAC: macX}} },
			want: []string{"warning VIPAnsweredByOtherMAC"},
			says: []string{"VIP 2001:db8::240", "MAC 02:00:00:00:00:99"},
		},
		{
			name: "a VIP answered by two MACs",
			edit: func(f *Facts) {
				f.Answers = []Answer{
					{Link: Link{"ARP", "eth0"}, Addr: netip.MustParseAddr("198.18.0.2"), MAC: macB},
					{Link: Link{"ARP", "eth0"}, Addr: vip4, MAC: macB},
					{Link: Link{"ARP", "eth0"}, Addr: vip4, MAC: macX},
				}
			},
			want: []string{"error VIPAnsweredByManyMACs"},
			says: []string{"answered by 2 MACs: 02:00:00:00:00:02 (node node-b, on ARP/eth0), 02:00:00:00:00:99 (no node's address"},
		},
		{
			name: "our own MAC is not another MAC",
			edit: func(f *Facts) { f.Answers = []Answer{{Link: Link{"ARP", "eth0"}, Addr: vip4, MAC: macA.String()}} },
		},
		{
			name: "a probe failed",
			edit: func(f *Facts) { f.ProbeErrors = []string{"probing 198.18.0.240 on ARP/eth0: network is down"} },
			want: []string{"warning ProbeFailed"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := healthy()
			tc.edit(&f)
			got := Evaluate(f)
			var keys []string
			for _, g := range got {
				keys = append(keys, g.Severity.String()+" "+g.Reason)
				if g.Severity > Info && g.Fix == "" {
					t.Errorf("%s %s has no fix", g.Severity, g.Reason)
				}
			}
			want := append(slices.DeleteFunc(slices.Clone(baseline), func(s string) bool { return slices.Contains(tc.gone, s) }), tc.want...)
			slices.Sort(keys)
			slices.Sort(want)
			if !slices.Equal(keys, want) {
				t.Errorf("findings %q, want %q", keys, want)
			}
			text := ""
			for _, g := range got {
				text += g.String() + "\n"
			}
			for _, s := range tc.says {
				if !strings.Contains(text, s) {
					t.Errorf("no finding says %q:\n%s", s, text)
				}
			}
			for i := 1; i < len(got); i++ {
				if got[i].Severity > got[i-1].Severity {
					t.Errorf("findings not sorted most serious first: %s after %s", got[i], got[i-1])
				}
			}
		})
	}
}

func TestWorstAndSeverity(t *testing.T) {
	if _, ok := Worst(nil); ok {
		t.Error("Worst(nil) reports a severity")
	}
	if w, _ := Worst([]Finding{{Severity: Info}, {Severity: Error}, {Severity: Warning}}); w != Error {
		t.Errorf("Worst = %s, want error", w)
	}
	for _, s := range []Severity{Info, Warning, Error} {
		if got, err := ParseSeverity(strings.ToUpper(s.String())); err != nil || got != s {
			t.Errorf("ParseSeverity(%s) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseSeverity("fatal"); err == nil {
		t.Error("ParseSeverity(fatal) did not fail")
	}
	f := Finding{Severity: Warning, Reason: "R", Message: "m", Fix: "f"}
	if f.String() != "warning R: m. Fix: f" || f.EventType() != "Warning" || (Finding{Severity: Info}).EventType() != "Normal" {
		t.Errorf("String %q, EventType %q", f.String(), f.EventType())
	}
}

func TestLinks(t *testing.T) {
	f := healthy()
	f.API.VIPs[0].Interfaces = []string{"eth1", "eth2"}
	f.ExtraVIPs = []netip.Addr{netip.MustParseAddr("::ffff:198.18.0.241"), vip6}
	got := f.Links()
	want := map[Link][]netip.Addr{
		{"ARP", "eth1"}: {vip4},
		{"ARP", "eth2"}: {vip4},
		{"ARP", "eth0"}: {netip.MustParseAddr("198.18.0.241")},
		{"NDP", "eth0"}: {vip6},
	}
	if len(got) != len(want) {
		t.Fatalf("Links = %v, want %v", got, want)
	}
	for l, addrs := range want {
		if !slices.Equal(got[l], addrs) {
			t.Errorf("Links[%s] = %v, want %v", l, got[l], addrs)
		}
	}
}

func TestRecordEvents(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	RecordEvents(rec, "node-a", []Finding{
		{Severity: Error, Reason: "MissingNetRaw", Message: "m", Fix: "add NET_RAW"},
		{Severity: Info, Reason: "HeartbeatLimits", Message: "n"},
	}, Warning)
	close(rec.Events)
	var got []string
	for e := range rec.Events {
		got = append(got, e)
	}
	if want := []string{"Warning MissingNetRaw m. Fix: add NET_RAW"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}
