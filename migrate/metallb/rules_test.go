package metallb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// convertFile converts testdata/name; TestGolden holds its whole output, these tests the points
// it is there for, and crdvalidation checks its objects against the CRDs.
func convertFile(t *testing.T, name string) *Result {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return mustConvert(t, string(data))
}

func TestMergeSelectors(t *testing.T) {
	host := func(v string) metav1.LabelSelector {
		return metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/hostname": v}}
	}
	in := func(k string, v ...string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: k, Operator: metav1.LabelSelectorOpIn, Values: v}}}
	}
	for _, tc := range []struct {
		name  string
		in    []metav1.LabelSelector
		want  *metav1.LabelSelector
		exact bool
	}{
		{"none", nil, nil, true},
		{"one", []metav1.LabelSelector{host("a")}, &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/hostname": "a"}}, true},
		{"an empty one matches all", []metav1.LabelSelector{host("a"), {}}, nil, true},
		{"same key merges", []metav1.LabelSelector{host("b"), host("a"), *in("kubernetes.io/hostname", "c", "a")}, in("kubernetes.io/hostname", "a", "b", "c"), true},
		{"different keys", []metav1.LabelSelector{host("a"), {MatchLabels: map[string]string{"rack": "1"}}}, &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/hostname": "a"}}, false},
		{"NotIn does not merge", []metav1.LabelSelector{host("a"), {MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"b"}}}}}, &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/hostname": "a"}}, false},
	} {
		got, exact := mergeSelectors(tc.in)
		if diff := cmp.Diff(tc.want, got); diff != "" || exact != tc.exact {
			t.Errorf("%s: exact %v, want %v; selector (-want +got):\n%s", tc.name, exact, tc.exact, diff)
		}
	}
}

func TestAvoidBuggyIPs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
		ok   bool
	}{
		// A /24 already loses .0 and .255 here; so does a /25's .255 (its broadcast).
		{[]string{"10.0.0.0/24", "10.0.1.128/25"}, []string{"10.0.0.0/24", "10.0.1.128/25"}, true},
		{[]string{"10.0.0.0/23"}, []string{"10.0.0.0/24", "10.0.1.0/24"}, true},
		{[]string{"10.0.0.250-10.0.1.3"}, []string{"10.0.0.250-10.0.0.254", "10.0.1.1-10.0.1.3"}, true},
		{[]string{"10.0.0.0-10.0.0.10"}, []string{"10.0.0.1-10.0.0.10"}, true},
		{[]string{"10.0.0.255/32", "10.0.0.7"}, []string{"10.0.0.7"}, true},
		{[]string{"2001:db8::/120"}, []string{"2001:db8::/120"}, true},
		{[]string{"10.0.0.0/16"}, []string{"10.0.0.0/16"}, false},
	} {
		var entries []entry
		for _, s := range tc.in {
			e, _, err := parseEntry(s)
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, e)
		}
		out, _, ok := avoidBuggy(entries)
		var got []string
		for _, e := range out {
			got = append(got, e.text)
		}
		if ok != tc.ok || !cmp.Equal(got, tc.want) {
			t.Errorf("%v: got %v ok=%v, want %v ok=%v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseEntry(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"192.168.1.240-192.168.1.250", "192.168.1.240-192.168.1.250", ""},
		{" 192.168.1.240 - 192.168.1.250 ", "192.168.1.240-192.168.1.250", ""},
		{"192.168.1.7/24", "192.168.1.0/24", ""},
		{"2001:db8::1", "2001:db8::1", ""},
		{"10.0.0.9-10.0.0.1", "", "ends below"},
		{"10.0.0.1-2001:db8::1", "", "mixes"},
		{"::ffff:10.0.0.1/128", "", "IPv4-mapped"},
		{"fe80::1%eth0", "", "zone"},
		{"pool", "", "neither"},
	} {
		e, _, err := parseEntry(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one with %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || e.text != tc.want):
			t.Errorf("%q: %q, %v; want %q", tc.in, e.text, err, tc.want)
		}
	}
}

func TestParseCommunity(t *testing.T) {
	for _, tc := range []struct{ in, standard, large, err string }{
		{"65535:65282", "65535:65282", "", ""},
		{"064500:010", "64500:10", "", ""},
		{"large:64500:1:2", "", "64500:1:2", ""},
		{"65536:1", "", "", "neither"},
		{"65535:0", "", "", "GRACEFUL_SHUTDOWN"},
		{"large:1:2", "", "", "large community"},
		{"NO_SUCH_ALIAS", "", "", "alias"},
	} {
		s, l, err := parseCommunity(tc.in)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) || s != tc.standard || l != tc.large {
			t.Errorf("%q: %q %q %v; want %q %q error with %q", tc.in, s, l, err, tc.standard, tc.large, tc.err)
		}
	}
}

func TestAdvertisements(t *testing.T) {
	r := convertFile(t, "advertisements.yaml")
	want := &v1alpha1.Announce{
		L2: &v1alpha1.L2Announce{
			Interfaces:   []string{"eth0", "eth1"},
			NodeSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: metav1.LabelSelectorOpIn, Values: []string{"n1", "n2"}}}},
		},
		BGP: &v1alpha1.BGPAnnounce{PeerSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: PeerLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"gone", "r1"}}}}},
	}
	if diff := cmp.Diff(want, r.Pools[0].Spec.Announce); diff != "" {
		t.Errorf("pool a's announce (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&v1alpha1.Announce{}, r.Pools[1].Spec.Announce); diff != "" {
		t.Errorf("a pool no advertisement selects is announced nowhere (-want +got):\n%s", diff)
	}
	if r.Peers[0].Labels[PeerLabel] != "r1" {
		t.Errorf("peer labels %v", r.Peers[0].Labels)
	}
	requireFinding(t, r, Decision, "L2Advertisement m/two", `"missing"`)
	requireFinding(t, r, Decision, "announced at layer 2 by one, two")
	requireFinding(t, r, Decision, `peer "gone"`)
	requireFinding(t, r, Decision, "IPAddressPool m/quiet", "announce: {}")
	requireFinding(t, r, NotConverted, "BGPAdvertisement m/b", "aggregationLengthV6", "/128")
}

