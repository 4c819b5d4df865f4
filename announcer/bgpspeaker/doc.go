// Package bgpspeaker advertises the node's VIPs to routers over BGP-4 (RFC 4271, with RFC 4760
// for IPv6, RFC 1997 and RFC 8092 communities, RFC 4724 graceful restart with RFC 8538's
// notification bit, RFC 8326 graceful shutdown), as host routes (/32, /128) with this node as
// next hop, and the covering prefixes of pools that are aggregated. It embeds GoBGP v3 as a library and is the only package that imports it: none of
// GoBGP's types appear in its API.
//
// # Desired state
//
// The caller hands Set the whole desired state (peers and routes) each time; the speaker
// converges idempotently. A peer whose configuration is unchanged keeps its session. A route
// goes only to the peers it names: GoBGP v3 has one export policy for all peers, so the speaker
// keeps a global export policy with one statement per set of peers (a neighbor set and a prefix
// set), and a default of reject; imports are all rejected. When a route leaves a peer that
// keeps its session it is withdrawn from all its peers and announced again to the remaining ones
// within the same Set (GoBGP evaluates a withdrawal against the current policy, so it must go
// out before the policy changes); routers see a withdrawal and an announcement milliseconds
// apart. A peer that is deleted or changed loses its session, and with it our routes, so its
// leaving withdraws nothing from the others. When a withdrawal (or a peer's deletion) fails, the
// policy is left as it was, so that the next Set can retry it.
//
// What cannot be applied is returned as Problems in words, each naming the peer it concerns (a
// route's problem is listed for each peer the route names), and the rest is applied: an IPv6
// route without an IPv6 next hop is not sent over IPv4 sessions (a "::" next hop reaches the
// router as ::ffff:<v4> and zebra fails to install the prefix, other nodes' paths included);
// LOCAL_PREF is reported as not sent to eBGP peers.
//
// # Timers
//
// GoBGP's defaults make sessions slow to come up: connect-retry 120 s, hold 90 s, and a
// hard-coded 5 s idle after any drop. The speaker's defaults are hold 9 s and keepalive 3 s
// (FRR's datacenter profile; a silent node is withdrawn after 9 s without BFD), and
// connect-retry 1 s, GoBGP's minimum: while a router is unreachable the speaker dials every
// 1-2 s (GoBGP waits a random [retry, 2*retry) between dials), with a 1 s dial timeout. GoBGP
// waits a random 1-2 s before a new peer's first dial (hard-coded), so the first session is up
// 1-2 s after Set. When a connected session (OpenSent or later) drops back to Idle, the
// speaker deletes and re-adds the peer (no NOTIFICATION: the session is already down), which
// replaces GoBGP's 5 s idle with that 1-2 s wait: a returning router has its session back
// within about 2 s of listening again, even when it resets the first connection (a starting
// FRR does, before zebra has told bgpd about its interfaces).
// docs/bgp-notes.md has the measurements.
//
// # Graceful restart and silent exit
//
// With Peer.GracefulRestart the speaker announces graceful restart with the N bit (RFC 8538)
// for IPv4 and IPv6 unicast, with a restart time of 120 s by default. A restart that should not
// disturb traffic must end the sessions without a NOTIFICATION: GoBGP turns every Cease
// (StopBgp, DeletePeer, ShutdownPeer) into a Hard Reset when the N bit is negotiated, and the
// router then flushes our routes at once. So Run returns when its context ends and leaves the
// BGP server as it is: the sessions stay up until the process exits and the kernel closes the
// TCP connections, which the router treats as a restart and keeps our routes as stale. The
// announcer's process exits right after Run returns. Stop is the other way out, for good: it
// sends the Cease (Hard Reset), and the routers withdraw at once.
//
// The next process tells New whether it is such a restart with Config.Restarting: its sessions
// then set the Restart State bit until each router's first session reaches Established (a
// session that fails before, and the sessions of peers added later, keep it), and it sends its
// routes after the routers' End-of-RIB (at most DeferralTime later), which ends the stale state
// without a withdrawal. The
// proposed way to know is a marker file on a hostPath directory that survives the container
// but not the node (e.g. /run/baremetal-announcer/bgp-running, /run being tmpfs): write it once
// a session is established, remove it after Stop returns. Restarting is "the marker exists at
// start". A node reboot clears /run, and a clean Stop removes the marker, so neither counts as
// a restart.
//
// # Status
//
// Status reports each session's RFC 4271 state, when it last changed, the prefixes sent and
// received (a router should send none: GoBGP keeps them in memory even though none is
// imported), and the last error in words. GoBGP v3 reports dial failures and notifications only
// in its log, so the speaker reads its log messages: "no answer from 198.18.0.1:179",
// "connection refused by ...", "notification: bad peer AS ...". Dial failures are logged at
// debug level only, so GoBGP's level is Debug while a session is not established, and Info
// otherwise (at Debug GoBGP builds a message for each UPDATE). A wrong MD5 password makes the
// router's kernel drop our SYNs silently, so for a peer with a password "no answer" says to
// check it.
//
// # Listening socket
//
// Passive peers need a listening socket, which GoBGP v3 opens only when it starts: the speaker
// listens on Config.ListenPort, or on 179 when the first Set has a passive peer. A passive peer
// that comes later, or one whose port could not be opened (taken by another BGP daemon, say),
// gets a Problem saying so and that the announcer must be restarted on that node; the speaker
// runs without the socket, and its active peers are not affected.
//
// # Goroutines
//
// New starts nothing. Run starts GoBGP's main loop, which GoBGP v3 cannot stop (StopBgp ends
// the sessions and listeners, not the loop): it stays until the process exits.
package bgpspeaker
