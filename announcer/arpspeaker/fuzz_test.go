package arpspeaker

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// FuzzHandleFrame feeds arbitrary frames to the frame handler: it must never panic, must account
// for every frame exactly once, and may only ever write a well-formed reply from our MAC for an
// owned VIP (never for a removed or foreign address).
func FuzzHandleFrame(f *testing.F) {
	removed := netip.MustParseAddr("198.18.0.102")
	f.Add(request(vip))
	f.Add(request(otherVIP))
	f.Add(request(removed))
	f.Add(request(peerIP))
	f.Add(arpFrame(ourMAC, peerMAC, 1, peerMAC, peerIP, zeroMAC, vip))
	f.Add(arpFrame(broadcast, peerMAC, 1, peerMAC, netip.IPv4Unspecified(), zeroMAC, vip))
	f.Add(arpFrame(broadcast, peerMAC, 1, peerMAC, vip, zeroMAC, vip))
	f.Add(arpFrame(peerMAC, ourMAC, 2, ourMAC, vip, peerMAC, peerIP))
	f.Add(goldenGratuitous)
	f.Add(request(vip)[:42])
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, frame []byte) {
		conn := newFakeConn()
		s, err := New(Config{Interface: &net.Interface{HardwareAddr: ourMAC}}, conn)
		if err != nil {
			t.Fatal(err)
		}
		s.Set([]netip.Addr{vip, removed})
		s.Set([]netip.Addr{vip, otherVIP})
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
