//go:build linux

package bgpspeaker_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/bgpspeaker"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/frr"
)

// TestLabAdvertise: the session comes up within 3 s, and a VIP reaches the router's BGP table
// and kernel with our next hop and attributes, changes, leaves, and is de-preferred.
func TestLabAdvertise(t *testing.T) {
	// The router sends us one route of its own: the status counts it.
	l := newLab(t, func(c *frr.LabRouter) {
		c.Extra = " no bgp network import-check\n address-family ipv4 unicast\n  network 198.51.100.0/24\n exit-address-family"
	})
	s := startSpeaker(t, bgpspeaker.Config{ASN: nodeASN})
	vip := netip.MustParsePrefix("198.18.100.1/32")
	r := bgpspeaker.Route{
		Prefix: vip, NextHop: l.hostV4, Peers: []string{"r"},
		Communities: []string{"65000:100", "no-export"}, LargeCommunities: []string{"64512:1:2"}, MED: ptr(50),
	}
	start := time.Now()
	if probs := set(t, s, bgpspeaker.Desired{Peers: []bgpspeaker.Peer{l.peer("r", false)}, Routes: []bgpspeaker.Route{r}}); len(probs) != 0 {
		t.Fatalf("problems: %v", probs)
	}
	waitFor(t, 3*time.Second, "session established", established(s, "r"))
	up := time.Since(start)
	waitFor(t, 3*time.Second, "route in RIB and kernel", l.rib(vip, l.hostV4))
	t.Logf("session established %s after Set, route in the router's kernel %s after Set", up, time.Since(start))

	p := l.route(t, vip).Paths[0]
	if got := p.Communities(); !slices.Equal(got, []string{"65000:100", "no-export"}) {
		t.Errorf("communities %v, want 65000:100 no-export", got)
	}
	if got := p.LargeCommunities(); !slices.Equal(got, []string{"64512:1:2"}) {
		t.Errorf("large communities %v, want 64512:1:2", got)
	}
	if p.MED == nil || *p.MED != 50 {
		t.Errorf("MED %v, want 50", p.MED)
	}
	waitFor(t, 2*time.Second, "status counts", func() string {
		if st := status(s, "r"); st.Advertised != 1 || st.Received != 1 || st.UpdatesSent == 0 || st.LastError != "" {
			return st.String()
		}
		return ""
	})

	// Idempotent: the same state again changes nothing on the wire.
	before := status(s, "r").UpdatesSent
	set(t, s, bgpspeaker.Desired{Peers: []bgpspeaker.Peer{l.peer("r", false)}, Routes: []bgpspeaker.Route{r}})
	time.Sleep(200 * time.Millisecond)
	if after := status(s, "r"); after.UpdatesSent != before || after.State != bgpspeaker.StateEstablished {
		t.Errorf("same Set again: %s, want %d updates and the session kept", after, before)
	}

	t.Run("graceful shutdown", func(t *testing.T) {
		r := r
		r.GracefulShutdown = true
		set(t, s, bgpspeaker.Desired{Peers: []bgpspeaker.Peer{l.peer("r", false)}, Routes: []bgpspeaker.Route{r}})
		waitFor(t, 2*time.Second, "graceful-shutdown community", func() string {
			p := l.route(t, vip).Paths[0]
			if !slices.Contains(p.Communities(), "graceful-shutdown") || p.LocalPref == nil || *p.LocalPref != 0 {
				return fmt.Sprintf("communities %v, local-pref %v", p.Communities(), p.LocalPref)
			}
			return ""
		})
	})

	t.Run("IPv6 route over the IPv4 session", func(t *testing.T) {
		v6 := netip.MustParsePrefix("2001:db8:ff::5/128")
		bad := bgpspeaker.Route{Prefix: v6, Peers: []string{"r"}}
		good := bgpspeaker.Route{Prefix: netip.MustParsePrefix("2001:db8:ff::6/128"), NextHop: l.hostV6, Peers: []string{"r"}}
		probs := set(t, s, bgpspeaker.Desired{Peers: []bgpspeaker.Peer{l.peer("r", false)}, Routes: []bgpspeaker.Route{r, bad, good}})
		want := fmt.Sprintf("IPv6 route 2001:db8:ff::5/128 has no IPv6 next hop for IPv4 session to %s", l.routerV4)
		if len(probs) != 1 || probs[0].Reason != want || probs[0].Peer != "r" || probs[0].Prefix != v6 {
			t.Errorf("problems %v, want one: %q", probs, want)
		}
		waitFor(t, 3*time.Second, "IPv6 route with explicit next hop", l.rib(good.Prefix, l.hostV6))
		waitFor(t, time.Second, "refused route absent", l.rib(v6))
	})

	t.Run("withdraw", func(t *testing.T) {
		set(t, s, bgpspeaker.Desired{Peers: []bgpspeaker.Peer{l.peer("r", false)}})
		d := waitFor(t, 2*time.Second, "route withdrawn from RIB and kernel", l.rib(vip))
		t.Logf("withdrawn from the router's kernel %s after Set", d)
		if st := status(s, "r"); st.State != bgpspeaker.StateEstablished {
			t.Errorf("after withdrawing everything: %s", st)
		}
	})
}

