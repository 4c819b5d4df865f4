package arpspeaker

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// FuzzHandleFrame feeds arbitrary frames to the frame handler: it must never panic, must account
// for every frame exactly once, may only ever write a well-formed reply from our MAC for an
// owned VIP (never for a removed or foreign address), and may only report foreign claims of
// owned or watched addresses by another valid MAC, flagged as announcements exactly when they
// are gratuitous ARPs.
func FuzzHandleFrame(f *testing.F) {
	removed := netip.MustParseAddr("198.18.0.102")
	watched := netip.MustParseAddr("198.18.0.150")
	unspecified := netip.IPv4Unspecified()
	f.Add(request(vip))
	f.Add(request(otherVIP))
	f.Add(request(removed))
	f.Add(request(peerIP))
	f.Add(arpFrame(ourMAC, peerMAC, 1, peerMAC, peerIP, zeroMAC, vip))
	f.Add(arpFrame(broadcast, peerMAC, 1, peerMAC, netip.IPv4Unspecified(), zeroMAC, vip))
	f.Add(arpFrame(broadcast, peerMAC, 1, peerMAC, vip, zeroMAC, vip))
	f.Add(arpFrame(peerMAC, ourMAC, 2, ourMAC, vip, peerMAC, peerIP))
	f.Add(goldenGratuitous)
	f.Add(goldenProbe)
	f.Add(arpFrame(broadcast, peerMAC, 1, peerMAC, unspecified, zeroMAC, watched))
	f.Add(arpFrame(broadcast, peerMAC, 1, peerMAC, watched, zeroMAC, watched))
	f.Add(arpFrame(ourMAC, peerMAC, 2, peerMAC, watched, ourMAC, peerIP))
	f.Add(arpFrame(ourMAC, peerMAC, 2, peerMAC, vip, ourMAC, peerIP))
	f.Add(arpFrame(broadcast, peerMAC, 1, peerMAC, watched, zeroMAC, vip))
	f.Add(arpFrame(broadcast, peerMAC, 2, peerMAC, watched, zeroMAC, watched))
	f.Add(arpFrame(broadcast, peerMAC, 2, peerMAC, vip, peerMAC, vip))
	f.Add(arpFrame(ourMAC, peerMAC, 2, peerMAC, watched, ourMAC, unspecified))
	f.Add(request(vip)[:42])
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, frame []byte) {
		conn := newFakeConn()
		var reports []Foreign
		s, err := New(Config{Interface: &net.Interface{HardwareAddr: ourMAC}, OnForeign: func(f Foreign) { reports = append(reports, f) }}, conn)
		if err != nil {
			t.Fatal(err)
		}
		s.Set([]netip.Addr{vip, removed})
		s.Set([]netip.Addr{vip, otherVIP})
		s.Watch([]netip.Addr{removed, watched})
		s.Watch([]netip.Addr{watched})
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
			t.Fatalf("gratuitous ARP sent without Run: %+v", st)
		}
		if st.ForeignSeen != uint64(len(reports)) || len(reports) > 2 || st.Conflicts > st.ForeignSeen {
			t.Fatalf("%d reports, stats %+v", len(reports), st)
		}
		for _, r := range reports {
			if !owned[r.Addr] && r.Addr != watched {
				t.Fatalf("reported %s, which is neither owned nor watched", r.Addr)
			}
			if bytes.Equal(r.MAC, ourMAC) || len(r.MAC) != 6 || r.MAC[0]&1 != 0 {
				t.Fatalf("reported MAC %s", r.MAC)
			}
			// A probe has sender 0.0.0.0 and the address as target; a claim has it as sender.
			spa, tpa := netip.AddrFrom4([4]byte(frame[28:32])), netip.AddrFrom4([4]byte(frame[38:42]))
			if (r.Probe && (spa != unspecified || tpa != r.Addr)) || (!r.Probe && spa != r.Addr) {
				t.Fatalf("report %+v for a packet from %s for %s", r, spa, tpa)
			}
			// A claim announces the address exactly when it is a gratuitous ARP (request or
			// reply): sender and target protocol addresses both the address. A probe never does.
			if r.Announce != (!r.Probe && spa == r.Addr && tpa == r.Addr) {
				t.Fatalf("report %+v for a packet (operation %d) from %s for %s", r, binary.BigEndian.Uint16(frame[20:22]), spa, tpa)
			}
		}
		if uint64(len(conn.Out)) != st.RepliesSent {
			t.Fatalf("%d frames written, %d replies counted", len(conn.Out), st.RepliesSent)
		}
		for len(conn.Out) > 0 {
			w := <-conn.Out
			b := w.Frame
			if len(b) != 60 {
				t.Fatalf("reply of %d bytes", len(b))
			}
			if !bytes.Equal(b[6:12], ourMAC) || !bytes.Equal(b[22:28], ourMAC) {
				t.Fatalf("reply not from our MAC: % x", b)
			}
			if binary.BigEndian.Uint16(b[12:14]) != 0x0806 || binary.BigEndian.Uint16(b[20:22]) != 2 {
				t.Fatalf("not an ARP reply: % x", b)
			}
			spa := netip.AddrFrom4([4]byte(b[28:32]))
			if !owned[spa] {
				t.Fatalf("replied for %s, which is not owned", spa)
			}
			if !bytes.Equal(b[0:6], b[32:38]) || b[0]&1 != 0 {
				t.Fatalf("reply not unicast to the requester: % x", b)
			}
			if w.Addr.String() != net.HardwareAddr(b[0:6]).String() {
				t.Fatalf("reply written to %v, frame to %s", w.Addr, net.HardwareAddr(b[0:6]))
			}
		}
	})
}
