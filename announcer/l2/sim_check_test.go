package l2

import (
	"net/netip"
	"slices"
	"time"
)

// Settling bounds of the invariants: after the network (and, for liveness, the API views) has
// been stable this long, the properties must hold.
const (
	settleSafety   = 1500 * time.Millisecond
	settleLiveness = 4 * time.Second
)

// eligibleTruth reports whether node may own a by the API's truth.
func (w *world) eligibleTruth(node string, a netip.Addr) bool {
	if w.truth.cordoned[node] || slices.Contains(w.nodes[w.byName[node]].cannot, simLink) {
		return false
	}
	c := w.truth.candidates[a]
	return c == nil || c[node]
}

// twoWay reports whether nodes i and j exchange heartbeats both ways (both up).
func (w *world) twoWay(i, j int) bool {
	return w.nodes[i].up() && w.nodes[j].up() && w.udpOK(i, j) && w.udpOK(j, i)
}

// majorityConnected reports whether node i is up and connected both ways to more than half of
// the members, itself included.
func (w *world) majorityConnected(i int) bool {
	if !w.nodes[i].up() || !w.nodes[i].cable {
		return false
	}
	n := 1
	for j := range w.nodes {
		if j != i && w.twoWay(i, j) {
			n++
		}
	}
	return 2*n > len(w.nodes)
}

func (w *world) viewsCurrent() bool {
	for _, n := range w.nodes {
		if n.apiCut || n.up() && n.view.version != w.truth.version {
			return false
		}
	}
	return true
}

// check asserts the invariants at w.now.
//
//   - Safety: once the network has been stable for settleSafety, no two nodes on one wire
//     segment answer for a VIP.
//   - Liveness: once network and API views have been stable for settleLiveness, a VIP has an
//     owner on every segment holding an eligible node connected both ways to a majority (or a
//     kernel or stranger answers for it there), and every owner is eligible.
//   - Stickiness: an owner that has stayed up, on the majority side, eligible in every view, with
//     no packet loss, for stickyAfter keeps its VIP and is its only owner.
func (w *world) check() {
	stable := w.now.Sub(w.lastFault)
	for _, a := range w.vips {
		segments := map[int][]int{}
		for i, n := range w.nodes {
			if n.up() && n.cable {
				if _, ok := n.core.owned[a]; ok {
					segments[n.group] = append(segments[n.group], i)
				}
			}
		}
		if stable >= settleSafety {
			for _, owners := range segments {
				if len(owners) > 1 {
					w.fail("safety: %v has %d owners on one segment: %v (stable for %v)", a, len(owners), w.ownerNames(a), stable)
				}
			}
		}
		liveStable := w.now.Sub(w.lastViewChange)
		if stable >= settleLiveness && liveStable >= settleLiveness && w.viewsCurrent() {
			for i, n := range w.nodes {
				if !n.cable || !w.eligibleTruth(n.name, a) || !w.majorityConnected(i) {
					continue
				}
				if len(segments[n.group]) > 0 || w.stranger[a] {
					continue
				}
				kernel := false
				for j, o := range w.nodes {
					if o.kernelARP && w.wireOK(i, j) {
						kernel = true
					}
				}
				if !kernel {
					w.fail("liveness: %v has no owner on the segment of %s, which is eligible and majority-connected", a, n.name)
				}
			}
			for _, owners := range segments {
				for _, i := range owners {
					if !w.eligibleTruth(w.nodes[i].name, a) {
						w.fail("liveness: %v is owned by %s, which is not eligible", a, w.nodes[i].name)
					}
				}
			}
		}
		w.checkSticky(a, segments)
	}
}

func (w *world) healthyOwner(i int, a netip.Addr) bool {
	n := w.nodes[i]
	if !n.up() || !n.cable || w.loss > 0 || w.wireLoss > 0 || !w.majorityConnected(i) || !w.eligibleTruth(n.name, a) {
		return false
	}
	for _, o := range w.nodes {
		if o.up() && (o.apiCut || o.view.version != w.truth.version) {
			return false
		}
	}
	return true
}

// stickyAfter is how long an owner must have been healthy before a move counts against it: the
// others need a failure timeout and a heartbeat to learn that it is back.
const stickyAfter = time.Second

func (w *world) checkSticky(a netip.Addr, segments map[int][]int) {
	prev, had := w.owners[a]
	var all []int // the owners on the segment of the previous owner, or everywhere
	if had {
		all = segments[w.nodes[w.byName[prev]].group]
	} else {
		for _, owners := range segments {
			all = append(all, owners...)
		}
	}
	if had {
		i := w.byName[prev]
		healthy := w.healthyOwner(i, a) && w.nodes[i].generation == w.stickyGen[a]
		if healthy && w.ownerOK[a] && w.now.Sub(w.healthySince[a]) >= stickyAfter {
			// It must still own the VIP, and nobody on its segment may have taken it since the
			// last check (an owner from a merged segment is safety's business).
			for _, j := range all {
				if j != i && !w.prevOwners[a][j] {
					w.fail("stickiness: %s took %v from %s, healthy for %v", w.nodes[j].name, a, prev, w.now.Sub(w.healthySince[a]))
				}
			}
			if !slices.Contains(all, i) {
				w.fail("stickiness: %s, healthy for %v, lost %v to %v", prev, w.now.Sub(w.healthySince[a]), a, w.ownerNames(a))
			}
		}
	}
	w.prevOwners[a] = map[int]bool{}
	for _, owners := range segments {
		for _, j := range owners {
			w.prevOwners[a][j] = true
		}
	}
	if len(all) != 1 {
		delete(w.owners, a)
		w.ownerOK[a] = false
		return
	}
	i := all[0]
	healthy := w.healthyOwner(i, a)
	if w.owners[a] != w.nodes[i].name || w.stickyGen[a] != w.nodes[i].generation || !healthy || !w.ownerOK[a] {
		w.healthySince[a] = w.now
	}
	w.owners[a] = w.nodes[i].name
	w.stickyGen[a] = w.nodes[i].generation
	w.ownerOK[a] = healthy
}
