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
