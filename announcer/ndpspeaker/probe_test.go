package ndpspeaker

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/packettest"
	"github.com/mdlayher/ndp"
)

// goldenProbe is the duplicate address detection solicitation of vip, checked once with tcpdump
// -vv ("icmp6 sum ok"): to vip's solicited-node group, from ::, hop limit 255, no options.
var goldenProbe = mustHex(`
	3333ff000100 020000000001 86dd
	60000000 0018 3a ff
	00000000000000000000000000000000
	ff0200000000000000000001ff000100
	87 00 4aef 00000000 20010db8000000000000000000000100`)

var addrComparer = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// reports collects what OnForeign is told.
type reports = packettest.Reports[Foreign]

// claim, announcement and probeOf are the reports of a message from mac that claims addr in
// answer to a question or while asking one (a solicited advertisement, a solicitation sent from
// addr), that announces addr unasked (an advertisement with the Solicited flag clear), and that
// probes addr (duplicate address detection, from ::).
func claim(addr netip.Addr, mac net.HardwareAddr) Foreign { return Foreign{Addr: addr, MAC: mac} }
func announcement(addr netip.Addr, mac net.HardwareAddr) Foreign {
	return Foreign{Addr: addr, MAC: mac, Announce: true}
}
func probeOf(addr netip.Addr, mac net.HardwareAddr) Foreign {
	return Foreign{Addr: addr, MAC: mac, Probe: true}
}

// naNoTLLA is a Neighbor Advertisement for target with flags and no option.
func naNoTLLA(target netip.Addr, flags byte) []byte {
	t16 := target.As16()
	return append([]byte{136, 0, 0, 0, flags, 0, 0, 0}, t16[:]...)
}

func TestProbeFrame(t *testing.T) {
	conn := newFakeConn()
	s, err := New(Config{Interface: &net.Interface{HardwareAddr: ourMAC}}, conn, newFakeGroups())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Probe(vip); err != nil {
		t.Fatal(err)
	}
	w := <-conn.Out
	if diff := cmp.Diff(goldenProbe, w.Frame); diff != "" {
		t.Errorf("probe (-want +got):\n%s", diff)
	}
	// The hand assembler, with its own checksum, agrees.
	if diff := cmp.Diff(goldenProbe, ipv6Frame(vipGroupM, ourMAC, netip.IPv6Unspecified(), vipGroup, 255, nsBody(vip, nil))); diff != "" {
		t.Errorf("hand-assembled probe (-want +got):\n%s", diff)
	}
	if w.Addr.String() != vipGroupM.String() {
		t.Errorf("probe written to %v, want %s", w.Addr, vipGroupM)
	}
	if st := s.Stats(); st.ProbesSent != 1 || st.GratuitousSent != 0 || len(s.Owned()) != 0 {
		t.Errorf("stats = %+v, owned %v", st, s.Owned())
	}
	for _, bad := range []netip.Addr{{}, netip.MustParseAddr("198.18.0.1"), netip.IPv6Unspecified(), netip.MustParseAddr("ff02::1")} {
		if err := s.Probe(bad); err == nil {
			t.Errorf("Probe(%s) succeeded", bad)
		}
	}
	werr := error(syscall.ENETDOWN)
	conn.WriteErr.Store(&werr)
	if err := s.Probe(vip); !errors.Is(err, syscall.ENETDOWN) {
		t.Errorf("Probe with a failing connection = %v, want ENETDOWN", err)
	}
	if st := s.Stats(); st.ProbesSent != 1 || st.SendErrors != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// TestDefenceFrame decodes the answer to a duplicate address detection solicitation field by
// field (RFC 4861 section 7.2.4): to all nodes, Solicited clear, Override set, with the Target
// Link-Layer Address option.
func TestDefenceFrame(t *testing.T) {
	h := start(t, quiet())
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenUnsolicited)
	h.conn.In <- ipv6Frame(vipGroupM, peerMAC, netip.IPv6Unspecified(), vipGroup, 255, nsBody(vip, nil))
	b := h.Next().Frame
	if !slicesEqual(b[0:6], allNodesMAC) || netip.AddrFrom16([16]byte(b[38:54])) != allNodes || b[21] != 255 {
		t.Fatalf("not to all nodes with hop limit 255: % x", b)
	}
	m, err := ndp.ParseMessage(b[54:])
	if err != nil {
		t.Fatal(err)
	}
	na, ok := m.(*ndp.NeighborAdvertisement)
	if !ok || na.Solicited || !na.Override || na.Router || na.TargetAddress != vip {
		t.Fatalf("advertisement = %+v", m)
	}
	if lla := linkLayerAddr(na.Options, ndp.Target); !slicesEqual(lla, ourMAC) {
		t.Errorf("target link-layer address %v, want %s", lla, ourMAC)
	}
}

