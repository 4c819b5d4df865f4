package ipam

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"go4.org/netipx"
)

// Allocator tracks which addresses are held by which Services, across all pools.
//
// An address is held while at least one Service holds it; several Services hold the same address
// only if their claims are pairwise compatible (see Compatible). Allocations are global, not per
// pool: pools only decide where Allocate looks for addresses and what Usage counts, so replacing
// or deleting a pool never drops an allocation.
//
// The zero Allocator is not usable; call NewAllocator. An Allocator is not safe for concurrent
// use: the caller must serialise all calls, for example with a mutex.
//
// Memory is O(n) for n held addresses, independent of pool sizes. Assign and Release take
// O(p·log r + log n) time for p pools of at most r ranges; Allocate takes O(r·log n) time to find
// the lowest free address (plus, for a sharing key, the addresses held under that key in the pool
// that turn out to be incompatible).
type Allocator struct {
	pools map[string]*poolState
	names []string // sorted keys of pools

	// holders maps every held address to its holders, sorted by Service. All holders of an
	// address have the same SharingKey (it is non-empty when there are several).
	holders map[netip.Addr][]Claim
	// services maps a Service to the addresses it holds, sorted.
	services map[string][]netip.Addr
	// keys maps a non-empty sharing key to the set of addresses held under it.
	keys map[string]*treap[struct{}]
	// runs indexes the maximal runs of consecutive held addresses: start -> end (inclusive).
	runs treap[netip.Addr]
}

type poolState struct {
	pool         *Pool
	used4, used6 uint64
}

func (ps *poolState) used(f Family) *uint64 {
	if f == IPv4 {
		return &ps.used4
	}
	return &ps.used6
}

// NewAllocator returns an empty Allocator with no pools and no allocations.
func NewAllocator() *Allocator {
	return &Allocator{
		pools:    make(map[string]*poolState),
		holders:  make(map[netip.Addr][]Claim),
		services: make(map[string][]netip.Addr),
		keys:     make(map[string]*treap[struct{}]),
	}
}

// SetPool adds p, or replaces the pool of the same name. Existing allocations are never dropped,
// even if they now fall outside every pool. It takes O(r·log n + k) time, where k is the number of
// runs of consecutive held addresses inside p. A nil p is ignored.
func (a *Allocator) SetPool(p *Pool) {
	if p == nil {
		return
	}
	ps := &poolState{pool: p}
	for _, r := range p.ranges {
		*ps.used(FamilyOf(r.From())) += a.heldIn(r)
	}
	if _, ok := a.pools[p.name]; !ok {
		i, _ := slices.BinarySearch(a.names, p.name)
		a.names = slices.Insert(a.names, i, p.name)
	}
	a.pools[p.name] = ps
}

// DeletePool forgets the named pool. Allocations inside it stay.
func (a *Allocator) DeletePool(name string) {
	if _, ok := a.pools[name]; !ok {
		return
	}
	delete(a.pools, name)
	if i, ok := slices.BinarySearch(a.names, name); ok {
		a.names = slices.Delete(a.names, i, i+1)
	}
}

// Pool returns the named pool.
func (a *Allocator) Pool(name string) (*Pool, bool) {
	ps, ok := a.pools[name]
	if !ok {
		return nil, false
	}
	return ps.pool, true
}

// PoolNames returns the names of all pools, sorted.
func (a *Allocator) PoolNames() []string {
	return slices.Clone(a.names)
}

// PoolsContaining returns the names of the pools that contain addr, sorted.
func (a *Allocator) PoolsContaining(addr netip.Addr) []string {
	var out []string
	for _, name := range a.names {
		if a.pools[name].pool.Contains(addr) {
			out = append(out, name)
		}
	}
	return out
}

// checkAddr rejects addresses that can never be allocated.
func checkAddr(addr netip.Addr) error {
	switch {
	case !addr.IsValid():
		return fmt.Errorf("%w: the zero netip.Addr cannot be held", ErrInvalidArgument)
	case addr.Zone() != "":
		return fmt.Errorf("%w: address %s has a zone", ErrInvalidArgument, addr)
	case addr.Is4In6():
		return fmt.Errorf("%w: %s is an IPv4-mapped IPv6 address; use %s", ErrInvalidArgument, addr, addr.Unmap())
	}
	return nil
}

func checkClaim(c Claim) error {
	if c.Service == "" {
		return fmt.Errorf("%w: claim has no Service", ErrInvalidArgument)
	}
	return nil
}

func findService(claims []Claim, service string) (int, bool) {
	return slices.BinarySearchFunc(claims, service, func(c Claim, s string) int {
		return strings.Compare(c.Service, s)
	})
}

