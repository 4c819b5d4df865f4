package l2

import (
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
	"net/netip"
	"testing"
	"time"
)

// Adversarial review scenarios. Each TestReview... fails while the hole it describes is real.

func (w *world) ownerIdx(t *testing.T, a netip.Addr) int {
	t.Helper()
	name, ok := w.ownerOf(a)
	if !ok {
		t.Fatalf("seed %d: %v has owners %v", w.seed, a, w.ownerNames(a))
	}
	return w.byName[name]
}

// Found in review (1), fixed: a "Wants" entry is never cleared unless the wanting node takes the VIP. A short
// endpoint flap (the owner briefly loses its local endpoint in one peer's view) leaves the peer
// wanting the VIP forever; much later, when the owner merely loses the API server, it hands a
// VIP over although nothing changed: "never withdraws because the API server is unreachable".
func TestScenarioEndpointFlapLeavesNoStaleContest(t *testing.T) {
	bad := 0
	for seed := uint64(1); seed <= 20; seed++ {
		w := settled(t, seed, 3, 1, nil)
		a := w.vips[0]
		owner := w.ownerIdx(t, a)
		other := (owner + 1) % 3
		// The endpoint flaps away from the owner for 100 ms; the peer's view sees it first.
		w.truth.candidates[a] = map[string]bool{w.nodes[other].name: true}
		w.truth.version++
		w.lastViewChange = w.now
		w.setView(other, w.truth.clone())
		w.run(w.now.Add(100 * time.Millisecond))
		w.truth.candidates[a] = nil
		w.publish()
		quiet(t, w, 3*time.Second)
		if got, _ := w.ownerOf(a); got != w.nodes[owner].name {
			t.Logf("seed %d: the flap itself moved %v to %v", seed, a, w.ownerNames(a))
			continue
		}
		wants := w.nodes[other].core.wants[a]
		// Minutes later the owner loses the API server; its view is unchanged and true.
		n := w.nodes[owner]
		n.apiCut = true
		n.core.SetView(w.members(n.view), w.vipList(n.view), false)
		w.step(owner)
		cut := w.now
		w.run(w.now.Add(5 * time.Second))
		if got, _ := w.ownerOf(a); got != n.name || countKind(n, Yielded, cut) > 0 {
			bad++
			t.Errorf("seed %d: %s lost %v (now %v; it yielded %d times and took %d times in 5 s) only because its API connection broke (stale wants on %s: %v)",
				seed, n.name, a, w.ownerNames(a), countKind(n, Yielded, cut), countKind(n, Took, cut), w.nodes[other].name, wants)
		}
	}
	if bad > 0 {
		t.Logf("%d of 20 seeds moved the VIP", bad)
	}
}

// Found in review (2), fixed: the "unhearing" rule beats the doubtful rule. The owner is cut off alone by a wire
// partition (its claim turns doubtful), the majority takes the VIP over with a quorum and keeps
// it for seconds. The partition heals with one direction of UDP still lost: the new owner's
// heartbeats do not reach the old owner. The new owner hears the old one, sees it "unhearing",
// and yields to it after a failure timeout, although it is connected both ways to the majority,
// eligible and healthy, and the old owner's claim is doubtful. README: "the node that was cut off
// never takes it back".
func TestScenarioOneWayHealKeepsTheMajorityOwner(t *testing.T) {
	bad := 0
	for seed := uint64(1); seed <= 20; seed++ {
		w := settled(t, seed, 3, 1, nil)
		a := w.vips[0]
		old := w.ownerIdx(t, a)
		w.nodes[old].group = 1
		w.faultHappened("partition: the owner alone")
		w.run(w.now.Add(2 * time.Second))
		succ := -1
		for _, name := range w.ownerNames(a) {
			if name != w.nodes[old].name {
				succ = w.byName[name]
			}
		}
		if succ < 0 {
			t.Fatalf("seed %d: no successor", seed)
		}
		// Heal the wire; the successor's heartbeats to the old owner stay lost (one way).
		w.udpBlocked[[2]int{succ, old}] = true
		w.nodes[old].group = 0
		w.faultHappened("heal, with " + w.nodes[succ].name + " -> " + w.nodes[old].name + " UDP lost")
		w.run(w.now.Add(3 * time.Second))
		if got := w.ownerNames(a); len(got) != 1 || got[0] != w.nodes[succ].name {
			bad++
			t.Errorf("seed %d: after the heal %v is owned by %v, want the majority's %s (failures: %v)", seed, a, got, w.nodes[succ].name, w.failed)
		}
	}
	if bad > 0 {
		t.Logf("%d of 20 seeds handed the VIP back", bad)
	}
}

