package l2

import (
	"maps"
	"net/netip"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
)

// Named scenarios: each finding of the layer-2 review, scripted, with the invariants checked all
// along (as in TestSimulation) and the specific outcome asserted at the end.

// settled starts nodes announcers for vips VIPs at once and lets them settle.
func settled(t *testing.T, seed uint64, nodes, vips int, before func(w *world)) *world {
	t.Helper()
	w := newWorld(seed, nodes, vips)
	if before != nil {
		before(w)
	}
	for i := range w.nodes {
		w.after(w.randomDuration(0, 100*time.Millisecond), func() { w.start(i) })
	}
	w.lastFault = w.now
	w.run(w.now.Add(3 * time.Second))
	mustPass(t, w)
	return w
}

func mustPass(t *testing.T, w *world) {
	t.Helper()
	if len(w.failed) > 0 {
		t.Fatalf("seed %d: %v\n%s", w.seed, w.failed, w.dumpTrace())
	}
}

// quiet runs d of simulated time with no new fault and asserts the invariants held.
func quiet(t *testing.T, w *world, d time.Duration) {
	t.Helper()
	w.run(w.now.Add(d))
	mustPass(t, w)
}

func countKind(n *simNode, k EventKind, since time.Time) int {
	c := 0
	for _, r := range n.events {
		if r.event.Kind == k && !r.at.Before(since) {
			c++
		}
	}
	return c
}

// Finding 1: forged heartbeats (garbage, a foreign key claiming every VIP with a huge
// generation, recorded datagrams replayed with spoofed sources, bit flips) change no owner and
// grow no state.
func TestScenarioForgedHeartbeatsMoveNothing(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		w := settled(t, seed, 3, 4, nil)
		before := w.assignment()
		w.attack = true
		var burst func()
		burst = func() {
			if w.attack {
				w.forge()
				w.after(time.Millisecond, burst)
			}
		}
		burst()
		quiet(t, w, 5*time.Second)
		w.attack = false
		if got := w.assignment(); !maps.Equal(got, before) {
			t.Fatalf("seed %d: owners changed under attack: %v -> %v", seed, before, got)
		}
		if w.stats.forgedRejected == 0 {
			t.Fatalf("seed %d: no forged datagram reached the nodes", seed)
		}
		for _, n := range w.nodes {
			if got := len(n.core.det.Members()); got != 2 {
				t.Fatalf("%s tracks %d members, want 2", n.name, got)
			}
		}
	}
}

// Finding 2: one-way faults. A node that cannot receive, cannot send, both (a wrong heartbeat
// port), or a single blocked direction never gives a VIP a second owner, and a node deaf from
// the start answers for nothing.
func TestScenarioOneWayFaultsNeverSplit(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		for _, tc := range []struct {
			name  string
			block func(w *world, owner int) [][2]int
		}{
			{"owner deaf", func(w *world, o int) [][2]int { return w.inbound(o) }},
			{"owner mute", func(w *world, o int) [][2]int { return w.outbound(o) }},
			{"owner on a wrong port", func(w *world, o int) [][2]int { return append(w.inbound(o), w.outbound(o)...) }},
			{"one peer does not hear the owner", func(w *world, o int) [][2]int { return [][2]int{{o, (o + 1) % len(w.nodes)}} }},
			{"the owner does not hear one peer", func(w *world, o int) [][2]int { return [][2]int{{(o + 1) % len(w.nodes), o}} }},
		} {
			w := settled(t, seed, 3, 6, nil)
			before := w.assignment()
			owner := w.byName[before[w.vips[0]]]
			for _, l := range tc.block(w, owner) {
				w.udpBlocked[l] = true
			}
			w.faultHappened(tc.name)
			quiet(t, w, 5*time.Second)
			for _, a := range w.vips {
				if got := w.ownerNames(a); len(got) != 1 {
					t.Fatalf("seed %d, %s: %v has owners %v\n%s", seed, tc.name, a, got, w.dumpTrace())
				}
			}
			for _, a := range w.owned(owner) {
				if before[a] != w.nodes[owner].name {
					t.Fatalf("seed %d, %s: %s took %v", seed, tc.name, w.nodes[owner].name, a)
				}
			}
		}
	}
}

