package membership

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Reasons Observe drops an authenticated heartbeat. Callers count them by errors.Is.
var (
	ErrNotMember  = errors.New("sender is not a member (no such Node)")
	ErrSource     = errors.New("sent from an address that is not the sender Node's")
	ErrNotForUs   = errors.New("addressed to another node")
	ErrStale      = errors.New("stale or replayed sequence number")
	ErrUnproven   = errors.New("new incarnation without a fresh echo of ours")
	ErrOwnMessage = errors.New("our own heartbeat")
)

// Peer is another announcer as the detector last heard it.
type Peer struct {
	// Last is the last heartbeat accepted from the peer.
	Last Heartbeat
	// HeardAt is when Last arrived.
	HeardAt time.Time
	// EchoSentAt is when we sent the heartbeat of ours that the peer last echoed: the latest
	// moment we know it heard us.
	EchoSentAt time.Time
}

// Detector is a two-way failure detector. A peer is alive while its heartbeats arrive, and
// connected while they also echo ours: only a connected peer is known to hear us. It is pure:
// the caller passes the time, serialises calls and sends what Round returns.
//
// Replay protection: within one incarnation, sequence numbers must increase. A new incarnation
// (a restart) is believed only when its heartbeat echoes one of our recent heartbeats, so a
// recorded heartbeat of an earlier run is refused whatever the sender's clock said.
type Detector struct {
	self        string
	incarnation uint64
	timeout     time.Duration

	seq  uint64
	sent []sentAt // the last heartbeat rounds, oldest first

	members map[string][]netip.Addr
	peers   map[string]*Peer
	// pending is the last heartbeat heard from an incarnation not believed yet: echoing it is
	// how the new incarnation proves itself.
	pending map[string]Echo
}

type sentAt struct {
	seq uint64
	at  time.Time
}

// sentHistory bounds the rounds remembered for echoes: far more than a timeout's worth.
const sentHistory = 256

// NewDetector returns a detector for node self in its run incarnation. A peer silent for longer
// than timeout is dead.
func NewDetector(self string, incarnation uint64, timeout time.Duration) *Detector {
	return &Detector{
		self: self, incarnation: incarnation, timeout: timeout,
		members: map[string][]netip.Addr{}, peers: map[string]*Peer{}, pending: map[string]Echo{},
	}
}

// Incarnation is this run's incarnation.
func (d *Detector) Incarnation() uint64 { return d.incarnation }

// SetMembers replaces the nodes heartbeats are accepted from, with the addresses each may send
// from. Peers that are no longer members are forgotten: per-peer state is bounded by the Nodes
// that exist.
func (d *Detector) SetMembers(members map[string][]netip.Addr) {
	d.members = make(map[string][]netip.Addr, len(members))
	for name, addrs := range members {
		if name == d.self {
			continue
		}
		d.members[name] = slices.Clone(addrs)
	}
	for name := range d.peers {
		if _, ok := d.members[name]; !ok {
			delete(d.peers, name)
		}
	}
	for name := range d.pending {
		if _, ok := d.members[name]; !ok {
			delete(d.pending, name)
		}
	}
}

// Round starts a heartbeat round at now and returns its sequence number.
func (d *Detector) Round(now time.Time) uint64 {
	d.seq++
	if len(d.sent) == sentHistory {
		d.sent = append(d.sent[:0], d.sent[1:]...)
	}
	d.sent = append(d.sent, sentAt{seq: d.seq, at: now})
	return d.seq
}

// EchoFor is the echo a heartbeat to node carries at now: the last heartbeat heard from its
// believed incarnation while that one is alive, else from the incarnation trying to prove itself.
func (d *Detector) EchoFor(now time.Time, node string) Echo {
	p, ok := d.peers[node]
	if ok && d.alive(now, p) {
		return Echo{Incarnation: p.Last.Incarnation, Seq: p.Last.Seq}
	}
	if e, ok := d.pending[node]; ok {
		return e
	}
	if ok {
		return Echo{Incarnation: p.Last.Incarnation, Seq: p.Last.Seq}
	}
	return Echo{}
}

// sentTime returns when round seq of this incarnation was sent, if remembered.
func (d *Detector) sentTime(e Echo) (time.Time, bool) {
	if e.Incarnation != d.incarnation {
		return time.Time{}, false
	}
	i, ok := slices.BinarySearchFunc(d.sent, e.Seq, func(s sentAt, seq uint64) int {
		switch {
		case s.seq < seq:
			return -1
		case s.seq > seq:
			return 1
		}
		return 0
	})
	if !ok {
		return time.Time{}, false
	}
	return d.sent[i].at, true
}