// Assign gives addr to the claim's Service. It is used for requested addresses
// (spec.loadBalancerIP and the like) and to restore state from the API server at start-up, so it
// does NOT check pool membership: the caller does, and restored addresses may lie outside every
// pool.
//
// Assign is idempotent for the same Service: if the Service already holds addr, its stored claim
// is replaced by c, after checking c against the other holders. It fails with an *InUseError if
// another Service holds addr under a claim incompatible with c (the first such holder in Service
// order is reported), and with an error wrapping ErrInvalidArgument for an empty c.Service or an
// address that is the zero Addr, has a zone or is IPv4-mapped IPv6.
func (a *Allocator) Assign(addr netip.Addr, c Claim) error {
	if err := checkAddr(addr); err != nil {
		return err
	}
	if err := checkClaim(c); err != nil {
		return err
	}
	claims := a.holders[addr]
	if e := conflict(addr, claims, c); e != nil {
		return e
	}
	c = c.clone()
	i, found := findService(claims, c.Service)
	if found {
		old := claims[i]
		claims[i] = c
		// Keys can only change when c.Service is the only holder (compatibility demands equal
		// keys otherwise).
		if old.SharingKey != c.SharingKey {
			a.unindexKey(old.SharingKey, addr)
			a.indexKey(c.SharingKey, addr)
		}
		return nil
	}
	if len(claims) == 0 {
		a.holders[addr] = []Claim{c}
		a.addHeld(addr)
		a.indexKey(c.SharingKey, addr)
	} else {
		a.holders[addr] = slices.Insert(claims, i, c)
	}
	held := a.services[c.Service]
	j, _ := slices.BinarySearchFunc(held, addr, netip.Addr.Compare)
	a.services[c.Service] = slices.Insert(held, j, addr)
	return nil
}

// conflict returns the first holder other than c.Service incompatible with c, as an InUseError.
func conflict(addr netip.Addr, claims []Claim, c Claim) *InUseError {
	for _, h := range claims {
		if h.Service == c.Service {
			continue
		}
		if e := compatible(h, c); e != nil {
			e.Addr = addr
			return e
		}
	}
	return nil
}

// lookup validates the arguments common to Allocate and Share and returns the pool.
func (a *Allocator) lookup(pool string, f Family, c Claim) (*poolState, error) {
	if err := checkClaim(c); err != nil {
		return nil, err
	}
	if !f.valid() {
		return nil, fmt.Errorf("%w: address family %v", ErrInvalidArgument, f)
	}
	ps, ok := a.pools[pool]
	if !ok {
		return nil, &PoolNotFoundError{Pool: pool}
	}
	return ps, nil
}

// Allocate picks an address of family f from the named pool and gives it to the claim's Service.
// It never picks an address the pool does not contain, so never an unusable one (see Unusable).
//
// If c has a SharingKey, Allocate first looks for the lowest address of the pool that is already
// held under that key and whose holders are all compatible with c (holders that are c.Service
// itself are ignored, as in Assign, so an address the Service already holds under that key is
// returned again). Otherwise, or if there is none, it takes the lowest free address of the pool,
// free meaning held by no Service at all. To prefer a sharer in any of several pools over a
// free address in the first, call Share on each pool before Allocate.
//
// Errors: *PoolNotFoundError, *NoAddressesError if the pool has no address of family f,
// *PoolExhaustedError, or an error wrapping ErrInvalidArgument for an empty c.Service or an
// invalid f.
func (a *Allocator) Allocate(pool string, f Family, c Claim) (netip.Addr, error) {
	ps, err := a.lookup(pool, f, c)
	if err != nil {
		return netip.Addr{}, err
	}
	ranges := ps.pool.familyRanges(f)
	if len(ranges) == 0 {
		return netip.Addr{}, &NoAddressesError{Pool: pool, Family: f}
	}
	if c.SharingKey != "" {
		if addr, ok := a.shared(ranges, c); ok {
			return addr, a.Assign(addr, c)
		}
	}
	for _, r := range ranges {
		if addr, ok := a.lowestFree(r); ok {
			return addr, a.Assign(addr, c)
		}
	}
	return netip.Addr{}, &PoolExhaustedError{Pool: pool, Family: f, Used: *ps.used(f), Size: ps.pool.Size(f)}
}

