package l2

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/membership"
)

// peerClaim is one peer's claim on a VIP as the last heartbeat showed it.
type peerClaim struct {
	node     string
	gen      uint32
	doubtful bool
	live     bool // the peer is alive and active: the claim counts
}

// Step advances the core to now: it finishes a join, runs the election of every VIP and returns
// what the caller must do. Rules, for each VIP:
//
//  1. Claims count while their node is alive (heard, even one way) and active and, in this
//     node's view of the API, eligible and able to serve one of the VIP's links. A claim held
//     without a quorum is doubtful (it may be a partition's minority) until its owner has had
//     a quorum for two failure timeouts with no rival; a certain claim beats a doubtful one.
//     Then the claim with the highest generation wins, then the higher rendezvous score, then
//     the smaller name
//     (announcer/election), except that a claimant that has not heard us for a failure timeout
//     wins outright: it cannot know our claim, so the node that hears more yields. An owner that
//     loses withdraws; a winner that beat another live claim re-announces, so neighbours drop
//     the loser's MAC.
//  2. With no live claim, the rendezvous winner among the eligible nodes that are active and
//     connected both ways takes the VIP, and only (a) with a quorum: it is connected both ways to
//     more than half of the members the API lists, and (b) with evidence that the last owner is
//     gone: that owner said it was leaving, or a probe on the wire found nobody answering. During
//     a node's cold start the candidates are all eligible members, so a first start spreads.
//  3. A node cut off from the API yields a VIP that a peer with a current view contests.
func (c *Core) Step(now time.Time) Output {
	if c.state == membership.Joining && c.primaryUp && !now.Before(c.joinUntil) {
		c.state = membership.Active
		if c.activeSince.IsZero() {
			c.activeSince = now // the cold start is the first activation only, not a rejoin
		}
	}
	selfActive := c.state == membership.Active && c.primaryUp

	c.trackOneWay(now)
	claims := c.collectClaims(now)
	quorum := c.quorum(now, selfActive)
	cold := selfActive && now.Before(c.activeSince.Add(c.cfg.ColdStartWait)) && !c.allConnected(now)
	if !quorum {
		for _, o := range c.owned {
			o.doubtful = true
		}
	}
	if quorum && !c.hadQuorum {
		c.quorumSince = now
	}
	if quorum || !selfActive {
		c.noQuorumSince = time.Time{}
		c.reportedNoQuorum = false
	} else if c.noQuorumSince.IsZero() {
		c.noQuorumSince = now
	} else if !c.reportedNoQuorum && now.Sub(c.noQuorumSince) >= c.cfg.FailureTimeout {
		// Reported once it lasts: a node that just joined has no quorum until the echoes arrive.
		c.reportedNoQuorum = true
		alive, connected := c.Peers(now)
		c.emit(Event{Kind: NoQuorum, Reason: fmt.Sprintf("connected both ways to %d of %d members (%d heard): no takeovers until more than half of the voters are", connected+1, len(c.members), alive)})
	}
	c.hadQuorum = quorum

	for addr := range c.owned {
		if _, ok := c.byAddr[addr]; !ok {
			c.yield(addr, "", "no longer announced at layer 2")
		}
	}
	for addr := range c.probes {
		if _, ok := c.byAddr[addr]; !ok {
			delete(c.probes, addr)
		}
	}
	for _, m := range []map[netip.Addr]uint32{c.maxGen} {
		for addr := range m {
			if _, ok := c.byAddr[addr]; !ok {
				delete(m, addr)
				delete(c.holder, addr)
				delete(c.wants, addr)
				delete(c.ceded, addr)
				delete(c.lostTo, addr)
			}
		}
	}
	for i := range c.vips {
		c.decide(now, &c.vips[i], claims[c.vips[i].Addr], selfActive, quorum, cold)
	}
	out := c.out
	c.out = Output{}
	return out
}

// collectClaims gathers the peers' claims by VIP and raises the generations seen.
func (c *Core) collectClaims(now time.Time) map[netip.Addr][]peerClaim {
	out := map[netip.Addr][]peerClaim{}
	for _, name := range c.det.Members() {
		p, ok := c.det.Peer(name)
		if !ok {
			continue
		}
		live := p.Last.State == membership.Active && c.det.Alive(now, name)
		for _, cl := range p.Last.Claims {
			c.raiseGen(cl.Addr, cl.Gen, name)
			out[cl.Addr] = append(out[cl.Addr], peerClaim{node: name, gen: cl.Gen, doubtful: cl.Doubtful, live: live})
		}
	}
	return out
}