func slicesEqual(a, b []byte) bool { return string(a) == string(b) }

func TestForeign(t *testing.T) {
	var r reports
	cfg := quiet()
	cfg.OnForeign = r.Add
	h := start(t, cfg)
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenUnsolicited)
	watched, unwatched := otherVIP, netip.MustParseAddr("2001:db8::200")
	h.s.Watch([]netip.Addr{watched, netip.MustParseAddr("198.18.0.1")}) // IPv4 is dropped
	otherMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03}
	peerGlobal := netip.MustParseAddr("2001:db8::2")
	pg, pgM := group(peerGlobal)
	wg, wgM := group(watched)
	ug, ugM := group(unwatched)
	unspec := netip.IPv6Unspecified()

	cases := []struct {
		name  string
		frame []byte
		want  []Foreign
		reply []byte
	}{
		{"unsolicited advertisement with a target link-layer address", ipv6Frame(allNodesMAC, peerMAC, peerLL, allNodes, 255, naBody(watched, 0x20, otherMAC)),
			[]Foreign{announcement(watched, otherMAC)}, nil},
		{"unsolicited advertisement without Override", ipv6Frame(allNodesMAC, peerMAC, watched, allNodes, 255, naBody(watched, 0x00, peerMAC)),
			[]Foreign{announcement(watched, peerMAC)}, nil},
		{"unsolicited advertisement without a target link-layer address", ipv6Frame(allNodesMAC, peerMAC, watched, allNodes, 255, naNoTLLA(watched, 0x20)),
			[]Foreign{announcement(watched, peerMAC)}, nil},
		{"solicited advertisement without one", ipv6Frame(ourMAC, peerMAC, watched, peerLL, 255, naNoTLLA(watched, 0x40)),
			[]Foreign{claim(watched, peerMAC)}, nil},
		{"solicited advertisement with one", ipv6Frame(ourMAC, peerMAC, watched, peerLL, 255, naBody(watched, 0x60, otherMAC)),
			[]Foreign{claim(watched, otherMAC)}, nil},
		{"solicitation from the watched address", ipv6Frame(pgM, peerMAC, watched, pg, 255, nsBody(peerGlobal, otherMAC)),
			[]Foreign{claim(watched, otherMAC)}, nil},
		{"solicitation from it without a source link-layer address", ipv6Frame(pgM, peerMAC, watched, pg, 255, nsBody(peerGlobal, nil)),
			[]Foreign{claim(watched, peerMAC)}, nil},
		{"duplicate address detection of the watched address", ipv6Frame(wgM, peerMAC, unspec, wg, 255, nsBody(watched, nil)),
			[]Foreign{probeOf(watched, peerMAC)}, nil},
		{"solicitation from the watched address for the owned one is still answered", ipv6Frame(vipGroupM, peerMAC, watched, vipGroup, 255, nsBody(vip, peerMAC)),
			[]Foreign{claim(watched, peerMAC)}, ipv6Frame(peerMAC, ourMAC, vip, watched, 255, naBody(vip, 0x60, ourMAC))},
		{"unsolicited advertisement for the owned address", ipv6Frame(allNodesMAC, peerMAC, vip, allNodes, 255, naBody(vip, 0x20, peerMAC)),
			[]Foreign{announcement(vip, peerMAC)}, nil},
		{"solicited advertisement for the owned address", ipv6Frame(ourMAC, peerMAC, vip, peerLL, 255, naBody(vip, 0x60, peerMAC)),
			[]Foreign{claim(vip, peerMAC)}, nil},
		{"solicitation from the owned address", ipv6Frame(pgM, peerMAC, vip, pg, 255, nsBody(peerGlobal, peerMAC)),
			[]Foreign{claim(vip, peerMAC)}, nil},
		{"duplicate address detection of the owned address is reported and defended", ipv6Frame(vipGroupM, peerMAC, unspec, vipGroup, 255, nsBody(vip, nil)),
			[]Foreign{probeOf(vip, peerMAC)}, goldenUnsolicited},
		{"our MAC as target link-layer address", ipv6Frame(allNodesMAC, peerMAC, peerLL, allNodes, 255, naBody(watched, 0x20, ourMAC)), nil, nil},
		{"our MAC as source link-layer address", ipv6Frame(pgM, peerMAC, watched, pg, 255, nsBody(peerGlobal, ourMAC)), nil, nil},
		{"our MAC as Ethernet source", ipv6Frame(allNodesMAC, ourMAC, peerLL, allNodes, 255, naNoTLLA(watched, 0x20)), nil, nil},
		{"advertisement for an unwatched address", ipv6Frame(allNodesMAC, peerMAC, peerLL, allNodes, 255, naBody(unwatched, 0x20, peerMAC)), nil, nil},
		{"solicitation from an unwatched address", ipv6Frame(pgM, peerMAC, unwatched, pg, 255, nsBody(peerGlobal, peerMAC)), nil, nil},
		{"duplicate address detection of an unwatched address", ipv6Frame(ugM, peerMAC, unspec, ug, 255, nsBody(unwatched, nil)), nil, nil},
		{"solicitation that only targets the watched address", ipv6Frame(wgM, peerMAC, peerLL, wg, 255, nsBody(watched, peerMAC)), nil, nil},
		{"advertisement with a bad checksum", mutate(ipv6Frame(allNodesMAC, peerMAC, peerLL, allNodes, 255, naBody(watched, 0x20, peerMAC)), func(b []byte) { b[56] ^= 1 }), nil, nil},
	}
	wantSeen := uint64(0)
	for _, c := range cases {
		conflicts := h.s.Stats().Conflicts
		h.Feed(c.frame)
		if c.reply != nil {
			h.Expect(c.reply)
		}
		h.ExpectNothing(time.Millisecond)
		if diff := cmp.Diff(c.want, r.Take(), addrComparer); diff != "" {
			t.Errorf("%s: reports (-want +got):\n%s", c.name, diff)
		}
		wantSeen += uint64(len(c.want))
		wantConflict := len(c.want) == 1 && c.want[0].Addr == vip && !c.want[0].Probe
		if got := h.s.Stats().Conflicts - conflicts; got != map[bool]uint64{true: 1}[wantConflict] {
			t.Errorf("%s: %d conflicts counted", c.name, got)
		}
	}
	if st := h.s.Stats(); st.ForeignSeen != wantSeen {
		t.Errorf("ForeignSeen = %d, want %d", st.ForeignSeen, wantSeen)
	}

	h.s.Watch(nil)
	h.Feed(ipv6Frame(allNodesMAC, peerMAC, peerLL, allNodes, 255, naBody(watched, 0x20, peerMAC)),
		ipv6Frame(wgM, peerMAC, unspec, wg, 255, nsBody(watched, nil)),
		ipv6Frame(allNodesMAC, peerMAC, peerLL, allNodes, 255, naBody(vip, 0x20, peerMAC)))
	if diff := cmp.Diff([]Foreign{announcement(vip, peerMAC)}, r.Take(), addrComparer); diff != "" {
		t.Errorf("after Watch(nil) (-want +got):\n%s", diff)
	}
}

