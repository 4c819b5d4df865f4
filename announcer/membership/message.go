package membership

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// Heartbeat is one announcer's periodic message to one peer.
type Heartbeat struct {
	// Node is the sender's Kubernetes node name.
	Node string
	// To is the receiver's node name: a heartbeat is addressed, so it cannot be replayed to
	// another node as if it had been meant for it.
	To string
	// Incarnation identifies one run of the sender. It is random, never a clock reading: a
	// restarted announcer is accepted whatever its clock says (see Echo).
	Incarnation uint64
	// Seq increases with every heartbeat round of one incarnation.
	Seq uint64
	// State says whether the sender is joining, active or leaving.
	State State
	// APIFresh reports that the sender's view of the Kubernetes API is current. A node cut off
	// from the API yields a VIP that a peer with a current view contests (Wants).
	APIFresh bool
	// Echo is the receiver's incarnation and the last sequence number the sender heard from it
	// (zero when it heard nothing). It proves the sender hears the receiver now: liveness is
	// two-way, and a new incarnation is believed only once it echoes a fresh heartbeat.
	Echo Echo
	// Claims are the VIPs the sender answers for now.
	Claims []Claim
	// Cannot are the links ("ARP/eth1", "NDP/" for the node's default interface) the sender
	// cannot answer on now: nobody elects it for a VIP announced only there.
	Cannot []string
	// MACs are the sender's hardware addresses on its announce links, so that a node seeing
	// another MAC answer for a VIP knows whose it is.
	MACs []net.HardwareAddr
	// Wants are VIPs the sender would take over but another node still answers for, although
	// the sender's view of the API says that node may not (cordoned, no local endpoint any more).
	Wants []netip.Addr
	// Yielded are VIPs the sender stopped answering for because another node's claim beats its
	// own (after a heal): their owner re-announces them, so neighbours drop the sender's MAC.
	Yielded []netip.Addr
}

// Echo is what a heartbeat says of the last heartbeat its sender heard from the receiver.
type Echo struct {
	Incarnation uint64
	Seq         uint64
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

// Claim says the sender answers for Addr under generation Gen (see announcer/election).
type Claim struct {
	Addr netip.Addr
	Gen  uint32
	// Doubtful marks a claim its owner held while it had no quorum: it may be the minority's
	// side of a partition, so after a heal it loses to a claim that is not doubtful.
	Doubtful bool
}

const (
	magic   = 0xB7
	version = 2
	// prefixLen: magic, version, key id.
	prefixLen = 1 + 1 + 4
	// fixedLen: state, flags, incarnation, seq, echo incarnation, echo seq.
	fixedLen = 1 + 1 + 8 + 8 + 8 + 8
	// MaxNodeName is the longest node name a heartbeat carries (a DNS subdomain is at most 253).
	MaxNodeName = 253
	// maxLink is the longest link name ("NDP/" and an interface name of at most 15 bytes, with
	// room to spare).
	maxLink = 64
	// MaxSize is the largest heartbeat datagram: on a LAN the IP layer fragments it.
	MaxSize = 65000

	flagAPIFresh = 1

	claimDoubtful = 1
)

// ErrMalformed is wrapped by every decoding error of a message that passed authentication.
var ErrMalformed = errors.New("malformed heartbeat")

// encodeBody appends the authenticated body of h (everything after the prefix) to b.
func encodeBody(b []byte, h *Heartbeat) ([]byte, error) {
	if err := checkName(h.Node); err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	if err := checkName(h.To); err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	if h.State < Joining || h.State > Leaving {
		return nil, fmt.Errorf("state %v: want joining, active or leaving", h.State)
	}
	for _, n := range [...]int{len(h.Claims), len(h.Cannot), len(h.MACs), len(h.Wants), len(h.Yielded)} {
		if n > 0xffff {
			return nil, fmt.Errorf("a list of %d entries: at most 65535 fit a heartbeat", n)
		}
	}
	var flags byte
	if h.APIFresh {
		flags |= flagAPIFresh
	}
	b = append(b, byte(h.State), flags)
	b = binary.BigEndian.AppendUint64(b, h.Incarnation)
	b = binary.BigEndian.AppendUint64(b, h.Seq)
	b = binary.BigEndian.AppendUint64(b, h.Echo.Incarnation)
	b = binary.BigEndian.AppendUint64(b, h.Echo.Seq)
	b = appendString(b, h.Node)
	b = appendString(b, h.To)

	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Claims)))
	for _, c := range h.Claims {
		var err error
		if b, err = appendAddr(b, c.Addr); err != nil {
			return nil, fmt.Errorf("claim: %w", err)
		}
		b = binary.BigEndian.AppendUint32(b, c.Gen)
		var flags byte
		if c.Doubtful {
			flags |= claimDoubtful
		}
		b = append(b, flags)
	}
	if err := checkClaims(h.Claims); err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Cannot)))
	for _, l := range h.Cannot {
		if len(l) == 0 || len(l) > maxLink {
			return nil, fmt.Errorf("link name of %d bytes: want 1 to %d", len(l), maxLink)
		}
		for i := range len(l) {
			if !validLinkByte(l[i]) {
				return nil, fmt.Errorf("link: byte %#x in %q", l[i], l)
			}
		}
		b = appendString(b, l)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.MACs)))
	for _, m := range h.MACs {
		if len(m) != 6 {
			return nil, fmt.Errorf("hardware address %q is not 6 bytes", m)
		}
		b = append(b, m...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Wants)))
	for _, w := range h.Wants {
		var err error
		if b, err = appendAddr(b, w); err != nil {
			return nil, fmt.Errorf("wanted VIP: %w", err)
		}
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Yielded)))
	for _, y := range h.Yielded {
		var err error
		if b, err = appendAddr(b, y); err != nil {
			return nil, fmt.Errorf("yielded VIP: %w", err)
		}
	}
	return b, nil
}

