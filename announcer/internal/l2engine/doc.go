// Package l2engine is the machinery the two layer-2 speakers (announcer/arpspeaker for IPv4 ARP,
// RFC 826 and RFC 5227; announcer/ndpspeaker for IPv6 Neighbor Discovery, RFC 4861 and RFC 4862)
// have in common, so that each of them is only a codec: how to read one frame and how to build
// the few frames it sends.
//
// An Engine owns the net.PacketConn that carries whole Ethernet II frames, the set of owned
// addresses with the schedule of their announcements (the takeover burst and the refresh), the
// set of watched addresses, the counters, and Run: the reading goroutine with its backoff and
// the timer of announcements. A Codec parses a frame into a Message, a protocol-neutral account
// of what the frame says (who claims which address, who asks for which, who probes which); the
// engine decides, under the lock Set takes, whether to answer, count a conflict or report a
// foreign claim, so both protocols keep the same guarantee: nothing is answered or announced for
// an address outside the set last given to Set, from the moment Set returns.
//
// The engine starts no goroutine outside Run and logs nothing; errors carry the speaker's
// package name so that a user sees which speaker failed.
package l2engine
