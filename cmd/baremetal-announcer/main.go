// Command baremetal-announcer runs on every node (a host-network DaemonSet) and makes the network
// deliver the VIPs: at layer 2 it answers ARP and NDP for the VIPs this node owns and hands them
// over within a fraction of a second when their owner fails; over BGP it advertises the VIPs this
// node can deliver to the routers in the BGPPeers.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "migrate-metallb" {
		os.Exit(runMigrateMetalLB(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "check" {
		os.Exit(runCheck(os.Args[2:], os.Stdout, os.Stderr))
	}
	cfg := announcer.DefaultConfig()
	fs := flag.NewFlagSet("baremetal-announcer", flag.ExitOnError)
	fs.StringVar(&cfg.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME)")
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig path; empty = in-cluster configuration")
	port := fs.Uint("heartbeat-port", uint(cfg.HeartbeatPort), "UDP port for heartbeats between announcers")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", cfg.HeartbeatInterval, "how often each announcer sends a heartbeat to the others")
	fs.DurationVar(&cfg.FailureTimeout, "failure-timeout", cfg.FailureTimeout, "a peer silent this long is dead and its VIPs move")
	fs.DurationVar(&cfg.JoinGrace, "join-grace", cfg.JoinGrace, "how long a starting node listens before it may own VIPs")
	fs.DurationVar(&cfg.ProbeWait, "probe-wait", cfg.ProbeWait, "how long a takeover probe (ARP probe / DAD solicitation) waits for another MAC answering for the VIP")
	fs.DurationVar(&cfg.ColdStartWait, "cold-start-wait", cfg.ColdStartWait, "how long a starting node takes only its own share of unclaimed VIPs while the other announcers start")
	fs.StringVar(&cfg.MembershipSecret, "membership-secret", cfg.MembershipSecret, "namespace/name of the Secret holding the membership key (created with a random key if absent)")
	fs.StringVar(&cfg.MemberSelector, "member-selector", cfg.MemberSelector, "label selector of the Nodes that run an announcer (the DaemonSet's node selector); empty = every Node (those with the exclude-from-external-load-balancers label hear heartbeats but do not vote)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-bind-address", cfg.MetricsAddr, "address of the Prometheus /metrics endpoint; empty disables it")
	fs.IntVar(&cfg.BurstCount, "gratuitous-count", cfg.BurstCount, "gratuitous ARPs / unsolicited NAs sent on takeover")
	fs.DurationVar(&cfg.BurstInterval, "gratuitous-interval", cfg.BurstInterval, "spacing of the takeover packets")
	fs.DurationVar(&cfg.Refresh, "refresh-interval", cfg.Refresh, "resend one gratuitous packet per owned VIP this often (switch FDB ageing)")
	fs.DurationVar(&cfg.BGPDrainTime, "bgp-drain-time", cfg.BGPDrainTime, "how long a leaving node (cordoned, excluded, or stopped for good) advertises its BGP routes with GRACEFUL_SHUTDOWN before withdrawing them")
	fs.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "directory kept across restarts of the announcer on this node (a hostPath): it marks a restart, so the next announcer resumes BGP sessions with graceful restart; empty disables graceful restart")
	klog.InitFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if *port > 65535 {
		fmt.Fprintf(os.Stderr, "--heartbeat-port %d is not a port\n", *port)
		os.Exit(2)
	}
	cfg.HeartbeatPort = uint16(*port)

	app, err := announcer.New(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "baremetal-announcer: %v\n", err)
		os.Exit(2)
	}
	// SIGTERM and SIGINT stop for a restart: BGP sessions stay open until the process exits, so
	// the routers keep the routes (graceful restart), unless the node is cordoned or excluded.
	// SIGUSR2 stops for good (node shutdown): BGP routes are drained, withdrawn and closed.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	forGood := make(chan os.Signal, 1)
	signal.Notify(forGood, syscall.SIGUSR2)
	go func() {
		<-forGood
		app.StopForGood()
		stop()
	}()
	if err := app.Run(ctx); err != nil {
		klog.ErrorS(err, "Announcer failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}
