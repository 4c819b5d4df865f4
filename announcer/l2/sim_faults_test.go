package l2

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/membership"
)

// fault is one thing that can go wrong, applied at w.now; it schedules its own repair.
type fault struct {
	name  string
	apply func(w *world)
}

func (w *world) randomNode() int { return w.rng.IntN(len(w.nodes)) }

func (w *world) randomDuration(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)+1))
}

func (w *world) faultHappened(what string) {
	w.lastFault = w.now
	w.logf("FAULT %s", what)
}

// twoWayBlocked reports whether some pair of nodes cannot exchange heartbeats in either
// direction while their wire works: combined with a wire partition that is the double fault
// the README documents as not covered (both owners answer until heartbeats flow again).
func (w *world) twoWayBlocked() bool {
	for i := range w.nodes {
		for j := range w.nodes {
			if i < j && w.udpBlocked[[2]int{i, j}] && w.udpBlocked[[2]int{j, i}] {
				return true
			}
		}
	}
	return false
}

func (w *world) partitioned() bool {
	for _, n := range w.nodes {
		if n.group != 0 {
			return true
		}
	}
	return false
}

func (w *world) restartLater(i int, lo, hi time.Duration) {
	w.after(w.randomDuration(lo, hi), func() {
		if w.nodes[i].up() {
			return
		}
		if w.rng.IntN(2) == 0 { // the clock stepped while it was down, either way
			w.nodes[i].offset += time.Duration(w.rng.Int64N(int64(4*time.Hour))) - 2*time.Hour
		}
		w.faultHappened("restart " + w.nodes[i].name)
		w.start(i)
	})
}

// blockUDP blocks the given directed links for a while, unless that would combine a two-way
// block with a wire partition.
func (w *world) blockUDP(what string, links [][2]int) {
	unblock := func() {
		for _, l := range links {
			if w.udpBlocks[l]--; w.udpBlocks[l] <= 0 {
				delete(w.udpBlocks, l)
				delete(w.udpBlocked, l)
			}
		}
	}
	for _, l := range links {
		w.udpBlocks[l]++
		w.udpBlocked[l] = true
	}
	if w.partitioned() && w.twoWayBlocked() {
		unblock()
		return
	}
	w.faultHappened(what)
	w.after(w.randomDuration(300*time.Millisecond, 4*time.Second), func() {
		unblock()
		w.faultHappened("heal " + what)
	})
}

func (w *world) inbound(i int) [][2]int {
	var out [][2]int
	for j := range w.nodes {
		if j != i {
			out = append(out, [2]int{j, i})
		}
	}
	return out
}

func (w *world) outbound(i int) [][2]int {
	var out [][2]int
	for j := range w.nodes {
		if j != i {
			out = append(out, [2]int{i, j})
		}
	}
	return out
}