func TestScenarioDeafFromTheStartAnswersNothing(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		w := settled(t, seed, 3, 12, func(w *world) {
			for _, l := range w.inbound(2) {
				w.udpBlocked[l] = true
			}
		})
		quiet(t, w, 3*time.Second)
		if got := w.owned(2); len(got) != 0 {
			t.Fatalf("seed %d: the deaf node answers for %v", seed, got)
		}
		for _, a := range w.vips {
			if _, ok := w.ownerOf(a); !ok {
				t.Fatalf("seed %d: %v has owners %v", seed, a, w.ownerNames(a))
			}
		}
	}
}

// Finding 2 (clocks): an owner that crashes and restarts with its clock two hours back is
// believed again at once, and its VIPs have one owner throughout.
func TestScenarioRestartWithClockBackwards(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		w := settled(t, seed, 3, 4, nil)
		owner := w.byName[w.assignment()[w.vips[0]]]
		w.faultHappened("crash")
		w.crash(owner)
		w.run(w.now.Add(500 * time.Millisecond))
		w.nodes[owner].offset -= 2 * time.Hour
		w.start(owner)
		w.faultHappened("restart two hours back")
		quiet(t, w, 3*time.Second)
		for j, n := range w.nodes {
			if j == owner {
				continue
			}
			if !n.core.det.Connected(w.local(n), w.nodes[owner].name) {
				t.Fatalf("seed %d: %s does not believe the restarted %s", seed, n.name, w.nodes[owner].name)
			}
		}
	}
}

// Finding 3: after a partition heals, the side that took the VIP over with a quorum keeps it,
// whatever order the heartbeats arrive in; the node that was cut off never takes it back.
func TestScenarioHealKeepsTheMajorityOwner(t *testing.T) {
	const trials = 400
	for seed := uint64(1); seed <= trials; seed++ {
		w := settled(t, seed, 4, 1, nil)
		a := w.vips[0]
		cut := w.byName[w.assignment()[a]]
		w.nodes[cut].group = 1
		w.faultHappened("partition: the owner alone")
		w.run(w.now.Add(w.randomDuration(time.Second, 3*time.Second)))
		successor, ok := w.ownerOf(a)
		if !ok || successor == w.nodes[cut].name {
			// The cut-off owner still answers on its own segment; one other owner on the majority's.
			if got := w.ownerNames(a); len(got) != 2 {
				t.Fatalf("seed %d: during the partition %v has owners %v", seed, a, got)
			}
		}
		var majorityOwner string
		for _, name := range w.ownerNames(a) {
			if name != w.nodes[cut].name {
				majorityOwner = name
			}
		}
		w.maxDelay = w.randomDuration(time.Millisecond, 20*time.Millisecond)
		w.nodes[cut].group = 0
		w.faultHappened("heal")
		heal := w.now
		quiet(t, w, 3*time.Second)
		if got, _ := w.ownerOf(a); got != majorityOwner {
			t.Fatalf("seed %d: after the heal %v is owned by %v, want the majority's %s\n%s", seed, a, w.ownerNames(a), majorityOwner, w.dumpTrace())
		}
		// Finding 7: the winner re-announces, so clients drop the loser's MAC at once.
		if countKind(w.nodes[w.byName[majorityOwner]], reannounced, heal) == 0 {
			t.Fatalf("seed %d: %s kept %v after the heal without re-announcing it", seed, majorityOwner, a)
		}
	}
}

