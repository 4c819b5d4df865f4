// Package ipam allocates load-balancer VIPs from IP pools. It is pure: it imports only the standard
// library and go4.org/netipx, logs nothing and starts no goroutine.
//
// The package has three layers:
//
//   - ParseAddresses turns one entry of an IPPool's spec.addresses (an address, a CIDR or a
//     "start-end" range) into an inclusive netipx.IPRange.
//   - Pool is an immutable, named, merged set of the usable addresses of such ranges (IPv4 and
//     IPv6 may be mixed).
//   - Allocator records which Services hold which addresses, across all pools, and hands out
//     the lowest free address of a pool (Allocate), or an address shared under a sharing key
//     (Allocate, or Share to search several pools for a sharer first).
//
// # Unusable addresses
//
// Some addresses can never be a VIP: nothing would deliver traffic for them to a Service
// (unspecified, this-network, loopback, link-local, multicast, broadcast, IPv4-mapped IPv6), or
// routers answer them (in every IPv6 /64, interface ID 0, the subnet-router anycast address of
// RFC 4291 section 2.6.1, and the reserved subnet anycast addresses of RFC 2526). Unusable and
// UnusableBlocks are the single definition of them. Pools leave them out, so "::/0" is a valid
// pool; an entry of spec.addresses with no usable address at all is an error. Assign does not
// check, since state restored from the API server may hold anything; such holds are kept but
// never counted in a pool's Usage.
//
// # Concurrency
//
// Pool values are immutable and may be used from any number of goroutines. Allocator is NOT safe
// for concurrent use: the caller must serialise every call (including read-only ones such as
// Held, Holders and Usage), typically by holding a mutex around the Allocator.
//
// # Cost
//
// Allocator memory is proportional to the number of held addresses, never to the size of a pool:
// a /64 costs what a /28 does, and per-/64 holes (129 in each of the 2^32 /64s of a /32) are
// skipped arithmetically, never listed. With n held addresses, p pools and r ranges per pool,
// Assign and Release take O(log n + p·log r) time and Allocate O(r·log n) (plus the Service's
// own and the address's holders, which are a handful); no operation scans the addresses of a
// pool or all allocations. SetPool walks only the runs of held addresses inside the new pool.
// The indexes are treaps whose priorities are drawn at random in each process, so these bounds
// hold with high probability whatever order addresses are assigned in, even one chosen to
// defeat them.
package ipam
