package ndpspeaker

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/l2engine"
)

const (
	etherTypeIPv6  = 0x86dd
	ethHeaderLen   = 14
	ipv6HeaderLen  = 40
	protoICMPv6    = 58
	hopLimit       = 255 // RFC 4861: Neighbor Discovery packets are sent, and accepted, only with 255
	icmpTypeNS     = 135
	icmpTypeNA     = 136
	nsNALen        = 24 // ICMPv6 header + reserved/flags + target address
	optLenUnitSize = 8
)

var (
	allNodes    = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x01})
	allNodesMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 0x01}
)

// solicitedNode returns the solicited-node multicast group of a: ff02::1:ff00:0/104 and the low
// 24 bits of a.
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// groupMAC returns the Ethernet address of the IPv6 multicast group g: 33:33 and its low 32 bits
// (RFC 2464 section 7).
func groupMAC(g netip.Addr) net.HardwareAddr {
	b := g.As16()
	return net.HardwareAddr{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

// codec is the Neighbor Discovery half of the speaker: it reads solicitations and
// advertisements for the engine and builds the advertisements and probes. Its embedded
// groupKeeper keeps the solicited-node groups of the owned and watched addresses joined; dad
// remembers recent probes, so that their answers are not taken for announcements.
type codec struct {
	mac net.HardwareAddr
	*groupKeeper
	dad dadProbes
}

var (
	_ l2engine.Codec  = (*codec)(nil)
	_ l2engine.Tender = (*codec)(nil)
)

// Usable returns a without a zone, and whether it can be announced: a unicast IPv6 address.
func (*codec) Usable(a netip.Addr) (netip.Addr, bool) {
	a = a.WithZone("")
	return a, a.Is6() && !a.Is4In6() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback()
}

// Parse reads one frame that should hold an ICMPv6 Neighbor Solicitation or Advertisement and
// applies the checks of RFC 4861 section 7.1.1 (solicitations) and 7.1.2 (advertisements).
func (c *codec) Parse(b []byte) l2engine.Message {
	malformed := l2engine.Message{Kind: l2engine.Malformed}
	ethSrc := net.HardwareAddr(b[6:12])
	if l2engine.CheckMAC(ethSrc) != nil {
		return malformed
	}
	ip := b[ethHeaderLen:]
	if len(ip) < ipv6HeaderLen || ip[0]>>4 != 6 {
		return malformed
	}
	payloadLen := int(binary.BigEndian.Uint16(ip[4:6]))
	if ipv6HeaderLen+payloadLen > len(ip) {
		return malformed
	}
	ip = ip[:ipv6HeaderLen+payloadLen] // drop Ethernet padding
	if ip[6] != protoICMPv6 {
		// Other traffic, or extension headers (never used by Neighbor Discovery in practice).
		return l2engine.Message{Kind: l2engine.Ignored}
	}
	src := netip.AddrFrom16([16]byte(ip[8:24]))
	dst := netip.AddrFrom16([16]byte(ip[24:40]))
	icmp := ip[ipv6HeaderLen:]
	if len(icmp) < 4 {
		return malformed
	}
	if icmp[0] != icmpTypeNS && icmp[0] != icmpTypeNA {
		return l2engine.Message{Kind: l2engine.Ignored}
	}
	if ip[7] != hopLimit || icmp[1] != 0 || len(icmp) < nsNALen || src.IsMulticast() ||
		checksum(src, dst, icmp) != 0 || !optionsValid(icmp[nsNALen:]) {
		return malformed
	}
	msg, err := ndp.ParseMessage(icmp)
	if err != nil {
		return malformed
	}
	switch m := msg.(type) {
	case *ndp.NeighborAdvertisement:
		a := parseAdvertisement(m, ethSrc)
		if a.Announces && c.dad.answers(a.Claims, a.MAC, time.Now()) {
			// The defence of a probed address (RFC 4861 section 7.2.4), not an announcement.
			a.Announces = false
		}
		return a
	case *ndp.NeighborSolicitation:
		s := parseSolicitation(m, ethSrc, src, dst)
		if s.Kind == l2engine.Valid && s.Probes.IsValid() {
			c.dad.probed(s.Probes, s.MAC, time.Now())
		}
		return s
	}
	return malformed
}

// linkLayerAddr returns the first link-layer address option of direction d, or nil.
func linkLayerAddr(opts []ndp.Option, d ndp.Direction) net.HardwareAddr {
	for _, o := range opts {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == d {
			return lla.Addr
		}
	}
	return nil
}

// parseAdvertisement reads another host's advertisement: it claims its target for the MAC of
// its Target Link-Layer Address option (or, without one, its Ethernet source), and announces it
// if the Solicited flag is clear (Parse then checks that it does not answer a probe).
func parseAdvertisement(m *ndp.NeighborAdvertisement, ethSrc net.HardwareAddr) l2engine.Message {
	mac := linkLayerAddr(m.Options, ndp.Target)
	if m.TargetAddress.IsMulticast() || (mac != nil && l2engine.CheckMAC(mac) != nil) {
		return l2engine.Message{Kind: l2engine.Malformed}
	}
	if mac == nil {
		mac = ethSrc
	}
	return l2engine.Message{Kind: l2engine.Valid, MAC: mac, Claims: m.TargetAddress, Announces: !m.Solicited}
}

// parseSolicitation reads another host's solicitation: it asks for its target, if sent to the
// target or its solicited-node group, and claims its source, or, from the unspecified address
// (duplicate address detection), probes its target.
func parseSolicitation(m *ndp.NeighborSolicitation, ethSrc net.HardwareAddr, src, dst netip.Addr) l2engine.Message {
	target := m.TargetAddress
	sourceLLA := linkLayerAddr(m.Options, ndp.Source)
	dad := src.IsUnspecified()
	if target.IsMulticast() || (dad && (dst != solicitedNode(target) || sourceLLA != nil)) ||
		(sourceLLA != nil && l2engine.CheckMAC(sourceLLA) != nil) {
		return l2engine.Message{Kind: l2engine.Malformed}
	}
	msg := l2engine.Message{Kind: l2engine.Valid, Request: true, MAC: sourceLLA}
	if msg.MAC == nil {
		msg.MAC = ethSrc
	}
	if dad {
		msg.Probes = target
	} else {
		msg.Claims = src
	}
	if dst == target || dst == solicitedNode(target) {
		msg.Asks = target
	}
	return msg
}

// Answer builds the advertisement of an owned target in answer to a solicitation: Solicited,
// unicast to the solicitor's link-layer address; or, for duplicate address detection (no
// source to answer to), the defence of RFC 4861 section 7.2.4: to all nodes, Solicited clear.
func (c *codec) Answer(m *l2engine.Message) []byte {
	if !m.Claims.IsValid() {
		return c.advertisement(m.Asks, allNodesMAC, allNodes, false)
	}
	return c.advertisement(m.Asks, m.MAC, m.Claims, true)
}

// Announcement is the unsolicited advertisement of vip.
func (c *codec) Announcement(vip netip.Addr) []byte { return c.unsolicited(vip) }

// unsolicited builds the unsolicited advertisement of vip to all nodes.
func (c *codec) unsolicited(vip netip.Addr) []byte {
	return c.advertisement(vip, allNodesMAC, allNodes, false)
}

// Probe builds the duplicate address detection solicitation of addr (RFC 4862 section 5.4.2):
// from ::, to the solicited-node group of addr, no Source Link-Layer Address option (RFC 4861
// section 4.3 forbids it with an unspecified source). Being from ::, it changes no neighbour
// cache.
func (c *codec) Probe(addr netip.Addr) []byte {
	c.dad.probed(addr, c.mac, time.Now())
	group := solicitedNode(addr)
	icmp, err := ndp.MarshalMessageChecksum(&ndp.NeighborSolicitation{TargetAddress: addr}, netip.IPv6Unspecified(), group)
	if err != nil {
		return nil // only for a non-IPv6 addr, which Usable excludes
	}
	return c.ipv6Frame(groupMAC(group), netip.IPv6Unspecified(), group, icmp)
}

// advertisement builds an Ethernet II frame from our MAC to ethDst holding an IPv6 packet from
// vip to dst (hop limit 255) holding a Neighbor Advertisement for vip with the Override flag, the
// given Solicited flag and a Target Link-Layer Address option with our MAC.
func (c *codec) advertisement(vip netip.Addr, ethDst net.HardwareAddr, dst netip.Addr, solicited bool) []byte {
	na := &ndp.NeighborAdvertisement{
		Solicited:     solicited,
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: c.mac}},
	}
	icmp, err := ndp.MarshalMessageChecksum(na, vip, dst)
	if err != nil {
		// Only for a non-IPv6 target or a MAC that is not 6 bytes, which Usable and New exclude;
		// the engine counts the nil frame as a send error.
		return nil
	}
	return c.ipv6Frame(ethDst, vip, dst, icmp)
}

