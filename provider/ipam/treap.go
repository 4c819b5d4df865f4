package ipam

import (
	"math/rand/v2"
	"net/netip"
)

// treap is an ordered map from netip.Addr (ordered by netip.Addr.Compare, so IPv4 before IPv6) to
// V. Every operation takes expected O(log n) time, whatever the order of insertions, as long as
// that order cannot depend on the priorities. They therefore come from math/rand/v2's global
// source, seeded unpredictably in every process: with a fixed sequence, whoever chooses the
// addresses (Services requesting IPs, state restored at start-up) could order them so that
// priorities rise with keys and turn the treap into a list. The global source is safe for
// concurrent use, although the treap itself is not.
type treap[V any] struct {
	root *tnode[V]
	n    int
}

type tnode[V any] struct {
	key         netip.Addr
	val         V
	prio        uint64
	left, right *tnode[V]
}

func (t *treap[V]) len() int { return t.n }

// get returns the node with key k, or nil.
func (t *treap[V]) get(k netip.Addr) *tnode[V] {
	n := t.root
	for n != nil {
		switch c := k.Compare(n.key); {
		case c < 0:
			n = n.left
		case c > 0:
			n = n.right
		default:
			return n
		}
	}
	return nil
}

// floor returns the node with the greatest key <= k, or nil.
func (t *treap[V]) floor(k netip.Addr) *tnode[V] {
	var best *tnode[V]
	n := t.root
	for n != nil {
		switch c := k.Compare(n.key); {
		case c < 0:
			n = n.left
		case c > 0:
			best = n
			n = n.right
		default:
			return n
		}
	}
	return best
}

// insert adds k with value v; k must not be present.
func (t *treap[V]) insert(k netip.Addr, v V) {
	t.root = tinsert(t.root, &tnode[V]{key: k, val: v, prio: rand.Uint64()})
	t.n++
}

func tinsert[V any](n, nn *tnode[V]) *tnode[V] {
	if n == nil {
		return nn
	}
	if nn.prio > n.prio {
		nn.left, nn.right = tsplit(n, nn.key)
		return nn
	}
	if nn.key.Less(n.key) {
		n.left = tinsert(n.left, nn)
	} else {
		n.right = tinsert(n.right, nn)
	}
	return n
}

// tsplit splits n into the keys < k and the keys >= k.
func tsplit[V any](n *tnode[V], k netip.Addr) (l, r *tnode[V]) {
	if n == nil {
		return nil, nil
	}
	if n.key.Less(k) {
		n.right, r = tsplit(n.right, k)
		return n, r
	}
	l, n.left = tsplit(n.left, k)
	return l, n
}

// tmerge joins l and r, all of whose keys are below all of r's.
func tmerge[V any](l, r *tnode[V]) *tnode[V] {
	switch {
	case l == nil:
		return r
	case r == nil:
		return l
	case l.prio > r.prio:
		l.right = tmerge(l.right, r)
		return l
	default:
		r.left = tmerge(l, r.left)
		return r
	}
}

// delete removes k and reports whether it was present.
func (t *treap[V]) delete(k netip.Addr) bool {
	var found bool
	t.root = tdelete(t.root, k, &found)
	if found {
		t.n--
	}
	return found
}

func tdelete[V any](n *tnode[V], k netip.Addr, found *bool) *tnode[V] {
	if n == nil {
		return nil
	}
	switch c := k.Compare(n.key); {
	case c < 0:
		n.left = tdelete(n.left, k, found)
	case c > 0:
		n.right = tdelete(n.right, k, found)
	default:
		*found = true
		return tmerge(n.left, n.right)
	}
	return n
}

// ascend calls fn for every node with key >= from, in key order, until fn returns false.
func (t *treap[V]) ascend(from netip.Addr, fn func(*tnode[V]) bool) {
	tascend(t.root, from, fn)
}

func tascend[V any](n *tnode[V], from netip.Addr, fn func(*tnode[V]) bool) bool {
	for n != nil {
		if !n.key.Less(from) {
			if !tascend(n.left, from, fn) || !fn(n) {
				return false
			}
		}
		n = n.right
	}
	return true
}
