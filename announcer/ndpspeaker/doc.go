// Package ndpspeaker makes an IPv6 LAN deliver a set of load-balancer VIPs to this node with
// Neighbor Discovery (RFC 4861): it answers Neighbor Solicitations for the VIPs it owns with
// Neighbor Advertisements carrying the interface's MAC address, and announces a VIP it takes over
// with unsolicited Neighbor Advertisements to all nodes (ff02::1).
//
// # Guarantee
//
// The speaker never answers for, and never announces, an address outside the set last given to
// Speaker.Set. Ownership is checked while the frame is written, under the same lock Set takes,
// so once Set returns no advertisement for a removed VIP is sent any more.
//
// # Shape
//
// A Speaker is desired state: Set replaces the whole set of owned VIPs (idempotent), and Run
// does the work until its context ends: it reads frames, answers solicitations, sends the
// takeover bursts of newly owned VIPs and, if Config.Refresh is set, the periodic refresh that
// keeps switch forwarding tables warm. New and Listen start no goroutine. Two seams make it
// testable without a network: a net.PacketConn that carries whole Ethernet II frames, and a
// Groups that joins and leaves IPv6 multicast groups. Listen opens the real ones on Linux (see
// there).
//
// # Wire format
//
// The speaker works at layer 2 and builds Ethernet, IPv6 and ICMPv6 itself, so it does not need
// the VIPs to be configured on the node nor net.ipv6.ip_nonlocal_bind:
//
//   - Every advertisement has the VIP as IPv6 source (the target itself: the Linux neighbour
//     cache accepts that as it accepts a link-local source, and tools such as ndisc6 accept only
//     that), hop limit 255, the Override flag and a Target Link-Layer Address option with the
//     interface MAC. The Router flag is never set.
//   - A solicitation from an address gets a Solicited advertisement, unicast to the solicitor's
//     Source Link-Layer Address option (or, without one, to the frame's Ethernet source).
//   - A duplicate address detection probe (source ::) for an owned VIP is defended, as RFC 4861
//     section 7.2.4 requires, with an advertisement to all nodes, Solicited flag clear.
//   - Takeover bursts and refreshes are unsolicited advertisements to all nodes.
//
// Solicitations are normally sent to the VIP's solicited-node multicast group
// (ff02::1:ffXX:XXXX), which the NIC drops unless someone joined it: the speaker joins the group
// of every owned and watched address through Groups, and leaves it when no such address maps to
// it any more. Listen spreads the memberships over as many sockets as needed, 200 each, because
// Linux limits those of one socket (net.core.optmem_max) to a few hundred.
//
// # What it ignores
//
// Only ICMPv6 Neighbor Solicitations without extension headers are answered, and only when they
// pass the checks of RFC 4861 section 7.1.1 (hop limit 255, valid checksum, code 0, length,
// option lengths, the rules for an unspecified source) and are sent to the VIP or its
// solicited-node group. Frames that fail a check are counted in Stats.Malformed and dropped;
// frames from the interface's own MAC, to another host's unicast MAC, or for addresses not owned
// are counted in Stats.Ignored. Advertisements or solicitations from another MAC that speak as
// an owned VIP are counted in Stats.Conflicts and never answered.
//
// # The wire as a witness
//
// Before a caller takes a VIP over it can ask the LAN whether someone uses it, as duplicate
// address detection does (RFC 4862 section 5.4): Watch the address, send Probe (a solicitation
// from ::, which changes no neighbour cache) and wait for Config.OnForeign. It reports every
// valid advertisement from another MAC for an owned or watched address, every solicitation sent
// from one, and every duplicate address detection of one; for an owned VIP the first two also
// count as conflicts, so the same callback tells an owner that another host answers for its
// VIP. The speaker defends its owned VIPs against the probes of other hosts. A report's Announce
// tells an announcement (an advertisement with the Solicited flag clear, as on takeover) from an
// answer; since the answer to a probe has that flag clear as well, an advertisement that follows
// a probe of its target within a second, from a MAC other than the prober's, counts as an answer.
//
// The protocol-independent machinery (the owned set and its announcement schedule, Run, the
// counters) lives in announcer/internal/l2engine; this package is its Neighbor Discovery codec.
package ndpspeaker
