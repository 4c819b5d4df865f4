package l2engine

import (
	"net"
	"net/netip"
	"time"
)

// Codec is the protocol half of a speaker: it reads frames and builds the frames the engine
// sends. Its methods are called concurrently and must not block; they never see the engine's
// sets, so a codec cannot answer for an address by mistake.
type Codec interface {
	// Usable returns the form of a in which the speaker owns, watches and probes it, and false
	// for an address the protocol cannot announce (the wrong family, multicast, ...).
	Usable(a netip.Addr) (netip.Addr, bool)
	// Parse reads a frame from another station: at least an Ethernet header, of the engine's
	// EtherType, not from our MAC and sent to us or to a group. The Message may point into
	// frame; the engine does not keep it past the call.
	Parse(frame []byte) Message
	// Answer builds the answer to m, whose Asks the engine owns: a whole Ethernet frame, nil if
	// it cannot be built (counted as a send error).
	Answer(m *Message) []byte
	// Announcement builds the unsolicited announcement of an owned address, sent in its
	// takeover burst and refreshes.
	Announcement(a netip.Addr) []byte
	// Probe builds a probe for a: a question that claims no address, so that only a station
	// that uses a (or probes it too) reacts.
	Probe(a netip.Addr) []byte
}

// Tender is implemented by a codec with work of its own that follows the owned and watched
// sets: ndpspeaker keeps their solicited-node multicast groups joined.
type Tender interface {
	// Changed is called after Set or Watch changed the sets, with their union, outside the
	// engine's frame lock but never concurrently with itself, in the order of the changes.
	Changed(addrs []netip.Addr, now time.Time)
	// Tend is called by Run when the time Changed or the last Tend returned has come; it does
	// what is due and returns when to call it next (zero: not before the next change).
	Tend(now time.Time) time.Time
}

// Kind is the verdict of a codec on a frame.
type Kind uint8

// The zero Kind is Malformed, so that a Message a codec forgot to fill in is dropped.
const (
	// Malformed frames break the protocol's rules: counted in Stats.Malformed, dropped.
	Malformed Kind = iota
	// Ignored frames are well formed but not for the speaker: counted in Stats.Ignored.
	Ignored
	// Valid frames are handed to the engine's decision.
	Valid
)

// Message is what a Valid frame says, in terms both protocols share. A frame may claim one
// address, probe another and ask for a third at once (an ARP request does all but probing).
type Message struct {
	Kind Kind
	// Request marks a question from another station (counted in Stats.RequestsSeen).
	Request bool
	// MAC is the station the frame speaks for: the MAC that claims or probes, and where a
	// unicast answer goes. Frames whose MAC is ours are ignored.
	MAC net.HardwareAddr
	// Claims is the address the frame speaks as: the sender of an ARP packet, the target of a
	// Neighbor Advertisement, the source of a Neighbor Solicitation. Invalid for none.
	Claims netip.Addr
	// Probes is the address a probe asks about without claiming any (an ARP probe, a duplicate
	// address detection solicitation). Invalid for none.
	Probes netip.Addr
	// Asks is the address the frame asks for: answered if owned. Invalid for none.
	Asks netip.Addr
	// Announces marks a frame that announces Claims unasked (a gratuitous ARP, an unsolicited
	// Neighbor Advertisement): what an announcer sends when it takes an address over, and what
	// a kernel that merely holds the address does not send.
	Announces bool
}

// Foreign is one frame from a MAC other than ours that speaks for an owned or watched address.
type Foreign struct {
	Addr     netip.Addr
	MAC      net.HardwareAddr
	Probe    bool
	Announce bool
}

// ForeignType is the shape of the speakers' own Foreign types: each speaker package exports
// one, so that its callers need not see this package.
type ForeignType interface {
	~struct {
		Addr     netip.Addr
		MAC      net.HardwareAddr
		Probe    bool
		Announce bool
	}
}

// ReportTo adapts a speaker's OnForeign callback to the engine's; nil stays nil.
func ReportTo[T ForeignType](f func(T)) func(Foreign) {
	if f == nil {
		return nil
	}
	return func(o Foreign) { f(T(o)) }
}
