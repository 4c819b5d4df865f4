package ipam

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
)

// ErrInvalidArgument is wrapped by the errors the Allocator returns for arguments that are
// programming errors rather than conflicts: a Claim without a Service, the zero netip.Addr, an
// address with a zone or an IPv4-mapped IPv6 address, or a Family other than IPv4 and IPv6.
var ErrInvalidArgument = errors.New("invalid argument")

// PoolExhaustedError is returned by Allocator.Allocate when every address of the requested family
// in the pool is held (and, for a claim with a sharing key, none of them can be shared).
type PoolExhaustedError struct {
	Pool   string
	Family Family
	// Used is the number of held addresses of Family in the pool; Size the pool's number of
	// addresses of Family.
	Used uint64
	Size *big.Int
}

// Error returns, for example, `pool "first-pool" is exhausted: 11 of 11 IPv4 addresses in use`.
func (e *PoolExhaustedError) Error() string {
	return fmt.Sprintf("pool %q is exhausted: %d of %s %s addresses in use", e.Pool, e.Used, bigString(e.Size), e.Family)
}

func bigString(n *big.Int) string {
	if n == nil {
		return "0"
	}
	return n.String()
}

// NoAddressesError is returned by Allocator.Allocate when the pool has no address at all of the
// requested family.
type NoAddressesError struct {
	Pool   string
	Family Family
}

// Error returns, for example, `pool "p" has no IPv6 addresses`.
func (e *NoAddressesError) Error() string {
	return fmt.Sprintf("pool %q has no %s addresses", e.Pool, e.Family)
}

// PoolNotFoundError is returned by Allocator.Allocate for a pool the Allocator does not know.
type PoolNotFoundError struct {
	Pool string
}

// Error returns, for example, `pool "p" does not exist`.
func (e *PoolNotFoundError) Error() string {
	return fmt.Sprintf("pool %q does not exist", e.Pool)
}

// InUseError says why an address cannot be given to a Service: it is held by Holder, whose claim
// is incompatible (see Compatible).
//
// The reason is encoded in the fields: if HolderSharingKey is empty, the holder uses the address
// exclusively. Otherwise, if Overlap is empty and BackendMismatch is false, the sharing keys
// differ (or the wanted claim has none). Otherwise the keys match and Overlap lists the ports
// both Services expose (sorted by number, then protocol), and BackendMismatch reports that the
// Services' externalTrafficPolicy Local backends differ; both may be set.
type InUseError struct {
	// Addr is the contested address; it is the zero Addr in errors returned by Compatible.
	Addr             netip.Addr
	Holder           string
	HolderSharingKey string
	Overlap          []Port
	BackendMismatch  bool
}

// Error returns, for example,
//
//	192.168.1.246 is held by default/web, which has no sharing key
//	192.168.1.246 is held by default/web with sharing key "a"; sharing keys differ
//	192.168.1.246 is held by default/web with sharing key "a"; ports 53/TCP, 53/UDP overlap
//	192.168.1.246 is held by default/web with sharing key "a"; with externalTrafficPolicy Local both Services must select the same pods
func (e *InUseError) Error() string {
	var b strings.Builder
	if e.Addr.IsValid() {
		b.WriteString(e.Addr.String())
	} else {
		b.WriteString("the address")
	}
	b.WriteString(" is held by ")
	b.WriteString(e.Holder)
	if e.HolderSharingKey == "" {
		b.WriteString(", which has no sharing key")
		return b.String()
	}
	fmt.Fprintf(&b, " with sharing key %q", e.HolderSharingKey)
	if len(e.Overlap) == 0 && !e.BackendMismatch {
		b.WriteString("; sharing keys differ")
		return b.String()
	}
	if len(e.Overlap) > 0 {
		b.WriteString("; ports ")
		for i, p := range e.Overlap {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(p.String())
		}
		b.WriteString(" overlap")
	}
	if e.BackendMismatch {
		b.WriteString("; with externalTrafficPolicy Local both Services must select the same pods")
	}
	return b.String()
}
