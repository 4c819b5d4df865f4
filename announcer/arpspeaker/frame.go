package arpspeaker

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/internal/l2engine"
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
	broadcast  = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zeroMAC    = net.HardwareAddr{0, 0, 0, 0, 0, 0}
	broadcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// codec is the ARP half of the speaker: it reads ARP packets for the engine and builds the
// replies, gratuitous ARPs and probes.
type codec struct {
	mac net.HardwareAddr
}

var _ l2engine.Codec = (*codec)(nil)

// Usable returns a unmapped, and whether it can be announced: a unicast IPv4 address.
func (*codec) Usable(a netip.Addr) (netip.Addr, bool) {
	a = a.Unmap()
	return a, a.Is4() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback() && a != broadcast4
}

// Parse reads one Ethernet/IPv4 ARP packet. A request asks for its target; any packet claims
// its sender protocol address, except a probe (sender 0.0.0.0), which probes its target.
func (*codec) Parse(b []byte) l2engine.Message {
	body := b[ethHeaderLen:]
	if len(body) < arpIPv4Len ||
		binary.BigEndian.Uint16(body[0:2]) != hwTypeEther ||
		binary.BigEndian.Uint16(body[2:4]) != etherTypeIPv4 ||
		body[4] != 6 || body[5] != 4 {
		return l2engine.Message{Kind: l2engine.Malformed}
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(body[:arpIPv4Len]); err != nil {
		return l2engine.Message{Kind: l2engine.Malformed}
	}
	if p.Operation != arp.OperationRequest && p.Operation != arp.OperationReply {
		return l2engine.Message{Kind: l2engine.Malformed}
	}
	if l2engine.CheckMAC(p.SenderHardwareAddr) != nil || !p.SenderIP.Is4() || !p.TargetIP.Is4() ||
		p.SenderIP.IsMulticast() || p.SenderIP == broadcast4 {
		return l2engine.Message{Kind: l2engine.Malformed}
	}
	m := l2engine.Message{Kind: l2engine.Valid, Request: p.Operation == arp.OperationRequest, MAC: p.SenderHardwareAddr}
	switch {
	case !p.SenderIP.IsUnspecified():
		m.Claims = p.SenderIP
		m.Announces = p.SenderIP == p.TargetIP
	case m.Request:
		m.Probes = p.TargetIP
	}
	if m.Request {
		m.Asks = p.TargetIP
	}
	return m
}

// Answer builds the reply to a request: unicast to the requester, sender (our MAC, the VIP),
// target (requester's MAC, its address). A probe's address is 0.0.0.0, as in the request.
func (c *codec) Answer(m *l2engine.Message) []byte {
	ip := m.Claims
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	return c.reply(m.Asks, m.MAC, ip)
}

// Announcement is the gratuitous ARP of vip.
func (c *codec) Announcement(vip netip.Addr) []byte { return c.gratuitous(vip) }

// Probe builds the RFC 5227 ARP probe of addr: a broadcast request, sender (our MAC, 0.0.0.0),
// target (zero MAC, addr). The zero sender address keeps every ARP cache as it is.
func (c *codec) Probe(addr netip.Addr) []byte {
	return c.frame(broadcast, arp.OperationRequest, netip.IPv4Unspecified(), zeroMAC, addr)
}

// reply builds the ARP reply of vip to the requester (mac, ip).
func (c *codec) reply(vip netip.Addr, mac net.HardwareAddr, ip netip.Addr) []byte {
	return c.frame(mac, arp.OperationReply, vip, mac, ip)
}

// gratuitous builds the gratuitous ARP of vip: the RFC 5227 ARP Announcement, a broadcast request
// with sender and target protocol addresses both vip and a zero target MAC. Linux updates an
// existing neighbour entry on it at once (it overrides even a fresh entry, being gratuitous), and
// creates one where arp_accept is set.
func (c *codec) gratuitous(vip netip.Addr) []byte {
	return c.frame(broadcast, arp.OperationRequest, vip, zeroMAC, vip)
}

// frame builds an Ethernet II frame from our MAC to dst holding one Ethernet/IPv4 ARP packet
// with sender (our MAC, spa), padded to the Ethernet minimum.
func (c *codec) frame(dst net.HardwareAddr, op arp.Operation, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	p := arp.Packet{
		HardwareType:       hwTypeEther,
		ProtocolType:       etherTypeIPv4,
		HardwareAddrLength: 6,
		IPLength:           4,
		Operation:          op,
		SenderHardwareAddr: c.mac,
		SenderIP:           spa,
		TargetHardwareAddr: tha,
		TargetIP:           tpa,
	}
	body, _ := p.MarshalBinary() // never fails
	b := make([]byte, ethHeaderLen, minFrameLen)
	copy(b[0:6], dst)
	copy(b[6:12], c.mac)
	binary.BigEndian.PutUint16(b[12:14], etherTypeARP)
	b = append(b, body...)
	for len(b) < minFrameLen {
		b = append(b, 0)
	}
	return b
}
