package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/check"
)

// runCheck is `baremetal-announcer check`: it checks this node for what keeps the announcer from
// working and prints the findings with their fixes. It exits 1 when a finding reaches --fail-on,
// 2 on bad flags.
func runCheck(args []string, stdout, stderr io.Writer) int {
	cfg := check.Config{HeartbeatPort: check.DefaultHeartbeatPort}
	fs := flag.NewFlagSet("baremetal-announcer check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: baremetal-announcer check [flags]\n\nChecks this node for what keeps the announcer from working (kube-proxy IPVS without strictARP, a missing capability, no usable interface, the heartbeat port, VIPs answered by other MACs) and says how to fix each.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig path; empty = in-cluster configuration (without either, the checks that need the API are skipped)")
	fs.StringVar(&cfg.Interface, "interface", "", "the interface to announce on; empty = the one holding the node's InternalIP")
	port := fs.Uint("heartbeat-port", check.DefaultHeartbeatPort, "UDP port for heartbeats between announcers")
	fs.StringVar(&cfg.MemberSelector, "member-selector", "", "the announcers' --member-selector: which Nodes run an announcer")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", check.DefaultMetricsURL, "the running announcer's metrics on this node; empty skips them")
	fs.DurationVar(&cfg.ProbeWait, "probe-wait", check.DefaultProbeWait, "how long to wait for answers to the ARP probes / DAD solicitations; negative sends none")
	vips := fs.String("vip", "", "comma-separated VIPs to probe beside those of the Services")
	nodeIPs := fs.String("node-ip", "", "comma-separated addresses of this node, when the API cannot give its InternalIP")
	output := fs.String("output", "text", "text or json")
	failOn := fs.String("fail-on", "error", "exit 1 when a finding is this severe: error, warning or never (an init container that must not block the announcer)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "baremetal-announcer check: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	if *port == 0 || *port > 65535 {
		return usage("--heartbeat-port %d is not a port", *port)
	}
	cfg.HeartbeatPort = uint16(*port)
	var err error
	if cfg.VIPs, err = parseAddrs(*vips); err != nil {
		return usage("--vip: %v", err)
	}
	if cfg.NodeIPs, err = parseAddrs(*nodeIPs); err != nil {
		return usage("--node-ip: %v", err)
	}
	if *output != "text" && *output != "json" {
		return usage("--output %q: want text or json", *output)
	}
	threshold, never := check.Error, *failOn == "never"
	if !never {
		if threshold, err = check.ParseSeverity(*failOn); err != nil {
			return usage("--fail-on: %v", err)
		}
	}
	cfg.Client, cfg.Dynamic, cfg.ClientErr = apiClients(*kubeconfig)
	if err := cfg.Validate(); err != nil {
		return usage("%v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	findings := check.Run(ctx, cfg)
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Node     string          `json:"node"`
			Findings []check.Finding `json:"findings"`
		}{cfg.NodeName, findings})
	} else {
		printFindings(stdout, cfg.NodeName, findings)
	}
	if worst, any := check.Worst(findings); any && !never && worst >= threshold {
		return 1
	}
	return 0
}

// apiClients builds the API clients from a kubeconfig, or in-cluster; the error says why there
// are none.
func apiClients(kubeconfig string) (kubernetes.Interface, dynamic.Interface, error) {
	var restCfg *rest.Config
	var err error
	if kubeconfig == "" {
		restCfg, err = rest.InClusterConfig()
	} else {
		restCfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("no API configuration: %w", err)
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return nil, nil, err
	}
	return client, dyn, nil
}

func parseAddrs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// printFindings writes the findings for people: a summary line, then each finding with its fix.
func printFindings(w io.Writer, node string, findings []check.Finding) {
	counts := map[check.Severity]int{}
	for _, f := range findings {
		counts[f.Severity]++
	}
	fmt.Fprintf(w, "baremetal-announcer check on node %q: %d errors, %d warnings, %d notes\n", node, counts[check.Error], counts[check.Warning], counts[check.Info])
	for _, f := range findings {
		fmt.Fprintf(w, "\n%-7s %s\n  %s\n", strings.ToUpper(f.Severity.String()), f.Reason, f.Message)
		if f.Fix != "" {
			fmt.Fprintf(w, "  fix: %s\n", f.Fix)
		}
	}
}
