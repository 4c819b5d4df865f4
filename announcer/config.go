package announcer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/l2"
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
	// ProbeWait is how long a takeover probe (an ARP probe or a DAD solicitation for the VIP)
	// listens for another MAC before the node answers for the VIP.
	ProbeWait time.Duration
	// ColdStartWait bounds how long a starting node takes only its own share of unclaimed VIPs
	// while it waits for the other announcers the API lists.
	ColdStartWait time.Duration
	// MembershipSecret is the Secret ("namespace/name") holding the cluster's membership key;
	// the first announcer creates it when it does not exist.
	MembershipSecret string
	// MemberSelector selects the Nodes that run an announcer (the DaemonSet's node selector);
	// empty means every Node (nodes with the exclude-from-external-load-balancers label get
	// heartbeats but do not vote).
	MemberSelector string
	// MetricsAddr serves Prometheus metrics on /metrics ("" disables).
	MetricsAddr string
	// BurstCount and BurstInterval shape the gratuitous ARP / unsolicited NA burst on takeover.
	BurstCount    int
	BurstInterval time.Duration
	// Refresh resends one gratuitous packet per owned VIP this often, against switch FDB ageing.
	Refresh time.Duration
	// BGPDrainTime is how long a leaving node advertises its routes with GRACEFUL_SHUTDOWN
	// (RFC 8326) before withdrawing them, so the routers move traffic first.
	BGPDrainTime time.Duration
	// StateDir keeps what must survive a restart of the announcer on this node: the marker that
	// makes the next announcer announce a BGP graceful restart. Empty: no graceful restart.
	StateDir string
}

// DefaultConfig has the shipped defaults: a dead owner is replaced within about 250 ms.
func DefaultConfig() Config {
	return Config{
		HeartbeatPort:     7473,
		HeartbeatInterval: 50 * time.Millisecond,
		FailureTimeout:    200 * time.Millisecond,
		JoinGrace:         300 * time.Millisecond,
		ProbeWait:         25 * time.Millisecond,
		ColdStartWait:     2 * time.Second,
		MembershipSecret:  "kube-system/baremetal-announcer-membership",
		MetricsAddr:       ":7472",
		BurstCount:        3,
		BurstInterval:     100 * time.Millisecond,
		Refresh:           60 * time.Second,
		BGPDrainTime:      5 * time.Second,
		StateDir:          "/run/baremetal-announcer",
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
	if c.ProbeWait <= 0 || c.ProbeWait >= c.FailureTimeout {
		errs = append(errs, fmt.Errorf("probe wait %s must be positive and shorter than the failure timeout %s", c.ProbeWait, c.FailureTimeout))
	}
	if ns, name, ok := strings.Cut(c.MembershipSecret, "/"); !ok || ns == "" || name == "" {
		errs = append(errs, fmt.Errorf("membership secret %q: want namespace/name", c.MembershipSecret))
	}
	if _, err := labels.Parse(c.MemberSelector); err != nil {
		errs = append(errs, fmt.Errorf("member selector %q: %w", c.MemberSelector, err))
	}
	if c.BurstCount < 1 {
		errs = append(errs, fmt.Errorf("burst count %d must be at least 1", c.BurstCount))
	}
	if c.BGPDrainTime < 0 || c.BGPDrainTime > 10*time.Minute {
		errs = append(errs, fmt.Errorf("BGP drain time %s must be between 0 and 10m", c.BGPDrainTime))
	}
	return errors.Join(errs...)
}

// l2Config is the layer-2 core's share of the configuration.
func (c Config) l2Config() l2.Config {
	lc := l2.DefaultConfig(c.NodeName)
	lc.FailureTimeout = c.FailureTimeout
	lc.JoinGrace = c.JoinGrace
	lc.ProbeWait = c.ProbeWait
	lc.ColdStartWait = c.ColdStartWait
	return lc
}