// Finding 4: a node that cannot answer on a VIP's link (carrier lost on that interface, a
// speaker that cannot open) gives it up and nobody elects it; its VIPs move to a node that can.
func TestScenarioLinkLossMovesTheVIP(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		w := settled(t, seed, 3, 4, nil)
		owner := w.byName[w.assignment()[w.vips[0]]]
		w.faultHappened("owner loses the VIP's link")
		w.setCannot(owner, []string{simLink})
		at := w.now
		quiet(t, w, 2*time.Second)
		if got := w.owned(owner); len(got) != 0 {
			t.Fatalf("seed %d: %s still answers for %v on a link it cannot use", seed, w.nodes[owner].name, got)
		}
		for _, a := range w.vips {
			if _, ok := w.ownerOf(a); !ok {
				t.Fatalf("seed %d: %v has owners %v", seed, a, w.ownerNames(a))
			}
		}
		for _, n := range w.nodes {
			for _, r := range n.events {
				if r.event.Kind == Took && r.at.After(at) && r.at.Sub(at) > 500*time.Millisecond {
					t.Fatalf("seed %d: %s took %v %v after the link loss", seed, n.name, r.event.VIP, r.at.Sub(at))
				}
			}
		}
	}
}

// Finding 5: an owner cut off from the API server that is then cordoned (or whose endpoints
// move) hands its VIPs over: peers with a current view contest them, and it defers.
func TestScenarioCutFromAPIThenCordoned(t *testing.T) {
	for _, change := range []struct {
		name  string
		apply func(w *world, owner string)
	}{
		{"cordoned", func(w *world, owner string) { w.truth.cordoned[owner] = true }},
		{"endpoints moved", func(w *world, owner string) {
			for _, a := range w.vips {
				c := map[string]bool{}
				for _, n := range w.nodes {
					if n.name != owner {
						c[n.name] = true
					}
				}
				w.truth.candidates[a] = c
			}
		}},
	} {
		for seed := uint64(1); seed <= 20; seed++ {
			w := settled(t, seed, 3, 3, nil)
			owner := w.byName[w.assignment()[w.vips[0]]]
			n := w.nodes[owner]
			n.apiCut = true
			n.core.SetView(w.members(n.view), w.vipList(n.view), false)
			change.apply(w, n.name)
			w.publish()
			w.run(w.now.Add(3 * time.Second))
			mustPass(t, w)
			if got := w.owned(owner); len(got) != 0 {
				t.Fatalf("%s, seed %d: %s, cut from the API, still answers for %v\n%s", change.name, seed, n.name, got, w.dumpTrace())
			}
			for _, a := range w.vips {
				if _, ok := w.ownerOf(a); !ok {
					t.Fatalf("%s, seed %d: %v has owners %v", change.name, seed, a, w.ownerNames(a))
				}
			}
		}
	}
}

// Finding 6: a cold start spreads the VIPs as the rendezvous hash says, not to the first node.
func TestScenarioColdStartSpreads(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		w := newWorld(seed, 3, 12)
		for i := range w.nodes {
			w.after(w.randomDuration(0, 300*time.Millisecond), func() { w.start(i) })
		}
		w.lastFault = w.now
		quiet(t, w, 4*time.Second)
		per := map[string]int{}
		for _, a := range w.vips {
			want := ""
			var best uint64
			for _, n := range w.nodes {
				if s := election.Score(a, n.name); want == "" || s > best {
					want, best = n.name, s
				}
			}
			got, _ := w.ownerOf(a)
			if got != want {
				t.Fatalf("seed %d: %v went to %q, its rendezvous owner is %s", seed, a, got, want)
			}
			per[got]++
		}
		if len(per) != 3 {
			t.Fatalf("seed %d: 12 VIPs on %d nodes: %v", seed, len(per), per)
		}
	}
}

// A SIGTERM hands over without a probe: the successor answers within milliseconds.
func TestScenarioLeaveHandsOverAtOnce(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		w := settled(t, seed, 3, 2, nil)
		a := w.vips[0]
		owner := w.byName[w.assignment()[a]]
		w.faultHappened("sigterm")
		w.terminate(owner)
		at := w.now
		quiet(t, w, 2*time.Second)
		took := time.Duration(-1)
		for _, n := range w.nodes {
			for _, r := range n.events {
				if r.event.Kind == Took && r.event.VIP == a && r.at.After(at) {
					took = r.at.Sub(at)
				}
			}
		}
		if took < 0 || took > 20*time.Millisecond {
			t.Fatalf("seed %d: hand-off took %v", seed, took)
		}
	}
}

