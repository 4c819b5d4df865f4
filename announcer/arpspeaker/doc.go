// Package arpspeaker makes an IPv4 LAN deliver a set of load-balancer VIPs to this node: it
// answers ARP requests (RFC 826) for the VIPs it owns with the interface's MAC address, and
// announces a VIP it takes over with gratuitous ARP (the RFC 5227 "ARP Announcement": a
// broadcast ARP request whose sender and target protocol addresses are both the VIP).
//
// # Guarantee
//
// The speaker never answers for, and never announces, an address outside the set last given to
// Speaker.Set. Ownership is checked while the frame is written, under the same lock Set takes,
// so once Set returns no reply or announcement for a removed VIP is sent any more.
//
// # Shape
//
// A Speaker is desired state: Set replaces the whole set of owned VIPs (idempotent), and Run
// does the work until its context ends: it reads frames, answers requests, sends the takeover
// bursts of newly owned VIPs and, if Config.Refresh is set, the periodic refresh that keeps
// switch forwarding tables warm. New and Listen start no goroutine. Frames travel through a
// net.PacketConn that carries whole Ethernet II frames, so tests inject a fake connection and
// compare bytes; Listen opens the real one, a Linux AF_PACKET socket bound to EtherType ARP on
// one interface. The interface needs no IPv4 address, and the VIPs need not be configured on it.
//
// # What it answers
//
//   - A request (also a probe, with sender 0.0.0.0) whose target is an owned VIP: a unicast
//     reply to the requester, sender = (interface MAC, VIP).
//   - Nothing else: requests for other addresses, replies, frames sent from the interface's own
//     MAC, frames for another host's unicast MAC (seen in promiscuous mode), and gratuitous ARP
//     from another host for an owned VIP (counted in Stats.Conflicts: someone else claims it).
//
// Malformed or unsupported frames (truncated, not Ethernet/IPv4 ARP, group or zero sender MAC)
// are counted in Stats.Malformed and dropped.
//
// # The wire as a witness
//
// Before a caller takes a VIP over it can ask the LAN whether someone uses it, as RFC 5227
// section 2.1 does: Watch the address, send Probe (an ARP probe, sender 0.0.0.0, which changes
// no ARP cache) and wait for Config.OnForeign. It reports every valid ARP packet from another
// MAC whose sender is an owned or watched address (a reply, an announcement, a request from that
// address) and every probe of one; for an owned VIP the first kind also counts as a conflict, so
// the same callback tells an owner that another host answers for its VIP. The speaker answers
// the probes of other hosts for its owned VIPs, so that they back off.
//
// The protocol-independent machinery (the owned set and its announcement schedule, Run, the
// counters) lives in announcer/internal/l2engine; this package is its ARP codec.
package arpspeaker