// checkName accepts what decodeBody accepts: 1 to MaxNodeName bytes of a DNS subdomain.
func checkName(s string) error {
	if len(s) == 0 || len(s) > MaxNodeName {
		return fmt.Errorf("node name of %d bytes: want 1 to %d", len(s), MaxNodeName)
	}
	for i := range len(s) {
		if !validNameByte(s[i]) {
			return fmt.Errorf("byte %#x in node name %q", s[i], s)
		}
	}
	return nil
}

// checkClaims refuses an address claimed twice, as decodeBody does.
func checkClaims(claims []Claim) error {
	sorted := slices.SortedFunc(slices.Values(claims), func(a, b Claim) int { return a.Addr.Compare(b.Addr) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Addr == sorted[i-1].Addr {
			return fmt.Errorf("%s claimed twice", sorted[i].Addr)
		}
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

func appendAddr(b []byte, a netip.Addr) ([]byte, error) {
	switch {
	case a.Is4():
		v := a.As4()
		return append(append(b, 4), v[:]...), nil
	case a.Is6() && a.Zone() == "" && !a.Is4In6():
		v := a.As16()
		return append(append(b, 6), v[:]...), nil
	}
	return nil, fmt.Errorf("%v: not an IPv4 or zone-less, unmapped IPv6 address", a)
}

// reader consumes a body; the first error sticks and every later read returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("%s: %d bytes needed, %d left", what, n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u16(what string) int {
	if v := r.take(2, what); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (r *reader) str(what string, max int, valid func(byte) bool) string {
	n := r.take(1, what)
	if n == nil {
		return ""
	}
	if n[0] == 0 || int(n[0]) > max {
		r.fail("%s of %d bytes: want 1 to %d", what, n[0], max)
		return ""
	}
	v := r.take(int(n[0]), what)
	for _, c := range v {
		if !valid(c) {
			r.fail("byte %#x in %s", c, what)
			return ""
		}
	}
	return string(v)
}

func (r *reader) addr(what string) netip.Addr {
	tag := r.take(1, what)
	if tag == nil {
		return netip.Addr{}
	}
	switch tag[0] {
	case 4:
		if v := r.take(4, what); v != nil {
			return netip.AddrFrom4([4]byte(v))
		}
	case 6:
		if v := r.take(16, what); v != nil {
			a := netip.AddrFrom16([16]byte(v))
			if a.Is4In6() {
				r.fail("%s %s is an IPv4-mapped IPv6 address", what, a)
			}
			return a
		}
	default:
		r.fail("%s has family tag %d", what, tag[0])
	}
	return netip.Addr{}
}

// count reads a list length and checks that at least min bytes per entry remain, so that a
// forged count cannot make the decoder allocate more than the datagram holds.
func (r *reader) count(what string, minEntry int) int {
	n := r.u16(what + " count")
	if r.err == nil && n*minEntry > len(r.b) {
		r.fail("%d %s in %d bytes", n, what, len(r.b))
		return 0
	}
	return n
}

// decodeBody parses an authenticated body. It never panics and rejects anything not exactly of
// the format.
func decodeBody(b []byte) (Heartbeat, error) {
	r := &reader{b: b}
	var h Heartbeat
	fixed := r.take(fixedLen, "header")
	if fixed == nil {
		return h, r.err
	}
	h.State = State(fixed[0])
	if h.State < Joining || h.State > Leaving {
		return h, fmt.Errorf("%w: state %d", ErrMalformed, fixed[0])
	}
	if fixed[1]&^flagAPIFresh != 0 {
		return h, fmt.Errorf("%w: unknown flags %#x", ErrMalformed, fixed[1])
	}
	h.APIFresh = fixed[1]&flagAPIFresh != 0
	h.Incarnation = binary.BigEndian.Uint64(fixed[2:10])
	h.Seq = binary.BigEndian.Uint64(fixed[10:18])
	h.Echo.Incarnation = binary.BigEndian.Uint64(fixed[18:26])
	h.Echo.Seq = binary.BigEndian.Uint64(fixed[26:34])
	h.Node = r.str("sender name", MaxNodeName, validNameByte)
	h.To = r.str("receiver name", MaxNodeName, validNameByte)

	n := r.count("claims", 1+4+4+1)
	h.Claims = make([]Claim, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		a := r.addr("claim")
		g := r.take(4, "claim generation")
		f := r.take(1, "claim flags")
		if f == nil {
			break
		}
		if f[0]&^claimDoubtful != 0 {
			r.fail("claim %s has unknown flags %#x", a, f[0])
			break
		}
		h.Claims = append(h.Claims, Claim{Addr: a, Gen: binary.BigEndian.Uint32(g), Doubtful: f[0]&claimDoubtful != 0})
	}
	n = r.count("links", 2)
	for i := 0; i < n && r.err == nil; i++ {
		h.Cannot = append(h.Cannot, r.str("link", maxLink, validLinkByte))
	}
	n = r.count("hardware addresses", 6)
	for i := 0; i < n && r.err == nil; i++ {
		if m := r.take(6, "hardware address"); m != nil {
			h.MACs = append(h.MACs, net.HardwareAddr(slices.Clone(m)))
		}
	}
	n = r.count("wanted VIPs", 1+4)
	for i := 0; i < n && r.err == nil; i++ {
		h.Wants = append(h.Wants, r.addr("wanted VIP"))
	}
	n = r.count("yielded VIPs", 1+4)
	for i := 0; i < n && r.err == nil; i++ {
		h.Yielded = append(h.Yielded, r.addr("yielded VIP"))
	}
	if r.err != nil {
		return h, r.err
	}
	if len(r.b) != 0 {
		return h, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.b))
	}
	if err := checkClaims(h.Claims); err != nil {
		return h, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return h, nil
}

// validNameByte accepts the characters of a Kubernetes node name (a DNS subdomain).
func validNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.'
}

// validLinkByte accepts a protocol, a slash and a Linux interface name.
func validLinkByte(c byte) bool {
	return c > ' ' && c < 0x7f
}