func (c *Core) raiseGen(addr netip.Addr, gen uint32, node string) {
	if _, ok := c.byAddr[addr]; !ok {
		return
	}
	if gen > c.maxGen[addr] || gen == c.maxGen[addr] && c.holder[addr] == "" {
		c.maxGen[addr] = gen
		c.holder[addr] = node
	}
}

// quorum reports whether this node is connected both ways to more than half of the voters,
// itself included (a node that is not a voter is never eligible anyway).
func (c *Core) quorum(now time.Time, selfActive bool) bool {
	if !selfActive || !c.members[c.cfg.Self].Voter {
		return false
	}
	total, connected := 1, 1
	for _, name := range c.det.Members() {
		if !c.members[name].Voter {
			continue
		}
		total++
		if c.det.Connected(now, name) {
			connected++
		}
	}
	return 2*connected > total
}

// allConnected reports whether every voter is connected both ways and past its join.
func (c *Core) allConnected(now time.Time) bool {
	for _, name := range c.det.Members() {
		if !c.members[name].Voter {
			continue
		}
		p, ok := c.det.Peer(name)
		if !ok || !c.det.Connected(now, name) || p.Last.State != membership.Active {
			return false
		}
	}
	return true
}

// eligible reports whether node may own v in this node's view, and why not.
func (c *Core) eligible(v *VIP, node string) (bool, string) {
	m, ok := c.members[node]
	if !ok {
		return false, "not a member"
	}
	n := m.Node
	n.Healthy = true
	if ok, reason := election.Eligible(v.VIP, n); !ok {
		return false, reason
	}
	canServe := func(l string) bool { return !c.cannot[l] }
	if node != c.cfg.Self {
		var cannot []string
		if p, ok := c.det.Peer(node); ok {
			cannot = p.Last.Cannot
		}
		canServe = func(l string) bool { return !slices.Contains(cannot, l) }
	}
	if !slices.ContainsFunc(v.Links, canServe) {
		return false, "cannot answer on " + strings.Join(v.Links, ", ")
	}
	return true, ""
}

type rank struct {
	unhearing bool // the claimant has not heard us for a failure timeout
	certain   bool // the claim is not doubtful
	gen       uint32
	score     uint64
	name      string
}

func (a rank) beats(b rank) bool {
	if a.certain != b.certain {
		return a.certain
	}
	if a.unhearing != b.unhearing {
		return a.unhearing
	}
	if a.gen != b.gen {
		return a.gen > b.gen
	}
	if a.score != b.score {
		return a.score > b.score
	}
	return a.name < b.name
}

