package membership

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSealOpenRoundTrip(t *testing.T) {
	s := mustSealer(t, KeyRing{Current: keyA})
	for name, h := range samples() {
		t.Run(name, func(t *testing.T) {
			b := mustSeal(t, s, h)
			got, err := s.Open(b)
			if err != nil {
				t.Fatalf("Open(Seal(h)): %v", err)
			}
			if diff := heartbeatDiff(h, got); diff != "" {
				t.Errorf("round trip (-sealed +opened):\n%s", diff)
			}
			// Seal appends: a prefix in the buffer is kept and not part of the datagram.
			prefixed, err := s.Seal([]byte("xyz"), h)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(prefixed[:3], []byte("xyz")) || !bytes.Equal(prefixed[3:], b) {
				t.Errorf("Seal with a prefix: %s", bytesDiff(prefixed, append([]byte("xyz"), b...)))
			}
		})
	}
}

// TestSealWireFormat pins the datagram byte by byte against a reference built from the format
// description, so a change of the wire format (which splits a cluster during an upgrade) is
// never silent.
func TestSealWireFormat(t *testing.T) {
	h := samples()["every field"]
	want := wire{}.u8(0xB7, 2).u32(refKeyID(keyA)).
		u8(2, 1).u64(0xdeadbeefcafef00d).u64(1<<40).u64(0x1234).u64(99).
		str("lab-node-1").str("lab-node-2").
		u16(3).addr("198.18.0.240").u32(3).u8(0).addr("2001:db8:0:1::f0").u32(0xffffffff).u8(1).addr("198.18.0.1").u32(0).u8(0).
		u16(2).str("ARP/eth1").str("NDP/").
		u16(2).u8(2, 0, 0, 0, 0, 1).u8(0xff, 0xff, 0xff, 0xff, 0xff, 0xff).
		u16(2).addr("198.18.0.241").addr("2001:db8::f1").
		u16(3).addr("2001:db8::f2").addr("198.18.0.242").addr("198.18.0.241")
	want = append(want, refTag(keyA, want)...)

	got := mustSeal(t, mustSealer(t, KeyRing{Current: keyA}), h)
	if diff := cmp.Diff([]byte(want), got); diff != "" {
		t.Errorf("sealed datagram (-want +got):\n%s", diff)
	}
	// The reference bytes open to the sample, its doubtful claim included.
	if opened, err := mustSealer(t, KeyRing{Current: keyA}).Open(want); err != nil {
		t.Errorf("Open of the reference datagram: %v", err)
	} else if diff := heartbeatDiff(h, opened); diff != "" {
		t.Errorf("reference datagram opened (-want +got):\n%s", diff)
	}
	if KeyID(keyA) != refKeyID(keyA) {
		t.Errorf("KeyID = %08x, want %08x", KeyID(keyA), refKeyID(keyA))
	}
	if !bytes.Equal(tag(keyA, want[:len(want)-tagLen]), refTag(keyA, want[:len(want)-tagLen])) {
		t.Error("tag differs from the reference HMAC")
	}
}

