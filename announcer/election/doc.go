// Package election decides which node answers ARP (RFC 826) or NDP (RFC 4861) for a
// load-balancer VIP in layer-2 mode. It is pure: it imports only the standard library, logs
// nothing, starts no goroutine and never modifies its inputs.
//
// Every announcer (one per node) runs the same election over the same three inputs and, with no
// coordination beyond those inputs, reaches the same answer:
//
//   - the nodes, from the Kubernetes API (Node: labels, cordon, NetworkUnavailable);
//   - each node's health, from the heartbeat-based failure detector (Node.Healthy);
//   - the current claims, carried in heartbeats: which node says it answers for which VIP now,
//     and how many healthy nodes it saw when it took the VIP (Claim.View).
//
// The election is per VIP address, so every Service sharing a VIP gets the same owner.
//
// # Rules
//
// Owner applies, for one VIP:
//
//  1. A node is eligible when it is healthy, not cordoned, its network is available, it does not
//     carry ExcludeLabel, it matches the VIP's NodeSelector and, when the VIP lists Candidates
//     (externalTrafficPolicy: Local), it is one of them. Eligible reports why a node is not.
//  2. If some eligible node claims the VIP, the owner is the eligible claimer with the highest
//     View; ties go to the higher Score, then to the lexically smaller name. Claims by unknown or
//     ineligible nodes are ignored.
//  3. Otherwise the owner is the eligible node with the highest Score(VIP, node) (rendezvous, or
//     highest-random-weight, hashing); ties go to the lexically smaller name.
//
// # Guarantees
//
//   - Deterministic: the result depends only on the contents of the inputs, never on the order
//     of nodes, claims or VIPs, nor on the process, platform or Go version (Score is a fixed
//     function of the address bytes and the node name, not Go's map order or hash/maphash).
//     Announcers that see equal inputs therefore elect the same node.
//   - At most one owner per address; exactly one whenever at least one node is eligible.
//   - Sticky: a claiming owner keeps the VIP for as long as it stays eligible and no eligible
//     node shows a claim with a higher View. Nodes that join or return (with no claim) never take
//     a VIP away from a healthy owner, so the VIP does not flap back.
//   - Spread: with nothing claimed, VIPs spread evenly across eligible nodes, removing a node
//     moves only the VIPs that node owned and adding one moves VIPs only to it (the HRW
//     property); a new node never takes a VIP that an eligible owner claims.
//
// # What it cannot guarantee
//
// Agreement needs equal inputs. Two partitions that each see themselves healthy and the other
// side unhealthy each elect an owner, and both answer for the VIP until they can hear each other
// again; no rule over local inputs can prevent that. When they meet, every announcer sees both
// claims and the View rule decides: the claim made by the side that saw more healthy nodes wins
// (a node that took the VIP while isolated claims with View 1), equal Views fall to the Score,
// and the losing owner must withdraw. Short disagreements while heartbeats are still in flight
// are likewise resolved by the claims once the inputs converge.
//
// The election compares the Views it is given; which number a claimer reports is the caller's
// policy. A claimer that keeps reporting the View it had when it took the VIP will, after being
// isolated in the minority, win the VIP back from the majority's new owner; a claimer that
// reports the number of healthy nodes it sees now will not. A node that sees itself ineligible
// (for example its link is down) should stop claiming, so that it does not take its VIPs back
// when it returns.
package election