func (c *Core) decide(now time.Time, v *VIP, claims []peerClaim, selfActive, quorum, cold bool) {
	self := c.cfg.Self
	selfOK, selfReason := false, "not active"
	if selfActive {
		selfOK, selfReason = c.eligible(v, self)
	}
	own := c.owned[v.Addr]
	delete(c.wants, v.Addr) // set again below while the contest lasts

	// Rule 3: a contest from a peer whose API view is current, while ours is not.
	if own != nil && !c.apiFresh {
		for _, name := range c.det.Members() {
			p, ok := c.det.Peer(name)
			if ok && c.det.Alive(now, name) && p.Last.APIFresh && slices.Contains(p.Last.Wants, v.Addr) {
				c.yield(v.Addr, name, fmt.Sprintf("%s contests it and our view of the API is not current", name))
				c.ceded[v.Addr] = now.Add(c.cfg.CedeFor)
				own = nil
				break
			}
		}
	}

	// Rule 1: live claims.
	var best rank
	found, rivals, contested := false, 0, false
	for _, cl := range claims {
		if !cl.live {
			continue
		}
		if ok, _ := c.eligible(v, cl.node); !ok {
			contested = true // it answers, but our view of the API says it may not
			continue
		}
		r := rank{certain: !cl.doubtful, gen: cl.gen, score: election.Score(v.Addr, cl.node), name: cl.node}
		if since, ok := c.oneWaySince[cl.node]; ok {
			if now.Sub(since) < c.cfg.FailureTimeout {
				// It does not hear us (yet): it may be a taker about to find out, from the
				// wire, that we still answer. Its claim keeps others away but does not make
				// us yield, unless ours is doubtful and its is not: then we are the minority.
				if own != nil && (!own.doubtful || cl.doubtful) {
					continue
				}
			} else {
				// It has not heard us for a while, so it cannot know our claim and will not
				// yield: the node that hears more yields, whatever the generations.
				r.unhearing = true
			}
		}
		rivals++
		if !found || r.beats(best) {
			best, found = r, true
		}
	}
	if own != nil && selfOK {
		if rivals == 0 && own.doubtful && quorum && !now.Before(c.quorumSince.Add(2*c.cfg.FailureTimeout)) {
			// Quorum long enough to have heard every rival: the claim is certain again.
			own.doubtful = false
		}
		r := rank{certain: !own.doubtful, gen: own.gen, score: election.Score(v.Addr, self), name: self}
		if !found || r.beats(best) {
			if rivals > 0 && !own.contested || c.yieldedToUs(now, v.Addr) && now.Sub(own.lastDefend) > c.cfg.FailureTimeout {
				own.contested = true
				c.reannounce(now, v, own)
			}
			if rivals == 0 {
				own.contested = false
			}
			c.selfProbe(now, v, own)
			return
		}
	}
	if found {
		delete(c.probes, v.Addr)
		if own != nil {
			c.yield(v.Addr, best.name, fmt.Sprintf("%s claims it with generation %d", best.name, best.gen))
			c.lostTo[v.Addr] = now.Add(c.cfg.FailureTimeout)
		}
		return
	}
	if own != nil {
		c.yield(v.Addr, "", selfReason)
	}

	// Rule 2: a takeover.
	if !selfOK || now.Before(c.ceded[v.Addr]) {
		delete(c.probes, v.Addr)
		return
	}
	if c.freshWinner(now, v, cold) != self {
		delete(c.probes, v.Addr)
		return
	}
	if contested {
		// A live owner that our view says may not own the VIP: its own view will make it
		// yield, or, if it is cut off from the API, our contest will. Taking over now would
		// rest on one probe that a lost frame can fool.
		delete(c.probes, v.Addr)
		c.wants[v.Addr] = true
		return
	}
	if !quorum {
		if _, probing := c.probes[v.Addr]; probing || c.maxGen[v.Addr] > 0 {
			delete(c.probes, v.Addr)
		}
		return
	}
	gen := c.maxGen[v.Addr] + 1
	if h := c.holder[v.Addr]; h != "" && c.det.Left(h) {
		// The owner said it was leaving, and said so just now: nobody else can have taken the
		// VIP since (an older goodbye proves nothing: the node may have come back unheard).
		if p, ok := c.det.Peer(h); ok && now.Sub(p.HeardAt) <= c.cfg.FailureTimeout {
			c.take(now, v, gen)
			return
		}
	}
	p := c.probes[v.Addr]
	switch {
	case p == nil || p.blocked && !now.Before(p.blockedUntil):
		// Two probes, half the wait apart (RFC 5227 sends several): one lost frame does not
		// make a live owner look gone.
		c.probes[v.Addr] = &probing{deadline: now.Add(c.cfg.ProbeWait), again: now.Add(c.cfg.ProbeWait / 2)}
		c.sendProbes(v)
	case p.blocked:
	case !p.again.IsZero() && !now.Before(p.again) && now.Before(p.deadline):
		p.again = time.Time{}
		c.sendProbes(v)
	case !now.Before(p.deadline):
		switch blocker, verdict := c.probeVerdict(now, v, p); verdict {
		case probeClear:
			c.take(now, v, gen)
		case probeWait:
			p.deadline = now.Add(c.cfg.ProbeWait)
		case probeBlocked:
			p.blocked, p.blockedUntil = true, now.Add(c.cfg.ReprobeAfter)
			c.emit(Event{Kind: ProbeAnswered, VIP: v.Addr, Peer: blocker})
		}
	}
}

type verdict int

const (
	probeClear verdict = iota
	probeWait
	probeBlocked
)

