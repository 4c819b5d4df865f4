package election

import "net/netip"

// FNV-1a 64-bit parameters (FNV is specified in draft-eastlake-fnv).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// Score is the rendezvous (highest-random-weight) score of the node named node for the VIP addr:
// among eligible, unclaimed candidates the highest score wins. It is the 64-bit FNV-1a hash of
// the node name, one family byte (4 or 6) and the 16-byte form of the address (the zone is
// ignored), followed by a 64-bit avalanche finalizer so that addresses differing only in their
// last bits still rank nodes independently.
//
// Score is part of the election's contract: every announcer in a cluster, including during a
// rolling upgrade, must compute the same value, so it must never change.
func Score(addr netip.Addr, node string) uint64 {
	return scoreFrom(nameSeed(node), addr)
}

// nameSeed is the FNV-1a state after hashing the node name; Assign computes it once per node.
func nameSeed(node string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(node); i++ {
		h ^= uint64(node[i])
		h *= fnvPrime64
	}
	return h
}

// scoreFrom continues the hash from a name seed with the address and finalizes it.
func scoreFrom(seed uint64, addr netip.Addr) uint64 {
	h := seed
	family := byte(6)
	if addr.Is4() {
		family = 4
	}
	h ^= uint64(family)
	h *= fnvPrime64
	a := addr.As16()
	for _, b := range a {
		h ^= uint64(b)
		h *= fnvPrime64
	}
	return mix64(h)
}

// mix64 is an avalanche finalizer (the "mix13" variant of the MurmurHash3 fmix64 constants):
// every input bit affects every output bit with probability close to one half.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
