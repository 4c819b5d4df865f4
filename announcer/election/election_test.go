package election_test

import (
	"net/netip"
	"testing"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
)

// labels is a test Selector: every key must be present with the given value.
type labels map[string]string

func (s labels) Matches(l map[string]string) bool {
	for k, v := range s {
		if got, ok := l[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func healthy(name string, kv ...string) election.Node {
	n := election.Node{Name: name, Healthy: true}
	if len(kv) > 0 {
		n.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
	return n
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func TestEligible(t *testing.T) {
	vip := election.VIP{Addr: netip.MustParseAddr("198.18.0.10")}
	tests := []struct {
		name   string
		vip    election.VIP
		node   election.Node
		ok     bool
		reason string
	}{
		{"healthy node, unrestricted VIP", vip, healthy("n1"), true, ""},
		{"invalid VIP", election.VIP{}, healthy("n1"), false, election.ReasonInvalidVIP},
		{"no name", vip, election.Node{Healthy: true}, false, election.ReasonNoName},
		{"unhealthy", vip, election.Node{Name: "n1"}, false, election.ReasonUnhealthy},
		{"cordoned", vip, election.Node{Name: "n1", Healthy: true, Unschedulable: true}, false, election.ReasonUnschedulable},
		{"network unavailable", vip, election.Node{Name: "n1", Healthy: true, NetworkUnavailable: true}, false, election.ReasonNetworkUnavailable},
		{"exclude label, any value", vip, healthy("n1", election.ExcludeLabel, ""), false, election.ReasonExcluded},
		{"exclude label true", vip, healthy("n1", election.ExcludeLabel, "true"), false, election.ReasonExcluded},
		{"other labels only", vip, healthy("n1", "zone", "a"), true, ""},
		{"selector matches", election.VIP{Addr: vip.Addr, NodeSelector: labels{"zone": "a"}}, healthy("n1", "zone", "a"), true, ""},
		{"selector does not match", election.VIP{Addr: vip.Addr, NodeSelector: labels{"zone": "a"}}, healthy("n1", "zone", "b"), false, election.ReasonNotSelected},
		{"selector, node without labels", election.VIP{Addr: vip.Addr, NodeSelector: labels{"zone": "a"}}, healthy("n1"), false, election.ReasonNotSelected},
		{"empty selector matches all", election.VIP{Addr: vip.Addr, NodeSelector: labels{}}, healthy("n1"), true, ""},
		{"candidate", election.VIP{Addr: vip.Addr, Candidates: set("n1", "n2")}, healthy("n1"), true, ""},
		{"not a candidate", election.VIP{Addr: vip.Addr, Candidates: set("n2")}, healthy("n1"), false, election.ReasonNotCandidate},
		{"candidate mapped to false", election.VIP{Addr: vip.Addr, Candidates: map[string]bool{"n1": false}}, healthy("n1"), false, election.ReasonNotCandidate},
		{"empty candidates: nobody", election.VIP{Addr: vip.Addr, Candidates: map[string]bool{}}, healthy("n1"), false, election.ReasonNotCandidate},
		{"unhealthy is reported before cordoned", vip, election.Node{Name: "n1", Unschedulable: true}, false, election.ReasonUnhealthy},
		{"candidates are reported before selector", election.VIP{Addr: vip.Addr, NodeSelector: labels{"zone": "a"}, Candidates: set("n2")}, healthy("n1"), false, election.ReasonNotCandidate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := election.Eligible(tt.vip, tt.node)
			if ok != tt.ok || reason != tt.reason {
				t.Errorf("Eligible() = %v, %q; want %v, %q", ok, reason, tt.ok, tt.reason)
			}
		})
	}
}

func TestOwner(t *testing.T) {
	// For 198.18.0.10 the rendezvous ranking is node-c > node-a > node-d > node-e > node-b
	// (pinned by TestScoreGolden); for 2001:db8::10 it is node-e > node-c > node-b > node-a > node-d.
	addr := netip.MustParseAddr("198.18.0.10")
	vip := election.VIP{Addr: addr}
	five := func(edit func(ns []election.Node)) []election.Node {
		ns := []election.Node{
			healthy("node-a", "zone", "a"),
			healthy("node-b", "zone", "b"),
			healthy("node-c", "zone", "a"),
			healthy("node-d", "zone", "a"),
			healthy("node-e", "zone", "b"),
		}
		if edit != nil {
			edit(ns)
		}
		return ns
	}
	const b, c = 1, 2 // indexes into five()
	tests := []struct {
		name   string
		vip    election.VIP
		nodes  []election.Node
		claims []election.Claim
		want   string // "" = no owner
	}{
		{"unclaimed: highest score", vip, five(nil), nil, "node-c"},
		{"unclaimed, IPv6", election.VIP{Addr: netip.MustParseAddr("2001:db8::10")}, five(nil), nil, "node-e"},
		{"unclaimed, top node unhealthy", vip, five(func(ns []election.Node) { ns[c].Healthy = false }), nil, "node-a"},
		{"unclaimed, top node cordoned", vip, five(func(ns []election.Node) { ns[c].Unschedulable = true }), nil, "node-a"},
		{"unclaimed, top node network unavailable", vip, five(func(ns []election.Node) { ns[c].NetworkUnavailable = true }), nil, "node-a"},
		{"unclaimed, top node excluded", vip, five(func(ns []election.Node) { ns[c].Labels[election.ExcludeLabel] = "" }), nil, "node-a"},

		{"sticky: claimer keeps the VIP over higher scores", vip, five(nil), []election.Claim{{"node-b", 3}}, "node-b"},
		{"highest Gen wins", vip, five(nil), []election.Claim{{"node-b", 3}, {"node-e", 5}}, "node-e"},
		{"highest Gen wins over score", vip, five(nil), []election.Claim{{"node-c", 1}, {"node-b", 2}}, "node-b"},
		{"equal Gen: higher score wins", vip, five(nil), []election.Claim{{"node-b", 3}, {"node-e", 3}}, "node-e"},
		{"equal Gen: higher score wins, other order", vip, five(nil), []election.Claim{{"node-e", 3}, {"node-b", 3}}, "node-e"},
		{"equal Gen: top of ranking", vip, five(nil), []election.Claim{{"node-b", 4}, {"node-a", 4}, {"node-d", 4}}, "node-a"},
		{"several claims by one node: highest counts", vip, five(nil), []election.Claim{{"node-b", 1}, {"node-e", 5}, {"node-b", 7}}, "node-b"},

		{"claim by unhealthy node ignored", vip, five(func(ns []election.Node) { ns[b].Healthy = false }), []election.Claim{{"node-b", 9}, {"node-e", 1}}, "node-e"},
		{"only claim by unhealthy node: rule 3", vip, five(func(ns []election.Node) { ns[b].Healthy = false }), []election.Claim{{"node-b", 9}}, "node-c"},
		{"claim by cordoned node ignored", vip, five(func(ns []election.Node) { ns[b].Unschedulable = true }), []election.Claim{{"node-b", 9}}, "node-c"},
		{"claim by excluded node ignored", vip, five(func(ns []election.Node) { ns[b].Labels[election.ExcludeLabel] = "true" }), []election.Claim{{"node-b", 9}}, "node-c"},
		{"claim by unknown node ignored", vip, five(nil), []election.Claim{{"node-z", 9}}, "node-c"},
		{"claim by unknown node ignored, known claimer wins", vip, five(nil), []election.Claim{{"node-z", 9}, {"node-d", 1}}, "node-d"},
		{"claim with empty name ignored", vip, five(nil), []election.Claim{{"", 9}}, "node-c"},
		{"claim by unselected node ignored", election.VIP{Addr: addr, NodeSelector: labels{"zone": "a"}}, five(nil), []election.Claim{{"node-b", 9}}, "node-c"},
		{"claim by non-candidate ignored", election.VIP{Addr: addr, Candidates: set("node-d", "node-e")}, five(nil), []election.Claim{{"node-b", 9}}, "node-d"},

		{"Local: best candidate", election.VIP{Addr: addr, Candidates: set("node-d", "node-e")}, five(nil), nil, "node-d"},
		{"Local: candidate mapped to false is not one", election.VIP{Addr: addr, Candidates: map[string]bool{"node-d": false, "node-e": true}}, five(nil), nil, "node-e"},
		{"Local: candidate that is not a node", election.VIP{Addr: addr, Candidates: set("node-z", "node-b")}, five(nil), nil, "node-b"},
		{"Local: claiming candidate keeps it", election.VIP{Addr: addr, Candidates: set("node-b", "node-c")}, five(nil), []election.Claim{{"node-b", 2}}, "node-b"},
		{"Local: no candidates", election.VIP{Addr: addr, Candidates: map[string]bool{}}, five(nil), nil, ""},
		{"Local: only candidate unhealthy", election.VIP{Addr: addr, Candidates: set("node-b")}, five(func(ns []election.Node) { ns[b].Healthy = false }), nil, ""},

		{"selector: best matching node", election.VIP{Addr: addr, NodeSelector: labels{"zone": "b"}}, five(nil), nil, "node-e"},
		{"selector and candidates", election.VIP{Addr: addr, NodeSelector: labels{"zone": "a"}, Candidates: set("node-b", "node-d", "node-e")}, five(nil), nil, "node-d"},
		{"selector matches nothing", election.VIP{Addr: addr, NodeSelector: labels{"zone": "x"}}, five(nil), nil, ""},

		{"no nodes", vip, nil, nil, ""},
		{"no nodes, claims", vip, nil, []election.Claim{{"node-a", 1}}, ""},
		{"all unhealthy", vip, five(func(ns []election.Node) {
			for i := range ns {
				ns[i].Healthy = false
			}
		}), []election.Claim{{"node-a", 5}}, ""},
		{"invalid VIP", election.VIP{}, five(nil), []election.Claim{{"node-a", 5}}, ""},
		{"node listed twice, once unhealthy: not eligible", vip, append(five(nil), election.Node{Name: "node-c"}), nil, "node-a"},
		{"node listed twice, unhealthy first: not eligible", vip, append([]election.Node{{Name: "node-c"}}, five(nil)...), nil, "node-a"},
		{"node listed twice, both healthy: eligible", vip, append(five(nil), healthy("node-c")), nil, "node-c"},
		{"single node", vip, []election.Node{healthy("node-b")}, nil, "node-b"},

		// Partitions meeting again: each side elected and claimed with its own Gen.
		{"heal: side that saw more wins", vip, five(nil), []election.Claim{{"node-c", 3}, {"node-b", 2}}, "node-c"},
		{"heal: isolated node (Gen 1) yields", vip, five(nil), []election.Claim{{"node-c", 1}, {"node-e", 4}}, "node-e"},
		{"heal: equal sides, score decides", vip, five(nil), []election.Claim{{"node-a", 2}, {"node-e", 2}}, "node-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := election.Owner(tt.vip, tt.nodes, tt.claims)
			if ok != (tt.want != "") || got != tt.want {
				t.Errorf("Owner() = %q, %v; want %q", got, ok, tt.want)
			}
			if ok {
				var n election.Node
				for _, x := range tt.nodes {
					if x.Name == got {
						n = x
					}
				}
				if el, why := election.Eligible(tt.vip, n); !el {
					t.Errorf("owner %s is not eligible: %s", got, why)
				}
			}
		})
	}
}

// TestScoreGolden pins Score: announcers of different versions must rank nodes alike.
func TestScoreGolden(t *testing.T) {
	tests := []struct {
		addr string
		node string
		want uint64
	}{
		{"198.18.0.10", "node-c", 0xc4fd1bec49462d34},
		{"198.18.0.10", "node-a", 0xc16f7fa5f4b76d03},
		{"198.18.0.10", "node-d", 0xa8d50cb40de861ff},
		{"198.18.0.10", "node-e", 0x859d7f6ab69bbc95},
		{"198.18.0.10", "node-b", 0x1d7ef53b97d9a5fa},
		{"2001:db8::10", "node-e", 0xb2dd25521a044755},
		{"2001:db8::10", "node-c", 0x855c9e0c2c59f6b8},
		{"2001:db8::10", "node-b", 0x7b7d7c59755ea59a},
		{"2001:db8::10", "node-a", 0x507cfaf63a7fc36a},
		{"2001:db8::10", "node-d", 0x47bffb67e29e1628},
	}
	for _, tt := range tests {
		if got := election.Score(netip.MustParseAddr(tt.addr), tt.node); got != tt.want {
			t.Errorf("Score(%s, %s) = %#x; want %#x", tt.addr, tt.node, got, tt.want)
		}
	}
	// The zone does not take part; the family does.
	a := netip.MustParseAddr("fe80::1")
	if election.Score(a, "n") != election.Score(a.WithZone("eth0"), "n") {
		t.Error("Score depends on the IPv6 zone")
	}
	v4 := netip.MustParseAddr("198.18.0.1")
	if election.Score(v4, "n") == election.Score(netip.AddrFrom16(v4.As16()), "n") {
		t.Error("Score does not tell 198.18.0.1 from ::ffff:198.18.0.1")
	}
}

func TestAssign(t *testing.T) {
	a10 := netip.MustParseAddr("198.18.0.10")
	a11 := netip.MustParseAddr("198.18.0.11")
	a12 := netip.MustParseAddr("198.18.0.12")
	nodes := []election.Node{
		healthy("node-a", "zone", "a"),
		healthy("node-b", "zone", "b"),
		healthy("node-c", "zone", "a"),
		healthy("node-d", "zone", "a"),
		healthy("node-e", "zone", "b"),
	}
	vips := []election.VIP{
		{Addr: a10},
		{Addr: a11, NodeSelector: labels{"zone": "x"}},
		{Addr: a12},
	}
	claims := map[netip.Addr][]election.Claim{a12: {{"node-b", 1}}, a11: {{"node-b", 1}}}
	got := election.Assign(vips, nodes, claims)
	want := map[netip.Addr]string{a10: "node-c", a12: "node-b"}
	if len(got) != len(want) {
		t.Fatalf("Assign() = %v; want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Assign()[%s] = %q; want %q", k, got[k], v)
		}
	}
	if election.Assign(nil, nodes, nil) == nil {
		t.Error("Assign(nil) returned a nil map")
	}
}

// TestAssignSharedAddress: several VIP entries with one address (Services sharing it) elect
// one owner that is eligible for all of them, whatever their order.
func TestAssignSharedAddress(t *testing.T) {
	addr := netip.MustParseAddr("198.18.0.10")
	nodes := []election.Node{
		healthy("node-a", "zone", "a"),
		healthy("node-b", "zone", "b"),
		healthy("node-c", "zone", "a"),
		healthy("node-d", "zone", "a"),
		healthy("node-e", "zone", "b"),
	}
	tests := []struct {
		name string
		vips []election.VIP
		want string
	}{
		{"candidates intersect", []election.VIP{
			{Addr: addr, Candidates: set("node-b", "node-d", "node-e")},
			{Addr: addr, Candidates: set("node-c", "node-e", "node-b")},
		}, "node-e"},
		{"candidates and selector", []election.VIP{
			{Addr: addr, Candidates: set("node-b", "node-d", "node-c")},
			{Addr: addr, NodeSelector: labels{"zone": "b"}},
			{Addr: addr},
		}, "node-b"},
		{"empty intersection", []election.VIP{
			{Addr: addr, Candidates: set("node-b")},
			{Addr: addr, Candidates: set("node-c")},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, vips := range [][]election.VIP{tt.vips, reversed(tt.vips)} {
				got, ok := election.Assign(vips, nodes, nil)[addr]
				if ok != (tt.want != "") || got != tt.want {
					t.Errorf("Assign()[%s] = %q, %v; want %q", addr, got, ok, tt.want)
				}
			}
		})
	}
}

func reversed[T any](s []T) []T {
	r := make([]T, len(s))
	for i, x := range s {
		r[len(s)-1-i] = x
	}
	return r
}
