package ndpspeaker

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/ndp"
)

// fuzzWatched is the address the fuzzed speaker watches.
var fuzzWatched = netip.MustParseAddr("2001:db8::150")

// FuzzHandleFrame feeds arbitrary frames to the frame handler: it must never panic, must account
// for every frame exactly once, may only ever write a valid advertisement from our MAC and from
// an owned VIP, for that VIP (never for a removed or foreign address), and may only report
// foreign claims of owned or watched addresses by another valid MAC, flagged as announcements
// exactly when they are advertisements with the Solicited flag clear.
func FuzzHandleFrame(f *testing.F) {
	removed := netip.MustParseAddr("2001:db8::102")
	wg, wgM := group(fuzzWatched)
	pg, pgM := group(netip.MustParseAddr("2001:db8::2"))
	f.Add(solicit(vip))
	f.Add(solicit(otherVIP))
	f.Add(solicit(removed))
	f.Add(solicit(netip.MustParseAddr("2001:db8::1")))
	f.Add(ipv6Frame(ourMAC, peerMAC, peerLL, vip, 255, nsBody(vip, nil)))
	f.Add(ipv6Frame(vipGroupM, peerMAC, netip.IPv6Unspecified(), vipGroup, 255, nsBody(vip, nil)))
	f.Add(ipv6Frame(allNodesMAC, peerMAC, vip, allNodes, 255, naBody(vip, 0x20, peerMAC)))
	f.Add(ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, append(nsBody(vip, peerMAC), 14, 1, 1, 2, 3, 4, 5, 6)))
	f.Add(ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, append(nsBody(vip, peerMAC), 5, 1, 0, 0, 0, 0, 5, 220)))
	f.Add(ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, append(nsBody(vip, peerMAC), 200, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)))
	f.Add(ipv6Frame(vipGroupM, peerMAC, peerLL, vipGroup, 255, append(nsBody(vip, peerMAC), 31, 2, 0, 0, 0, 0, 0, 60, 3, 'f', 'o', 'o', 0, 0, 0, 0)))
	f.Add(goldenReply)
	f.Add(goldenUnsolicited)
	f.Add(goldenProbe)
	f.Add(ipv6Frame(wgM, peerMAC, netip.IPv6Unspecified(), wg, 255, nsBody(fuzzWatched, nil)))
	f.Add(ipv6Frame(allNodesMAC, peerMAC, peerLL, allNodes, 255, naNoTLLA(fuzzWatched, 0x20)))
	f.Add(ipv6Frame(allNodesMAC, peerMAC, peerLL, allNodes, 255, naBody(fuzzWatched, 0x20, peerMAC)))
	f.Add(ipv6Frame(ourMAC, peerMAC, fuzzWatched, peerLL, 255, naBody(fuzzWatched, 0x60, peerMAC)))
	f.Add(ipv6Frame(ourMAC, peerMAC, vip, peerLL, 255, naNoTLLA(vip, 0x40)))
	f.Add(ipv6Frame(pgM, peerMAC, fuzzWatched, pg, 255, nsBody(netip.MustParseAddr("2001:db8::2"), peerMAC)))
	f.Add(ipv6Frame(allNodesMAC, peerMAC, vip, allNodes, 255, naBody(vip, 0x20, peerMAC)))
	f.Add(solicit(vip)[:60])
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, frame []byte) {
		checkHandleFrame(t, frame, removed)
		// Random bytes almost never carry a valid checksum: also try the frame with its checksum
		// fixed, so that the fuzzer reaches the parser behind it.
		if fixed, ok := fixChecksum(frame); ok {
			checkHandleFrame(t, fixed, removed)
		}
	})
}

// fixChecksum returns a copy of frame with a correct ICMPv6 checksum, if frame is long enough to
// hold one where its IPv6 header says.
func fixChecksum(frame []byte) ([]byte, bool) {
	if len(frame) < 14+40+4 {
		return nil, false
	}
	b := bytes.Clone(frame)
	ip := b[14:]
	pl := int(binary.BigEndian.Uint16(ip[4:6]))
	if pl < 4 || 40+pl > len(ip) {
		return nil, false
	}
	icmp := ip[40 : 40+pl]
	src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
	binary.BigEndian.PutUint16(icmp[2:], 0)
	binary.BigEndian.PutUint16(icmp[2:], testChecksum(src, dst, icmp))
	return b, true
}