// TestLabIPv6Session: an IPv6 VIP over an IPv6 session, next hop from the session.
func TestLabIPv6Session(t *testing.T) {
	l := newLab(t, nil)
	s := startSpeaker(t, bgpspeaker.Config{ASN: nodeASN})
	vip := netip.MustParsePrefix("2001:db8:ff::1/128")
	probs := set(t, s, bgpspeaker.Desired{
		Peers:  []bgpspeaker.Peer{l.peer("r6", true)},
		Routes: []bgpspeaker.Route{{Prefix: vip, Peers: []string{"r6"}}},
	})
	if len(probs) != 0 {
		t.Fatalf("problems: %v", probs)
	}
	waitFor(t, 3*time.Second, "IPv6 session", established(s, "r6"))
	waitFor(t, 3*time.Second, "IPv6 route in RIB and kernel", l.rib(vip, l.hostV6))
}

// TestLabPerPeer: two sessions to the router (over IPv4 and IPv6); a route goes only to the
// peers it names, and moves when its peers change.
func TestLabPerPeer(t *testing.T) {
	l := newLab(t, nil)
	s := startSpeaker(t, bgpspeaker.Config{ASN: nodeASN})
	peers := []bgpspeaker.Peer{l.peer("v4", false), l.peer("v6", true)}
	a, b := netip.MustParsePrefix("198.18.100.1/32"), netip.MustParsePrefix("198.18.100.2/32")
	routes := func(aPeers, bPeers []string) []bgpspeaker.Route {
		return []bgpspeaker.Route{
			{Prefix: a, NextHop: l.hostV4, Peers: aPeers},
			{Prefix: b, NextHop: l.hostV4, Peers: bPeers},
		}
	}
	from := l.from
	set(t, s, bgpspeaker.Desired{Peers: peers, Routes: routes([]string{"v4"}, []string{"v4", "v6"})})
	waitFor(t, 3*time.Second, "v4 session", established(s, "v4"))
	waitFor(t, 3*time.Second, "v6 session", established(s, "v6"))
	v4, v6 := l.hostV4.String(), l.hostV6.String()
	waitFor(t, 2*time.Second, "a from v4 only", from(a, v4))
	waitFor(t, 2*time.Second, "b from both", from(b, v4, v6))
	if a4, a6 := status(s, "v4").Advertised, status(s, "v6").Advertised; a4 != 2 || a6 != 1 {
		t.Errorf("advertised counts v4 %d, v6 %d; want 2 and 1 (what each peer is sent, not every path)", a4, a6)
	}

	set(t, s, bgpspeaker.Desired{Peers: peers, Routes: routes([]string{"v6"}, []string{"v4"})})
	waitFor(t, 2*time.Second, "a moved to v6", from(a, v6))
	waitFor(t, 2*time.Second, "b left v6", from(b, v4))

	set(t, s, bgpspeaker.Desired{Peers: peers, Routes: routes([]string{"v4", "v6"}, nil)})
	waitFor(t, 2*time.Second, "a on both", from(a, v4, v6))
	waitFor(t, 2*time.Second, "b nowhere", from(b))
}

