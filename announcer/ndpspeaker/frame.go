package ndpspeaker

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
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

// linkAddr is the address handed to WriteTo: the destination MAC, as the AF_PACKET connection
// expects it. With a SOCK_RAW socket the kernel sends the frame as built and uses only the
// interface the socket is bound to.
func linkAddr(mac net.HardwareAddr) net.Addr { return &packet.Addr{HardwareAddr: mac} }

// solicitedNode returns the solicited-node multicast group of a: ff02::1:ff00:0/104 and the low
// 24 bits of a.
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// handleFrame handles one frame read from the connection: it answers a Neighbor Solicitation for
// an owned VIP and counts everything else. It never retains b.
func (s *Speaker) handleFrame(b []byte) {
	defer s.stats.received.Add(1)

	if len(b) < ethHeaderLen {
		s.stats.malformed.Add(1)
		return
	}
	ethDst, ethSrc := net.HardwareAddr(b[0:6]), net.HardwareAddr(b[6:12])
	if binary.BigEndian.Uint16(b[12:14]) != etherTypeIPv6 {
		s.stats.ignored.Add(1)
		return
	}
	if bytes.Equal(ethSrc, s.mac) {
		// Our own frame (an outgoing frame looped back to the socket, or the kernel's own).
		s.stats.ignored.Add(1)
		return
	}
	if ethDst[0]&1 == 0 && !bytes.Equal(ethDst, s.mac) {
		// Unicast to another host: seen only in promiscuous mode, not for us.
		s.stats.ignored.Add(1)
		return
	}
	if checkMAC(ethSrc) != nil {
		s.stats.malformed.Add(1)
		return
	}

	ip := b[ethHeaderLen:]
	if len(ip) < ipv6HeaderLen || ip[0]>>4 != 6 {
		s.stats.malformed.Add(1)
		return
	}
	payloadLen := int(binary.BigEndian.Uint16(ip[4:6]))
	if ipv6HeaderLen+payloadLen > len(ip) {
		s.stats.malformed.Add(1)
		return
	}
	ip = ip[:ipv6HeaderLen+payloadLen] // drop Ethernet padding
	if ip[6] != protoICMPv6 {
		// Other traffic, or extension headers (never used by Neighbor Discovery in practice).
		s.stats.ignored.Add(1)
		return
	}
	src := netip.AddrFrom16([16]byte(ip[8:24]))
	dst := netip.AddrFrom16([16]byte(ip[24:40]))
	icmp := ip[ipv6HeaderLen:]
	if len(icmp) < 4 {
		s.stats.malformed.Add(1)
		return
	}
	if icmp[0] != icmpTypeNS && icmp[0] != icmpTypeNA {
		s.stats.ignored.Add(1)
		return
	}

	// RFC 4861 section 7.1.1 (solicitations) and 7.1.2 (advertisements).
	if ip[7] != hopLimit || icmp[1] != 0 || len(icmp) < nsNALen || src.IsMulticast() ||
		checksum(src, dst, icmp) != 0 || !optionsValid(icmp[nsNALen:]) {
		s.stats.malformed.Add(1)
		return
	}
	msg, err := ndp.ParseMessage(icmp)
	if err != nil {
		s.stats.malformed.Add(1)
		return
	}
	switch m := msg.(type) {
	case *ndp.NeighborAdvertisement:
		s.handleAdvertisement(m)
	case *ndp.NeighborSolicitation:
		s.handleSolicitation(m, ethSrc, src, dst)
	default:
		s.stats.malformed.Add(1)
	}
}

// handleAdvertisement counts another host's advertisement: a conflict if it is for an owned VIP.
func (s *Speaker) handleAdvertisement(m *ndp.NeighborAdvertisement) {
	if m.TargetAddress.IsMulticast() {
		s.stats.malformed.Add(1)
		return
	}
	s.mu.RLock()
	_, owned := s.owned[m.TargetAddress]
	s.mu.RUnlock()
	if owned {
		s.stats.conflicts.Add(1)
	}
	s.stats.ignored.Add(1)
}

// handleSolicitation answers a solicitation (already checked as a frame) for an owned VIP.
func (s *Speaker) handleSolicitation(m *ndp.NeighborSolicitation, ethSrc net.HardwareAddr, src, dst netip.Addr) {
	target := m.TargetAddress
	if target.IsMulticast() {
		s.stats.malformed.Add(1)
		return
	}
	var sourceLLA net.HardwareAddr
	for _, o := range m.Options {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Source {
			sourceLLA = lla.Addr
			break
		}
	}
	dad := src.IsUnspecified()
	if dad && (dst != solicitedNode(target) || sourceLLA != nil) {
		s.stats.malformed.Add(1)
		return
	}
	if sourceLLA != nil && checkMAC(sourceLLA) != nil {
		s.stats.malformed.Add(1)
		return
	}
	if bytes.Equal(sourceLLA, s.mac) {
		s.stats.ignored.Add(1)
		return
	}
	s.stats.requests.Add(1)

	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.owned[src]; ok {
		// Another MAC speaks from one of our VIPs: a conflict. Never answer it.
		s.stats.conflicts.Add(1)
		s.stats.ignored.Add(1)
		return
	}
	if _, ok := s.owned[target]; !ok || (dst != target && dst != solicitedNode(target)) {
		s.stats.ignored.Add(1)
		return
	}
	// Ownership is checked and the advertisement written under the read lock, so a VIP removed
	// by Set is never answered after Set returns.
	if dad {
		// RFC 4861 section 7.2.4: defend the address, to all nodes, Solicited clear.
		s.write(s.advertisement(target, allNodesMAC, allNodes, false), allNodesMAC, &s.stats.replies)
		return
	}
	ethDst := sourceLLA
	if ethDst == nil {
		ethDst = ethSrc
	}
	s.write(s.advertisement(target, ethDst, src, true), ethDst, &s.stats.replies)
}

// unsolicited builds the unsolicited advertisement of vip to all nodes.
func (s *Speaker) unsolicited(vip netip.Addr) []byte {
	return s.advertisement(vip, allNodesMAC, allNodes, false)
}

// advertisement builds an Ethernet II frame from our MAC to ethDst holding an IPv6 packet from
// vip to dst (hop limit 255) holding a Neighbor Advertisement for vip with the Override flag, the
// given Solicited flag and a Target Link-Layer Address option with our MAC.
func (s *Speaker) advertisement(vip netip.Addr, ethDst net.HardwareAddr, dst netip.Addr, solicited bool) []byte {
	na := &ndp.NeighborAdvertisement{
		Solicited:     solicited,
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: s.mac}},
	}
	icmp, err := ndp.MarshalMessageChecksum(na, vip, dst)
	if err != nil {
		// Only for a non-IPv6 target or a MAC that is not 6 bytes, which Set and New exclude;
		// write counts the nil frame as a send error.
		return nil
	}
	b := make([]byte, ethHeaderLen+ipv6HeaderLen, ethHeaderLen+ipv6HeaderLen+len(icmp))
	copy(b[0:6], ethDst)
	copy(b[6:12], s.mac)
	binary.BigEndian.PutUint16(b[12:14], etherTypeIPv6)
	ip := b[ethHeaderLen:]
	ip[0] = 6 << 4 // version 6, traffic class 0, flow label 0
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(icmp)))
	ip[6] = protoICMPv6
	ip[7] = hopLimit
	src16, dst16 := vip.As16(), dst.As16()
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
