package election_test

import (
	"fmt"
	"net/netip"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
)

func ExampleOwner() {
	vip := election.VIP{Addr: netip.MustParseAddr("198.18.0.10")}
	nodes := []election.Node{
		{Name: "node-a", Healthy: true},
		{Name: "node-b", Healthy: true},
		{Name: "node-c", Healthy: true},
	}

	// Nothing claimed: the highest rendezvous score wins.
	owner, _ := election.Owner(vip, nodes, nil)
	fmt.Println("unclaimed:", owner)

	// The owner claims (it saw 3 healthy nodes). A new node does not take the VIP away.
	claims := []election.Claim{{Node: owner, Gen: 3}}
	nodes = append(nodes, election.Node{Name: "node-d", Healthy: true})
	owner, _ = election.Owner(vip, nodes, claims)
	fmt.Println("node-d joined:", owner)

	// The owner fails: its claim is ignored and the next node by score takes over and claims.
	nodes[2].Healthy = false
	owner, _ = election.Owner(vip, nodes, claims)
	fmt.Println("node-c failed:", owner)
	claims = []election.Claim{{Node: owner, Gen: 3}}

	// node-c returns without a claim: the VIP stays where it is.
	nodes[2].Healthy = true
	owner, _ = election.Owner(vip, nodes, claims)
	fmt.Println("node-c returned:", owner)

	// A node that took the VIP in isolation (Gen 1) yields when the partition heals.
	claims = append(claims, election.Claim{Node: "node-b", Gen: 1})
	owner, _ = election.Owner(vip, nodes, claims)
	fmt.Println("partition healed:", owner)

	// Output:
	// unclaimed: node-c
	// node-d joined: node-c
	// node-c failed: node-a
	// node-c returned: node-a
	// partition healed: node-a
}

func ExampleEligible() {
	vip := election.VIP{
		Addr:       netip.MustParseAddr("2001:db8::10"),
		Candidates: map[string]bool{"node-a": true}, // externalTrafficPolicy: Local
	}
	for _, n := range []election.Node{
		{Name: "node-a", Healthy: true},
		{Name: "node-a", Healthy: true, Unschedulable: true},
		{Name: "node-b", Healthy: true},
		{Name: "node-a", Healthy: true, Labels: map[string]string{election.ExcludeLabel: ""}},
	} {
		if ok, why := election.Eligible(vip, n); ok {
			fmt.Printf("%s: eligible\n", n.Name)
		} else {
			fmt.Printf("%s: %s\n", n.Name, why)
		}
	}
	// Output:
	// node-a: eligible
	// node-a: node is cordoned (unschedulable)
	// node-b: node has no local endpoint for the VIP (externalTrafficPolicy: Local)
	// node-a: node has label node.kubernetes.io/exclude-from-external-load-balancers
}
