package arpspeaker

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
)

const (
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	ethHeaderLen  = 14
	arpIPv4Len    = 28 // an Ethernet/IPv4 ARP packet
	minFrameLen   = 60 // the Ethernet minimum without FCS; shorter frames are padded
	hwTypeEther   = 1
)

var (
	broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zeroMAC   = net.HardwareAddr{0, 0, 0, 0, 0, 0}
)

// linkAddr is the address handed to WriteTo: the destination MAC, as the AF_PACKET connection
// expects it. With a SOCK_RAW socket the kernel sends the frame as built and uses only the
// interface the socket is bound to.
func linkAddr(mac net.HardwareAddr) net.Addr { return &packet.Addr{HardwareAddr: mac} }

// handleFrame handles one frame read from the connection: it answers an ARP request for an owned
// VIP and counts everything else. It never retains b.
func (s *Speaker) handleFrame(b []byte) {
	defer s.stats.received.Add(1)

	if len(b) < ethHeaderLen {
		s.stats.malformed.Add(1)
		return
	}
	ethDst, ethSrc := net.HardwareAddr(b[0:6]), net.HardwareAddr(b[6:12])
	if binary.BigEndian.Uint16(b[12:14]) != etherTypeARP {
		s.stats.ignored.Add(1)
		return
	}
	if bytes.Equal(ethSrc, s.mac) {
		// Our own frame (an outgoing frame looped back to the socket, or the kernel's own ARP).
		s.stats.ignored.Add(1)
		return
	}
	if ethDst[0]&1 == 0 && !bytes.Equal(ethDst, s.mac) {
		// Unicast to another host: seen only in promiscuous mode, not for us.
		s.stats.ignored.Add(1)
		return
	}

	body := b[ethHeaderLen:]
	if len(body) < arpIPv4Len ||
		binary.BigEndian.Uint16(body[0:2]) != hwTypeEther ||
		binary.BigEndian.Uint16(body[2:4]) != etherTypeIPv4 ||
		body[4] != 6 || body[5] != 4 {
		s.stats.malformed.Add(1)
		return
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(body[:arpIPv4Len]); err != nil {
		s.stats.malformed.Add(1)
		return
	}
	if p.Operation != arp.OperationRequest && p.Operation != arp.OperationReply {
		s.stats.malformed.Add(1)
		return
	}
	if checkMAC(p.SenderHardwareAddr) != nil || !p.SenderIP.Is4() || !p.TargetIP.Is4() ||
		p.SenderIP.IsMulticast() || p.SenderIP == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		s.stats.malformed.Add(1)
		return
	}
	if bytes.Equal(p.SenderHardwareAddr, s.mac) {
		s.stats.ignored.Add(1)
		return
	}
	request := p.Operation == arp.OperationRequest
	if request {
		s.stats.requests.Add(1)
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.owned[p.SenderIP]; ok {
		// Another MAC speaks as one of our VIPs: a conflict. Never answer it (answering a
		// gratuitous ARP would only make the neighbours flap between the two claimants).
		s.stats.conflicts.Add(1)
		s.stats.ignored.Add(1)
		return
	}
	if _, ok := s.owned[p.TargetIP]; !ok || !request {
		s.stats.ignored.Add(1)
		return
	}
	// Ownership is checked and the reply written under the read lock, so a VIP removed by Set
	// is never answered after Set returns.
	s.write(s.reply(p.TargetIP, p.SenderHardwareAddr, p.SenderIP), p.SenderHardwareAddr, &s.stats.replies)
}

// reply builds the ARP reply of vip to the requester (mac, ip): unicast to mac, sender (our
// MAC, vip), target (mac, ip). A probe's ip is 0.0.0.0, as in the request.
func (s *Speaker) reply(vip netip.Addr, mac net.HardwareAddr, ip netip.Addr) []byte {
	return s.frame(mac, arp.OperationReply, vip, mac, ip)
}

// gratuitous builds the gratuitous ARP of vip: the RFC 5227 ARP Announcement, a broadcast request
// with sender and target protocol addresses both vip and a zero target MAC. Linux updates an
// existing neighbour entry on it at once (it overrides even a fresh entry, being gratuitous), and
// creates one where arp_accept is set.
func (s *Speaker) gratuitous(vip netip.Addr) []byte {
	return s.frame(broadcast, arp.OperationRequest, vip, zeroMAC, vip)
}

// frame builds an Ethernet II frame from our MAC to dst holding one Ethernet/IPv4 ARP packet
// with sender (our MAC, spa), padded to the Ethernet minimum.
func (s *Speaker) frame(dst net.HardwareAddr, op arp.Operation, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	p := arp.Packet{
		HardwareType:       hwTypeEther,
		ProtocolType:       etherTypeIPv4,
		HardwareAddrLength: 6,
		IPLength:           4,
		Operation:          op,
		SenderHardwareAddr: s.mac,
		SenderIP:           spa,
		TargetHardwareAddr: tha,
		TargetIP:           tpa,
	}
	body, _ := p.MarshalBinary() // never fails
	b := make([]byte, ethHeaderLen, minFrameLen)
	copy(b[0:6], dst)
	copy(b[6:12], s.mac)
	binary.BigEndian.PutUint16(b[12:14], etherTypeARP)
	b = append(b, body...)
	for len(b) < minFrameLen {
		b = append(b, 0)
	}
	return b
}
