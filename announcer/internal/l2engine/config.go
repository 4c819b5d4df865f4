package l2engine

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"
)

// Defaults of both speakers: the zero BurstCount and BurstInterval of a Config select the first
// two; DefaultRefresh is the recommended Refresh (a zero Refresh disables it). They are the
// same for ARP and NDP because the switches and neighbour caches they warm are the same.
const (
	DefaultBurstCount    = 3
	DefaultBurstInterval = 100 * time.Millisecond
	DefaultRefresh       = 60 * time.Second
)

// Config configures an Engine. The speakers fill it from their own Config, whose fields they
// document for their protocol.
type Config struct {
	// Name is the speaker's package name; every error starts with it.
	Name string
	// Interface is the link; its HardwareAddr is our MAC. Required.
	Interface *net.Interface
	// BurstCount and BurstInterval shape the takeover burst (zero: the defaults); Refresh is the
	// period of the later announcements (zero or negative: none).
	BurstCount    int
	BurstInterval time.Duration
	Refresh       time.Duration
	// OnForeign, if not nil, is told of every foreign claim of an owned or watched address.
	OnForeign func(Foreign)
	// ErrRunning is what Run returns while another Run is in progress: the speaker's own
	// sentinel, so that its callers can match it with errors.Is.
	ErrRunning error
}

// Validate reports whether the Config can be used: an Interface with a unicast 6-byte MAC and
// no negative burst settings.
func (c Config) Validate() error {
	if c.Interface == nil {
		return fmt.Errorf("%s: Config.Interface is required", c.Name)
	}
	if err := CheckMAC(c.Interface.HardwareAddr); err != nil {
		return fmt.Errorf("%s: interface %q: %w", c.Name, c.Interface.Name, err)
	}
	if c.BurstCount < 0 {
		return fmt.Errorf("%s: Config.BurstCount %d is negative; use 0 for the default of %d", c.Name, c.BurstCount, DefaultBurstCount)
	}
	if c.BurstInterval < 0 {
		return fmt.Errorf("%s: Config.BurstInterval %s is negative; use 0 for the default of %s", c.Name, c.BurstInterval, DefaultBurstInterval)
	}
	return nil
}

// withDefaults returns c with the zero burst settings replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.BurstCount == 0 {
		c.BurstCount = DefaultBurstCount
	}
	if c.BurstInterval == 0 {
		c.BurstInterval = DefaultBurstInterval
	}
	return c
}

// CheckMAC reports why mac cannot be a station's address on Ethernet: not 6 bytes, a group
// address, or all zeros. Both our own MAC and every sender MAC a codec reads must pass it.
func CheckMAC(mac net.HardwareAddr) error {
	switch {
	case len(mac) != 6:
		return fmt.Errorf("hardware address %q is not a 6-byte Ethernet MAC", mac)
	case mac[0]&1 != 0:
		return fmt.Errorf("hardware address %s is a group address", mac)
	case bytes.Equal(mac, make(net.HardwareAddr, 6)):
		return errors.New("hardware address is all zeros")
	}
	return nil
}
