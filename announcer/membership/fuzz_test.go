package membership

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
)

// FuzzOpen feeds arbitrary datagrams to a Sealer with a fixed key. Open never panics, every
// error wraps exactly one of ErrUnauthenticated and ErrMalformed, and whatever it accepts seals
// back to the same bytes. The same bytes are also tried as a body under a valid tag, so the
// parser behind the authentication is fuzzed through Open too.
func FuzzOpen(f *testing.F) {
	s := mustSealer(f, KeyRing{Current: keyA})
	for _, h := range samples() {
		valid := mustSeal(f, s, h)
		f.Add(valid)
		f.Add(valid[:len(valid)-1])
		f.Add(valid[prefixLen : len(valid)-tagLen]) // its body
		f.Add(mustSeal(f, mustSealer(f, KeyRing{Current: keyB}), h))
	}
	for _, tc := range malformed() {
		f.Add(sealRaw(keyA, tc.body))
		f.Add([]byte(tc.body))
	}
	f.Add([]byte{})
	f.Add([]byte{magic, version})
	f.Add(make([]byte, prefixLen+tagLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(what string, b []byte) (Heartbeat, bool) {
			h, err := s.Open(b)
			if err != nil {
				if errors.Is(err, ErrUnauthenticated) == errors.Is(err, ErrMalformed) {
					t.Fatalf("%s: error %v wraps neither or both of ErrUnauthenticated and ErrMalformed", what, err)
				}
				return h, false
			}
			again, err := s.Seal(nil, h)
			if err != nil {
				t.Fatalf("%s: an opened heartbeat does not seal: %v (%s)", what, err, summary(h))
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("%s: sealing again differs: %s", what, bytesDiff(again, b))
			}
			return h, true
		}
		check("datagram", b)

		if len(b) > MaxSize-prefixLen-tagLen {
			return
		}
		sealed := sealRaw(keyA, b)
		h, ok := check("body under a valid tag", sealed)
		want, err := decodeBody(b)
		if ok != (err == nil) {
			t.Fatalf("Open accepted: %t; decodeBody: %v", ok, err)
		}
		if ok {
			if diff := heartbeatDiff(want, h); diff != "" {
				t.Fatalf("Open and decodeBody differ (-decodeBody +Open):\n%s", diff)
			}
		}
	})
}

// FuzzDecodeBody feeds arbitrary bodies to the parser: it never panics, refuses with
// ErrMalformed, allocates no more than the body holds, and what it accepts encodes back to the
// same bytes.
func FuzzDecodeBody(f *testing.F) {
	for _, h := range samples() {
		body, err := encodeBody(nil, &h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	for _, tc := range malformed() {
		f.Add([]byte(tc.body))
	}
	f.Add([]byte(empty()))
	f.Add([]byte(head().u16(2).claim("2001:db8::1", 7, 1).claim("198.18.0.1", 0, 0).u16(1).str("NDP/").u16(1).u8(2, 0, 0, 0, 0, 1).u16(1).addr("fd00::9").u16(2).addr("198.18.0.1").addr("fd00::9")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeBody(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// A forged count cannot allocate beyond the body: a claim takes at least 10 bytes.
		if cap(h.Claims) > len(b)/10 {
			t.Fatalf("%d claims allocated for a body of %d bytes", cap(h.Claims), len(b))
		}
		again, err := encodeBody(nil, &h)
		if err != nil {
			t.Fatalf("a decoded heartbeat does not encode: %v (%s)", err, summary(h))
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("encoding again differs: %s", bytesDiff(again, b))
		}
	})
}

// FuzzSealOpen builds heartbeats from arbitrary fields: whatever Seal accepts, Open must accept
// and return unchanged. A sender must never emit a heartbeat that every receiver refuses.
func FuzzSealOpen(f *testing.F) {
	s := mustSealer(f, KeyRing{Current: keyA})
	f.Add("lab-node-1", "lab-node-2", uint8(Active), true, uint64(1), uint64(2), []byte{4, 198, 18, 0, 1}, "ARP/eth1", []byte{2, 0, 0, 0, 0, 1})
	f.Add("a", "b", uint8(Joining), false, uint64(0), uint64(0), []byte{}, "", []byte{})
	// A doubtful IPv4 claim, a doubtful IPv6 claim and a wanted VIP.
	f.Add("lab-node-1", "lab-node-2", uint8(Active), false, uint64(5), uint64(6),
		[]byte{0x44, 198, 18, 0, 2, 0x41, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x82, 198, 18, 0, 9}, "", []byte{})
	// A claim, a yielded IPv4 VIP, a yielded IPv6 VIP and a wanted VIP.
	f.Add("lab-node-1", "lab-node-2", uint8(Active), true, uint64(5), uint64(7),
		[]byte{0x04, 198, 18, 0, 1, 0xc0, 198, 18, 0, 2, 0xc1, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x82, 198, 18, 0, 2}, "NDP/", []byte{2, 0, 0, 0, 0, 1})
	// A mapped yielded VIP, which Seal refuses.
	f.Add("a", "b", uint8(Active), false, uint64(1), uint64(1),
		[]byte{0xc1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 1}, "", []byte{})
	f.Add("Node", "b", uint8(0), false, uint64(0), uint64(0), []byte{6, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "ARP/eth 1", []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, node, to string, state uint8, apiFresh bool, inc, seq uint64, addrs []byte, link string, mac []byte) {
		h := Heartbeat{Node: node, To: to, State: State(state), APIFresh: apiFresh, Incarnation: inc, Seq: seq,
			Echo: Echo{Incarnation: seq, Seq: inc}}
		// addrs holds entries: a selector byte, then 4 bytes (even selector) or 16 bytes (odd),
		// every third one zoned; bit 7 of the selector makes a wanted VIP, or a yielded VIP with
		// bit 6, else a claim, which bit 6 makes doubtful.
		for i := 0; len(addrs) > 0; i++ {
			sel := addrs[0]
			n := 4
			if sel%2 == 1 {
				n = 16
			}
			if len(addrs) < 1+n {
				break
			}
			a, _ := netip.AddrFromSlice(addrs[1 : 1+n])
			if sel%3 == 0 {
				a = a.WithZone("eth0")
			}
			addrs = addrs[1+n:]
			switch {
			case sel&0xc0 == 0xc0:
				h.Yielded = append(h.Yielded, a)
			case sel&0x80 != 0:
				h.Wants = append(h.Wants, a)
			default:
				h.Claims = append(h.Claims, Claim{Addr: a, Gen: uint32(i), Doubtful: sel&0x40 != 0})
			}
		}
		if link != "" || apiFresh {
			h.Cannot = []string{link}
		}
		if len(mac) > 0 {
			h.MACs = []net.HardwareAddr{mac}
		}
		b, err := s.Seal(nil, h)
		if err != nil {
			return
		}
		got, err := s.Open(b)
		if err != nil {
			t.Fatalf("Seal accepted what Open refuses: %v (%s)", err, summary(h))
		}
		if diff := heartbeatDiff(h, got); diff != "" {
			t.Fatalf("round trip (-sealed +opened):\n%s", diff)
		}
	})
}
