package membership

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// typical is a heartbeat as a node of a small cluster sends it: three VIPs, one link.
func typical() Heartbeat {
	return Heartbeat{
		Node: "lab-node-1", To: "lab-node-2", Incarnation: 0x1f2e3d4c5b6a7988, Seq: 123456,
		State: Active, APIFresh: true, Echo: Echo{Incarnation: 0x0102030405060708, Seq: 123450},
		Claims: []Claim{
			{Addr: netip.MustParseAddr("198.18.0.240"), Gen: 7},
			{Addr: netip.MustParseAddr("198.18.0.241"), Gen: 7},
			{Addr: netip.MustParseAddr("2001:db8::f0"), Gen: 3},
		},
		MACs: samples()["every field"].MACs[:1],
	}
}

func BenchmarkOpen(b *testing.B) {
	s := mustSealer(b, KeyRing{Current: keyA})
	d := mustSeal(b, s, typical())
	b.SetBytes(int64(len(d)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenGarbage is the cost of a flood: random datagrams with a valid prefix and our key
// id, each refused after one HMAC.
func BenchmarkOpenGarbage(b *testing.B) {
	s := mustSealer(b, KeyRing{Current: keyA})
	r := rand.New(rand.NewPCG(1, 2))
	garbage := make([][]byte, 64)
	for i := range garbage {
		g := make([]byte, len(mustSeal(b, s, typical())))
		for j := range g {
			g[j] = byte(r.Uint32())
		}
		g[0], g[1] = magic, version
		binary.BigEndian.PutUint32(g[2:], s.CurrentID())
		garbage[i] = g
	}
	b.SetBytes(int64(len(garbage[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Open(garbage[i%len(garbage)]); err == nil {
			b.Fatal("garbage accepted")
		}
		i++
	}
}

func BenchmarkSeal(b *testing.B) {
	s := mustSealer(b, KeyRing{Current: keyA})
	h := typical()
	buf := make([]byte, 0, 1500)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = s.Seal(buf[:0], h); err != nil {
			b.Fatal(err)
		}
	}
}