// TestWatchJoinsGroups checks that watched addresses get their solicited-node group, where the
// duplicate address detection of other hosts arrives, and lose it with the watch.
func TestWatchJoinsGroups(t *testing.T) {
	h := start(t, quiet())
	otherGroup, _ := group(otherVIP)
	h.s.Set([]netip.Addr{vip})
	h.s.Watch([]netip.Addr{otherVIP, vip})
	want := map[netip.Addr]int{vipGroup: 1, otherGroup: 1}
	if diff := cmp.Diff(want, h.groups.state(), addrComparer); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	h.s.Watch(nil)
	want = map[netip.Addr]int{vipGroup: 1}
	if diff := cmp.Diff(want, h.groups.state(), addrComparer); diff != "" {
		t.Errorf("groups after Watch(nil) (-want +got):\n%s", diff)
	}
	h.s.Watch([]netip.Addr{vip})
	h.s.Set(nil)
	if diff := cmp.Diff(want, h.groups.state(), addrComparer); diff != "" {
		t.Errorf("groups of a watched address no longer owned (-want +got):\n%s", diff)
	}
}

func TestProbeWhileRunning(t *testing.T) {
	var r reports
	cfg := quiet()
	cfg.OnForeign = r.Add
	h := start(t, cfg)
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenUnsolicited)
	const probes = 50
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range probes {
				if err := h.s.Probe(otherVIP); err != nil {
					t.Error(err)
				}
				h.s.Watch([]netip.Addr{otherVIP})
			}
		})
	}
	wg.Go(func() {
		for range probes {
			h.conn.In <- solicit(vip)
			h.conn.In <- ipv6Frame(allNodesMAC, peerMAC, peerLL, allNodes, 255, naBody(otherVIP, 0x20, peerMAC))
		}
	})
	wg.Wait()
	g, gm := group(otherVIP)
	probe := ipv6Frame(gm, ourMAC, netip.IPv6Unspecified(), g, 255, nsBody(otherVIP, nil))
	frames := map[string]int{}
	for range 3 * probes {
		frames[string(h.Next().Frame)]++
	}
	if frames[string(probe)] != 2*probes || frames[string(goldenReply)] != probes {
		t.Errorf("wrote %d probes and %d replies, want %d and %d", frames[string(probe)], frames[string(goldenReply)], 2*probes, probes)
	}
}

