package ipam

import (
	"cmp"
	"slices"
	"strconv"
)

// Port is one protocol/port pair a Service exposes. Protocol is compared exactly, so the caller
// should pass the defaulted Kubernetes value ("TCP", "UDP", "SCTP").
type Port struct {
	Protocol string
	Number   int32
}

// String returns "NUMBER/PROTOCOL", for example "80/TCP".
func (p Port) String() string {
	return strconv.FormatInt(int64(p.Number), 10) + "/" + p.Protocol
}

// comparePorts orders ports by number, then protocol.
func comparePorts(a, b Port) int {
	if c := cmp.Compare(a.Number, b.Number); c != 0 {
		return c
	}
	return cmp.Compare(a.Protocol, b.Protocol)
}

// Claim describes who wants an address and under what sharing terms.
type Claim struct {
	// Service is the holder's identity, "namespace/name". It must not be empty.
	Service string
	// SharingKey is the key under which the address may be shared; "" means exclusive use.
	SharingKey string
	// Ports are the ports the Service exposes on the address.
	Ports []Port
	// Backend is "" for externalTrafficPolicy Cluster; for Local, a canonical string of the
	// Service's pod selector.
	Backend string
}

// clone returns a copy of c that shares no memory with it.
func (c Claim) clone() Claim {
	c.Ports = slices.Clone(c.Ports)
	return c
}

// Compatible reports why wanted cannot share an address with held; it returns nil if they can.
// Two claims can share an address when
//
//   - both have the same, non-empty SharingKey,
//   - their port sets are disjoint (a Port with the same Protocol and Number in both overlaps), and
//   - if either Backend is non-empty (externalTrafficPolicy Local), both Backends are equal.
//
// A non-nil result is an *InUseError describing held, with its Addr left unset. Compatible does
// not look at the Service names; the Allocator never compares a Service with itself.
func Compatible(held, wanted Claim) error {
	if e := compatible(held, wanted); e != nil {
		return e
	}
	return nil
}

func compatible(held, wanted Claim) *InUseError {
	if held.SharingKey == "" || held.SharingKey != wanted.SharingKey {
		return &InUseError{Holder: held.Service, HolderSharingKey: held.SharingKey}
	}
	var overlap []Port
	for _, p := range wanted.Ports {
		if slices.Contains(held.Ports, p) && !slices.Contains(overlap, p) {
			overlap = append(overlap, p)
		}
	}
	mismatch := (held.Backend != "" || wanted.Backend != "") && held.Backend != wanted.Backend
	if len(overlap) == 0 && !mismatch {
		return nil
	}
	slices.SortFunc(overlap, comparePorts)
	return &InUseError{
		Holder:           held.Service,
		HolderSharingKey: held.SharingKey,
		Overlap:          overlap,
		BackendMismatch:  mismatch,
	}
}
