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
//     and the generation of its claim (Claim.Gen: one more than the last takeover's).
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
//     Gen; ties go to the higher Score, then to the lexically smaller name. Claims by unknown or
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
//     node shows a claim with a higher Gen. Nodes that join or return (with no claim) never take
//     a VIP away from a healthy owner, so the VIP does not flap back.
//   - Spread: with nothing claimed, VIPs spread evenly across eligible nodes, removing a node
//     moves only the VIPs that node owned and adding one moves VIPs only to it (the HRW
//     property); a new node never takes a VIP that an eligible owner claims.
//
// # What it cannot guarantee
//
// Agreement needs equal inputs. Two partitions that each see themselves healthy and the other
// side unhealthy could each elect an owner; the caller (announcer/l2) prevents that with a quorum
// and a probe of the wire before any takeover. When claims meet, every announcer sees them all
// and the Gen rule decides: the most recent takeover wins, equal generations fall to the Score,
// and the losing owner must withdraw.
package election