// ipv6Frame builds an Ethernet II frame from our MAC to ethDst holding an IPv6 packet from src
// to dst, hop limit 255, holding the ICMPv6 message icmp.
func (c *codec) ipv6Frame(ethDst net.HardwareAddr, src, dst netip.Addr, icmp []byte) []byte {
	b := make([]byte, ethHeaderLen+ipv6HeaderLen, ethHeaderLen+ipv6HeaderLen+len(icmp))
	copy(b[0:6], ethDst)
	copy(b[6:12], c.mac)
	binary.BigEndian.PutUint16(b[12:14], etherTypeIPv6)
	ip := b[ethHeaderLen:]
	ip[0] = 6 << 4 // version 6, traffic class 0, flow label 0
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(icmp)))
	ip[6] = protoICMPv6
	ip[7] = hopLimit
	src16, dst16 := src.As16(), dst.As16()
	copy(ip[8:24], src16[:])
	copy(ip[24:40], dst16[:])
	return append(b, icmp...)
}

// optionsValid reports whether b is a sequence of whole Neighbor Discovery options, none of
// length zero (RFC 4861 section 4.6).
func optionsValid(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 2 || b[1] == 0 || int(b[1])*optLenUnitSize > len(b) {
			return false
		}
		b = b[int(b[1])*optLenUnitSize:]
	}
	return true
}

// checksum returns the Internet checksum (RFC 1071) of the ICMPv6 message icmp with its IPv6
// pseudo-header (RFC 8200 section 8.1); it is 0 for a message whose checksum field is right.
func checksum(src, dst netip.Addr, icmp []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(b[0])<<8 | uint32(b[1])
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	s16, d16 := src.As16(), dst.As16()
	add(s16[:])
	add(d16[:])
	sum += uint32(len(icmp)) >> 16
	sum += uint32(len(icmp)) & 0xffff
	sum += protoICMPv6
	add(icmp)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
