package arpspeaker

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
)

// goldenProbe is the RFC 5227 ARP probe of vip, written out by hand: broadcast, sender (our MAC,
// 0.0.0.0), target (zero MAC, vip).
var goldenProbe = mustHex(`
	ffffffffffff 020000000001 0806
	0001 0800 06 04 0001
	020000000001 00000000
	000000000000 c6120064
	000000000000000000000000000000000000`)

var addrComparer = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// reports collects what OnForeign is told.
type reports = packettest.Reports[Foreign]

// claim, announcement and probeOf are the reports of a packet from mac that claims addr in
// answer to a question or while asking one (a reply, a request sent from addr), that announces
// addr unasked (a gratuitous ARP: sender and target address both addr), and that probes addr
// (sender 0.0.0.0).
func claim(addr netip.Addr, mac net.HardwareAddr) Foreign { return Foreign{Addr: addr, MAC: mac} }
func announcement(addr netip.Addr, mac net.HardwareAddr) Foreign {
	return Foreign{Addr: addr, MAC: mac, Announce: true}
}
func probeOf(addr netip.Addr, mac net.HardwareAddr) Foreign {
	return Foreign{Addr: addr, MAC: mac, Probe: true}
}

func TestProbeFrame(t *testing.T) {
	conn := newFakeConn()
	s, err := New(Config{Interface: &net.Interface{HardwareAddr: ourMAC}}, conn)
	if err != nil {
		t.Fatal(err)
	}
	// Probe works without Run.
	if err := s.Probe(vip); err != nil {
		t.Fatal(err)
	}
	w := <-conn.Out
	if diff := cmp.Diff(goldenProbe, w.Frame); diff != "" {
		t.Errorf("probe (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(goldenProbe, arpFrame(broadcast, ourMAC, 1, ourMAC, netip.IPv4Unspecified(), zeroMAC, vip)); diff != "" {
		t.Errorf("hand-assembled probe (-want +got):\n%s", diff)
	}
	if w.Addr.String() != broadcast.String() {
		t.Errorf("probe written to %v, want broadcast", w.Addr)
	}
	// A probe claims nothing: it is not an announcement and owns nothing.
	if st := s.Stats(); st.ProbesSent != 1 || st.GratuitousSent != 0 || len(s.Owned()) != 0 {
		t.Errorf("stats = %+v, owned %v", st, s.Owned())
	}
	for _, bad := range []netip.Addr{{}, netip.MustParseAddr("2001:db8::1"), netip.IPv4Unspecified(), netip.MustParseAddr("224.0.0.1")} {
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

func TestForeign(t *testing.T) {
	var r reports
	cfg := quiet()
	cfg.OnForeign = r.Add
	h := start(t, cfg)
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenGratuitous)
	watched, unwatched := otherVIP, netip.MustParseAddr("198.18.0.200")
	h.s.Watch([]netip.Addr{watched, netip.MustParseAddr("2001:db8::1")}) // IPv6 is dropped
	unspecified := netip.IPv4Unspecified()
	otherMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03}

	cases := []struct {
		name  string
		frame []byte
		want  []Foreign
		reply []byte // the answer written, if any
	}{
		{"reply from the watched address", arpFrame(ourMAC, peerMAC, 2, peerMAC, watched, ourMAC, peerIP),
			[]Foreign{claim(watched, peerMAC)}, nil},
		{"gratuitous request for the watched address", arpFrame(broadcast, peerMAC, 1, peerMAC, watched, zeroMAC, watched),
			[]Foreign{announcement(watched, peerMAC)}, nil},
		{"gratuitous reply for the watched address", arpFrame(broadcast, peerMAC, 2, peerMAC, watched, zeroMAC, watched),
			[]Foreign{announcement(watched, peerMAC)}, nil},
		{"gratuitous reply with the target MAC filled in", arpFrame(broadcast, peerMAC, 2, peerMAC, watched, peerMAC, watched),
			[]Foreign{announcement(watched, peerMAC)}, nil},
		{"request sent from the watched address", arpFrame(broadcast, otherMAC, 1, otherMAC, watched, zeroMAC, peerIP),
			[]Foreign{claim(watched, otherMAC)}, nil},
		{"probe of the watched address", arpFrame(broadcast, peerMAC, 1, peerMAC, unspecified, zeroMAC, watched),
			[]Foreign{probeOf(watched, peerMAC)}, nil},
		{"answer to a probe of the watched address (Linux: target 0.0.0.0)", arpFrame(ourMAC, peerMAC, 2, peerMAC, watched, ourMAC, unspecified),
			[]Foreign{claim(watched, peerMAC)}, nil},
		{"request from the watched address for the owned one is still answered", arpFrame(broadcast, peerMAC, 1, peerMAC, watched, zeroMAC, vip),
			[]Foreign{claim(watched, peerMAC)}, arpFrame(peerMAC, ourMAC, 2, ourMAC, vip, peerMAC, watched)},
		{"gratuitous ARP for the owned address", arpFrame(broadcast, peerMAC, 1, peerMAC, vip, zeroMAC, vip),
			[]Foreign{announcement(vip, peerMAC)}, nil},
		{"gratuitous reply for the owned address", arpFrame(broadcast, peerMAC, 2, peerMAC, vip, zeroMAC, vip),
			[]Foreign{announcement(vip, peerMAC)}, nil},
		{"reply from the owned address", arpFrame(ourMAC, peerMAC, 2, peerMAC, vip, ourMAC, peerIP),
			[]Foreign{claim(vip, peerMAC)}, nil},
		{"request sent from the owned address", arpFrame(broadcast, peerMAC, 1, peerMAC, vip, zeroMAC, peerIP),
			[]Foreign{claim(vip, peerMAC)}, nil},
		{"probe of the owned address is reported and answered", arpFrame(broadcast, peerMAC, 1, peerMAC, unspecified, zeroMAC, vip),
			[]Foreign{probeOf(vip, peerMAC)}, arpFrame(peerMAC, ourMAC, 2, ourMAC, vip, peerMAC, unspecified)},
		{"our MAC as ARP sender", arpFrame(broadcast, peerMAC, 2, ourMAC, watched, zeroMAC, watched), nil, nil},
		{"our MAC as Ethernet source", arpFrame(broadcast, ourMAC, 2, peerMAC, watched, zeroMAC, watched), nil, nil},
		{"reply from an unwatched address", arpFrame(ourMAC, peerMAC, 2, peerMAC, unwatched, ourMAC, peerIP), nil, nil},
		{"gratuitous ARP for an unwatched address", arpFrame(broadcast, peerMAC, 1, peerMAC, unwatched, zeroMAC, unwatched), nil, nil},
		{"probe of an unwatched address", arpFrame(broadcast, peerMAC, 1, peerMAC, unspecified, zeroMAC, unwatched), nil, nil},
		{"a reply that only targets the watched address", arpFrame(peerMAC, otherMAC, 2, otherMAC, peerIP, peerMAC, watched), nil, nil},
		{"a malformed probe", arpFrame(broadcast, peerMAC, 1, zeroMAC, unspecified, zeroMAC, watched), nil, nil},
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
		// Conflicts are foreign claims of owned addresses, as before; probes are not.
		wantConflict := len(c.want) == 1 && c.want[0].Addr == vip && !c.want[0].Probe
		if got := h.s.Stats().Conflicts - conflicts; got != map[bool]uint64{true: 1}[wantConflict] {
			t.Errorf("%s: %d conflicts counted", c.name, got)
		}
	}
	if st := h.s.Stats(); st.ForeignSeen != wantSeen {
		t.Errorf("ForeignSeen = %d, want %d", st.ForeignSeen, wantSeen)
	}

	// Unwatched, the address is not reported any more; owned ones still are.
	h.s.Watch(nil)
	h.Feed(arpFrame(ourMAC, peerMAC, 2, peerMAC, watched, ourMAC, peerIP),
		arpFrame(broadcast, peerMAC, 1, peerMAC, unspecified, zeroMAC, watched),
		arpFrame(ourMAC, peerMAC, 2, peerMAC, vip, ourMAC, peerIP))
	if diff := cmp.Diff([]Foreign{claim(vip, peerMAC)}, r.Take(), addrComparer); diff != "" {
		t.Errorf("after Watch(nil) (-want +got):\n%s", diff)
	}
}

// TestForeignReportOwnsItsMAC checks that the MAC handed to OnForeign is not the read buffer,
// which the next frame overwrites.
func TestForeignReportOwnsItsMAC(t *testing.T) {
	var r reports
	cfg := quiet()
	cfg.OnForeign = r.Add
	h := start(t, cfg)
	h.s.Watch([]netip.Addr{otherVIP})
	first := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	h.Feed(arpFrame(broadcast, first, 1, first, otherVIP, zeroMAC, otherVIP),
		arpFrame(broadcast, peerMAC, 1, peerMAC, otherVIP, zeroMAC, otherVIP))
	got := r.Take()
	if len(got) != 2 || got[0].MAC.String() != first.String() || got[1].MAC.String() != peerMAC.String() {
		t.Errorf("reports = %v", got)
	}
}

// TestProbeWhileRunning probes, watches and sets from several goroutines while Run answers a
// flood of requests: for the race detector, and to check that every frame is accounted for.
func TestProbeWhileRunning(t *testing.T) {
	var r reports
	cfg := quiet()
	cfg.OnForeign = r.Add
	h := start(t, cfg)
	h.s.Set([]netip.Addr{vip})
	h.Expect(goldenGratuitous)
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
			h.conn.In <- request(vip)
			h.conn.In <- arpFrame(ourMAC, peerMAC, 2, peerMAC, otherVIP, ourMAC, peerIP)
		}
	})
	wg.Wait()
	probe := arpFrame(broadcast, ourMAC, 1, ourMAC, netip.IPv4Unspecified(), zeroMAC, otherVIP)
	frames := map[string]int{}
	for range 2*probes + probes {
		w := h.Next()
		frames[string(w.Frame)]++
	}
	if frames[string(probe)] != 2*probes || frames[string(goldenReply)] != probes {
		t.Errorf("wrote %d probes and %d replies, want %d and %d", frames[string(probe)], frames[string(goldenReply)], 2*probes, probes)
	}
	if st := h.s.Stats(); st.ProbesSent != 2*probes {
		t.Errorf("stats = %+v", st)
	}
}