func TestSealRefuses(t *testing.T) {
	ok := Heartbeat{Node: "node-a", To: "node-b", State: Active}
	with := func(f func(h *Heartbeat)) Heartbeat {
		h := ok
		f(&h)
		return h
	}
	claim := func(addrs ...string) []Claim {
		var out []Claim
		for _, a := range addrs {
			out = append(out, Claim{Addr: mustAddr(a)})
		}
		return out
	}
	s := mustSealer(t, KeyRing{Current: keyA})
	for name, tc := range map[string]struct {
		h    Heartbeat
		want string
	}{
		"empty sender":           {with(func(h *Heartbeat) { h.Node = "" }), "sender: node name of 0 bytes"},
		"long sender":            {with(func(h *Heartbeat) { h.Node = strings.Repeat("a", MaxNodeName+1) }), "sender: node name of 254 bytes"},
		"upper-case sender":      {with(func(h *Heartbeat) { h.Node = "Node-A" }), "sender: byte 0x4e"},
		"sender with underscore": {with(func(h *Heartbeat) { h.Node = "node_a" }), "sender: byte 0x5f"},
		"empty receiver":         {with(func(h *Heartbeat) { h.To = "" }), "receiver: node name of 0 bytes"},
		"long receiver":          {with(func(h *Heartbeat) { h.To = strings.Repeat("b", 300) }), "receiver: node name of 300 bytes"},
		"receiver with a space":  {with(func(h *Heartbeat) { h.To = "node b" }), "receiver: byte 0x20"},
		"zero state":             {with(func(h *Heartbeat) { h.State = 0 }), "state State(0)"},
		"unknown state":          {with(func(h *Heartbeat) { h.State = 4 }), "state State(4)"},
		"zero claim":             {with(func(h *Heartbeat) { h.Claims = []Claim{{}} }), "claim: invalid IP: not an IPv4"},
		"zoned claim":            {with(func(h *Heartbeat) { h.Claims = claim("fe80::1%eth0") }), "claim: fe80::1%eth0: not an IPv4"},
		"mapped claim":           {with(func(h *Heartbeat) { h.Claims = claim("::ffff:198.18.0.1") }), "claim: ::ffff:198.18.0.1: not an IPv4"},
		"duplicate claim":        {with(func(h *Heartbeat) { h.Claims = claim("198.18.0.1", "2001:db8::1", "198.18.0.1") }), "198.18.0.1 claimed twice"},
		"doubtful duplicate": {with(func(h *Heartbeat) {
			h.Claims = append(claim("2001:db8::1"), Claim{Addr: mustAddr("2001:db8::1"), Doubtful: true})
		}), "2001:db8::1 claimed twice"},
		"zero wanted VIP":   {with(func(h *Heartbeat) { h.Wants = []netip.Addr{{}} }), "wanted VIP: invalid IP"},
		"zoned wanted VIP":  {with(func(h *Heartbeat) { h.Wants = []netip.Addr{mustAddr("fe80::1%2")} }), "wanted VIP: fe80::1%2"},
		"mapped wanted VIP": {with(func(h *Heartbeat) { h.Wants = []netip.Addr{mustAddr("::ffff:1.2.3.4")} }), "wanted VIP: ::ffff:1.2.3.4"},
		"zero yielded VIP":  {with(func(h *Heartbeat) { h.Yielded = []netip.Addr{{}} }), "yielded VIP: invalid IP"},
		"zoned yielded VIP": {with(func(h *Heartbeat) { h.Yielded = []netip.Addr{mustAddr("fe80::1%eth0")} }), "yielded VIP: fe80::1%eth0"},
		"mapped yielded VIP": {with(func(h *Heartbeat) {
			h.Yielded = []netip.Addr{mustAddr("198.18.0.1"), mustAddr("::ffff:198.18.0.2")}
		}), "yielded VIP: ::ffff:198.18.0.2"},
		"65536 yielded VIPs":      {with(func(h *Heartbeat) { h.Yielded = slices.Repeat([]netip.Addr{mustAddr("198.18.0.1")}, 0x10000) }), "a list of 65536 entries"},
		"short MAC":               {with(func(h *Heartbeat) { h.MACs = []net.HardwareAddr{{1, 2, 3, 4, 5}} }), "is not 6 bytes"},
		"EUI-64 MAC":              {with(func(h *Heartbeat) { h.MACs = []net.HardwareAddr{{1, 2, 3, 4, 5, 6, 7, 8}} }), "is not 6 bytes"},
		"nil MAC":                 {with(func(h *Heartbeat) { h.MACs = []net.HardwareAddr{nil} }), "is not 6 bytes"},
		"empty link":              {with(func(h *Heartbeat) { h.Cannot = []string{""} }), "link name of 0 bytes"},
		"long link":               {with(func(h *Heartbeat) { h.Cannot = []string{"ARP/" + strings.Repeat("e", maxLink)} }), "link name of 68 bytes"},
		"link with a space":       {with(func(h *Heartbeat) { h.Cannot = []string{"ARP/eth 1"} }), "link: byte 0x20"},
		"link with a control":     {with(func(h *Heartbeat) { h.Cannot = []string{"ARP/eth1\n"} }), "link: byte 0xa"},
		"link with a non-ASCII":   {with(func(h *Heartbeat) { h.Cannot = []string{"ARP/é"} }), "link: byte 0xc3"},
		"65536 links":             {with(func(h *Heartbeat) { h.Cannot = slices.Repeat([]string{"x"}, 0x10000) }), "a list of 65536 entries"},
		"65536 hardware adresses": {with(func(h *Heartbeat) { h.MACs = slices.Repeat([]net.HardwareAddr{{1, 2, 3, 4, 5, 6}}, 0x10000) }), "a list of 65536 entries"},
		"over MaxSize":            {with(func(h *Heartbeat) { h.Claims = manyClaims(3100) }), "exceeds 65000"},
		"over MaxSize by yielded VIPs": {with(func(h *Heartbeat) {
			h.Yielded = slices.Repeat([]netip.Addr{mustAddr("2001:db8::1")}, 3900)
		}), "exceeds 65000"},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := s.Seal(nil, tc.h)
			if err == nil {
				t.Fatalf("Seal succeeded (%d bytes), want an error containing %q", len(b), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Seal error %q, want it to contain %q", err, tc.want)
			}
			if b != nil {
				t.Errorf("Seal returned %d bytes with its error", len(b))
			}
		})
	}
}

