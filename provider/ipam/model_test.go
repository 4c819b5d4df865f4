package ipam_test

import (
	"cmp"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"go4.org/netipx"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// refAllocator is the trivially correct reference the Allocator is checked against: a map of
// holders and linear scans over the (tiny) pools.
type refAllocator struct {
	pools   map[string]*ipam.Pool
	holders map[netip.Addr][]ipam.Claim
	// enumerated caches the usable addresses of each (immutable) pool ever seen.
	enumerated map[*ipam.Pool]*refPool
}

type refPool struct {
	addrs map[ipam.Family][]netip.Addr
	set   map[netip.Addr]bool
}

func newRefAllocator() *refAllocator {
	return &refAllocator{pools: map[string]*ipam.Pool{}, holders: map[netip.Addr][]ipam.Claim{},
		enumerated: map[*ipam.Pool]*refPool{}}
}

// enumerate lists the pool's usable addresses the slow way: every address of its ranges that
// Unusable does not reject.
func (r *refAllocator) enumerate(p *ipam.Pool) *refPool {
	if rp, ok := r.enumerated[p]; ok {
		return rp
	}
	rp := &refPool{addrs: map[ipam.Family][]netip.Addr{}, set: map[netip.Addr]bool{}}
	for _, rg := range p.Ranges() {
		for x := rg.From(); x.IsValid() && x.Compare(rg.To()) <= 0; x = x.Next() {
			if ipam.Unusable(x) == "" {
				f := ipam.FamilyOf(x)
				rp.addrs[f] = append(rp.addrs[f], x)
				rp.set[x] = true
			}
		}
	}
	r.enumerated[p] = rp
	return rp
}

// addresses returns the pool's usable addresses of family f, in order.
func (r *refAllocator) addresses(p *ipam.Pool, f ipam.Family) []netip.Addr {
	return r.enumerate(p).addrs[f]
}

// contains is Pool.Contains the slow way.
func (r *refAllocator) contains(p *ipam.Pool, at netip.Addr) bool {
	return r.enumerate(p).set[at]
}

func (r *refAllocator) conflict(at netip.Addr, c ipam.Claim) error {
	for _, h := range r.holders[at] { // sorted by Service
		if h.Service == c.Service {
			continue
		}
		if err := ipam.Compatible(h, c); err != nil {
			var e *ipam.InUseError
			if !errors.As(err, &e) {
				return err
			}
			e.Addr = at
			return e
		}
	}
	return nil
}

func (r *refAllocator) assign(at netip.Addr, c ipam.Claim) error {
	if err := r.conflict(at, c); err != nil {
		return err
	}
	hs := slices.DeleteFunc(slices.Clone(r.holders[at]), func(h ipam.Claim) bool { return h.Service == c.Service })
	hs = append(hs, c)
	slices.SortFunc(hs, func(x, y ipam.Claim) int { return cmp.Compare(x.Service, y.Service) })
	r.holders[at] = hs
	return nil
}

func (r *refAllocator) used(p *ipam.Pool, f ipam.Family) uint64 {
	var n uint64
	for at := range r.holders {
		if ipam.FamilyOf(at) == f && r.contains(p, at) {
			n++
		}
	}
	return n
}

func (r *refAllocator) allocate(pool string, f ipam.Family, c ipam.Claim) (netip.Addr, error) {
	p, ok := r.pools[pool]
	if !ok {
		return netip.Addr{}, &ipam.PoolNotFoundError{Pool: pool}
	}
	all := r.addresses(p, f)
	if len(all) == 0 {
		return netip.Addr{}, &ipam.NoAddressesError{Pool: pool, Family: f}
	}
	if at, ok := r.sharable(all, c); ok {
		return at, r.assign(at, c)
	}
	for _, at := range all {
		if len(r.holders[at]) == 0 {
			return at, r.assign(at, c)
		}
	}
	return netip.Addr{}, &ipam.PoolExhaustedError{Pool: pool, Family: f, Used: r.used(p, f), Size: p.Size(f)}
}

// sharable returns the first of the addresses held under c's sharing key that c may share.
func (r *refAllocator) sharable(all []netip.Addr, c ipam.Claim) (netip.Addr, bool) {
	if c.SharingKey == "" {
		return netip.Addr{}, false
	}
	for _, at := range all {
		hs := r.holders[at]
		if len(hs) > 0 && hs[0].SharingKey == c.SharingKey && r.conflict(at, c) == nil {
			return at, true
		}
	}
	return netip.Addr{}, false
}

func (r *refAllocator) share(pool string, f ipam.Family, c ipam.Claim) (netip.Addr, bool, error) {
	p, ok := r.pools[pool]
	if !ok {
		return netip.Addr{}, false, &ipam.PoolNotFoundError{Pool: pool}
	}
	at, ok := r.sharable(r.addresses(p, f), c)
	if !ok {
		return netip.Addr{}, false, nil
	}
	return at, true, r.assign(at, c)
}

func (r *refAllocator) release(at netip.Addr, service string) {
	hs := slices.DeleteFunc(slices.Clone(r.holders[at]), func(h ipam.Claim) bool { return h.Service == service })
	if len(hs) == 0 {
		delete(r.holders, at)
	} else {
		r.holders[at] = hs
	}
}

func (r *refAllocator) held(service string) []netip.Addr {
	var out []netip.Addr
	for at, hs := range r.holders {
		for _, h := range hs {
			if h.Service == service {
				out = append(out, at)
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// sameError compares two errors of this package field by field.
func sameError(got, want error) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	if reflect.TypeOf(got) != reflect.TypeOf(want) {
		return false
	}
	var g, w *ipam.PoolExhaustedError
	if errors.As(got, &g) && errors.As(want, &w) {
		return g.Pool == w.Pool && g.Family == w.Family && g.Used == w.Used && g.Size.Cmp(w.Size) == 0 &&
			g.Error() == w.Error()
	}
	return reflect.DeepEqual(got, want) && got.Error() == want.Error()
}

// modelPools lists each pool's alternative definitions. p4 and some others cross holes: a /64
// boundary (interface ID 0), the RFC 2526 block, ::ffff:0:0/96 and multicast. 2001:db8:: is
// the subnet-router anycast address of 2001:db8::/64, so most IPv6 pools have a hole anyway.
var modelPools = map[string][][]string{
	"p1": {{"10.0.0.0/29"}, {"10.0.0.4-10.0.0.12"}, {"10.0.0.0/29", "2001:db8::/126"},
		{"223.255.255.250-224.0.0.3", "10.0.0.0/30"}},
	"p2": {{"10.0.0.5-10.0.0.9", "2001:db8::2-2001:db8::6"}, {"10.0.0.12-10.0.0.14", "10.0.0.1"}, {"10.0.0.3"},
		{"::fffe:ffff:ffff-::1:0:0:5", "10.0.0.5-10.0.0.9"}},
	"p3": {{"2001:db8::/125"}, {"2001:db8::4", "2001:db8::8-2001:db8::9"}, {},
		{"2001:db8::fdff:ffff:ffff:ff7c-2001:db8::fe00:0:0:3"}},
	"p4": {{"2001:db8::ffff:ffff:ffff:fffa-2001:db8:0:1::5"},
		{"2001:db8::ffff:ffff:ffff:ff00-2001:db8:0:1::ff"},
		{"2001:db8::ffff:ffff:ffff:fffd-2001:db8:0:1::2", "223.255.255.254-224.0.0.1"},
		{"::fffe:ffff:ffff-::1:0:0:5", "2001:db8::fdff:ffff:ffff:ff7e-2001:db8::fe00:0:0:1", "223.255.255.250-224.0.0.3"}},
}

func TestModel(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runModel(t, seed, 4000) })
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	a := ipam.NewAllocator()
	ref := newRefAllocator()

	var universe []netip.Addr
	for i := 0; i <= 16; i++ {
		universe = append(universe, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
		universe = append(universe, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
	}
	universe = append(universe, netip.MustParseAddr("172.16.0.1"), netip.MustParseAddr("fd00::1"))
	// Around the holes of modelPools, holes included: Assign may hold them, pools never count them.
	for _, r := range []string{"2001:db8::ffff:ffff:ffff:fff8-2001:db8:0:1::7", "2001:db8::ffff:ffff:ffff:ff00-2001:db8::ffff:ffff:ffff:ff01",
		"2001:db8:0:1::fe-2001:db8:0:1::ff", "2001:db8::fdff:ffff:ffff:ff7c-2001:db8::fdff:ffff:ffff:ff81",
		"2001:db8::fdff:ffff:ffff:fffe-2001:db8::fe00:0:0:3", "::fffe:ffff:fffe-::fffe:ffff:ffff", "::1:0:0:0-::1:0:0:6",
		"223.255.255.249-224.0.0.4"} {
		rg, err := ipam.ParseAddresses(r)
		if err != nil {
			t.Fatal(err)
		}
		for x := rg.From(); !rg.To().Less(x); x = x.Next() {
			universe = append(universe, x)
		}
	}
	slices.SortFunc(universe, netip.Addr.Compare)

	var services []string
	for i := 0; i < 10; i++ {
		services = append(services, "ns/svc"+strconv.Itoa(i))
	}
	poolNames := []string{"p1", "p2", "p3", "p4", "p5-never"}
	const realPools = 4
	allPorts := []ipam.Port{tcp80, tcp443, tcp53, udp53}
	randomClaim := func() ipam.Claim {
		c := ipam.Claim{Service: services[rng.IntN(len(services))]}
		switch rng.IntN(5) {
		case 0:
		case 1, 2:
			c.SharingKey = "k1"
		default:
			c.SharingKey = "k2"
		}
		for _, p := range allPorts {
			if rng.IntN(10) < 3 {
				c.Ports = append(c.Ports, p)
			}
		}
		switch rng.IntN(6) {
		case 0:
			c.Backend = "app=a"
		case 1:
			c.Backend = "app=b"
		}
		return c
	}
	randomFamily := func() ipam.Family {
		if rng.IntN(2) == 0 {
			return ipam.IPv4
		}
		return ipam.IPv6
	}

	for _, name := range poolNames[:realPools] {
		p := mustPool(t, name, modelPools[name][0]...)
		a.SetPool(p)
		ref.pools[name] = p
	}
	pickPool := func() string {
		if rng.IntN(20) == 0 {
			return "p5-never"
		}
		return poolNames[rng.IntN(realPools)]
	}

	counts := map[string]int{}
	for step := 0; step < steps; step++ {
		var op string
		switch k := rng.IntN(100); {
		case k < 6:
			name := poolNames[rng.IntN(realPools)]
			defs := modelPools[name]
			p := mustPool(t, name, defs[rng.IntN(len(defs))]...)
			a.SetPool(p)
			ref.pools[name] = p
			op = "SetPool " + name + " " + rangesString(p.Ranges())
		case k < 7:
			name := pickPool()
			a.DeletePool(name)
			delete(ref.pools, name)
			op = "DeletePool " + name
		case k < 50:
			pool, f, c := pickPool(), randomFamily(), randomClaim()
			shared := false
			got, err := a.Allocate(pool, f, c)
			if err == nil {
				shared = len(ref.holders[got]) > 0
			}
			want, wantErr := ref.allocate(pool, f, c)
			op = fmt.Sprintf("Allocate(%s, %v, %+v) = %v, %v", pool, f, c, got, err)
			if got != want || !sameError(err, wantErr) {
				t.Fatalf("step %d: %s; want %v, %v", step, op, want, wantErr)
			}
			if shared {
				counts["allocate shared"]++
			}
			if err == nil {
				counts["allocate ok"]++
				if prev := got.Prev(); ipam.Unusable(prev) != "" && slices.ContainsFunc(ref.pools[pool].Ranges(),
					func(r netipx.IPRange) bool { return r.Contains(prev) }) {
					counts["allocate just after a hole"]++
				}
			} else {
				counts[fmt.Sprintf("allocate %T", err)]++
			}
		case k < 55:
			pool, f, c := pickPool(), randomFamily(), randomClaim()
			got, ok, err := a.Share(pool, f, c)
			want, wantOK, wantErr := ref.share(pool, f, c)
			op = fmt.Sprintf("Share(%s, %v, %+v) = %v, %v, %v", pool, f, c, got, ok, err)
			if got != want || ok != wantOK || !sameError(err, wantErr) {
				t.Fatalf("step %d: %s; want %v, %v, %v", step, op, want, wantOK, wantErr)
			}
			if ok {
				counts["share ok"]++
			}
		case k < 70:
			at, c := universe[rng.IntN(len(universe))], randomClaim()
			if hs := ref.holders[at]; len(hs) > 0 && rng.IntN(2) == 0 {
				// Re-assign or join with a claim likely to be compatible.
				c.SharingKey = hs[0].SharingKey
				if rng.IntN(2) == 0 {
					c.Service = hs[rng.IntN(len(hs))].Service
				}
			}
			err := a.Assign(at, c)
			wantErr := ref.assign(at, c)
			op = fmt.Sprintf("Assign(%s, %+v) = %v", at, c, err)
			if !sameError(err, wantErr) {
				t.Fatalf("step %d: %s; want %v", step, op, wantErr)
			}
			if err == nil {
				counts["assign ok"]++
			} else {
				counts["assign conflict"]++
			}
		case k < 93:
			at, svc := universe[rng.IntN(len(universe))], services[rng.IntN(len(services))]
			if hs := ref.holders[at]; len(hs) > 0 && rng.IntN(4) != 0 {
				svc = hs[rng.IntN(len(hs))].Service
			}
			a.Release(at, svc)
			ref.release(at, svc)
			op = fmt.Sprintf("Release(%s, %s)", at, svc)
		default:
			svc := services[rng.IntN(len(services))]
			got := a.ReleaseAll(svc)
			want := ref.held(svc)
			for _, at := range want {
				ref.release(at, svc)
			}
			op = fmt.Sprintf("ReleaseAll(%s) = %v", svc, got)
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: %s; want %v", step, op, want)
			}
		}
		counts["held addresses max"] = max(counts["held addresses max"], len(ref.holders))
		for at := range ref.holders {
			if ipam.Unusable(at) != "" {
				counts["steps with a held hole"]++
				break
			}
		}
		compareModel(t, step, op, a, ref, universe, services, poolNames)
	}
	t.Logf("seed %d: %v", seed, counts)
	for _, k := range []string{"allocate ok", "assign ok", "assign conflict", "allocate shared", "share ok",
		"allocate just after a hole", "steps with a held hole",
		"allocate *ipam.PoolExhaustedError", "allocate *ipam.NoAddressesError", "allocate *ipam.PoolNotFoundError"} {
		if counts[k] == 0 {
			t.Errorf("model never exercised %q", k)
		}
	}
}

func compareModel(t *testing.T, step int, op string, a *ipam.Allocator, ref *refAllocator,
	universe []netip.Addr, services, poolNames []string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("step %d, after %s: %s", step, op, fmt.Sprintf(format, args...))
	}
	if err := a.CheckInvariants(); err != nil {
		fail("%v", err)
	}
	for _, svc := range services {
		if got, want := a.Held(svc), ref.held(svc); !slices.Equal(got, want) {
			fail("Held(%s) = %v, want %v", svc, got, want)
		}
	}
	for _, at := range universe {
		got, want := a.Holders(at), ref.holders[at]
		if !reflect.DeepEqual(got, want) {
			fail("Holders(%s) = %+v, want %+v", at, got, want)
		}
		for i := range got {
			for j := range got {
				if i != j && ipam.Compatible(got[i], got[j]) != nil {
					fail("%s held by incompatible claims %+v and %+v", at, got[i], got[j])
				}
			}
		}
		var wantPools []string
		for _, name := range poolNames {
			if p, ok := ref.pools[name]; ok && ref.contains(p, at) {
				wantPools = append(wantPools, name)
			}
		}
		if got := a.PoolsContaining(at); !slices.Equal(got, wantPools) {
			fail("PoolsContaining(%s) = %v, want %v", at, got, wantPools)
		}
	}
	var names []string
	for _, name := range poolNames {
		u := a.Usage(name)
		p, ok := ref.pools[name]
		if !ok {
			if !reflect.DeepEqual(u, ipam.Usage{}) {
				fail("Usage(%s) = %+v for a missing pool", name, u)
			}
			continue
		}
		names = append(names, name)
		for _, f := range []ipam.Family{ipam.IPv4, ipam.IPv6} {
			used, size := u.Used4, u.Size4
			if f == ipam.IPv6 {
				used, size = u.Used6, u.Size6
			}
			wantUsed, wantSize := ref.used(p, f), big.NewInt(int64(len(ref.addresses(p, f))))
			if used != wantUsed || size.Cmp(wantSize) != 0 {
				fail("Usage(%s) %v = %d of %s, want %d of %s", name, f, used, size, wantUsed, wantSize)
			}
			if free := u.Free(f); free.Cmp(new(big.Int).Sub(wantSize, new(big.Int).SetUint64(wantUsed))) != 0 {
				fail("Usage(%s).Free(%v) = %s", name, f, free)
			}
		}
	}
	if got := a.PoolNames(); !slices.Equal(got, names) {
		fail("PoolNames() = %v, want %v", got, names)
	}
}