// TestLabWrongASN: the router is not the AS we expect; the status says so.
func TestLabWrongASN(t *testing.T) {
	l := newLab(t, nil)
	s := startSpeaker(t, bgpspeaker.Config{ASN: nodeASN})
	p := l.peer("r", false)
	p.ASN = 64999
	set(t, s, bgpspeaker.Desired{Peers: []bgpspeaker.Peer{p}})
	waitFor(t, 4*time.Second, "bad peer AS reported", func() string {
		if st := status(s, "r"); !strings.Contains(st.LastError, "notification: bad peer AS") || st.State == bgpspeaker.StateEstablished {
			return st.String()
		}
		return ""
	})
	t.Logf("status: %s", status(s, "r"))
}

// TestLabMD5: with the router's password the session comes up; with another one it never
// does, and the status points at the password.
func TestLabMD5(t *testing.T) {
	l := newLab(t, func(c *frr.LabRouter) { c.Password = "s3cret" })
	s := startSpeaker(t, bgpspeaker.Config{ASN: nodeASN})
	good, bad := l.peer("good", false), l.peer("bad", true)
	good.Password, bad.Password = "s3cret", "wrong"
	set(t, s, bgpspeaker.Desired{Peers: []bgpspeaker.Peer{good, bad}})
	waitFor(t, 3*time.Second, "session with the right password", established(s, "good"))
	want := fmt.Sprintf("no answer from [%s]:179 (the router drops the TCP handshake: check the MD5 password)", l.routerV6)
	waitFor(t, 5*time.Second, "wrong password reported", func() string {
		if st := status(s, "bad"); st.LastError != want || st.State == bgpspeaker.StateEstablished {
			return st.String()
		}
		return ""
	})
}

// TestLabRouterReturns: the router crashes and comes back; the session and the route are back
// within 3 s of the router listening again.
func TestLabRouterReturns(t *testing.T) {
	l := newLab(t, nil)
	s := startSpeaker(t, bgpspeaker.Config{ASN: nodeASN})
	vip := netip.MustParsePrefix("198.18.100.1/32")
	set(t, s, bgpspeaker.Desired{
		Peers:  []bgpspeaker.Peer{l.peer("r", false)},
		Routes: []bgpspeaker.Route{{Prefix: vip, NextHop: l.hostV4, Peers: []string{"r"}}},
	})
	waitFor(t, 3*time.Second, "session", established(s, "r"))
	for i, kill := range []bool{true, false} { // a crash, then a clean stop (Cease)
		stop := l.router.Stop
		if kill {
			stop = l.router.Kill
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 12*time.Second, "session down", func() string {
			if st := status(s, "r"); st.State == bgpspeaker.StateEstablished {
				return st.String()
			}
			return ""
		})
		time.Sleep(time.Duration(i+1) * 1500 * time.Millisecond) // a few failed dials
		t.Logf("while the router is away: %s", status(s, "r"))
		l.startRouter(t)
		d := waitFor(t, 3*time.Second, "session back", established(s, "r"))
		dr := waitFor(t, 3*time.Second, "route back", l.rib(vip, l.hostV4))
		t.Logf("router %d back: session after %s, route in its kernel %s later", i, d, dr)
	}
}