var faults = []fault{
	{"crash", func(w *world) {
		i := w.randomNode()
		w.faultHappened("crash " + w.nodes[i].name)
		w.crash(i)
		w.restartLater(i, 50*time.Millisecond, 2*time.Second)
	}},
	{"sigterm", func(w *world) {
		i := w.randomNode()
		w.faultHappened("sigterm " + w.nodes[i].name)
		w.terminate(i)
		w.restartLater(i, 100*time.Millisecond, 2*time.Second)
	}},
	{"cable", func(w *world) {
		i := w.randomNode()
		n := w.nodes[i]
		if !n.cable {
			return
		}
		w.faultHappened("cable cut " + n.name)
		w.setCable(i, false)
		w.after(w.randomDuration(100*time.Millisecond, 3*time.Second), func() {
			w.faultHappened("cable back " + n.name)
			w.setCable(i, true)
		})
	}},
	{"partition", func(w *world) {
		if w.partitioned() || w.twoWayBlocked() {
			return
		}
		var groups []int
		for _, n := range w.nodes {
			n.group = w.rng.IntN(2)
			groups = append(groups, n.group)
		}
		w.faultHappened(fmt.Sprintf("wire partition %v", groups))
		w.after(w.randomDuration(200*time.Millisecond, 4*time.Second), func() {
			for _, n := range w.nodes {
				n.group = 0
			}
			w.faultHappened("partition heals")
		})
	}},
	{"deaf", func(w *world) {
		i := w.randomNode()
		w.blockUDP("deaf "+w.nodes[i].name, w.inbound(i))
	}},
	{"mute", func(w *world) {
		i := w.randomNode()
		w.blockUDP("mute "+w.nodes[i].name, w.outbound(i))
	}},
	{"one-way", func(w *world) {
		i, j := w.randomNode(), w.randomNode()
		if i != j {
			w.blockUDP("one-way "+w.nodes[i].name+"->"+w.nodes[j].name, [][2]int{{i, j}})
		}
	}},
	{"wrong-port", func(w *world) {
		i := w.randomNode()
		w.blockUDP("wrong port "+w.nodes[i].name, append(w.inbound(i), w.outbound(i)...))
	}},
	{"cordon", func(w *world) {
		n := w.nodes[w.randomNode()]
		w.truth.cordoned[n.name] = !w.truth.cordoned[n.name]
		w.logf("API: %s cordoned=%v", n.name, w.truth.cordoned[n.name])
		w.publish()
	}},
	{"endpoints", func(w *world) {
		a := w.vips[w.rng.IntN(len(w.vips))]
		if w.rng.IntN(3) == 0 {
			w.truth.candidates[a] = nil
		} else {
			c := map[string]bool{}
			for _, n := range w.nodes {
				if w.rng.IntN(2) == 0 {
					c[n.name] = true
				}
			}
			w.truth.candidates[a] = c
		}
		w.logf("API: %v candidates %v", a, w.truth.candidates[a])
		w.publish()
	}},
	{"api-cut", func(w *world) {
		i := w.randomNode()
		n := w.nodes[i]
		if n.apiCut {
			return
		}
		n.apiCut = true
		w.lastViewChange = w.now
		w.logf("API cut for %s", n.name)
		if n.up() {
			n.core.SetView(w.members(n.view), w.vipList(n.view), false)
		}
		w.after(w.randomDuration(500*time.Millisecond, 4*time.Second), func() {
			n.apiCut = false
			w.lastViewChange = w.now
			w.logf("API back for %s", n.name)
			w.setView(i, w.truth.clone())
		})
	}},
	{"loss", func(w *world) {
		w.loss = 0.05 + 0.25*w.rng.Float64()
		w.wireLoss = w.loss / 10
		w.faultHappened("loss")
		w.after(w.randomDuration(200*time.Millisecond, 3*time.Second), func() {
			w.loss, w.wireLoss = 0, 0
			w.faultHappened("loss ends")
		})
	}},
	{"delay", func(w *world) {
		w.maxDelay = 25 * time.Millisecond
		w.faultHappened("delay spike")
		w.after(w.randomDuration(200*time.Millisecond, 2*time.Second), func() {
			w.maxDelay = 2 * time.Millisecond
			w.faultHappened("delay ends")
		})
	}},
	{"attack", func(w *world) {
		if w.attack {
			return
		}
		w.attack = true
		w.logf("attack starts")
		var burst func()
		burst = func() {
			if !w.attack {
				return
			}
			w.forge()
			w.after(2*time.Millisecond, burst)
		}
		burst()
		w.after(w.randomDuration(time.Second, 5*time.Second), func() { w.attack = false; w.logf("attack ends") })
	}},
	{"kernel-arp", func(w *world) {
		n := w.nodes[w.randomNode()]
		n.kernelARP = true
		w.faultHappened("kernel answers ARP on " + n.name)
		w.after(w.randomDuration(500*time.Millisecond, 3*time.Second), func() {
			n.kernelARP = false
			w.faultHappened("kernel quiet on " + n.name)
		})
	}},
	{"stranger", func(w *world) {
		a := w.vips[w.rng.IntN(len(w.vips))]
		w.stranger[a] = true
		w.faultHappened("a stranger answers for " + a.String())
		w.after(w.randomDuration(500*time.Millisecond, 3*time.Second), func() {
			delete(w.stranger, a)
			w.faultHappened("the stranger leaves " + a.String())
		})
	}},
}