// TestSealMaxSize checks the size limit at its boundary: a datagram of exactly MaxSize bytes is
// sealed and opened, one byte more is refused.
func TestSealMaxSize(t *testing.T) {
	// prefix 6 + fixed 34 + names 2+2 + five counts 10 + tag 16 = 70; 2950 IPv6 claims of 22
	// bytes (tag 1, address 16, generation 4, flags 1), two IPv4 claims of 10 and two IPv4
	// yielded VIPs of 5 (tag 1, address 4) add the other 64930.
	claims := append(manyClaims(2950),
		Claim{Addr: mustAddr("198.18.0.1"), Gen: 1, Doubtful: true}, Claim{Addr: mustAddr("198.18.0.2"), Gen: 2})
	yielded := []netip.Addr{mustAddr("198.18.0.3"), mustAddr("198.18.0.4")}
	h := Heartbeat{Node: "a", To: "b", State: Active, Claims: claims, Yielded: yielded}
	s := mustSealer(t, KeyRing{Current: keyA})
	b := mustSeal(t, s, h)
	if len(b) != MaxSize {
		t.Fatalf("sealed %d bytes, want %d", len(b), MaxSize)
	}
	if got, err := s.Open(b); err != nil {
		t.Errorf("Open of a MaxSize datagram: %v", err)
	} else if diff := heartbeatDiff(h, got); diff != "" {
		t.Errorf("round trip (-sealed +opened):\n%s", diff)
	}
	h.To = "bb"
	if b, err := s.Seal(nil, h); err == nil {
		t.Errorf("Seal of %d bytes succeeded, want an error", len(b))
	}
	// A key holder's datagram over MaxSize is refused too, before its tag is checked: Open
	// accepts exactly what Seal produces.
	body, err := encodeBody(nil, &h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(sealRaw(keyA, body)); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Open of a %d-byte datagram: %v, want ErrUnauthenticated", len(body)+prefixLen+tagLen, err)
	}
}

