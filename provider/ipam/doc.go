// Package ipam allocates load-balancer VIPs from IP pools. It is pure: it imports only the standard
// library and go4.org/netipx, logs nothing and starts no goroutine.
//
// The package has three layers:
//
//   - ParseAddresses turns one entry of an IPPool's spec.addresses (an address, a CIDR or a
//     "start-end" range) into an inclusive netipx.IPRange.
//   - Pool is an immutable, named, merged set of such ranges (IPv4 and IPv6 may be mixed).
//   - Allocator records which Services hold which addresses, across all pools, and hands out
//     the lowest free address of a pool, or an address shared under a sharing key.
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
// a /64 costs what a /28 does. With n held addresses, p pools and r ranges per pool, Assign and
// Release take O(log n + p·log r) time and Allocate O(r·log n) (plus the Service's own and the
// address's holders, which are a handful); no operation scans the addresses of a pool or all
// allocations. SetPool walks only the runs of held addresses inside the new pool.
package ipam