// checkHandleFrame handles frame on a fresh speaker that owns vip and otherVIP (and owned removed
// before) and checks what it wrote.
func checkHandleFrame(t *testing.T, frame []byte, removed netip.Addr) {
	t.Helper()
	conn := newFakeConn()
	var reports []Foreign
	s, err := New(Config{Interface: &net.Interface{HardwareAddr: ourMAC}, OnForeign: func(f Foreign) { reports = append(reports, f) }}, conn, newFakeGroups())
	if err != nil {
		t.Fatal(err)
	}
	s.Set([]netip.Addr{vip, removed})
	s.Set([]netip.Addr{vip, otherVIP})
	s.Watch([]netip.Addr{removed, fuzzWatched})
	s.Watch([]netip.Addr{fuzzWatched})
	owned := map[netip.Addr]bool{vip: true, otherVIP: true}

	in := bytes.Clone(frame)
	s.handleFrame(frame)
	if !bytes.Equal(in, frame) {
		t.Fatal("handleFrame modified its input")
	}

	st := s.Stats()
	if st.Received != 1 || st.Malformed+st.Ignored+st.RepliesSent+st.SendErrors != 1 {
		t.Fatalf("frame not accounted for exactly once: %+v", st)
	}
	if st.GratuitousSent != 0 {
		t.Fatalf("advertisement sent without Run: %+v", st)
	}
	checkReports(t, frame, reports, owned, st)
	if uint64(len(conn.Out)) != st.RepliesSent {
		t.Fatalf("%d frames written, %d replies counted", len(conn.Out), st.RepliesSent)
	}
	for len(conn.Out) > 0 {
		w := <-conn.Out
		b := w.Frame
		if len(b) < 14+40+24 || !bytes.Equal(b[6:12], ourMAC) || binary.BigEndian.Uint16(b[12:14]) != 0x86dd {
			t.Fatalf("not an IPv6 frame from our MAC: % x", b)
		}
		if b[20] != 58 || b[21] != 255 {
			t.Fatalf("not ICMPv6 with hop limit 255: % x", b)
		}
		src, dst := netip.AddrFrom16([16]byte(b[22:38])), netip.AddrFrom16([16]byte(b[38:54]))
		if !owned[src] {
			t.Fatalf("advertisement from %s, which is not owned", src)
		}
		if testChecksum(src, dst, b[54:]) != 0 {
			t.Fatalf("bad checksum: % x", b)
		}
		m, err := ndp.ParseMessage(b[54:])
		if err != nil {
			t.Fatalf("written message does not parse: %v", err)
		}
		na, ok := m.(*ndp.NeighborAdvertisement)
		if !ok || na.TargetAddress != src || !na.Override || na.Router {
			t.Fatalf("not an Override advertisement for its source: %+v", m)
		}
		if len(na.Options) != 1 {
			t.Fatalf("options: %+v", na.Options)
		}
		if lla, ok := na.Options[0].(*ndp.LinkLayerAddress); !ok || lla.Direction != ndp.Target || !bytes.Equal(lla.Addr, ourMAC) {
			t.Fatalf("option: %+v", na.Options[0])
		}
		if dst.IsMulticast() != !na.Solicited || (dst.IsMulticast() && dst != allNodes) {
			t.Fatalf("advertisement to %s with Solicited=%v", dst, na.Solicited)
		}
		if w.Addr.String() != net.HardwareAddr(b[0:6]).String() {
			t.Fatalf("written to %v, frame to %s", w.Addr, net.HardwareAddr(b[0:6]))
		}
	}
}

// checkReports checks what OnForeign was told about frame.
func checkReports(t *testing.T, frame []byte, reports []Foreign, owned map[netip.Addr]bool, st Stats) {
	t.Helper()
	if st.ForeignSeen != uint64(len(reports)) || len(reports) > 2 || st.Conflicts > st.ForeignSeen {
		t.Fatalf("%d reports, stats %+v", len(reports), st)
	}
	for _, r := range reports {
		if !owned[r.Addr] && r.Addr != fuzzWatched {
			t.Fatalf("reported %s, which is neither owned nor watched", r.Addr)
		}
		if bytes.Equal(r.MAC, ourMAC) || len(r.MAC) != 6 || r.MAC[0]&1 != 0 {
			t.Fatalf("reported MAC %s", r.MAC)
		}
		// Only a valid Neighbor Solicitation or Advertisement is reported (the handler found it
		// long enough): a probe is a solicitation from :: for the address, a claim an
		// advertisement for it or a solicitation from it.
		typ := frame[54]
		src, target := netip.AddrFrom16([16]byte(frame[22:38])), netip.AddrFrom16([16]byte(frame[62:78]))
		probe := typ == 135 && src.IsUnspecified() && target == r.Addr
		claim := (typ == 136 && target == r.Addr) || (typ == 135 && src == r.Addr)
		if r.Probe != probe || r.Probe == claim {
			t.Fatalf("report %+v for an ICMPv6 type %d from %s for %s", r, typ, src, target)
		}
		// A claim announces the address exactly when it is an advertisement with the
		// Solicited flag clear; a solicitation never does.
		if announce := typ == 136 && frame[58]&0x40 == 0; r.Announce != announce {
			t.Fatalf("report %+v for an ICMPv6 type %d (flags %#02x) from %s for %s", r, typ, frame[58], src, target)
		}
	}
}
