package l2

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/membership"
)

// Outgoing is one heartbeat to send.
type Outgoing struct {
	To        string
	Addrs     []netip.Addr // the receiver's addresses; send to the one of the transport's family
	Heartbeat membership.Heartbeat
}

// Heartbeats starts a heartbeat round at now and returns one heartbeat per member peer.
func (c *Core) Heartbeats(now time.Time) []Outgoing {
	seq := c.det.Round(now)
	base := membership.Heartbeat{
		Node: c.cfg.Self, Incarnation: c.det.Incarnation(), Seq: seq, State: c.state, APIFresh: c.apiFresh,
	}
	if c.state == membership.Leaving {
		base.Claims = c.released
	} else {
		base.Claims = make([]membership.Claim, 0, len(c.owned))
		for addr, o := range c.owned {
			base.Claims = append(base.Claims, membership.Claim{Addr: addr, Gen: o.gen, Doubtful: o.doubtful})
		}
		slices.SortFunc(base.Claims, func(a, b membership.Claim) int { return a.Addr.Compare(b.Addr) })
	}
	for l := range c.cannot {
		base.Cannot = append(base.Cannot, l)
	}
	slices.Sort(base.Cannot)
	links := make([]string, 0, len(c.macs))
	for l := range c.macs {
		links = append(links, l)
	}
	slices.Sort(links)
	for _, l := range links {
		if !slices.ContainsFunc(base.MACs, func(m net.HardwareAddr) bool { return bytes.Equal(m, c.macs[l]) }) {
			base.MACs = append(base.MACs, c.macs[l])
		}
	}
	for a := range c.wants {
		base.Wants = append(base.Wants, a)
	}
	slices.SortFunc(base.Wants, netip.Addr.Compare)
	for a, until := range c.lostTo {
		if now.Before(until) {
			base.Yielded = append(base.Yielded, a)
		} else {
			delete(c.lostTo, a)
		}
	}
	slices.SortFunc(base.Yielded, netip.Addr.Compare)

	names := c.det.Members()
	out := make([]Outgoing, 0, len(names))
	for _, name := range names {
		h := base
		h.To = name
		h.Echo = c.det.EchoFor(now, name)
		out = append(out, Outgoing{To: name, Addrs: c.det.Addrs(name), Heartbeat: h})
	}
	return out
}

// Receive records an authenticated heartbeat that arrived at now from the address from. It
// reports whether it may change a decision (call Step), or why it was dropped.
func (c *Core) Receive(now time.Time, h membership.Heartbeat, from netip.Addr) (bool, error) {
	wasAlive := c.det.Alive(now, h.Node)
	changed, err := c.det.Observe(now, h, from)
	if err == nil || errors.Is(err, membership.ErrUnproven) || errors.Is(err, membership.ErrStale) {
		// Authenticated and from the member's own address: its MACs are its own, even from a
		// run we do not believe yet (a restarted node that cannot hear us).
		for _, m := range c.macsOf[h.Node] {
			if c.peerMACs[m] == h.Node {
				delete(c.peerMACs, m)
			}
		}
		c.macsOf[h.Node] = c.macsOf[h.Node][:0]
		for _, m := range h.MACs {
			c.peerMACs[string(m)] = h.Node
			c.macsOf[h.Node] = append(c.macsOf[h.Node], string(m))
		}
	}
	if err != nil {
		return false, err
	}
	if !wasAlive && c.det.Alive(now, h.Node) && now.Sub(c.lastRecheck) >= c.cfg.FailureTimeout {
		// A peer is back (a heal, a restart): the wire may now hold another owner of our VIPs
		// that heartbeats cannot tell us about. Probe them all.
		c.lastRecheck = now
		for _, o := range c.owned {
			o.nextSelfProbe = now
		}
		changed = true
	}
	return changed, nil
}

