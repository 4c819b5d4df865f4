package membership

import (
	"slices"
	"strings"
	"time"
)

// Peer is another announcer as the detector last heard it.
type Peer struct {
	Node        string
	State       State
	Incarnation uint64
	Seq         uint64
	LastSeen    time.Time
	Claims      []Claim
}

// Detector tracks which peers are alive from the heartbeats it is given. It is pure: the caller
// passes the time, and serialises calls.
type Detector struct {
	self    string
	timeout time.Duration
	peers   map[string]*Peer
}

// NewDetector returns a detector for the node self; a peer silent for longer than timeout is dead.
func NewDetector(self string, timeout time.Duration) *Detector {
	return &Detector{self: self, timeout: timeout, peers: map[string]*Peer{}}
}

// Observe records a heartbeat received at now. It reports whether what the election depends on
// changed: a peer came alive, changed state or incarnation, or changed its claims. Our own
// heartbeats (looped back) and stale ones (older incarnation, or a sequence number already seen)
// are ignored.
func (d *Detector) Observe(now time.Time, h Heartbeat) bool {
	if h.Node == d.self {
		return false
	}
	p, known := d.peers[h.Node]
	if known {
		switch {
		case h.Incarnation < p.Incarnation:
			return false
		case h.Incarnation == p.Incarnation && h.Seq <= p.Seq:
			return false
		}
	}
	changed := !known || !d.alive(now, p) || p.State != h.State || p.Incarnation != h.Incarnation || !sameClaims(p.Claims, h.Claims)
	d.peers[h.Node] = &Peer{
		Node: h.Node, State: h.State, Incarnation: h.Incarnation, Seq: h.Seq, LastSeen: now,
		Claims: slices.Clone(h.Claims),
	}
	return changed
}

// Expire reports the peers that were alive and whose last heartbeat is now older than the
// timeout: failures. Peers that said they were leaving are not failures and are dropped.
func (d *Detector) Expire(now time.Time) (failed []string) {
	for name, p := range d.peers {
		if p.State == Leaving {
			delete(d.peers, name)
			continue
		}
		if now.Sub(p.LastSeen) > d.timeout && !p.expired() {
			p.LastSeen = time.Time{}
			failed = append(failed, name)
		}
	}
	slices.Sort(failed)
	return failed
}

// Forget drops a peer, for a node deleted from the cluster.
func (d *Detector) Forget(node string) { delete(d.peers, node) }

// Alive returns the peers alive at now (heard within the timeout and not leaving), by name.
func (d *Detector) Alive(now time.Time) []Peer {
	var out []Peer
	for _, p := range d.peers {
		if d.alive(now, p) {
			c := *p
			c.Claims = slices.Clone(p.Claims)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Node, b.Node) })
	return out
}

func (d *Detector) alive(now time.Time, p *Peer) bool {
	return p.State != Leaving && !p.expired() && now.Sub(p.LastSeen) <= d.timeout
}

// expired marks a peer Expire already reported, so it is reported once.
func (p *Peer) expired() bool { return p.LastSeen.IsZero() }

func sameClaims(a, b []Claim) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(x, y Claim) int { return x.Addr.Compare(y.Addr) }
	as := slices.SortedFunc(slices.Values(a), key)
	bs := slices.SortedFunc(slices.Values(b), key)
	return slices.Equal(as, bs)
}
