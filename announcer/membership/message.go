package membership

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Heartbeat is one announcer's periodic message.
type Heartbeat struct {
	// Node is the sender's Kubernetes node name.
	Node string
	// Incarnation identifies one run of the sender (its start time); a restarted announcer has a
	// new one, so its old claims are dropped at once.
	Incarnation uint64
	// Seq increases with every heartbeat of one incarnation.
	Seq uint64
	// State says whether the sender is joining, active or leaving.
	State State
	// Claims are the VIPs the sender answers for now.
	Claims []Claim
}

// State of a sender.
type State uint8

const (
	// Joining: just started or just got its link back; it answers for nothing yet and must not be
	// elected until it has heard the others' claims.
	Joining State = 1
	// Active: a full member.
	Active State = 2
	// Leaving: shutting down (SIGTERM); its VIPs go to others at once.
	Leaving State = 3
)

func (s State) String() string {
	switch s {
	case Joining:
		return "joining"
	case Active:
		return "active"
	case Leaving:
		return "leaving"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Claim says the sender answers for Addr; View is how many healthy nodes it saw when it took it.
type Claim struct {
	Addr netip.Addr
	View uint16
}

const (
	magic   = 0xB7
	version = 1
	// headerLen: magic, version, state, name length, incarnation, seq, claim count.
	headerLen = 1 + 1 + 1 + 1 + 8 + 8 + 2
	// MaxNodeName is the longest node name a heartbeat carries (a DNS subdomain is at most 253).
	MaxNodeName = 253
	// MaxSize is the largest heartbeat datagram: on a LAN the IP layer fragments it.
	MaxSize = 65000
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed heartbeat")

// Encode appends the wire form of h to b.
func Encode(b []byte, h Heartbeat) ([]byte, error) {
	if len(h.Node) == 0 || len(h.Node) > MaxNodeName {
		return nil, fmt.Errorf("node name of %d bytes: want 1 to %d", len(h.Node), MaxNodeName)
	}
	if len(h.Claims) > 0xffff {
		return nil, fmt.Errorf("%d claims: at most 65535 fit a heartbeat", len(h.Claims))
	}
	b = append(b, magic, version, byte(h.State), byte(len(h.Node)))
	b = binary.BigEndian.AppendUint64(b, h.Incarnation)
	b = binary.BigEndian.AppendUint64(b, h.Seq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Claims)))
	b = append(b, h.Node...)
	for _, c := range h.Claims {
		switch {
		case c.Addr.Is4():
			a := c.Addr.As4()
			b = append(b, 4)
			b = append(b, a[:]...)
		case c.Addr.Is6() && c.Addr.Zone() == "":
			a := c.Addr.As16()
			b = append(b, 6)
			b = append(b, a[:]...)
		default:
			return nil, fmt.Errorf("claim %v: not an IPv4 or zone-less IPv6 address", c.Addr)
		}
		b = binary.BigEndian.AppendUint16(b, c.View)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("heartbeat of %d bytes exceeds %d: too many claims", len(b), MaxSize)
	}
	return b, nil
}

// Decode parses one heartbeat datagram. It never panics and rejects anything not exactly of the
// format: a wrong magic or version, a bad state, a truncated or over-long message, an invalid
// name byte, duplicate claims.
func Decode(b []byte) (Heartbeat, error) {
	var h Heartbeat
	if len(b) < headerLen {
		return h, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrMalformed, len(b), headerLen)
	}
	if b[0] != magic || b[1] != version {
		return h, fmt.Errorf("%w: magic %#x version %d, want %#x version %d", ErrMalformed, b[0], b[1], magic, version)
	}
	h.State = State(b[2])
	if h.State < Joining || h.State > Leaving {
		return h, fmt.Errorf("%w: state %d", ErrMalformed, b[2])
	}
	nameLen := int(b[3])
	h.Incarnation = binary.BigEndian.Uint64(b[4:12])
	h.Seq = binary.BigEndian.Uint64(b[12:20])
	count := int(binary.BigEndian.Uint16(b[20:22]))
	rest := b[headerLen:]
	if nameLen == 0 || len(rest) < nameLen {
		return h, fmt.Errorf("%w: node name of %d bytes in %d remaining", ErrMalformed, nameLen, len(rest))
	}
	name := rest[:nameLen]
	for _, c := range name {
		if !validNameByte(c) {
			return h, fmt.Errorf("%w: byte %#x in node name", ErrMalformed, c)
		}
	}
	h.Node = string(name)
	rest = rest[nameLen:]
	h.Claims = make([]Claim, 0, min(count, len(rest)/7))
	for i := 0; i < count; i++ {
		if len(rest) < 1 {
			return h, fmt.Errorf("%w: claim %d of %d missing", ErrMalformed, i, count)
		}
		var addr netip.Addr
		switch rest[0] {
		case 4:
			if len(rest) < 1+4+2 {
				return h, fmt.Errorf("%w: claim %d truncated", ErrMalformed, i)
			}
			addr = netip.AddrFrom4([4]byte(rest[1:5]))
			rest = rest[5:]
		case 6:
			if len(rest) < 1+16+2 {
				return h, fmt.Errorf("%w: claim %d truncated", ErrMalformed, i)
			}
			addr = netip.AddrFrom16([16]byte(rest[1:17]))
			if addr.Is4In6() {
				return h, fmt.Errorf("%w: claim %d is an IPv4-mapped IPv6 address", ErrMalformed, i)
			}
			rest = rest[17:]
		default:
			return h, fmt.Errorf("%w: claim %d has family tag %d", ErrMalformed, i, rest[0])
		}
		h.Claims = append(h.Claims, Claim{Addr: addr, View: binary.BigEndian.Uint16(rest[:2])})
		rest = rest[2:]
	}
	if len(rest) != 0 {
		return h, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	sorted := slices.SortedFunc(slices.Values(h.Claims), func(a, b Claim) int { return a.Addr.Compare(b.Addr) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Addr == sorted[i-1].Addr {
			return h, fmt.Errorf("%w: %s claimed twice", ErrMalformed, sorted[i].Addr)
		}
	}
	return h, nil
}

// validNameByte accepts the characters of a Kubernetes node name (a DNS subdomain).
func validNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.'
}
