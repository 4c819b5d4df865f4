package ipam_test

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strconv"
	"testing"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

func serviceNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "bench/svc-" + strconv.Itoa(i)
	}
	return names
}

type benchPool struct {
	name    string
	cidr    string
	family  ipam.Family
	prefill int
}

// A /16 has only 65,534 usable IPv4 addresses, so it is pre-filled with 65,000; the /15 case
// carries the 100,000 allocations an IPv4 pool can hold.
var benchPools = []benchPool{
	{"slash16", "10.0.0.0/16", ipam.IPv4, 65_000},
	{"slash15", "10.0.0.0/15", ipam.IPv4, 100_000},
	{"slash64", "2001:db8::/64", ipam.IPv6, 100_000},
}

// BenchmarkAllocateRelease measures one Allocate plus one Release of a random held address in a
// pool that already holds bp.prefill allocations (so the lowest free address is a random hole).
func BenchmarkAllocateRelease(b *testing.B) {
	for _, bp := range benchPools {
		b.Run(bp.name, func(b *testing.B) {
			a := ipam.NewAllocator()
			a.SetPool(mustPool(b, "p", bp.cidr))
			names := serviceNames(bp.prefill + 1)
			held := make([]netip.Addr, bp.prefill)
			for i := range held {
				addr, err := a.Allocate("p", bp.family, ipam.Claim{Service: names[i]})
				if err != nil {
					b.Fatal(err)
				}
				held[i] = addr
			}
			spare := bp.prefill // index of the name not holding anything
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for b.Loop() {
				addr, err := a.Allocate("p", bp.family, ipam.Claim{Service: names[spare]})
				if err != nil {
					b.Fatal(err)
				}
				j := rng.IntN(len(held))
				a.Release(held[j], names[j])
				held[j] = addr
				names[j], names[spare] = names[spare], names[j]
			}
			b.ReportMetric(float64(len(held)), "held")
			u := a.Usage("p")
			if got := u.Used4 + u.Used6; got != uint64(len(held)) {
				b.Fatalf("usage %d, want %d", got, len(held))
			}
		})
	}
}

// BenchmarkAllocateReleaseAdversarial measures one Allocate plus one Release when the run index
// was built by holding every other address of a /16, assigned in the order that turned the old
// fixed-priority treap into a list (ipam.AdversarialOrder). Each Allocate takes 10.0.0.2, merging
// the two lowest runs, and Release splits them again: the deepest corner of such a list.
func BenchmarkAllocateReleaseAdversarial(b *testing.B) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(b, "p", "10.0.0.0/16"))
	const n = 1 << 15 // 10.0.0.1, 10.0.0.3, ..., 10.0.255.255; the last is broadcast, but Assign does not mind
	names := serviceNames(n)
	for _, k := range ipam.AdversarialOrder(n) {
		x := netip.AddrFrom4([4]byte{10, 0, byte(k >> 7), byte(k<<1) | 1})
		if err := a.Assign(x, ipam.Claim{Service: names[k]}); err != nil {
			b.Fatal(err)
		}
	}
	c := ipam.Claim{Service: "bench/spare"}
	b.ReportAllocs()
	for b.Loop() {
		addr, err := a.Allocate("p", ipam.IPv4, c)
		if err != nil {
			b.Fatal(err)
		}
		a.Release(addr, c.Service)
	}
	b.ReportMetric(float64(a.RunDepth()), "depth")
}

// BenchmarkAllocateFill measures filling an empty /8 with n allocations, reported per allocation.
func BenchmarkAllocateFill(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(strconv.Itoa(n/1000)+"k", func(b *testing.B) {
			pool := mustPool(b, "p", "10.0.0.0/8")
			names := serviceNames(n)
			b.ReportAllocs()
			for b.Loop() {
				a := ipam.NewAllocator()
				a.SetPool(pool)
				for i := 0; i < n; i++ {
					if _, err := a.Allocate("p", ipam.IPv4, ipam.Claim{Service: names[i]}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/alloc")
		})
	}
}

// BenchmarkMemoryPerHeldAddress reports the heap the Allocator retains per held address (the
// Service name strings belong to the caller and are not counted).
func BenchmarkMemoryPerHeldAddress(b *testing.B) {
	for _, bp := range benchPools {
		b.Run(bp.name, func(b *testing.B) {
			pool := mustPool(b, "p", bp.cidr)
			names := serviceNames(bp.prefill)
			var perAddr float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				a := ipam.NewAllocator()
				a.SetPool(pool)
				for i := 0; i < bp.prefill; i++ {
					if _, err := a.Allocate("p", bp.family, ipam.Claim{Service: names[i]}); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perAddr = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(bp.prefill)
				runtime.KeepAlive(a)
			}
			b.ReportMetric(perAddr, "bytes/alloc-held")
		})
	}
}

// BenchmarkAllocateShared measures Allocate for a claim with a sharing key when the pool holds
// 100,000 exclusive allocations and a few hundred addresses under other keys.
func BenchmarkAllocateShared(b *testing.B) {
	a := ipam.NewAllocator()
	a.SetPool(mustPool(b, "p", "2001:db8::/64"))
	names := serviceNames(100_000)
	for i, name := range names {
		c := ipam.Claim{Service: name}
		if i%300 == 0 {
			c.SharingKey = "key-" + strconv.Itoa(i)
		}
		if _, err := a.Allocate("p", ipam.IPv6, c); err != nil {
			b.Fatal(err)
		}
	}
	c := ipam.Claim{Service: "bench/joiner", SharingKey: "key-99900", Ports: []ipam.Port{tcp443}}
	b.ReportAllocs()
	for b.Loop() {
		addr, err := a.Allocate("p", ipam.IPv6, c)
		if err != nil {
			b.Fatal(err)
		}
		a.Release(addr, c.Service)
	}
}