// Share gives the claim's Service the lowest address of family f in the named pool that is
// already held under c.SharingKey and whose holders are all compatible with c (holders that are
// c.Service itself are ignored, as in Allocate). ok is false (with a nil error) when there is none
// or c.SharingKey is "". Unlike Allocate it never takes a free address, so a caller with several
// candidate pools can look for a sharer in all of them before allocating a new address in one.
//
// Errors: *PoolNotFoundError, or an error wrapping ErrInvalidArgument for an empty c.Service or
// an invalid f.
func (a *Allocator) Share(pool string, f Family, c Claim) (addr netip.Addr, ok bool, err error) {
	ps, err := a.lookup(pool, f, c)
	if err != nil {
		return netip.Addr{}, false, err
	}
	if c.SharingKey == "" {
		return netip.Addr{}, false, nil
	}
	addr, ok = a.shared(ps.pool.familyRanges(f), c)
	if !ok {
		return netip.Addr{}, false, nil
	}
	if err := a.Assign(addr, c); err != nil {
		return netip.Addr{}, false, err
	}
	return addr, true, nil
}

// shared returns the lowest address in ranges held under c.SharingKey that c may share. Holes
// inside the ranges may be held (Assign does not check pools) but are not the pool's to share.
func (a *Allocator) shared(ranges []netipx.IPRange, c Claim) (netip.Addr, bool) {
	t := a.keys[c.SharingKey]
	if t == nil {
		return netip.Addr{}, false
	}
	var found netip.Addr
	for _, r := range ranges {
		t.ascend(r.From(), func(n *tnode[struct{}]) bool {
			if r.To().Less(n.key) {
				return false
			}
			if subnetHole(n.key) {
				return true
			}
			if conflict(n.key, a.holders[n.key], c) == nil {
				found = n.key
				return false
			}
			return true
		})
		if found.IsValid() {
			return found, true
		}
	}
	return netip.Addr{}, false
}

// lowestFree returns the lowest usable address in r that no Service holds. Runs in the index are
// maximal, so the address after a run is free, but it may be a hole, and the address after the
// hole may start another run. Each step skips a whole run (O(log n)) or a whole hole (O(1),
// however large). Pool ranges exclude the fixed blocks, and per-/64 holes are at least 2^57
// addresses apart, so a run between two holes would need 2^57 held addresses: in practice the
// loop takes at most three steps.
func (a *Allocator) lowestFree(r netipx.IPRange) (netip.Addr, bool) {
	for x := r.From(); ; {
		x = nextUsable(x)
		if !x.IsValid() || r.To().Less(x) {
			return netip.Addr{}, false
		}
		n := a.runs.floor(x)
		if n == nil || n.val.Less(x) {
			return x, true
		}
		x = n.val.Next()
		if !x.IsValid() {
			return netip.Addr{}, false
		}
	}
}

// Release removes the Service's hold on addr. The address becomes free once no Service holds it.
// Releasing an address the Service does not hold is a no-op.
func (a *Allocator) Release(addr netip.Addr, service string) {
	claims, ok := a.holders[addr]
	if !ok {
		return
	}
	i, found := findService(claims, service)
	if !found {
		return
	}
	key := claims[i].SharingKey
	if len(claims) == 1 {
		delete(a.holders, addr)
		a.removeHeld(addr)
		a.unindexKey(key, addr)
	} else {
		a.holders[addr] = slices.Delete(claims, i, i+1)
	}
	held := a.services[service]
	if j, ok := slices.BinarySearchFunc(held, addr, netip.Addr.Compare); ok {
		held = slices.Delete(held, j, j+1)
	}
	if len(held) == 0 {
		delete(a.services, service)
	} else {
		a.services[service] = held
	}
}

// ReleaseAll releases every address the Service holds and returns them, sorted.
func (a *Allocator) ReleaseAll(service string) []netip.Addr {
	held := slices.Clone(a.services[service])
	for _, addr := range held {
		a.Release(addr, service)
	}
	return held
}

// Held returns the addresses the Service holds, sorted by netip.Addr.Compare (IPv4 before IPv6).
func (a *Allocator) Held(service string) []netip.Addr {
	return slices.Clone(a.services[service])
}

// Holders returns copies of the claims under which addr is held, sorted by Service.
func (a *Allocator) Holders(addr netip.Addr) []Claim {
	claims := a.holders[addr]
	if len(claims) == 0 {
		return nil
	}
	out := make([]Claim, len(claims))
	for i, c := range claims {
		out[i] = c.clone()
	}
	return out
}

// Usage reports how many addresses of the named pool are held, and the pool's size.
type Usage struct {
	// Used4 and Used6 count the held addresses the pool contains (see Pool.Contains); held
	// unusable addresses, which only Assign can create, are not counted.
	Used4, Used6 uint64
	// Size4 and Size6 are the pool's number of addresses; nil in the zero Usage.
	Size4, Size6 *big.Int
}

