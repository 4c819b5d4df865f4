package bgpspeaker

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

func TestParseCommunity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		err  bool
	}{
		{"65000:100", 65000<<16 | 100, false},
		{"0:0", 0, false},
		{"65535:65535", 0xFFFFFFFF, false},
		{"no-export", 0xFFFFFF01, false},
		{"NO-ADVERTISE", 0xFFFFFF02, false},
		{"graceful-shutdown", 0xFFFF0000, false},
		{"65536:1", 0, true},
		{"1:65536", 0, true},
		{"1", 0, true},
		{"1:2:3", 0, true},
		{"-1:2", 0, true},
		{"+1:2", 0, true},
		{" 1:2", 0, true},
		{"", 0, true},
	} {
		got, err := ParseCommunity(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseCommunity(%q) = %#x, %v; want %#x, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseLargeCommunity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want LargeCommunity
		err  bool
	}{
		{"64512:1:2", LargeCommunity{64512, 1, 2}, false},
		{"4294967295:0:4294967295", LargeCommunity{4294967295, 0, 4294967295}, false},
		{"4294967296:0:0", LargeCommunity{}, true},
		{"1:2", LargeCommunity{}, true},
		{"1:2:3:4", LargeCommunity{}, true},
		{"a:b:c", LargeCommunity{}, true},
		{"1::3", LargeCommunity{}, true},
	} {
		got, err := ParseLargeCommunity(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseLargeCommunity(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// FuzzCommunities: a parsed value prints back to a string that parses to the same value.
func FuzzCommunities(f *testing.F) {
	for _, s := range []string{"65000:100", "no-export", "1:2:3", "4294967295:1:1", "65535:0", "0x1:2", ":::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseCommunity(s); err == nil {
			back, err := ParseCommunity(communityString(v))
			if err != nil || back != v {
				t.Fatalf("%q -> %#x -> %q -> %#x, %v", s, v, communityString(v), back, err)
			}
		}
		if v, err := ParseLargeCommunity(s); err == nil {
			back, err := ParseLargeCommunity(v.String())
			if err != nil || back != v {
				t.Fatalf("%q -> %v -> %v, %v", s, v, back, err)
			}
		}
	})
}

var (
	peerA = Peer{Name: "a", Address: netip.MustParseAddr("198.18.0.1"), ASN: 64500}
	peerB = Peer{Name: "b", Address: netip.MustParseAddr("2001:db8::1"), ASN: 64500}
	peerI = Peer{Name: "i", Address: netip.MustParseAddr("198.18.0.9"), ASN: 64512}
	v4    = netip.MustParsePrefix("198.18.100.1/32")
	v6    = netip.MustParsePrefix("2001:db8:ff::5/128")
	nh4   = netip.MustParseAddr("198.18.0.2")
	nh6   = netip.MustParseAddr("2001:db8::2")
)

func reasons(p Problems) []string {
	var out []string
	for _, x := range p {
		out = append(out, x.Reason)
	}
	return out
}

func TestMakePlanProblems(t *testing.T) {
	cfg := Config{ASN: 64512}
	one := uint32(1)
	for _, tc := range []struct {
		name string
		d    Desired
		want []string
	}{
		{"clean", Desired{Peers: []Peer{peerA, peerB}, Routes: []Route{{Prefix: v4, NextHop: nh4, Peers: []string{"a", "b"}}, {Prefix: v6, Peers: []string{"b"}}}}, nil},
		{"IPv6 route without IPv6 next hop over IPv4", Desired{Peers: []Peer{peerA}, Routes: []Route{{Prefix: v6, Peers: []string{"a"}}}},
			[]string{"IPv6 route 2001:db8:ff::5/128 has no IPv6 next hop for IPv4 session to 198.18.0.1"}},
		{"IPv4 route without next hop over IPv6", Desired{Peers: []Peer{peerB}, Routes: []Route{{Prefix: v4, Peers: []string{"b"}}}},
			[]string{"IPv4 route 198.18.100.1/32 has no IPv4 next hop for IPv6 session to 2001:db8::1"}},
		{"next hop of the other family", Desired{Peers: []Peer{peerA}, Routes: []Route{{Prefix: v4, NextHop: nh6, Peers: []string{"a"}}}},
			[]string{"IPv4 route 198.18.100.1/32 has next hop 2001:db8::2 of the other family"}},
		{"aggregate", Desired{Peers: []Peer{peerA, peerB}, Routes: []Route{{Prefix: netip.MustParsePrefix("198.18.2.0/24"), NextHop: nh4, Peers: []string{"a", "b"}},
			{Prefix: netip.MustParsePrefix("2001:db8:2::/64"), NextHop: nh6, Peers: []string{"a", "b"}}}}, nil},
		{"host bits set", Desired{Routes: []Route{{Prefix: netip.MustParsePrefix("198.18.100.1/24")}}},
			[]string{"route 198.18.100.1/24 has bits set beyond its length: the prefix is 198.18.100.0/24"}},
		{"default route", Desired{Routes: []Route{{Prefix: netip.MustParsePrefix("0.0.0.0/0")}, {Prefix: netip.MustParsePrefix("::/0")}}},
			[]string{"route 0.0.0.0/0 is a default route, which the speaker never announces", "route ::/0 is a default route, which the speaker never announces"}},
		{"IPv4-mapped", Desired{Routes: []Route{{Prefix: netip.MustParsePrefix("::ffff:198.18.100.1/128")}}},
			[]string{"route ::ffff:198.18.100.1/128 is an IPv4-mapped IPv6 prefix: use the IPv4 prefix 198.18.100.1/32"}},
		{"unknown peer", Desired{Routes: []Route{{Prefix: v4, NextHop: nh4, Peers: []string{"x"}}}},
			[]string{`route 198.18.100.1/32 names peer "x", which is not configured (or has problems)`}},
		{"localPref to eBGP", Desired{Peers: []Peer{peerA, peerI}, Routes: []Route{{Prefix: v4, NextHop: nh4, Peers: []string{"a", "i"}, LocalPref: &one}}},
			[]string{`localPref of route 198.18.100.1/32 is not sent to eBGP peer "a" (AS 64500): BGP carries LOCAL_PREF within an AS only`}},
		{"bad community", Desired{Routes: []Route{{Prefix: v4, Communities: []string{"1:99999"}, LargeCommunities: []string{"1:2"}}}},
			[]string{`route 198.18.100.1/32: community "1:99999": both halves must be numbers from 0 to 65535; the route is sent without it`,
				`route 198.18.100.1/32: large community "1:2": want three numbers a:b:c; the route is sent without it`}},
		{"duplicate route differing", Desired{Routes: []Route{{Prefix: v4, MED: &one}, {Prefix: v4}}},
			[]string{"route 198.18.100.1/32 is listed twice with different next hop or attributes; using the first"}},
		{"same address twice", Desired{Peers: []Peer{peerA, {Name: "a2", Address: peerA.Address, ASN: 1}}},
			[]string{`peers "a" and "a2" have the same address 198.18.0.1; using "a"`}},
		{"bad timers", Desired{Peers: []Peer{{Name: "h", Address: nh4, ASN: 1, HoldTime: 2e9}, {Name: "k", Address: nh6, ASN: 1, KeepaliveTime: 9e9}}},
			[]string{`peer "h": hold time 2s is below BGP's minimum of 3 s`, `peer "k": keepalive time 9s must be at least 1 s and below the hold time 9s`}},
		{"passive without listener", Desired{Peers: []Peer{{Name: "p", Address: nh4, ASN: 1, Passive: true}}},
			[]string{`peer "p": no socket, and why`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, probs := makePlan(cfg, tc.d, "no socket, and why")
			got, want := reasons(probs), tc.want
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRouteProblemPeers: a problem with a route as a whole concerns the peers it names, or every
// peer when it names none: the caller shows problems in the status of the peer they name, and
// drops those that name none.
func TestRouteProblemPeers(t *testing.T) {
	type got struct {
		Peer   string
		Prefix netip.Prefix
	}
	bad := netip.MustParsePrefix("198.18.100.1/24")
	for _, tc := range []struct {
		name string
		d    Desired
		want []got
	}{
		{"names peers", Desired{Peers: []Peer{peerA, peerB, peerI}, Routes: []Route{{Prefix: bad, Peers: []string{"b", "a", "b"}}}},
			[]got{{"a", bad}, {"b", bad}}},
		{"names none", Desired{Peers: []Peer{peerA, peerB}, Routes: []Route{{Prefix: bad}}},
			[]got{{"a", bad}, {"b", bad}}},
		{"bad community", Desired{Peers: []Peer{peerA, peerB}, Routes: []Route{{Prefix: v4, NextHop: nh4, Peers: []string{"a"}, Communities: []string{"x"}}}},
			[]got{{"a", v4}}},
		{"no peers at all", Desired{Routes: []Route{{Prefix: bad}}}, []got{{"", bad}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, probs := makePlan(Config{ASN: 64512}, tc.d, "")
			var g []got
			for _, p := range probs {
				g = append(g, got{p.Peer, p.Prefix})
			}
			if d := cmp.Diff(tc.want, g, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
				t.Errorf("problems %v (-want +got):\n%s", probs, d)
			}
		})
	}
}

func TestMakePlanAttributes(t *testing.T) {
	med := uint32(7)
	p, _ := makePlan(Config{ASN: 64512}, Desired{Peers: []Peer{peerA}, Routes: []Route{
		{Prefix: v4, NextHop: nh4, Peers: []string{"a"}, Communities: []string{"no-export", "65000:1", "no-export"},
			LargeCommunities: []string{"3:2:1", "1:2:3"}, MED: &med, GracefulShutdown: true},
		{Prefix: v4, NextHop: nh4, Communities: []string{"65000:1", "no-export"}, LargeCommunities: []string{"1:2:3", "3:2:1"}, MED: &med, GracefulShutdown: true},
	}}, "")
	got := p.paths[v4]
	if want := []uint32{65000<<16 | 1, GracefulShutdownCommunity, 0xFFFFFF01}; !slices.Equal(got.Communities, want) {
		t.Errorf("communities %#x, want %#x", got.Communities, want)
	}
	if want := []LargeCommunity{{1, 2, 3}, {3, 2, 1}}; !slices.Equal(got.Large, want) {
		t.Errorf("large %v, want %v", got.Large, want)
	}
	if got.LocalPref == nil || *got.LocalPref != 0 || got.MED == nil || *got.MED != 7 {
		t.Errorf("local-pref %v, MED %v; want 0 (graceful shutdown) and 7", got.LocalPref, got.MED)
	}
	if c := p.peers["a"]; c.Hold != DefaultHoldTime || c.Keepalive != DefaultKeepaliveTime || c.Connect != DefaultConnectTime || c.LocalASN != 64512 {
		t.Errorf("peer defaults %+v", c)
	}
}

// TestDiff checks the steps between plans, in particular that a route leaving a peer is
// withdrawn before the policy changes, and a peer gaining a route gets it re-sent.
func TestDiff(t *testing.T) {
	cfg := Config{ASN: 64512}
	mk := func(d Desired) plan { p, _ := makePlan(cfg, d, ""); return p }
	route := func(peers ...string) Route { return Route{Prefix: v4, NextHop: nh4, Peers: peers} }
	peers := []Peer{peerA, peerB}
	changedA := peerA
	changedA.Password = "x"
	empty := mk(Desired{})
	for _, tc := range []struct {
		name      string
		old, next plan
		want      change
	}{
		{"nothing", mk(Desired{Peers: peers, Routes: []Route{route("a")}}), mk(Desired{Peers: peers, Routes: []Route{route("a")}}), change{}},
		{"from scratch", empty, mk(Desired{Peers: peers, Routes: []Route{route("a")}}),
			change{addPeers: []string{"a", "b"}, announce: []netip.Prefix{v4}, policy: true}},
		{"peer changed", mk(Desired{Peers: peers}), mk(Desired{Peers: []Peer{changedA, peerB}}),
			change{delPeers: []string{"a"}, addPeers: []string{"a"}}},
		{"route gains a peer", mk(Desired{Peers: peers, Routes: []Route{route("a")}}), mk(Desired{Peers: peers, Routes: []Route{route("a", "b")}}),
			change{policy: true, resend: []netip.Addr{peerB.Address}}},
		{"route loses a peer", mk(Desired{Peers: peers, Routes: []Route{route("a", "b")}}), mk(Desired{Peers: peers, Routes: []Route{route("a")}}),
			change{withdraw: []netip.Prefix{v4}, announce: []netip.Prefix{v4}, policy: true}},
		{"attributes change", mk(Desired{Peers: peers, Routes: []Route{route("a")}}), mk(Desired{Peers: peers, Routes: []Route{{Prefix: v4, NextHop: nh4, Peers: []string{"a"}, Communities: []string{"1:1"}}}}),
			change{announce: []netip.Prefix{v4}}},
		{"route removed", mk(Desired{Peers: peers, Routes: []Route{route("a")}}), mk(Desired{Peers: peers}),
			change{withdraw: []netip.Prefix{v4}, policy: true}},
		// The deleted peer's session ends; the peer that stays must not see a withdrawal.
		{"peer deleted", mk(Desired{Peers: peers, Routes: []Route{route("a", "b")}}), mk(Desired{Peers: []Peer{peerB}, Routes: []Route{route("b")}}),
			change{delPeers: []string{"a"}, policy: true}},
		{"peer changed and route leaves it", mk(Desired{Peers: peers, Routes: []Route{route("a", "b")}}), mk(Desired{Peers: []Peer{changedA, peerB}, Routes: []Route{route("b")}}),
			change{delPeers: []string{"a"}, addPeers: []string{"a"}, policy: true}},
		{"peer deleted and route leaves a staying peer", mk(Desired{Peers: []Peer{peerA, peerB, peerI}, Routes: []Route{route("a", "b", "i")}}),
			mk(Desired{Peers: []Peer{peerB, peerI}, Routes: []Route{route("b")}}),
			change{delPeers: []string{"a"}, withdraw: []netip.Prefix{v4}, announce: []netip.Prefix{v4}, policy: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := diff(tc.old, tc.next)
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(change{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
				t.Errorf("diff (-want +got):\n%s", d)
			}
		})
	}
}

func TestWords(t *testing.T) {
	peer := netip.MustParseAddrPort("198.18.0.1:179")
	timeout := &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		err      error
		password bool
		want     string
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false, "connection refused by 198.18.0.1:179: no BGP speaker listens there"},
		{timeout, false, "no answer from 198.18.0.1:179"},
		{timeout, true, "no answer from 198.18.0.1:179 (the router drops the TCP handshake: check the MD5 password)"},
		{syscall.ECONNRESET, true, "connection reset by 198.18.0.1:179: check the MD5 password"},
		{syscall.EHOSTUNREACH, false, "no route to 198.18.0.1:179"},
		{errors.New("odd"), false, "connecting to 198.18.0.1:179: odd"},
	} {
		if got := dialError(tc.err, peer, tc.password); got != tc.want {
			t.Errorf("dialError(%v, %v) = %q, want %q", tc.err, tc.password, got, tc.want)
		}
	}
	port := func(netip.Addr) (uint16, bool) { return 179, false }
	for _, tc := range []struct {
		msg  string
		f    log.Fields
		want string
	}{
		{"sent notification", log.Fields{"Key": "198.18.0.1", "Data": bgp.NewMessageError(2, 2, nil, "as number mismatch expected 1, received 2")},
			"notification: bad peer AS: as number mismatch expected 1, received 2 (sent to 198.18.0.1)"},
		{"received notification", log.Fields{"Key": "198.18.0.1", "Code": uint8(6), "Subcode": uint8(2), "Communicated-Reason": "maintenance"},
			"notification: administrative shutdown: maintenance (from 198.18.0.1)"},
		{"received notification", log.Fields{"Key": "198.18.0.1", "Code": uint8(9), "Subcode": uint8(1)},
			"notification: error code 9 subcode 1 (from 198.18.0.1)"},
		{"hold timer expired", log.Fields{"Key": "198.18.0.1"}, "hold timer expired: nothing heard from 198.18.0.1 within the hold time"},
		{"failed to connect", log.Fields{"Key": "198.18.0.1", "Error": fmt.Errorf("dial: %w", syscall.ECONNREFUSED)},
			"connection refused by 198.18.0.1:179: no BGP speaker listens there"},
	} {
		ev, ok := interpret(tc.msg, tc.f, port)
		if !ok || ev.err != tc.want {
			t.Errorf("interpret(%q, %v) = %q, %v; want %q", tc.msg, tc.f, ev.err, ok, tc.want)
		}
	}
	if _, ok := interpret("Peer Up", log.Fields{"Key": "198.18.0.1"}, port); ok {
		t.Error("Peer Up interpreted as an error")
	}
}
