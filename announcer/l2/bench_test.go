package l2

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/membership"
)

// BenchmarkHeartbeatInterval measures what one node spends in one heartbeat interval of a
// cluster of N announcers, each owning two VIPs: building and sealing its N-1 heartbeats,
// opening and accepting the N-1 it receives, and one Step. It reports the packet rate per node
// and the share of one CPU core at the shipped 50 ms interval.
func BenchmarkHeartbeatInterval(b *testing.B) {
	for _, n := range []int{10, 100, 500} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			key := make([]byte, 32)
			sealer, _ := membership.NewSealer(membership.KeyRing{Current: key})
			name := func(i int) string { return fmt.Sprintf("node-%03d", i) }
			addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }
			vip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}) }
			var members []Member
			var vips []VIP
			for i := range n {
				members = append(members, Member{Node: election.Node{Name: name(i)}, Addrs: []netip.Addr{addr(i)}, Voter: true})
				for j := range 2 {
					vips = append(vips, VIP{VIP: election.VIP{Addr: vip(2*i + j)}, Links: []string{"ARP/"}})
				}
			}
			now := time.Unix(1_000_000, 0)
			self, _ := New(DefaultConfig(name(0)), 1, now)
			self.SetView(members, vips, true)
			self.SetPrimaryLink(now, true)
			peerInc := func(i int) uint64 { return uint64(1000 + i) }
			seq, peerSeq := uint64(0), uint64(0)
			sealed := make([][]byte, n)
			round := func() {
				seq++
				out := self.Heartbeats(now)
				for _, o := range out {
					if _, err := sealer.Seal(nil, o.Heartbeat); err != nil {
						b.Fatal(err)
					}
				}
			}
			prepare := func() {
				peerSeq++
				for i := 1; i < n; i++ {
					h := membership.Heartbeat{
						Node: name(i), To: name(0), Incarnation: peerInc(i), Seq: peerSeq, State: membership.Active, APIFresh: true,
						Echo:   membership.Echo{Incarnation: 1, Seq: seq},
						Claims: []membership.Claim{{Addr: vip(2 * i), Gen: 1}, {Addr: vip(2*i + 1), Gen: 1}},
					}
					sealed[i], _ = sealer.Seal(sealed[i][:0], h)
				}
			}
			receive := func() {
				for i := 1; i < n; i++ {
					h, err := sealer.Open(sealed[i])
					if err != nil {
						b.Fatal(err)
					}
					if _, err := self.Receive(now, h, addr(i)); err != nil {
						b.Fatal(err)
					}
				}
				self.Step(now)
			}
			// Warm up: handshakes, then the node is active and connected to everyone.
			for range 10 {
				round()
				prepare()
				receive()
				now = now.Add(50 * time.Millisecond)
			}
			if _, connected := self.Peers(now); connected != n-1 {
				b.Fatalf("connected to %d of %d peers", connected, n-1)
			}
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				prepare()
				b.StartTimer()
				round()
				receive()
				b.StopTimer()
				now = now.Add(50 * time.Millisecond)
				b.StartTimer()
			}
			perInterval := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(perInterval/float64(50*time.Millisecond)*100, "%core")
			b.ReportMetric(float64(2*(n-1)*20), "pkts/s")
		})
	}
}
