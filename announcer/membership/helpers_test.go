package membership

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// This file holds what the tests share: keys, sample heartbeats, and a reference implementation
// of the wire format written from the format description, independent of encodeBody and tag, so
// that the tests pin the format rather than restate the code.

// testKey returns a 32-byte key derived from a label.
func testKey(label string) []byte {
	k := sha256.Sum256([]byte("membership test key " + label))
	return k[:]
}

var (
	keyA = testKey("A")
	keyB = testKey("B")
)

func mustSealer(tb testing.TB, ring KeyRing) *Sealer {
	tb.Helper()
	s, err := NewSealer(ring)
	if err != nil {
		tb.Fatalf("NewSealer: %v", err)
	}
	return s
}

func mustSeal(tb testing.TB, s *Sealer, h Heartbeat) []byte {
	tb.Helper()
	b, err := s.Seal(nil, h)
	if err != nil {
		tb.Fatalf("Seal(%s): %v", summary(h), err)
	}
	return b
}

// refKeyID computes a key id as the format describes it: the first 32 bits of
// SHA-256("baremetal.dev/membership/key-id\x00" || key).
func refKeyID(key []byte) uint32 {
	h := sha256.Sum256(append([]byte("baremetal.dev/membership/key-id\x00"), key...))
	return binary.BigEndian.Uint32(h[:4])
}

// refTag computes a tag as the format describes it: HMAC-SHA-256 under key of the domain string
// and the signed bytes (prefix and body), truncated to 128 bits.
func refTag(key, signed []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("baremetal.dev/membership/v2\x00"))
	m.Write(signed)
	return m.Sum(nil)[:16]
}

// sealRaw wraps any body in a prefix and a valid tag under key: how a key holder would send a
// malformed heartbeat.
func sealRaw(key, body []byte) []byte {
	b := []byte{0xB7, 2}
	b = binary.BigEndian.AppendUint32(b, refKeyID(key))
	b = append(b, body...)
	return append(b, refTag(key, b)...)
}

// wire builds a body byte by byte.
type wire []byte

func (w wire) u8(v ...byte) wire { return append(w, v...) }
func (w wire) u16(v int) wire    { return binary.BigEndian.AppendUint16(w, uint16(v)) }
func (w wire) u32(v uint32) wire { return binary.BigEndian.AppendUint32(w, v) }
func (w wire) u64(v uint64) wire { return binary.BigEndian.AppendUint64(w, v) }

// str appends a length byte and s.
func (w wire) str(s string) wire { return append(append(w, byte(len(s))), s...) }

// addr appends a family tag and the address bytes (16 for a mapped address).
func (w wire) addr(s string) wire {
	a := netip.MustParseAddr(s)
	if a.Is4() {
		return append(w.u8(4), a.AsSlice()...)
	}
	return append(w.u8(6), a.AsSlice()...)
}

// claim appends a claim: the address, its generation and its flags byte (claimDoubtful = 1).
func (w wire) claim(addr string, gen uint32, flags byte) wire { return w.addr(addr).u32(gen).u8(flags) }

// fixed is the fixed part of a body: state, flags, incarnation, seq, echo.
func fixed(state, flags byte) wire {
	return wire{}.u8(state, flags).u64(7).u64(3).u64(0).u64(0)
}

// head is a valid fixed part and names.
func head() wire { return fixed(2, 0).str("node-a").str("node-b") }