// IPVS without strictARP: another node's kernel answering ARP for a VIP is reported by the
// owner, changes no owner, and does not stop a takeover when the owner dies.
func TestScenarioKernelAnsweringIsReportedNotObeyed(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		w := newWorld(seed, 3, 2)
		w.cfg.SelfProbeInterval = 500 * time.Millisecond
		for i := range w.nodes {
			w.after(w.randomDuration(0, 100*time.Millisecond), func() { w.start(i) })
		}
		w.lastFault = w.now
		quiet(t, w, 3*time.Second)
		a := w.vips[0]
		owner := w.byName[w.assignment()[a]]
		k := (owner + 1) % 3
		w.nodes[k].kernelARP = true
		at := w.now
		quiet(t, w, 2*time.Second)
		if countKind(w.nodes[owner], KernelAnswers, at) == 0 {
			t.Fatalf("seed %d: the owner did not report %s's kernel answering for %v", seed, w.nodes[k].name, a)
		}
		if got, _ := w.ownerOf(a); got != w.nodes[owner].name {
			t.Fatalf("seed %d: %v moved to %v", seed, a, w.ownerNames(a))
		}
		w.faultHappened("owner crash")
		w.crash(owner)
		w.run(w.now.Add(time.Second))
		if got := w.ownerNames(a); len(got) != 1 {
			t.Fatalf("seed %d: after the owner's crash %v has owners %v\n%s", seed, a, got, w.dumpTrace())
		}
	}
}

// A host outside the cluster answering for a VIP is reported; a takeover waits for it.
func TestScenarioStrangerBlocksTakeover(t *testing.T) {
	w := settled(t, 7, 3, 1, nil)
	a := w.vips[0]
	owner := w.byName[w.assignment()[a]]
	w.stranger[a] = true
	w.faultHappened("stranger")
	w.crash(owner)
	w.run(w.now.Add(2 * time.Second))
	if got := w.ownerNames(a); len(got) != 0 {
		t.Fatalf("%v was taken over (%v) while a stranger answers for it", a, got)
	}
	delete(w.stranger, a)
	w.faultHappened("stranger gone")
	w.run(w.now.Add(2 * time.Second))
	if _, ok := w.ownerOf(a); !ok {
		t.Fatalf("%v has owners %v after the stranger left", a, w.ownerNames(a))
	}
}

var _ = netip.Addr{}

// A failover right after another node rejoined (or restarted) is as fast as any: the rejoined
// node's cold-start rule does not wait for the node that just died (the lab's back-to-back
// cable-cut trials found 600 ms lost that way).
func TestScenarioFailoverRightAfterARejoin(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		w := settled(t, seed, 3, 4, nil)
		a := w.vips[seed%4] // VIPs rank the nodes differently
		first := w.byName[w.assignment()[a]]
		w.faultHappened("cable cut")
		w.setCable(first, false)
		w.run(w.now.Add(time.Second))
		if seed%2 == 0 {
			w.faultHappened("cable back")
			w.setCable(first, true)
		} else {
			w.faultHappened("restart")
			w.setCable(first, true)
			w.crash(first)
			w.start(first)
		}
		w.run(w.now.Add(time.Second))
		second := w.byName[w.assignment()[a]]
		w.faultHappened("cable cut of the successor")
		w.setCable(second, false)
		cut := w.now
		w.run(w.now.Add(2 * time.Second))
		mustPass(t, w)
		took := time.Duration(-1)
		for _, n := range w.nodes {
			for _, r := range n.events {
				if r.event.Kind == Took && r.event.VIP == a && r.at.After(cut) && (took < 0 || r.at.Sub(cut) < took) {
					took = r.at.Sub(cut)
				}
			}
		}
		t.Logf("seed %d: %v", seed, took)
		if took < 0 || took > 350*time.Millisecond {
			t.Fatalf("seed %d: the second failover took %v\n%s", seed, took, w.dumpTrace())
		}
	}
}