// Observe records an authenticated heartbeat received at now from the address from. It
// reports whether the peer's state or claims changed, or why the heartbeat was dropped.
func (d *Detector) Observe(now time.Time, h Heartbeat, from netip.Addr) (bool, error) {
	if h.Node == d.self {
		return false, ErrOwnMessage
	}
	if h.To != d.self {
		return false, fmt.Errorf("%w: %q", ErrNotForUs, h.To)
	}
	addrs, ok := d.members[h.Node]
	if !ok {
		return false, fmt.Errorf("%w: %q", ErrNotMember, h.Node)
	}
	if !slices.Contains(addrs, from.Unmap().WithZone("")) {
		return false, fmt.Errorf("%w: %s from %s (its addresses: %v)", ErrSource, h.Node, from, addrs)
	}
	echoAt, fresh := d.sentTime(h.Echo)
	fresh = fresh && now.Sub(echoAt) <= d.timeout
	p, known := d.peers[h.Node]
	if known && h.Incarnation == p.Last.Incarnation {
		if h.Seq <= p.Last.Seq {
			return false, fmt.Errorf("%w: %s seq %d, last %d", ErrStale, h.Node, h.Seq, p.Last.Seq)
		}
	} else {
		// Another incarnation. While the believed one is alive, the real node is talking and
		// this is a replay of an earlier run (or a restart faster than the timeout, which waits).
		if known && d.alive(now, p) {
			return false, fmt.Errorf("%w: %s incarnation %016x while %016x is alive", ErrUnproven, h.Node, h.Incarnation, p.Last.Incarnation)
		}
		if e, ok := d.pending[h.Node]; !ok || e.Incarnation != h.Incarnation || e.Seq < h.Seq {
			d.pending[h.Node] = Echo{Incarnation: h.Incarnation, Seq: h.Seq}
		}
		if !fresh {
			return false, fmt.Errorf("%w: %s incarnation %016x", ErrUnproven, h.Node, h.Incarnation)
		}
		delete(d.pending, h.Node)
	}
	changed := !known || p.Last.Incarnation != h.Incarnation || p.Last.State != h.State ||
		!sameClaims(p.Last.Claims, h.Claims) || !slices.Equal(p.Last.Cannot, h.Cannot) ||
		!slices.Equal(p.Last.Wants, h.Wants) || !slices.Equal(p.Last.Yielded, h.Yielded) || p.Last.APIFresh != h.APIFresh
	if !known {
		p = &Peer{}
		d.peers[h.Node] = p
	}
	// Liveness and connectivity are compared before and after, at now: a peer heard again after
	// a silence changes the view, a leaving peer repeating that it leaves does not.
	wasAlive, wasConnected := d.alive(now, p), d.connected(now, p)
	p.Last = h
	p.HeardAt = now
	if fresh {
		p.EchoSentAt = echoAt
	}
	if d.alive(now, p) != wasAlive || d.connected(now, p) != wasConnected {
		changed = true
	}
	return changed, nil
}

// Alive reports whether node was heard within the timeout and has not said it is leaving.
func (d *Detector) Alive(now time.Time, node string) bool {
	p, ok := d.peers[node]
	return ok && d.alive(now, p)
}

// Connected reports whether node is alive and has echoed one of our heartbeats sent within the
// timeout: it hears us too.
func (d *Detector) Connected(now time.Time, node string) bool {
	p, ok := d.peers[node]
	return ok && d.connected(now, p)
}

// Left reports whether node's last heartbeat said it was leaving.
func (d *Detector) Left(node string) bool {
	p, ok := d.peers[node]
	return ok && p.Last.State == Leaving
}

func (d *Detector) alive(now time.Time, p *Peer) bool {
	return p.Last.State != Leaving && now.Sub(p.HeardAt) <= d.timeout
}

func (d *Detector) connected(now time.Time, p *Peer) bool {
	return d.alive(now, p) && !p.EchoSentAt.IsZero() && now.Sub(p.EchoSentAt) <= d.timeout
}

// Peer returns what was last heard from node. The result must not be modified.
func (d *Detector) Peer(node string) (*Peer, bool) {
	p, ok := d.peers[node]
	return p, ok
}

// Members lists the member names (without self), sorted.
func (d *Detector) Members() []string {
	out := make([]string, 0, len(d.members))
	for name := range d.members {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Addrs returns the addresses of a member.
func (d *Detector) Addrs(node string) []netip.Addr { return d.members[node] }

func sameClaims(a, b []Claim) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(x, y Claim) int { return x.Addr.Compare(y.Addr) }
	as := slices.SortedFunc(slices.Values(a), key)
	bs := slices.SortedFunc(slices.Values(b), key)
	return slices.Equal(as, bs)
}