func TestOpenRejectsUnauthenticated(t *testing.T) {
	s := mustSealer(t, KeyRing{Current: keyA})
	valid := mustSeal(t, s, samples()["every field"])
	edit := func(f func(b []byte)) []byte {
		b := slices.Clone(valid)
		f(b)
		return b
	}
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"nil":              {nil, "0 bytes"},
		"prefix and tag-1": {valid[:prefixLen+tagLen-1], "21 bytes"},
		"bad magic":        {edit(func(b []byte) { b[0] = 0xB6 }), "magic 0xb6 version 2"},
		"version 1":        {edit(func(b []byte) { b[1] = 1 }), "magic 0xb7 version 1"},
		"version 3":        {edit(func(b []byte) { b[1] = 3 }), "version 3"},
		"unknown key id":   {edit(func(b []byte) { binary.BigEndian.PutUint32(b[2:], 0x01020304) }), "unknown key id 01020304"},
		"bad tag":          {edit(func(b []byte) { b[len(b)-1] ^= 1 }), "bad tag"},
		"extended":         {append(slices.Clone(valid), 0), "bad tag"},
		"sealed under B":   {mustSeal(t, mustSealer(t, KeyRing{Current: keyB}), samples()["every field"]), "unknown key id"},
	} {
		t.Run(name, func(t *testing.T) {
			h, err := s.Open(tc.b)
			if !errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrMalformed) {
				t.Fatalf("Open: %v, want ErrUnauthenticated", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open error %q, want it to contain %q", err, tc.want)
			}
			if diff := heartbeatDiff(Heartbeat{}, h); diff != "" {
				t.Errorf("Open returned a heartbeat with its error:\n%s", diff)
			}
		})
	}
}

// TestOpenEveryBitFlip flips each bit of a valid datagram in turn: each one must fail
// authentication, never reach the parser.
func TestOpenEveryBitFlip(t *testing.T) {
	s := mustSealer(t, KeyRing{Current: keyA})
	for name, h := range samples() {
		if name == "limits" && testing.Short() {
			continue
		}
		valid := mustSeal(t, s, h)
		b := slices.Clone(valid)
		for i := range b {
			for bit := range 8 {
				b[i] ^= 1 << bit
				if _, err := s.Open(b); !errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrMalformed) {
					t.Fatalf("%s: byte %d bit %d flipped: Open error %v, want ErrUnauthenticated", name, i, bit, err)
				}
				b[i] ^= 1 << bit
			}
		}
		if !bytes.Equal(b, valid) {
			t.Fatal("the datagram was not restored")
		}
	}
}

// TestOpenEveryTruncation cuts a valid datagram at every length.
func TestOpenEveryTruncation(t *testing.T) {
	s := mustSealer(t, KeyRing{Current: keyA})
	for name, h := range samples() {
		valid := mustSeal(t, s, h)
		for n := range len(valid) {
			if _, err := s.Open(valid[:n]); !errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrMalformed) {
				t.Fatalf("%s: truncated to %d of %d bytes: Open error %v, want ErrUnauthenticated", name, n, len(valid), err)
			}
			// The same bytes with a valid tag under the key: the body is cut short.
			if n >= prefixLen+tagLen {
				body := valid[prefixLen : n-tagLen]
				if _, err := s.Open(sealRaw(keyA, body)); !errors.Is(err, ErrMalformed) {
					t.Fatalf("%s: body cut to %d bytes, tag valid: Open error %v, want ErrMalformed", name, len(body), err)
				}
			}
		}
	}
}

