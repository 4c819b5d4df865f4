package provider

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// NoPoolError means no IPPool may give the Service an address of the family.
type NoPoolError struct {
	Service string
	Family  ipam.Family
	Reasons []string
}

func (e *NoPoolError) Error() string {
	msg := fmt.Sprintf("no IPPool can give Service %s an %s address", e.Service, e.Family)
	if len(e.Reasons) > 0 {
		msg += ": " + strings.Join(e.Reasons, "; ")
	}
	return msg
}

// NotInPoolError means a requested address is in no pool the Service may use.
type NotInPoolError struct {
	Addr    netip.Addr
	Reasons []string
}

func (e *NotInPoolError) Error() string {
	if len(e.Reasons) == 0 {
		return fmt.Sprintf("requested IP %s is not in any IPPool", e.Addr)
	}
	return fmt.Sprintf("requested IP %s cannot be used: %s", e.Addr, strings.Join(e.Reasons, "; "))
}

// MoveBlockedError means the Service's own change requires a new VIP and none can be had; it
// keeps its current VIPs meanwhile.
type MoveBlockedError struct {
	Service string
	// Reasons say why each current VIP cannot stay.
	Reasons []string
	Err     error
}

func (e *MoveBlockedError) Error() string {
	return fmt.Sprintf("Service %s needs a new VIP (%s) but cannot get one, so it keeps its current VIP until it can: %v",
		e.Service, strings.Join(e.Reasons, "; "), e.Err)
}

func (e *MoveBlockedError) Unwrap() error { return e.Err }