// Found in review (3), fixed: an owner cut off from the API server that then gets the exclude-from-external-load-
// balancers label (or stops matching --member-selector) keeps its VIPs forever, and nobody else
// can take them: the others drop it from their members (view.go l2Members), so they neither
// hear its claims nor send it heartbeats or Wants (rule 3 never fires), and they forget its MAC,
// so its answer to their takeover probe counts as a stranger's and blocks the takeover. Compare
// TestScenarioCutFromAPIThenCordoned: a cordon is handed over, the exclude label is not.
func TestScenarioExcludedWhileCutFromAPIHandsOver(t *testing.T) {
	bad := 0
	for seed := uint64(1); seed <= 10; seed++ {
		w := settled(t, seed, 3, 2, nil)
		a := w.vips[0]
		owner := w.ownerIdx(t, a)
		n := w.nodes[owner]
		n.apiCut = true
		n.core.SetView(w.members(n.view), w.vipList(n.view), false)
		w.lastViewChange = w.now
		// The Node gets the exclude label: the others' member lists no longer hold it.
		for i, o := range w.nodes {
			if i == owner {
				continue
			}
			// As view.go translates it: still a member (it gets heartbeats and contests), no
			// longer a voter, and ineligible by the label.
			var ms []Member
			for _, m := range w.members(o.view) {
				if m.Node.Name == n.name {
					m.Node.Labels = map[string]string{election.ExcludeLabel: ""}
					m.Voter = false
				}
				ms = append(ms, m)
			}
			o.core.SetView(ms, w.vipList(o.view), true)
			w.step(i)
		}
		w.run(w.now.Add(5 * time.Second))
		if got := w.ownerNames(a); len(got) != 1 || got[0] == n.name {
			bad++
			t.Errorf("seed %d: excluded %s, cut from the API, still answers for %v: owners %v (ProbeAnswered events on others: %d)",
				seed, n.name, a, got, countKind(w.nodes[(owner+1)%3], ProbeAnswered, time.Time{})+countKind(w.nodes[(owner+2)%3], ProbeAnswered, time.Time{}))
		}
	}
	if bad > 0 {
		t.Logf("%d of 10 seeds kept the VIP on the excluded node", bad)
	}
}

// Found in review (4), fixed: the quorum's denominator depends on who you are connected to. quorum() counts a
// member the API reports Down only if it is connected, so two halves of a partition that each
// hold one Down-but-running announcer (kubelet stopped, announcer pod still up) both have "more
// than half": 4 members, p and q NotReady, partition {owner, p} | {q, r}: each side computes
// 2 of 3. Both sides then own the VIP with certain claims, and after the heal the higher
// generation (the usurper's) wins: the owner that never lost its quorum loses its VIP.
func TestScenarioNotReadyMembersNeverMakeTwoQuorums(t *testing.T) {
	bad := 0
	for seed := uint64(1); seed <= 10; seed++ {
		w := settled(t, seed, 4, 1, nil)
		a := w.vips[0]
		o := w.ownerIdx(t, a)
		p, q, r := (o+1)%4, (o+2)%4, (o+3)%4
		down := map[string]bool{w.nodes[p].name: true, w.nodes[q].name: true}
		for i, n := range w.nodes {
			ms := w.members(n.view)
			for k := range ms {
				ms[k].Voter = !down[ms[k].Node.Name]
			}
			n.core.SetView(ms, w.vipList(n.view), true)
			w.step(i)
		}
		quiet(t, w, time.Second)
		w.nodes[q].group, w.nodes[r].group = 1, 1
		w.faultHappened("partition {owner, p} | {q, r}")
		w.run(w.now.Add(2 * time.Second))
		during := w.ownerNames(a)
		w.nodes[q].group, w.nodes[r].group = 0, 0
		w.faultHappened("heal")
		w.run(w.now.Add(3 * time.Second))
		if got := w.ownerNames(a); len(during) != 1 || len(got) != 1 || got[0] != w.nodes[o].name {
			bad++
			t.Errorf("seed %d: owner %s kept its quorum, yet during the partition %v had owners %v and after the heal %v",
				seed, w.nodes[o].name, a, during, got)
		}
	}
	if bad > 0 {
		t.Logf("%d of 10 seeds", bad)
	}
}

// Found in review (5), fixed: the wire witness is unauthenticated, and the lower-MAC rule lets it move a VIP. A
// host-network pod with NET_RAW (the container runtime's default capability set) but without the
// membership key spoofs the Ethernet source of a crashed member whose MAC is lower than the
// owner's: one gratuitous ARP for the VIP, then any ARP frame 2 failure timeouts later. The
// healthy owner, with its quorum, yields ("the lower MAC keeps it") and cedes the VIP; while the
// pod keeps answering probes, nobody takes it. README: "A pod without the key (host network or
// not) cannot change who announces a VIP".
func TestScenarioSpoofedMemberMACMovesNothing(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		w := settled(t, seed, 3, 6, nil)
		// A VIP whose owner does not have the lowest MAC (node-1 has it).
		var a netip.Addr
		for _, v := range w.vips {
			if o, ok := w.ownerOf(v); ok && o != "node-1" {
				a = v
				break
			}
		}
		if !a.IsValid() {
			continue
		}
		owner := w.byName[w.assignment()[a]]
		w.crash(0) // node-1's announcer is down (an upgrade, a crash loop); its MAC is known
		w.faultHappened("node-1 announcer down")
		quiet(t, w, 2*time.Second)
		if got, _ := w.ownerOf(a); got != w.nodes[owner].name {
			t.Fatalf("seed %d: %v moved", seed, a)
		}
		spoof := func(announce bool) {
			n := w.nodes[owner]
			n.core.Observe(w.local(n), Foreign{Link: simLink, Addr: a, MAC: w.nodes[0].mac, Announce: announce})
			w.step(owner)
		}
		spoof(true)
		w.run(w.now.Add(450 * time.Millisecond))
		spoof(false)
		w.stranger[a] = true // the pod keeps answering probes for the VIP
		w.run(w.now.Add(3 * time.Second))
		if got := w.ownerNames(a); len(got) != 1 || got[0] != w.nodes[owner].name {
			t.Fatalf("seed %d: two ARP frames from a pod without the key moved %v from %s (quorum, healthy) to %v",
				seed, a, w.nodes[owner].name, got)
		}
	}
}
