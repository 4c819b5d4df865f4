package ipam

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// CheckInvariants verifies the Allocator's internal indexes against its holder map. It is
// exported to the ipam_test package only (this file is a _test file).
func (a *Allocator) CheckInvariants() error {
	// Holders: sorted by Service, non-empty, one sharing key, pairwise compatible.
	for addr, claims := range a.holders {
		if len(claims) == 0 {
			return fmt.Errorf("%s: empty holder list", addr)
		}
		if !slices.IsSortedFunc(claims, func(x, y Claim) int {
			if x.Service == y.Service {
				return 0
			}
			if x.Service < y.Service {
				return -1
			}
			return 1
		}) {
			return fmt.Errorf("%s: holders not sorted", addr)
		}
		for i := range claims {
			if claims[i].SharingKey != claims[0].SharingKey {
				return fmt.Errorf("%s: holders with different keys", addr)
			}
			for j := range claims {
				if i == j {
					continue
				}
				if claims[i].Service == claims[j].Service {
					return fmt.Errorf("%s: %s holds twice", addr, claims[i].Service)
				}
				if err := Compatible(claims[i], claims[j]); err != nil {
					return fmt.Errorf("%s: incompatible holders: %w", addr, err)
				}
			}
			held := a.services[claims[i].Service]
			if _, ok := slices.BinarySearchFunc(held, addr, netip.Addr.Compare); !ok {
				return fmt.Errorf("%s: %s missing from services index", addr, claims[i].Service)
			}
		}
		if k := claims[0].SharingKey; k != "" {
			if t := a.keys[k]; t == nil || t.get(addr) == nil {
				return fmt.Errorf("%s: missing from key index %q", addr, k)
			}
		}
	}
	// Services index.
	for svc, held := range a.services {
		if len(held) == 0 || !slices.IsSortedFunc(held, netip.Addr.Compare) {
			return fmt.Errorf("services[%s] = %v: empty or unsorted", svc, held)
		}
		for _, addr := range held {
			if _, ok := findService(a.holders[addr], svc); !ok {
				return fmt.Errorf("services[%s] lists %s, which it does not hold", svc, addr)
			}
		}
	}
	// Key index.
	for k, t := range a.keys {
		if err := checkTreap(t); err != nil {
			return fmt.Errorf("key index %q: %w", k, err)
		}
		var err error
		t.ascend(netip.IPv4Unspecified(), func(n *tnode[struct{}]) bool {
			c := a.holders[n.key]
			if len(c) == 0 || c[0].SharingKey != k {
				err = fmt.Errorf("key index %q lists %s, held as %v", k, n.key, c)
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	// Runs: sorted, maximal, covering exactly the held addresses.
	if err := checkTreap(&a.runs); err != nil {
		return fmt.Errorf("run index: %w", err)
	}
	var prevEnd netip.Addr
	var covered int
	var err error
	a.runs.ascend(netip.IPv4Unspecified(), func(n *tnode[netip.Addr]) bool {
		if n.key.BitLen() != n.val.BitLen() || n.val.Less(n.key) {
			err = fmt.Errorf("bad run %s-%s", n.key, n.val)
			return false
		}
		if prevEnd.IsValid() && (!prevEnd.Less(n.key) || prevEnd.Next() == n.key) {
			err = fmt.Errorf("run %s-%s overlaps or touches the previous run ending at %s", n.key, n.val, prevEnd)
			return false
		}
		prevEnd = n.val
		covered += int(span(n.key, n.val))
		return true
	})
	if err != nil {
		return err
	}
	if covered != len(a.holders) {
		return fmt.Errorf("runs cover %d addresses, %d held", covered, len(a.holders))
	}
	for addr := range a.holders {
		if n := a.runs.floor(addr); n == nil || n.val.Less(addr) {
			return fmt.Errorf("held %s not covered by a run", addr)
		}
	}
	// Pool counters.
	for name, ps := range a.pools {
		var u4, u6 uint64
		for addr := range a.holders {
			if ps.pool.Contains(addr) {
				if addr.Is4() {
					u4++
				} else {
					u6++
				}
			}
		}
		if u4 != ps.used4 || u6 != ps.used6 {
			return fmt.Errorf("pool %s: counters %d/%d, actual %d/%d", name, ps.used4, ps.used6, u4, u6)
		}
	}
	if len(a.names) != len(a.pools) || !slices.IsSorted(a.names) {
		return fmt.Errorf("names %v out of sync", a.names)
	}
	return nil
}

// RunCount returns the number of runs in the run index.
func (a *Allocator) RunCount() int { return a.runs.len() }

func checkTreap[V any](t *treap[V]) error {
	var n int
	var walk func(x *tnode[V], lo, hi *netip.Addr) error
	walk = func(x *tnode[V], lo, hi *netip.Addr) error {
		if x == nil {
			return nil
		}
		n++
		if (lo != nil && !lo.Less(x.key)) || (hi != nil && !x.key.Less(*hi)) {
			return fmt.Errorf("BST order violated at %s", x.key)
		}
		for _, c := range []*tnode[V]{x.left, x.right} {
			if c != nil && c.prio > x.prio {
				return fmt.Errorf("heap order violated at %s", x.key)
			}
		}
		if err := walk(x.left, lo, &x.key); err != nil {
			return err
		}
		return walk(x.right, &x.key, hi)
	}
	if err := walk(t.root, nil, nil); err != nil {
		return err
	}
	if n != t.n {
		return fmt.Errorf("size %d, counted %d", t.n, n)
	}
	return nil
}

// RunDepth returns the depth of the run index: the number of nodes on its longest root-to-leaf
// path.
func (a *Allocator) RunDepth() int { return a.runs.depth() }

func (t *treap[V]) depth() int {
	var walk func(n *tnode[V]) int
	walk = func(n *tnode[V]) int {
		if n == nil {
			return 0
		}
		return 1 + max(walk(n.left), walk(n.right))
	}
	return walk(t.root)
}

// oldPriorities returns the first n priorities the treap drew before they were randomised: a
// splitmix64 sequence from seed 0 (the run index's seed), the same in every process.
func oldPriorities(n int) []uint64 {
	out := make([]uint64, n)
	var seed uint64
	for i := range out {
		seed += 0x9e3779b97f4a7c15
		z := seed
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		out[i] = z ^ (z >> 31)
	}
	return out
}

// AdversarialOrder returns the insertion order an attacker would have used against the old fixed
// priorities: with keys k_0 < k_1 < ... < k_{n-1}, the i-th insertion is k_order[i]. Insertion i
// received priority oldPriorities(n)[i], so giving it the key whose rank is that priority's rank
// makes priorities rise with keys, and the treap (a max-heap on priority) a path of depth n.
func AdversarialOrder(n int) []int {
	prio := oldPriorities(n)
	byPrio := make([]int, n)
	for i := range byPrio {
		byPrio[i] = i
	}
	slices.SortFunc(byPrio, func(i, j int) int { return cmp.Compare(prio[i], prio[j]) })
	order := make([]int, n)
	for rank, i := range byPrio {
		order[i] = rank
	}
	return order
}