// TestLabPeerDeleted: a route (a VIP and its pool's aggregate) goes to two sessions; deleting
// one peer ends its session and must not disturb the other: no withdrawal and re-announcement
// there (an ECMP group shrinking and growing again, flows rehashed).
func TestLabPeerDeleted(t *testing.T) {
	l := newLab(t, nil)
	s := startSpeaker(t, bgpspeaker.Config{ASN: nodeASN})
	vip, pool := netip.MustParsePrefix("198.18.2.7/32"), netip.MustParsePrefix("198.18.2.0/24")
	routes := func(peers ...string) []bgpspeaker.Route {
		return []bgpspeaker.Route{{Prefix: vip, NextHop: l.hostV4, Peers: peers}, {Prefix: pool, NextHop: l.hostV4, Peers: peers}}
	}
	both := []bgpspeaker.Peer{l.peer("v4", false), l.peer("v6", true)}
	if probs := set(t, s, bgpspeaker.Desired{Peers: both, Routes: routes("v4", "v6")}); len(probs) != 0 {
		t.Fatalf("problems: %v", probs)
	}
	waitFor(t, 3*time.Second, "v4 session", established(s, "v4"))
	waitFor(t, 3*time.Second, "v6 session", established(s, "v6"))
	v4, v6 := l.hostV4.String(), l.hostV6.String()
	waitFor(t, 2*time.Second, "VIP from both", l.from(vip, v4, v6))
	waitFor(t, 2*time.Second, "aggregate from both", l.from(pool, v4, v6))
	time.Sleep(300 * time.Millisecond) // nothing more in flight
	before := l.neighbor(t, l.hostV6).MessageStats.UpdatesRecv

	set(t, s, bgpspeaker.Desired{Peers: both[1:], Routes: routes("v6")})
	waitFor(t, 3*time.Second, "v4 session gone with its paths", l.from(vip, v6))
	waitFor(t, time.Second, "aggregate from v6 only", l.from(pool, v6))
	time.Sleep(300 * time.Millisecond)
	if n := l.neighbor(t, l.hostV6); n.MessageStats.UpdatesRecv != before || n.State != "Established" {
		t.Errorf("the router got %d UPDATEs over the staying session (state %s) when the other peer was deleted, want none",
			n.MessageStats.UpdatesRecv-before, n.State)
	}
}

// TestLabWithdrawalRetried: a withdrawal that fails leaves the export policy as it was, so that
// the next Set can still withdraw the route (GoBGP filters a withdrawal with the current policy).
func TestLabWithdrawalRetried(t *testing.T) {
	l := newLab(t, nil)
	s := startSpeaker(t, bgpspeaker.Config{ASN: nodeASN})
	peers := []bgpspeaker.Peer{l.peer("v4", false), l.peer("v6", true)}
	vip := netip.MustParsePrefix("198.18.100.1/32")
	to := func(names ...string) bgpspeaker.Desired {
		return bgpspeaker.Desired{Peers: peers, Routes: []bgpspeaker.Route{{Prefix: vip, NextHop: l.hostV4, Peers: names}}}
	}
	set(t, s, to("v4", "v6"))
	v4, v6 := l.hostV4.String(), l.hostV6.String()
	waitFor(t, 3*time.Second, "v4 session", established(s, "v4"))
	waitFor(t, 3*time.Second, "v6 session", established(s, "v6"))
	waitFor(t, 2*time.Second, "VIP from both", l.from(vip, v4, v6))

	bgpspeaker.FailNextWithdrawal(s, errors.New("refused by the test"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.Set(ctx, to("v4")); err == nil {
		t.Fatal("Set with a failing withdrawal: no error")
	}
	time.Sleep(300 * time.Millisecond)
	if why := l.from(vip, v4, v6)(); why != "" {
		t.Errorf("after the failed withdrawal: %s, want the route where it was", why)
	}
	set(t, s, to("v4"))
	waitFor(t, 2*time.Second, "VIP withdrawn from v6 by the next Set", l.from(vip, v4))
	if a4, a6 := status(s, "v4").Advertised, status(s, "v6").Advertised; a4 != 1 || a6 != 0 {
		t.Errorf("advertised v4 %d, v6 %d; want 1 and 0", a4, a6)
	}
}