// TestProbeAnswerIsNotAnnouncement: the answer to a duplicate address detection probe is an
// advertisement with the Solicited flag clear (RFC 4861 section 7.2.4), as an announcement is;
// it is reported as a claim, not an announcement, whoever probed. The prober's own
// advertisements after its probe (a takeover) still announce.
func TestProbeAnswerIsNotAnnouncement(t *testing.T) {
	var r reports
	cfg := quiet()
	cfg.OnForeign = r.Add
	h := start(t, cfg)
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenUnsolicited)
	watched := otherVIP
	h.s.Watch([]netip.Addr{watched})
	wg, wgM := group(watched)
	otherMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03}
	unspec := netip.IPv6Unspecified()
	// defence is the answer of the host mac to a probe of a, as Linux and the speaker send it.
	defence := func(a netip.Addr, mac net.HardwareAddr) []byte {
		return ipv6Frame(allNodesMAC, mac, a, allNodes, 255, naBody(a, 0x20, mac))
	}

	steps := []struct {
		name  string
		probe func() // nil: no probe
		frame []byte
		want  []Foreign
	}{
		{"before any probe, an unsolicited advertisement announces", nil,
			defence(watched, otherMAC), []Foreign{announcement(watched, otherMAC)}},
		{"after our probe, it answers", func() {
			if err := h.s.Probe(watched); err != nil {
				t.Fatal(err)
			}
			h.Expect(ipv6Frame(wgM, ourMAC, unspec, wg, 255, nsBody(watched, nil)))
		}, defence(watched, otherMAC), []Foreign{claim(watched, otherMAC)}},
		{"so does a second answer to it, from another host", nil,
			defence(watched, peerMAC), []Foreign{claim(watched, peerMAC)}},
		{"a solicited advertisement stays a claim", nil,
			ipv6Frame(ourMAC, otherMAC, watched, peerLL, 255, naBody(watched, 0x60, otherMAC)), []Foreign{claim(watched, otherMAC)}},
		{"another host's probe is reported", nil,
			ipv6Frame(wgM, peerMAC, unspec, wg, 255, nsBody(watched, nil)), []Foreign{probeOf(watched, peerMAC)}},
		{"and answered by a third host", nil,
			defence(watched, otherMAC), []Foreign{claim(watched, otherMAC)}},
		{"the prober announces after its probe: a takeover", nil,
			defence(watched, peerMAC), []Foreign{announcement(watched, peerMAC)}},
		{"the answer to a probe of another address does not count", nil,
			defence(vip, otherMAC), []Foreign{announcement(vip, otherMAC)}},
	}
	for _, s := range steps {
		if s.probe != nil {
			s.probe()
		}
		h.Feed(s.frame)
		h.ExpectNothing(time.Millisecond)
		if diff := cmp.Diff(s.want, r.Take(), addrComparer); diff != "" {
			t.Errorf("%s: reports (-want +got):\n%s", s.name, diff)
		}
	}

	// A probe of the owned address by another host is defended by us; the defence of another
	// host that holds it too is a claim (and a conflict), not an announcement.
	conflicts := h.s.Stats().Conflicts
	h.Feed(ipv6Frame(vipGroupM, peerMAC, unspec, vipGroup, 255, nsBody(vip, nil)))
	h.Expect(goldenUnsolicited)
	h.Feed(defence(vip, otherMAC))
	h.ExpectNothing(time.Millisecond)
	if diff := cmp.Diff([]Foreign{probeOf(vip, peerMAC), claim(vip, otherMAC)}, r.Take(), addrComparer); diff != "" {
		t.Errorf("defences of the owned address: reports (-want +got):\n%s", diff)
	}
	if got := h.s.Stats().Conflicts - conflicts; got != 1 {
		t.Errorf("%d conflicts counted, want 1", got)
	}
}

