package check

import (
	"maps"
	"testing"
)

func TestParseSysctlInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"1\n", 1, true},
		{"0", 0, true},
		{"-1\n", -1, true},
		{"2\n\n", 0, false},
		{"", 0, false},
		{"\n", 0, false},
		{"4096\t87380\t6291456\n", 0, false}, // a multi-valued sysctl (tcp_rmem)
		{"one\n", 0, false},
		{" 1\n", 0, false},
	} {
		got, err := ParseSysctlInt([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSysctlInt(%q) = %d, %v; want %d, ok %t", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// kubeadmKubeProxy is config.conf as kubeadm v1.3x writes it, with IPVS on and strictARP off.
const kubeadmKubeProxy = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
iptables:
  masqueradeAll: false
  minSyncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
kind: KubeProxyConfiguration
mode: "ipvs"
nodePortAddresses: null
`

func TestParseKubeProxyConfig(t *testing.T) {
	for _, tc := range []struct {
		name         string
		in           string
		mode         string
		ipvs, strict bool
		ok           bool
	}{
		{"kubeadm, IPVS without strictARP", kubeadmKubeProxy, "ipvs", true, false, true},
		{"strictARP true", "mode: ipvs\nipvs:\n  strictARP: true\n", "ipvs", true, true, true},
		{"the seeds' edit", "kind: KubeProxyConfiguration\nmode: \"ipvs\"\nipvs:\n  strictARP: true\n", "ipvs", true, true, true},
		{"default mode", "kind: KubeProxyConfiguration\nmode: \"\"\n", "", false, false, true},
		{"nftables", "mode: nftables\n", "nftables", false, false, true},
		{"JSON", `{"mode":"ipvs","ipvs":{"strictARP":true}}`, "ipvs", true, true, true},
		{"empty", "  \n", "", false, false, false},
		{"not a mapping", "- a\n- b\n", "", false, false, false},
		{"strictARP of the wrong type", "mode: ipvs\nipvs:\n  strictARP: [yes]\n", "", false, false, false},
		{"broken YAML", "mode: ipvs\n  ipvs: {\n", "", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseKubeProxyConfig([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %t", err, tc.ok)
			}
			if err != nil {
				return
			}
			if c.Mode != tc.mode || c.IsIPVS() != tc.ipvs || c.IPVS.StrictARP != tc.strict {
				t.Errorf("got mode %q IPVS %t strictARP %t, want %q %t %t", c.Mode, c.IsIPVS(), c.IPVS.StrictARP, tc.mode, tc.ipvs, tc.strict)
			}
		})
	}
}

// announcerMetrics is a trimmed scrape of a running announcer, in the exposition format
// client_golang writes.
const announcerMetrics = `# HELP baremetal_announcer_heartbeats_dropped_total Heartbeat datagrams dropped, by reason.
# TYPE baremetal_announcer_heartbeats_dropped_total counter
baremetal_announcer_heartbeats_dropped_total{reason="unauthenticated"} 12
baremetal_announcer_heartbeats_dropped_total{reason="not-member"} 1
# HELP baremetal_announcer_member_state This announcer's membership state.
# TYPE baremetal_announcer_member_state gauge
baremetal_announcer_member_state 2
baremetal_announcer_peers_alive 4
baremetal_announcer_peers_connected 3
baremetal_announcer_wire_conflicts_total{kind="kernel"} 2
baremetal_announcer_bgp_session_error{error="no answer from 198.18.0.9:179 \"check\"\nthe MD5 password",peer="tor"} 1
baremetal_announcer_requests_total{interface="eth0",protocol="ARP"} 17 1700000000000
go_goroutines 42
`

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(announcerMetrics)
	if err != nil {
		t.Fatal(err)
	}
	if m.MemberState != 2 || m.PeersAlive != 4 || m.PeersConnected != 3 {
		t.Errorf("state %v alive %v connected %v, want 2 4 3", m.MemberState, m.PeersAlive, m.PeersConnected)
	}
	if want := map[string]float64{"unauthenticated": 12, "not-member": 1}; !maps.Equal(m.Dropped, want) {
		t.Errorf("Dropped = %v, want %v", m.Dropped, want)
	}
	if m.WireConflicts["kernel"] != 2 {
		t.Errorf("WireConflicts = %v", m.WireConflicts)
	}
	for _, bad := range []string{
		"go_goroutines 1\n", // not an announcer
		"baremetal_announcer_member_state\n",
		"baremetal_announcer_member_state two\n",
		`baremetal_announcer_heartbeats_dropped_total{reason="x} 1` + "\nbaremetal_announcer_member_state 2\n",
		`baremetal_announcer_heartbeats_dropped_total{reason=x} 1` + "\nbaremetal_announcer_member_state 2\n",
	} {
		if _, err := ParseMetrics(bad); err == nil {
			t.Errorf("ParseMetrics(%q) did not fail", bad)
		}
	}
}