func (w *world) setCable(i int, up bool) {
	n := w.nodes[i]
	n.cable = up
	if n.up() {
		n.core.SetPrimaryLink(w.local(n), up)
		w.step(i)
	}
}

// forge sends one datagram a pod without the key could send: garbage, a heartbeat sealed under
// another key claiming every VIP with a huge generation, or a recorded datagram replayed (to its
// receiver or another node), possibly with a bit flipped, always with a spoofed source.
func (w *world) forge() {
	j := w.randomNode()
	victim := w.nodes[w.randomNode()]
	var b []byte
	switch w.rng.IntN(4) {
	case 0:
		b = make([]byte, 1+w.rng.IntN(300))
		for i := range b {
			b[i] = byte(w.rng.Uint32())
		}
		if w.rng.IntN(2) == 0 && len(b) > 6 {
			b[0], b[1] = 0xB7, 2
		}
	case 1:
		h := membership.Heartbeat{Node: victim.name, To: w.nodes[j].name, Incarnation: w.rng.Uint64(), Seq: 1 << 60, State: membership.Active, APIFresh: true}
		for _, a := range w.vips {
			h.Claims = append(h.Claims, membership.Claim{Addr: a, Gen: 1 << 30})
			h.Wants = append(h.Wants, a)
		}
		b, _ = w.foreign.Seal(nil, h)
	default:
		if len(w.captures) == 0 {
			return
		}
		c := w.captures[w.rng.IntN(len(w.captures))]
		b = append([]byte(nil), c.b...)
		if w.rng.IntN(3) == 0 || !w.wireOK(c.to, j) {
			j = c.to // replayed on the segment it was recorded on
		}
		if w.rng.IntN(4) == 0 {
			b[w.rng.IntN(len(b))] ^= 1 << w.rng.IntN(8)
		}
		w.deliver(j, c.from, b, w.delay())
		return
	}
	w.deliver(j, victim.addr, b, w.delay())
}

// heal repairs everything, so the final state can be checked.
func (w *world) heal() {
	for i, n := range w.nodes {
		n.group = 0
		n.kernelARP = false
		if !n.cable {
			w.setCable(i, true)
		}
		if n.apiCut {
			n.apiCut = false
			w.setView(i, w.truth.clone())
		}
	}
	clear(w.udpBlocked)
	clear(w.udpBlocks)
	clear(w.stranger)
	w.loss, w.wireLoss, w.maxDelay, w.attack = 0, 0, 2*time.Millisecond, false
	for i, n := range w.nodes {
		if !n.up() {
			w.start(i)
		}
	}
	w.faultHappened("everything healed")
	w.lastViewChange = w.now
}

// finalCheck asserts that, healed and settled, every VIP has exactly one owner, an eligible one.
func (w *world) finalCheck() {
	for _, a := range w.vips {
		owners := w.ownerNames(a)
		eligible := false
		for _, n := range w.nodes {
			if w.eligibleTruth(n.name, a) {
				eligible = true
			}
		}
		switch {
		case eligible && len(owners) != 1:
			w.fail("final: %v has owners %v, want exactly one", a, owners)
		case !eligible && len(owners) != 0:
			w.fail("final: %v has owners %v but no node is eligible", a, owners)
		case len(owners) == 1 && !w.eligibleTruth(owners[0], a):
			w.fail("final: %v is owned by ineligible %s", a, owners[0])
		}
	}
}

var _ = netip.Addr{}
