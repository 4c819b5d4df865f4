package announcer

import (
	"errors"
	"fmt"
	"time"
)

// Config is everything the announcer is told at start.
type Config struct {
	// NodeName is this node's Kubernetes name (the DaemonSet passes spec.nodeName).
	NodeName string
	// Kubeconfig is a kubeconfig path; empty means in-cluster configuration.
	Kubeconfig string
	// HeartbeatPort is the UDP port announcers exchange heartbeats on.
	HeartbeatPort uint16
	// HeartbeatInterval is how often a heartbeat goes to every peer.
	HeartbeatInterval time.Duration
	// FailureTimeout is how long a silent peer stays alive; it bounds failover time.
	FailureTimeout time.Duration
	// JoinGrace is how long a starting node (or one whose link came back) listens before it may
	// own anything, so it learns the others' claims first.
	JoinGrace time.Duration
	// MetricsAddr serves Prometheus metrics on /metrics ("" disables).
	MetricsAddr string
	// BurstCount and BurstInterval shape the gratuitous ARP / unsolicited NA burst on takeover.
	BurstCount    int
	BurstInterval time.Duration
	// Refresh resends one gratuitous packet per owned VIP this often, against switch FDB ageing.
	Refresh time.Duration
}

// DefaultConfig has the shipped defaults: a dead owner is replaced within about 250 ms.
func DefaultConfig() Config {
	return Config{
		HeartbeatPort:     7473,
		HeartbeatInterval: 50 * time.Millisecond,
		FailureTimeout:    200 * time.Millisecond,
		JoinGrace:         300 * time.Millisecond,
		MetricsAddr:       ":7472",
		BurstCount:        3,
		BurstInterval:     100 * time.Millisecond,
		Refresh:           60 * time.Second,
	}
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("the node name is required (--node-name, usually from spec.nodeName)"))
	}
	if c.HeartbeatPort == 0 {
		errs = append(errs, errors.New("the heartbeat port must not be 0"))
	}
	if c.HeartbeatInterval <= 0 {
		errs = append(errs, fmt.Errorf("heartbeat interval %s must be positive", c.HeartbeatInterval))
	}
	if c.FailureTimeout < 2*c.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("failure timeout %s must be at least two heartbeat intervals (%s), or one lost packet kills a healthy peer", c.FailureTimeout, 2*c.HeartbeatInterval))
	}
	if c.JoinGrace < c.FailureTimeout {
		errs = append(errs, fmt.Errorf("join grace %s must be at least the failure timeout %s, so a joining node hears every live peer", c.JoinGrace, c.FailureTimeout))
	}
	if c.BurstCount < 1 {
		errs = append(errs, fmt.Errorf("burst count %d must be at least 1", c.BurstCount))
	}
	return errors.Join(errs...)
}
