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