func TestPeers(t *testing.T) {
	long := strings.Repeat("r", 70)
	r := convertFile(t, "peers.yaml")
	var names []string
	for _, p := range r.Peers {
		names = append(names, p.Name)
	}
	if diff := cmp.Diff([]string{"both-passwords", long, "timers"}, names); diff != "" {
		t.Fatalf("converted peers (-want +got):\n%s", diff)
	}
	requireFinding(t, r, NotConverted, "BGPPeer m/vrf", "spec.vrf")
	requireFinding(t, r, NotConverted, "BGPPeer m/dyn", "dynamicASN")
	requireFinding(t, r, NotConverted, "BGPPeer m/unnumbered", "unnumbered")

	both := r.Peers[0]
	if diff := cmp.Diff(&v1alpha1.SecretKeyRef{Namespace: PasswordNamespace, Name: "s", Key: "password"}, both.Spec.PasswordSecretRef); diff != "" {
		t.Errorf("passwordSecret (-want +got):\n%s", diff)
	}
	if len(r.Secrets) != 0 {
		t.Errorf("a Secret was made although passwordSecret is set: %v", r.Secrets)
	}
	requireFinding(t, r, NotConverted, "both-passwords", "spec.password", "Secret is used")
	requireFinding(t, r, Decision, "both-passwords", "copy Secret m/s")

	lp := r.Peers[1]
	if v := lp.Labels[PeerLabel]; len(v) > 63 || !strings.HasPrefix(v, "rrrr") {
		t.Errorf("label of a long name: %q", v)
	}
	if lp.Spec.HoldTime.Duration != 30*time.Second || lp.Spec.KeepaliveTime.Duration != 10*time.Second {
		t.Errorf("timers %v %v", lp.Spec.HoldTime, lp.Spec.KeepaliveTime)
	}

	timers := r.Peers[2]
	if timers.Spec.HoldTime != nil || timers.Spec.KeepaliveTime != nil || timers.Spec.EBGPMultihop != 0 || timers.Spec.SourceAddress != "" {
		t.Errorf("out-of-range values kept: %+v", timers.Spec)
	}
	requireFinding(t, r, NotConverted, "timers", "spec.holdTime", "2s")
	requireFinding(t, r, NotConverted, "timers", "spec.keepaliveTime", "not shorter")
	requireFinding(t, r, NotConverted, "timers", "spec.sourceAddress")
	requireFinding(t, r, Decision, "timers", "ebgpMultiHop", "iBGP")
	requireFinding(t, r, Decision, "BGPPeers both-passwords, timers, "+long, "gracefulRestart")
}

func TestMultiprotocolFamilies(t *testing.T) {
	// MetalLB sent IPv6 VIPs over an IPv4 session (MP-BGP); ours never does: reported.
	r := mustConvert(t, `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: dual, namespace: m}
spec: {addresses: [10.1.0.0/28, "2001:db8:1::/124"]}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: all, namespace: m}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: v4, namespace: m}
spec: {myASN: 1, peerASN: 2, peerAddress: 10.0.0.1}
`)
	requireFinding(t, r, NotConverted, "IPAddressPool m/dual", "IPv6 VIPs went to v4", "IPv6 BGPPeer")
}

func TestLegacyConfigMap(t *testing.T) {
	r := convertFile(t, "configmap-edge.yaml")
	if len(r.Peers) != 2 || r.Peers[0].Name != "peer-10-0-0-1" || r.Peers[1].Name != "peer-10-0-0-1-2" {
		t.Errorf("peers %v", r.Peers)
	}
	requireFinding(t, r, NotConverted, "bfd-profiles")
	requireFinding(t, r, NotConverted, "peers[0]", "hold-time", "soon")
	requireFinding(t, r, NotConverted, "peers[0]", "bfdProfile")
	requireFinding(t, r, NotConverted, "(odd)", "ospf")
	requireFinding(t, r, NotConverted, "(l2)", "bgp-advertisements")
	requireFinding(t, r, Ignored, "ConfigMap default/app-settings")
}

// TestMergedBGPAdvertisementsReported: MetalLB pairs each advertisement's peers with its own nodes;
// merged into one IPPool every node advertises to every peer, and the report must say so.
func TestMergedBGPAdvertisementsReported(t *testing.T) {
	in := `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p, namespace: metallb-system}
spec: {addresses: ["198.18.40.0/28"]}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: adv1, namespace: metallb-system}
spec:
  ipAddressPools: [p]
  peers: [r1]
  nodeSelectors: [{matchLabels: {rack: "1"}}]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: adv2, namespace: metallb-system}
spec:
  ipAddressPools: [p]
  peers: [r2]
  nodeSelectors: [{matchLabels: {rack: "2"}}]
`
	r, err := Convert(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range r.Findings {
		if strings.Contains(f.Message, "different peers or nodes") && strings.Contains(f.Message, "adv1") && strings.Contains(f.Message, "adv2") {
			found = true
		}
	}
	if !found {
		t.Errorf("the widened pairing is not reported; findings: %v", r.Findings)
	}
}