// TestDADProbes checks the memory of probes on its own clock: the answer window, the probers,
// the targets and the bound on them.
func TestDADProbes(t *testing.T) {
	var d dadProbes
	t0 := time.Unix(1000, 0)
	a, b := vip, otherVIP
	prober, other := peerMAC, net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03}
	if d.answers(a, other, t0) {
		t.Error("an advertisement answers a probe never seen")
	}
	d.probed(a, prober, t0)
	for _, c := range []struct {
		name   string
		target netip.Addr
		mac    net.HardwareAddr
		at     time.Time
		want   bool
	}{
		{"at once", a, other, t0, true},
		{"from the prober", a, prober, t0.Add(time.Millisecond), false},
		{"for another target", b, other, t0.Add(time.Millisecond), false},
		{"a clock read just before the probe was recorded", a, other, t0.Add(-time.Microsecond), true},
		{"at the end of the window", a, other, t0.Add(dadAnswerWindow), true},
		{"after it", a, other, t0.Add(dadAnswerWindow + time.Nanosecond), false},
		{"after it, again", a, other, t0, false}, // the expired probe is forgotten
	} {
		if got := d.answers(c.target, c.mac, c.at); got != c.want {
			t.Errorf("%s: answers = %v, want %v", c.name, got, c.want)
		}
	}

	// Two probers: neither answers; a new probe after the window forgets the old prober.
	d.probed(a, prober, t0)
	d.probed(a, other, t0.Add(time.Millisecond))
	if d.answers(a, prober, t0.Add(2*time.Millisecond)) || d.answers(a, other, t0.Add(2*time.Millisecond)) {
		t.Error("a prober's advertisement answers")
	}
	later := t0.Add(2 * dadAnswerWindow)
	d.probed(a, other, later)
	if !d.answers(a, prober, later) || d.answers(a, other, later) {
		t.Error("the prober of an expired probe is still remembered")
	}

	// The targets are bounded; expired ones make room.
	var full dadProbes
	target := netip.MustParseAddr("2001:db8::1:0")
	for range maxDADTargets {
		full.probed(target, prober, t0)
		target = target.Next()
	}
	full.probed(target, prober, t0)
	if full.answers(target, other, t0) || len(full.targets) != maxDADTargets {
		t.Errorf("a probe beyond the bound was recorded (%d targets)", len(full.targets))
	}
	full.probed(target, prober, later)
	if !full.answers(target, other, later) || len(full.targets) != 1 {
		t.Errorf("expired probes did not make room (%d targets)", len(full.targets))
	}
}
