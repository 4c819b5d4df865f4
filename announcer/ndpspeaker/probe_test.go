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
		{"advertisement with a target link-layer address", ipv6Frame(allNodesMAC, peerMAC, peerLL, allNodes, 255, naBody(watched, 0x20, otherMAC)),
			[]Foreign{{watched, otherMAC, false}}, nil},
		{"solicited advertisement without one", ipv6Frame(ourMAC, peerMAC, watched, peerLL, 255, naNoTLLA(watched, 0x40)),
			[]Foreign{{watched, peerMAC, false}}, nil},
		{"solicitation from the watched address", ipv6Frame(pgM, peerMAC, watched, pg, 255, nsBody(peerGlobal, otherMAC)),
			[]Foreign{{watched, otherMAC, false}}, nil},
		{"solicitation from it without a source link-layer address", ipv6Frame(pgM, peerMAC, watched, pg, 255, nsBody(peerGlobal, nil)),
			[]Foreign{{watched, peerMAC, false}}, nil},
		{"duplicate address detection of the watched address", ipv6Frame(wgM, peerMAC, unspec, wg, 255, nsBody(watched, nil)),
			[]Foreign{{watched, peerMAC, true}}, nil},
		{"solicitation from the watched address for the owned one is still answered", ipv6Frame(vipGroupM, peerMAC, watched, vipGroup, 255, nsBody(vip, peerMAC)),
			[]Foreign{{watched, peerMAC, false}}, ipv6Frame(peerMAC, ourMAC, vip, watched, 255, naBody(vip, 0x60, ourMAC))},
		{"advertisement for the owned address", ipv6Frame(allNodesMAC, peerMAC, vip, allNodes, 255, naBody(vip, 0x20, peerMAC)),
			[]Foreign{{vip, peerMAC, false}}, nil},
		{"solicitation from the owned address", ipv6Frame(pgM, peerMAC, vip, pg, 255, nsBody(peerGlobal, peerMAC)),
			[]Foreign{{vip, peerMAC, false}}, nil},
		{"duplicate address detection of the owned address is reported and defended", ipv6Frame(vipGroupM, peerMAC, unspec, vipGroup, 255, nsBody(vip, nil)),
			[]Foreign{{vip, peerMAC, true}}, goldenUnsolicited},
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
	if diff := cmp.Diff([]Foreign{{vip, peerMAC, false}}, r.Take(), addrComparer); diff != "" {
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