// Observe records a frame from another MAC speaking for an address (a probe answer, a
// gratuitous announcement, another node's probe). During a takeover probe, an answer from
// anyone but a live peer that does not claim the VIP (whose kernel answers: reported, not
// obeyed) stops the takeover. For an owned VIP, a conflicting claim is resolved by the claim
// rules (Step); another MAC that merely answers is reported and answered with a
// re-announcement (at most once per DefendInterval).
func (c *Core) Observe(now time.Time, f Foreign) {
	i, ok := c.byAddr[f.Addr]
	if !ok {
		return
	}
	v := &c.vips[i]
	node := c.peerMACs[string(f.MAC)]

	if p := c.probes[f.Addr]; p != nil && !p.blocked {
		switch {
		case f.Probe && node != "":
			// Another node probes at the same time: the higher rendezvous score goes on.
			if election.Score(f.Addr, node) > election.Score(f.Addr, c.cfg.Self) {
				p.stranger = true
			}
		case node != "":
			if p.answeredBy == nil {
				p.answeredBy = map[string]time.Time{}
			}
			p.answeredBy[node] = now
		default:
			p.stranger = true
		}
	}

	o := c.owned[f.Addr]
	if o == nil || f.Probe {
		return // our speaker answers a probe: that is the defence
	}
	claims, claimsKnown := c.peerClaims(now, node, f.Addr)
	switch {
	case claims:
		// Another claimant: Step's claim rules decide (both sides see both claims, or the one
		// that hears more yields), and the winner re-announces.
	case claimsKnown && f.Announce:
		// A live member announces a VIP its last heartbeat does not claim: a takeover in
		// flight; its next heartbeat brings the claim to the rules.
	case node != "" && f.Announce:
		// A member we do not hear announces the VIP: its announcer owns it too and cannot tell
		// us (after a heal, a restart that cannot hear us). A claim held without a quorum
		// yields to it: ours may be the minority's. A certain claim announces back, so a
		// doubtful owner there yields. (Only a doubtful owner ever yields to the wire: a
		// forged frame cannot move a VIP from an owner with a quorum.)
		if o.doubtful {
			c.yield(f.Addr, node, fmt.Sprintf("%s (%s) announces it and we do not hear it; our claim is doubtful (no quorum)", node, f.MAC))
			c.ceded[f.Addr] = now.Add(c.cfg.CedeFor)
			return
		}
		c.defend(now, v, o)
	case node != "" && !claimsKnown:
		// Its kernel, or its announcer that we cannot hear: announce back soon, so that if it
		// is an announcer with a doubtful claim, it sees us and yields.
		c.emit(Event{Kind: KernelAnswers, VIP: f.Addr, Peer: node, MAC: f.MAC, Reason: "answers for it while its announcer is not heard"})
		if o.lastDefend.IsZero() || now.Sub(o.lastDefend) >= 2*c.cfg.FailureTimeout {
			c.reannounce(now, v, o)
		}
	case node != "":
		c.emit(Event{Kind: KernelAnswers, VIP: f.Addr, Peer: node, MAC: f.MAC, Reason: "answers for a VIP it does not own"})
		c.defend(now, v, o)
	default:
		c.emit(Event{Kind: ForeignAnswer, VIP: f.Addr, MAC: f.MAC, Reason: "a host that is not a member answers for it"})
		c.defend(now, v, o)
	}
}

// peerClaims reports whether node claims addr, and whether we know (the node is alive, so its
// last heartbeat is current).
func (c *Core) peerClaims(now time.Time, node string, addr netip.Addr) (claims, known bool) {
	if node == "" || !c.det.Alive(now, node) {
		return false, false
	}
	p, _ := c.det.Peer(node)
	return slices.ContainsFunc(p.Last.Claims, func(cl membership.Claim) bool { return cl.Addr == addr }), true
}

func (c *Core) defend(now time.Time, v *VIP, o *ownership) {
	if !o.lastDefend.IsZero() && now.Sub(o.lastDefend) < c.cfg.DefendInterval {
		return
	}
	c.reannounce(now, v, o)
}