// empty is a body with every list empty.
func empty() wire { return head().u16(0).u16(0).u16(0).u16(0).u16(0) }

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// samples are heartbeats that exercise every field and the limits.
func samples() map[string]Heartbeat {
	return map[string]Heartbeat{
		"minimal": {Node: "a", To: "b", State: Joining},
		"every field": {
			Node: "lab-node-1", To: "lab-node-2", Incarnation: 0xdeadbeefcafef00d, Seq: 1 << 40,
			State: Active, APIFresh: true, Echo: Echo{Incarnation: 0x1234, Seq: 99},
			Claims: []Claim{
				{Addr: netip.MustParseAddr("198.18.0.240"), Gen: 3},
				{Addr: netip.MustParseAddr("2001:db8:0:1::f0"), Gen: 0xffffffff, Doubtful: true},
				{Addr: netip.MustParseAddr("198.18.0.1"), Gen: 0},
			},
			Cannot: []string{"ARP/eth1", "NDP/"},
			MACs:   []net.HardwareAddr{mac("02:00:00:00:00:01"), mac("ff:ff:ff:ff:ff:ff")},
			Wants:  []netip.Addr{netip.MustParseAddr("198.18.0.241"), netip.MustParseAddr("2001:db8::f1")},
			Yielded: []netip.Addr{
				netip.MustParseAddr("2001:db8::f2"), netip.MustParseAddr("198.18.0.242"), netip.MustParseAddr("198.18.0.241"),
			},
		},
		"empty lists, not nil": {
			Node: "n", To: "m", State: Leaving, Incarnation: 1, Seq: 1,
			Claims: []Claim{}, Cannot: []string{}, MACs: []net.HardwareAddr{}, Wants: []netip.Addr{}, Yielded: []netip.Addr{},
		},
		"IPv4 edges": {
			Node: "n", To: "m", State: Active,
			Claims:  []Claim{{Addr: netip.IPv4Unspecified(), Doubtful: true}, {Addr: netip.MustParseAddr("255.255.255.255"), Gen: 1}},
			Wants:   []netip.Addr{netip.IPv4Unspecified()},
			Yielded: []netip.Addr{netip.MustParseAddr("255.255.255.255"), netip.IPv4Unspecified()},
		},
		"IPv6 only": {
			Node: "n", To: "m", State: Active,
			Claims: []Claim{
				{Addr: netip.IPv6Unspecified()}, {Addr: netip.MustParseAddr("fe80::1")},
				{Addr: netip.MustParseAddr("2001:db8::1"), Gen: 9, Doubtful: true}, {Addr: netip.MustParseAddr("::1.2.3.4")},
			},
			Wants:   []netip.Addr{netip.MustParseAddr("fd00::1")},
			Yielded: []netip.Addr{netip.IPv6Unspecified(), netip.MustParseAddr("::1.2.3.4"), netip.MustParseAddr("fd00::1")},
		},
		"only yielded VIPs": {
			Node: "n", To: "m", State: Active, Yielded: []netip.Addr{netip.MustParseAddr("198.18.0.7")},
		},
		"limits": {
			Node: strings.Repeat("a", MaxNodeName), To: strings.Repeat("0", MaxNodeName-2) + "-.",
			Incarnation: ^uint64(0), Seq: ^uint64(0), State: Leaving, Echo: Echo{^uint64(0), ^uint64(0)},
			Cannot: []string{strings.Repeat("~", maxLink), "!"},
		},
	}
}

// heartbeatDiff compares heartbeats, treating a nil list as an empty one. A long diff is cut
// short: a heartbeat may hold thousands of claims.
func heartbeatDiff(want, got Heartbeat) string {
	const limit = 2000
	d := cmp.Diff(want, got, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Addr{}))
	if len(d) > limit {
		d = fmt.Sprintf("%s\n... (%d more bytes of diff)", d[:limit], len(d)-limit)
	}
	return d
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// manyClaims returns n distinct IPv6 claims (22 bytes each on the wire), every other one
// doubtful.
func manyClaims(n int) []Claim {
	out := make([]Claim, n)
	for i := range out {
		var a [16]byte
		a[0], a[1] = 0x20, 0x01
		binary.BigEndian.PutUint32(a[12:], uint32(i))
		out[i] = Claim{Addr: netip.AddrFrom16(a), Gen: uint32(i), Doubtful: i%2 == 1}
	}
	return out
}

// summary describes a heartbeat in one short line, for failure messages: a heartbeat may hold
// thousands of claims.
func summary(h Heartbeat) string {
	return fmt.Sprintf("{Node:%.20q To:%.20q State:%v Inc:%x Seq:%d, %d claims, %d links, %d MACs, %d wanted, %d yielded}",
		h.Node, h.To, h.State, h.Incarnation, h.Seq, len(h.Claims), len(h.Cannot), len(h.MACs), len(h.Wants), len(h.Yielded))
}

// bytesDiff describes how two byte strings differ in one short line, for failure messages.
func bytesDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("%d bytes, want %d; first difference at byte %d", len(got), len(want), i)
}