// probeVerdict judges the answers to a takeover probe. A member that answered blocks the
// takeover if it claims the VIP, or if we cannot hear it (a mute owner looks like that); its
// answer is its kernel's, reported and not obeyed, once a heartbeat it sent afterwards still
// does not claim the VIP. A stranger always blocks.
func (c *Core) probeVerdict(now time.Time, v *VIP, p *probing) (string, verdict) {
	if p.stranger {
		return "", probeBlocked
	}
	result := probeClear
	for _, node := range slices.Sorted(maps.Keys(p.answeredBy)) {
		at := p.answeredBy[node]
		peer, ok := c.det.Peer(node)
		if !ok || !c.det.Alive(now, node) {
			return node, probeBlocked
		}
		if slices.ContainsFunc(peer.Last.Claims, func(cl membership.Claim) bool { return cl.Addr == v.Addr }) {
			return node, probeBlocked
		}
		if !peer.HeardAt.After(at) {
			result = probeWait
			continue
		}
		c.emit(Event{Kind: KernelAnswers, VIP: v.Addr, Peer: node, Reason: "answered our probe without claiming the VIP"})
		delete(p.answeredBy, node)
	}
	return "", result
}

// freshWinner is the rendezvous winner of an unclaimed VIP among the candidates: the eligible
// members connected both ways and not leaving (self included), or during a cold start also the
// eligible voters not heard yet.
func (c *Core) freshWinner(now time.Time, v *VIP, cold bool) string {
	var best rank
	found := false
	consider := func(name string) {
		if ok, _ := c.eligible(v, name); !ok {
			return
		}
		r := rank{score: election.Score(v.Addr, name), name: name}
		if !found || r.beats(best) {
			best, found = r, true
		}
	}
	consider(c.cfg.Self)
	for _, name := range c.det.Members() {
		p, heard := c.det.Peer(name)
		switch {
		case cold && c.members[name].Voter && !c.det.Left(name) && (!heard || c.det.Connected(now, name)):
			// Not heard yet since we started: it may be starting too. A peer heard and then
			// lost is gone, and waiting for it would only delay a failover.
			consider(name)
		case c.det.Connected(now, name) && heard && p.Last.State != membership.Leaving:
			// A joining peer counts: the VIP waits for it at most its join grace, and the
			// outcome does not depend on who became active first.
			consider(name)
		}
	}
	return best.name
}

func (c *Core) take(now time.Time, v *VIP, gen uint32) {
	delete(c.probes, v.Addr)
	delete(c.wants, v.Addr)
	o := &ownership{gen: gen, since: now, links: c.servable(v.Links, c.cannot), nextSelfProbe: now.Add(c.cfg.SelfProbeInterval)}
	c.owned[v.Addr] = o
	c.raiseGen(v.Addr, gen, c.cfg.Self)
	c.maxGen[v.Addr] = gen
	c.holder[v.Addr] = c.cfg.Self
	c.emit(Event{Kind: Took, VIP: v.Addr, Gen: gen})
}

func (c *Core) reannounce(now time.Time, v *VIP, o *ownership) {
	o.lastDefend = now
	for _, l := range o.links {
		c.out.Reannounce = append(c.out.Reannounce, Probe{Link: l, Addr: v.Addr})
	}
}

func (c *Core) selfProbe(now time.Time, v *VIP, o *ownership) {
	o.links = c.servable(v.Links, c.cannot)
	if now.Before(o.nextSelfProbe) {
		return
	}
	o.nextSelfProbe = now.Add(c.cfg.SelfProbeInterval)
	for _, l := range o.links {
		c.out.Probes = append(c.out.Probes, Probe{Link: l, Addr: v.Addr})
	}
}

// trackOneWay records since when each peer has been heard without hearing us.
func (c *Core) trackOneWay(now time.Time) {
	for _, name := range c.det.Members() {
		if c.det.Alive(now, name) && !c.det.Connected(now, name) {
			if _, ok := c.oneWaySince[name]; !ok {
				c.oneWaySince[name] = now
			}
			continue
		}
		delete(c.oneWaySince, name)
	}
	for name := range c.oneWaySince {
		if _, ok := c.members[name]; !ok {
			delete(c.oneWaySince, name)
		}
	}
}

// yieldedToUs reports whether a live peer says it just gave addr up to a better claim: ours.
func (c *Core) yieldedToUs(now time.Time, addr netip.Addr) bool {
	for _, name := range c.det.Members() {
		if p, ok := c.det.Peer(name); ok && c.det.Alive(now, name) && slices.Contains(p.Last.Yielded, addr) {
			return true
		}
	}
	return false
}

func (c *Core) sendProbes(v *VIP) {
	for _, l := range c.servable(v.Links, c.cannot) {
		c.out.Probes = append(c.out.Probes, Probe{Link: l, Addr: v.Addr})
	}
}
