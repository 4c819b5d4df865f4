package ipam

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func TestTreapAgainstSortedSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	var tr treap[int]
	var ref []netip.Addr
	addr := func() netip.Addr {
		if rng.IntN(2) == 0 {
			return netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(64))})
		}
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.IntN(64))})
	}
	for step := 0; step < 20000; step++ {
		k := addr()
		i, present := slices.BinarySearchFunc(ref, k, netip.Addr.Compare)
		switch rng.IntN(3) {
		case 0, 1:
			if !present {
				tr.insert(k, step)
				ref = slices.Insert(ref, i, k)
			}
		case 2:
			if got := tr.delete(k); got != present {
				t.Fatalf("step %d: delete(%s) = %v, want %v", step, k, got, present)
			}
			if present {
				ref = slices.Delete(ref, i, i+1)
			}
		}
		if err := checkTreap(&tr); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if tr.len() != len(ref) {
			t.Fatalf("step %d: len %d, want %d", step, tr.len(), len(ref))
		}
		q := addr()
		j, ok := slices.BinarySearchFunc(ref, q, netip.Addr.Compare)
		var want netip.Addr
		if ok {
			want = ref[j]
		} else if j > 0 {
			want = ref[j-1]
		}
		n := tr.floor(q)
		if (n == nil) != !want.IsValid() || (n != nil && n.key != want) {
			t.Fatalf("step %d: floor(%s) = %v, want %s", step, q, n, want)
		}
		if g := tr.get(q); (g != nil) != ok {
			t.Fatalf("step %d: get(%s) = %v, want present=%v", step, q, g, ok)
		}
		var got []netip.Addr
		tr.ascend(q, func(n *tnode[int]) bool {
			got = append(got, n.key)
			return len(got) < 5
		})
		wantAsc := ref[j:min(j+5, len(ref))]
		if !slices.Equal(got, wantAsc) {
			t.Fatalf("step %d: ascend(%s) = %v, want %v", step, q, got, wantAsc)
		}
	}
}

func TestSpan(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want uint64
	}{
		{"10.0.0.1", "10.0.0.1", 1},
		{"10.0.0.255", "10.0.1.0", 2},
		{"0.0.0.0", "255.255.255.255", 1 << 32},
		{"2001:db8::ffff:ffff:ffff:ffff", "2001:db8:0:1::", 2},
		{"2001:db8::", "2001:db8::ffff", 65536},
	} {
		if got := span(netip.MustParseAddr(tc.a), netip.MustParseAddr(tc.b)); got != tc.want {
			t.Errorf("span(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestTreapDepth checks the O(log n) bound on depth, not just order, for insertion orders an
// attacker could choose: sorted both ways, and the order that made the old fixed priority
// sequence build a list. A random BST of 20,000 keys is about 2 ln n = 20 deep on average and
// rarely beyond 4.3 ln n = 43.
func TestTreapDepth(t *testing.T) {
	const n, maxDepth = 20_000, 60
	keys := make([]netip.Addr, n)
	for i := range keys {
		keys[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	adversarial := AdversarialOrder(n)

	// The adversarial order is what it claims: with the old priorities, it builds a list. (On
	// fewer keys: building a list takes quadratic time.)
	const small = 2000
	var old treap[struct{}]
	prio := oldPriorities(small)
	for i, k := range AdversarialOrder(small) {
		old.root = tinsert(old.root, &tnode[struct{}]{key: keys[k], prio: prio[i]})
		old.n++
	}
	if err := checkTreap(&old); err != nil {
		t.Fatal(err)
	}
	if d := old.depth(); d != small {
		t.Fatalf("old priorities in adversarial order: depth %d, want %d", d, small)
	}

	for name, order := range map[string]func(i int) int{
		"ascending":   func(i int) int { return i },
		"descending":  func(i int) int { return n - 1 - i },
		"adversarial": func(i int) int { return adversarial[i] },
	} {
		var tr treap[struct{}]
		for i := 0; i < n; i++ {
			tr.insert(keys[order(i)], struct{}{})
		}
		if err := checkTreap(&tr); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d := tr.depth()
		t.Logf("%s: depth %d", name, d)
		if d > maxDepth {
			t.Errorf("%s: depth %d after %d insertions, want <= %d", name, d, n, maxDepth)
		}
		// Deleting every other key keeps it balanced.
		for i := 0; i < n; i += 2 {
			tr.delete(keys[order(i)])
		}
		if d := tr.depth(); d > maxDepth {
			t.Errorf("%s: depth %d after deletions, want <= %d", name, d, maxDepth)
		}
	}
}

// TestRunIndexDepthAdversarial drives the attack through the Allocator: Services holding every
// other address, assigned in the adversarial order, each add one run to the run index.
func TestRunIndexDepthAdversarial(t *testing.T) {
	const n, maxDepth = 20_000, 60
	a := NewAllocator()
	for _, k := range AdversarialOrder(n) {
		x := netip.AddrFrom4([4]byte{10, byte(k >> 15), byte(k >> 7), byte(k<<1) | 1})
		if err := a.Assign(x, Claim{Service: "ns/" + x.String()}); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.RunCount(); got != n {
		t.Fatalf("%d runs, want %d", got, n)
	}
	if d := a.RunDepth(); d > maxDepth {
		t.Fatalf("run index depth %d, want <= %d", d, maxDepth)
	}
}