// Free returns the number of addresses of family f not held by anyone (Size - Used). It is never
// negative.
func (u Usage) Free(f Family) *big.Int {
	size, used := u.Size4, u.Used4
	if f == IPv6 {
		size, used = u.Size6, u.Used6
	} else if f != IPv4 {
		return new(big.Int)
	}
	if size == nil {
		return new(big.Int)
	}
	free := new(big.Int).SetUint64(used)
	if free.Sub(size, free).Sign() < 0 {
		// Only a hand-made Usage can get here: counters never exceed Size.
		return free.SetInt64(0)
	}
	return free
}

// Usage returns the usage of the named pool, or the zero Usage for an unknown pool. It takes O(1)
// time: counts are maintained incrementally.
func (a *Allocator) Usage(pool string) Usage {
	ps, ok := a.pools[pool]
	if !ok {
		return Usage{}
	}
	return Usage{
		Used4: ps.used4,
		Used6: ps.used6,
		Size4: ps.pool.Size(IPv4),
		Size6: ps.pool.Size(IPv6),
	}
}

// indexKey records addr as held under key (no-op for "").
func (a *Allocator) indexKey(key string, addr netip.Addr) {
	if key == "" {
		return
	}
	t := a.keys[key]
	if t == nil {
		t = &treap[struct{}]{}
		a.keys[key] = t
	}
	if t.get(addr) == nil {
		t.insert(addr, struct{}{})
	}
}

func (a *Allocator) unindexKey(key string, addr netip.Addr) {
	if key == "" {
		return
	}
	if t := a.keys[key]; t != nil {
		t.delete(addr)
		if t.len() == 0 {
			delete(a.keys, key)
		}
	}
}

// addHeld records that addr, previously free, is now held: it updates the run index and the
// pools' counters.
func (a *Allocator) addHeld(x netip.Addr) {
	var left *tnode[netip.Addr]
	if p := x.Prev(); p.IsValid() {
		if n := a.runs.floor(p); n != nil && n.val == p {
			left = n
		}
	}
	var right *tnode[netip.Addr]
	if nx := x.Next(); nx.IsValid() {
		right = a.runs.get(nx)
	}
	switch {
	case left != nil && right != nil:
		left.val = right.val
		a.runs.delete(right.key)
	case left != nil:
		left.val = x
	case right != nil:
		// No key lies strictly between x and x.Next(), so moving the key keeps the order.
		right.key = x
	default:
		a.runs.insert(x, x)
	}
	f := FamilyOf(x)
	for _, ps := range a.pools {
		if ps.pool.Contains(x) {
			*ps.used(f)++
		}
	}
}

// removeHeld records that addr, previously held, is now free.
func (a *Allocator) removeHeld(x netip.Addr) {
	n := a.runs.floor(x)
	if n == nil || n.val.Less(x) {
		panic("ipam: internal error: released address " + x.String() + " is not in the run index")
	}
	start, end := n.key, n.val
	switch {
	case start == x && end == x:
		a.runs.delete(x)
	case start == x:
		n.key = x.Next()
	case end == x:
		n.val = x.Prev()
	default:
		n.val = x.Prev()
		a.runs.insert(x.Next(), end)
	}
	f := FamilyOf(x)
	for _, ps := range a.pools {
		if ps.pool.Contains(x) {
			*ps.used(f)--
		}
	}
}

// heldIn counts the held addresses in r that are not per-/64 holes (the pool's ranges exclude
// the other unusable addresses), walking the runs that intersect it. This matches Pool.Contains,
// which addHeld and removeHeld use.
func (a *Allocator) heldIn(r netipx.IPRange) uint64 {
	var total uint64
	from, to := r.From(), r.To()
	count := func(start, end netip.Addr) {
		if start.Less(from) {
			start = from
		}
		if to.Less(end) {
			end = to
		}
		// A run spans fewer than 2^64 addresses, so it meets at most two /64s and its hole
		// count fits a uint64.
		total += span(start, end) - subnetHoles(start, end).Uint64()
	}
	if n := a.runs.floor(from); n != nil && n.key.Less(from) && !n.val.Less(from) {
		count(n.key, n.val)
	}
	a.runs.ascend(from, func(n *tnode[netip.Addr]) bool {
		if to.Less(n.key) {
			return false
		}
		count(n.key, n.val)
		return true
	})
	return total
}

// span returns the number of addresses from start to end inclusive, which must be of the same
// family with start <= end and fewer than 2^64 addresses apart (runs are never longer than the
// number of held addresses). Arithmetic on the low 64 bits is exact under that condition.
func span(start, end netip.Addr) uint64 {
	return low64(end) - low64(start) + 1
}

func low64(a netip.Addr) uint64 {
	b := a.As16()
	return binary.BigEndian.Uint64(b[8:])
}
