package election_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
)

// BenchmarkAssign elects owners for 1,000 VIPs over 100 nodes, as an announcer does on every
// change of its inputs. Half the VIPs are unrestricted, a quarter have a pool node selector and
// a quarter are externalTrafficPolicy: Local with 10 candidate nodes. "claimed" gives every VIP
// the claim of its current owner (steady state); "unclaimed" has no claims (a fresh cluster).
func BenchmarkAssign(b *testing.B) {
	r := rand.New(rand.NewPCG(11, 12))
	nodes := make([]election.Node, 100)
	for i := range nodes {
		nodes[i] = election.Node{
			Name:    fmt.Sprintf("worker-%03d.example.internal", i),
			Labels:  map[string]string{"zone": zones[i%len(zones)], "kubernetes.io/os": "linux"},
			Healthy: i%25 != 0, // 4 nodes down
		}
	}
	vips := make([]election.VIP, 1000)
	for i := range vips {
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		if i%2 == 1 {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		}
		vips[i] = election.VIP{Addr: a}
		switch i % 4 {
		case 1:
			vips[i].NodeSelector = labels{"zone": zones[i%len(zones)]}
		case 3:
			vips[i].Candidates = map[string]bool{}
			for range 10 {
				vips[i].Candidates[nodes[r.IntN(len(nodes))].Name] = true
			}
		}
	}
	claimed := map[netip.Addr][]election.Claim{}
	for a, o := range election.Assign(vips, nodes, nil) {
		claimed[a] = []election.Claim{{Node: o, Gen: 96}}
	}
	for _, bc := range []struct {
		name   string
		claims map[netip.Addr][]election.Claim
	}{{"claimed", claimed}, {"unclaimed", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if got := election.Assign(vips, nodes, bc.claims); len(got) == 0 {
					b.Fatal("no owners")
				}
			}
		})
	}
}