func TestKeyRotation(t *testing.T) {
	h := samples()["every field"]
	onlyA := mustSealer(t, KeyRing{Current: keyA})
	onlyB := mustSealer(t, KeyRing{Current: keyB})
	rotating := mustSealer(t, KeyRing{Current: keyB, Previous: keyA})
	sealedA := mustSeal(t, onlyA, h)
	sealedB := mustSeal(t, onlyB, h)
	sealedRotating := mustSeal(t, rotating, h)

	if !bytes.Equal(sealedRotating, sealedB) {
		t.Error("a ring {B, A} does not seal under B")
	}
	if rotating.CurrentID() != KeyID(keyB) || onlyA.CurrentID() != KeyID(keyA) {
		t.Errorf("CurrentID: %08x %08x, want %08x %08x", rotating.CurrentID(), onlyA.CurrentID(), KeyID(keyB), KeyID(keyA))
	}
	if KeyID(keyA) == KeyID(keyB) {
		t.Fatal("two keys share an id")
	}
	for _, tc := range []struct {
		name   string
		opener *Sealer
		b      []byte
		ok     bool
	}{
		{"A opens A", onlyA, sealedA, true},
		{"B opens B", onlyB, sealedB, true},
		{"B refuses A", onlyB, sealedA, false},
		{"A refuses B", onlyA, sealedB, false},
		{"{B, A} opens A", rotating, sealedA, true},
		{"{B, A} opens B", rotating, sealedB, true},
		{"A refuses {B, A}", onlyA, sealedRotating, false},
		// The key id is only a hint: a datagram claiming A's id but tagged under B fails.
		{"A refuses B's tag with A's id", rotating, func() []byte {
			b := slices.Clone(sealedB)
			binary.BigEndian.PutUint32(b[2:], KeyID(keyA))
			return append(b[:len(b)-tagLen], refTag(keyB, b[:len(b)-tagLen])...)
		}(), false},
	} {
		got, err := tc.opener.Open(tc.b)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.ok:
			if diff := heartbeatDiff(h, got); diff != "" {
				t.Errorf("%s (-sealed +opened):\n%s", tc.name, diff)
			}
		case !errors.Is(err, ErrUnauthenticated):
			t.Errorf("%s: error %v, want ErrUnauthenticated", tc.name, err)
		}
	}
}

func TestNewSealer(t *testing.T) {
	short := keyA[:MinKeySize-1]
	for _, tc := range []struct {
		name string
		ring KeyRing
		want string // empty: accepted
	}{
		{"no key", KeyRing{}, "current membership key has 0 bytes"},
		{"short current", KeyRing{Current: short}, "current membership key has 31 bytes, want at least 32"},
		{"short previous", KeyRing{Current: keyA, Previous: short}, "previous membership key has 31 bytes"},
		{"short current, good previous", KeyRing{Current: short, Previous: keyB}, "current membership key has 31 bytes"},
		{"32 bytes", KeyRing{Current: keyA}, ""},
		{"long key", KeyRing{Current: bytes.Repeat([]byte{7}, 200)}, ""},
		{"empty previous", KeyRing{Current: keyA, Previous: []byte{}}, ""},
		{"previous equal to current", KeyRing{Current: keyA, Previous: slices.Clone(keyA)}, ""},
	} {
		s, err := NewSealer(tc.ring)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: accepted", tc.name)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: error %q, want it to contain %q", tc.name, err, tc.want)
		case tc.want != "" && s != nil:
			t.Errorf("%s: a Sealer with the error", tc.name)
		}
	}
}

// TestSealerKeepsItsKeys checks the Sealer is immutable: the caller may wipe or reuse the
// buffers the keys came in.
func TestSealerKeepsItsKeys(t *testing.T) {
	cur, prev := slices.Clone(keyB), slices.Clone(keyA)
	s := mustSealer(t, KeyRing{Current: cur, Previous: prev})
	clear(cur)
	clear(prev)
	h := samples()["minimal"]
	if _, err := s.Open(mustSeal(t, mustSealer(t, KeyRing{Current: keyA}), h)); err != nil {
		t.Errorf("previous key changed with the caller's buffer: %v", err)
	}
	if b := mustSeal(t, s, h); !bytes.Equal(b, mustSeal(t, mustSealer(t, KeyRing{Current: keyB}), h)) {
		t.Error("current key changed with the caller's buffer")
	}
}

// TestOpenDoesNotAlias checks that a heartbeat does not share memory with the datagram, which
// the transport reuses for the next one.
func TestOpenDoesNotAlias(t *testing.T) {
	s := mustSealer(t, KeyRing{Current: keyA})
	want := samples()["every field"]
	b := mustSeal(t, s, want)
	got, err := s.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xAA
	}
	if diff := heartbeatDiff(want, got); diff != "" {
		t.Errorf("heartbeat changed with the datagram (-want +got):\n%s", diff)
	}
}
