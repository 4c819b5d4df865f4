// Command lab runs the project on one machine (package lab): `make lab` builds it and runs
// `lab up`, `make lab-down` runs `lab down`. The pods subcommand is the lab's pod host (TEST
// SCAFFOLDING standing in for a kubelet's containers: it serves the IPs of the pods kwok binds
// to a node), which `lab up` starts inside every node namespace beside the real kube-proxy.
//
// Usage:
//
//	lab up        bring the lab up, or repair it (restart what is not running); prints how to use it
//	lab down      remove every process, namespace, link and file of the lab
//	lab status    show what runs
//	lab pods --node=<name> --kubeconfig=<path> --status-address=<ip:port>
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/lab"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: lab up|down|status|pods")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "up":
		return up(ctx)
	case "down":
		return lab.Down(os.Stdout)
	case "status":
		return lab.Status(os.Stdout)
	case "pods":
		fs := flag.NewFlagSet("pods", flag.ContinueOnError)
		var cfg lab.PodHostConfig
		fs.StringVar(&cfg.Node, "node", "", "the node whose pods are served")
		fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig reaching the API server")
		fs.StringVar(&cfg.StatusAddr, "status-address", "", "where the status server listens (ip:port)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return lab.RunPodHost(ctx, cfg)
	default:
		return fmt.Errorf("unknown command %q; want up, down, status or pods", args[0])
	}
}

func up(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	l, err := lab.Up(ctx, lab.Options{Adopt: true, LabBinary: self, Out: os.Stdout})
	if err != nil {
		return err
	}
	kubectl := filepath.Join(l.Dir, "bin", "kubectl")
	client := lab.ClientHost()
	bgpVIPs, bgpRoute, bgpURL := "its VIPs", "<VIP>/32", "<VIP>"
	if len(l.BGPDemoVIPs) > 0 {
		bgpVIPs = fmt.Sprint(l.BGPDemoVIPs)
		bgpRoute = lab.HostRoute(l.BGPDemoVIPs[0]).String()
		bgpURL = netip.AddrPortFrom(l.BGPDemoVIPs[0], 80).String()
	}
	fmt.Printf(`
The lab is up: the control plane runs on this host, the LAN in network namespaces.
Service default/metallb-demo got EXTERNAL-IP %[1]s.

  export KUBECONFIG=%[2]s PATH=%[3]s:$PATH
  kubectl get nodes -o wide
  kubectl get svc metallb-demo; kubectl get ippools

From the client (%[4]s on the LAN; nodes are .11-.13, the router .1):
  ip netns exec lab-client curl http://%[1]s/          # answered by the demo pod, through kube-proxy
  ip netns exec lab-client curl -i http://%[1]s/       # X-Lab-Node: the pod's node; X-Lab-Client: whom it saw
  ip netns exec lab-client arping -c 3 -I eth0 %[1]s    # who answers ARP for the VIP
  ip netns exec lab-client ndisc6 <IPv6 VIP> eth0       # NDP, for a dual-stack Service's IPv6 VIP
  ip netns exec lab-client ip neigh                     # the client's neighbour cache

BGP (examples/bgp.yaml): Service default/bgp-demo got %[5]s from bgp-pool, which no LAN holds;
every node's announcer advertises it to lab-router (FRR, AS 64512), and lab-remote reaches it:
  hack/lab.sh vtysh -c 'show bgp summary'               # sessions with the nodes, per family
  hack/lab.sh vtysh -c 'show bgp ipv4 unicast %[6]s'    # paths, communities, multipath
  ip -n lab-router route                                # the VIP with one next hop per node
  ip netns exec lab-remote curl -i http://%[7]s/        # the demo pod; X-Lab-Client is the node ECMP picked
                                                        # (masqueraded), or lab-remote when it is the pod's

Cut a node's LAN cable, and plug it back in:
  ip -n lab-lan link set lan-node-2 down; ip -n lab-lan link set lan-node-2 up

Each node runs the real kube-proxy (nftables mode; ip netns exec lab-node-1 nft list ruleset) and
a pod host that puts its pods' IPs on lo and answers their names (test scaffolding for kubelets).
Logs and PID files are in .lab/ (announcer-<node>.log, kube-proxy-<node>.log, pods-<node>.log,
...; FRR's in .lab/frr/).
make lab again restarts whatever stopped; make lab-down removes everything.
`, l.DemoVIP, l.Kubeconfig, filepath.Dir(kubectl), client.IPv4, bgpVIPs, bgpRoute, bgpURL)
	return nil
}
