package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Defaults of Config.
const (
	DefaultHeartbeatPort = 7473
	DefaultMetricsURL    = "http://127.0.0.1:7472/metrics"
	DefaultProbeWait     = 500 * time.Millisecond
	DefaultAPITimeout    = 10 * time.Second
	// maxPeerProbes bounds the other nodes' addresses probed per link to learn their MACs.
	maxPeerProbes = 256
)

// Config is what Run checks and with what.
type Config struct {
	// NodeName is this node's Kubernetes name. Required when Client is set.
	NodeName string
	// Client and Dynamic read the API server (the Node, the kube-proxy ConfigMap, Services,
	// IPPools, the other Nodes, BGPPeers); nil Client skips every check that needs the API. A
	// nil Dynamic skips IPPools and BGPPeers (every VIP is then taken as announced at layer 2).
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// ClientErr says why Client is nil (no kubeconfig, not in a pod), for the finding.
	ClientErr error
	// MemberSelector selects the Nodes that run an announcer (the announcer's
	// --member-selector); empty means every Node (those with the
	// exclude-from-external-load-balancers label are members that do not vote).
	MemberSelector string
	// Interface overrides the default announce interface (the one holding the node's
	// InternalIP).
	Interface string
	// NodeIPs are the node's addresses when the API cannot give its InternalIPs.
	NodeIPs []netip.Addr
	// VIPs are probed and checked beside those of the API's Services.
	VIPs []netip.Addr
	// HeartbeatPort is the announcers' UDP heartbeat port; 0 means DefaultHeartbeatPort.
	HeartbeatPort uint16
	// HeartbeatBound says the caller holds the heartbeat port itself (the announcer calling Run
	// after it opened its heartbeat socket): the bind check is skipped.
	HeartbeatBound bool
	// BGPPortOwned says the caller's BGP speaker may hold TCP 179 (the announcer calling Run at
	// start): the bind check is skipped, so that it neither fails on the speaker's socket nor
	// takes the port from it.
	BGPPortOwned bool
	// MetricsURL is where a running announcer's metrics are read; "" skips it.
	MetricsURL string
	// ProbeWait is how long answers to the probes are awaited after the last one is sent; 0
	// means DefaultProbeWait, negative sends no probe at all (raw sockets are still opened, to
	// check the capability).
	ProbeWait time.Duration
	// APITimeout bounds the API reads; 0 means DefaultAPITimeout.
	APITimeout time.Duration
}

// Validate reports what makes the Config unusable.
func (c Config) Validate() error {
	var errs []error
	if c.Client != nil && c.NodeName == "" {
		errs = append(errs, errors.New("the node name is required to read the API (--node-name, usually from spec.nodeName)"))
	}
	for _, a := range append(append([]netip.Addr(nil), c.NodeIPs...), c.VIPs...) {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.Zone() != "" {
			errs = append(errs, fmt.Errorf("address %s: want a unicast address without a zone", a))
		}
	}
	return errors.Join(errs...)
}

// Run checks this node and returns the findings, most serious first. It never fails: what it
// cannot check is a finding too. It takes about Config.ProbeWait plus 0.2 s when there are
// addresses to probe, longer when the API server is slow. Call it before the announcer opens
// its heartbeat socket, or set Config.HeartbeatBound.
func Run(ctx context.Context, cfg Config) []Finding {
	if err := cfg.Validate(); err != nil {
		return []Finding{{Severity: Error, Reason: "InvalidConfig", Message: err.Error(), Fix: "fix the flags of the check"}}
	}
	return Evaluate(Gather(ctx, cfg))
}

// Gather collects the Facts Evaluate judges: from the API server, then from this host (its
// interfaces and sysctls, the speakers' raw sockets, the ports, the running announcer's
// metrics), then from the LAN (probes). Host probes run on the calling goroutine, so a caller
// that entered a network namespace on a locked thread checks that namespace.
func Gather(ctx context.Context, cfg Config) Facts {
	f := Facts{
		NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs, InterfaceOverride: cfg.Interface, ExtraVIPs: cfg.VIPs,
		API: APIFacts{Err: "no API client (no kubeconfig, not in a pod)"},
	}
	if cfg.ClientErr != nil {
		f.API.Err = cfg.ClientErr.Error()
	}
	if cfg.Client != nil {
		timeout := cfg.APITimeout
		if timeout <= 0 {
			timeout = DefaultAPITimeout
		}
		apiCtx, cancel := context.WithTimeout(ctx, timeout)
		f.API = gatherAPI(apiCtx, cfg)
		cancel()
	}
	gatherHost(&f)

	port := cfg.HeartbeatPort
	if port == 0 {
		port = DefaultHeartbeatPort
	}
	if addr, ok := heartbeatAddr(f.nodeIPs()); ok && !cfg.HeartbeatBound {
		b := bindUDP(netip.AddrPortFrom(addr, port))
		f.Heartbeat.Bind = &b
	}
	if len(f.API.PassiveBGPPeers) > 0 && !cfg.BGPPortOwned {
		b := bindTCP(netip.AddrPortFrom(netip.IPv4Unspecified(), 179))
		f.BGPBind = &b
	}
	if cfg.MetricsURL != "" {
		f.Heartbeat.MetricsURL = cfg.MetricsURL
		f.Heartbeat.Metrics, f.Heartbeat.MetricsErr = scrape(ctx, cfg.MetricsURL)
	}
	wait := cfg.ProbeWait
	if wait == 0 {
		wait = DefaultProbeWait
	}
	probeLAN(ctx, &f, wait)
	return f
}

// heartbeatAddr is the address the announcer binds its heartbeat socket to: the node's first
// InternalIP, IPv4 first (as the announcer picks it).
func heartbeatAddr(ips []netip.Addr) (netip.Addr, bool) {
	for _, a := range ips {
		if a.Unmap().Is4() {
			return a.Unmap(), true
		}
	}
	if len(ips) > 0 {
		return ips[0], true
	}
	return netip.Addr{}, false
}

// scrape reads the running announcer's metrics.
func scrape(ctx context.Context, url string) (*AnnouncerMetrics, string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Sprintf("HTTP status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err.Error()
	}
	m, err := ParseMetrics(string(body))
	if err != nil {
		return nil, err.Error()
	}
	return m, ""
}
