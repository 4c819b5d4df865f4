// Package lab runs the whole project on one machine: a real control plane on the host (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kwok standing in for kubelets, and our
// baremetal-cloud-controller-manager) and a LAN made of Linux network namespaces (a bridge, three
// node namespaces, a router running FRR, a client on the LAN and a remote host behind the router).
// `make lab` and the e2e tests in test/e2e use it.
//
// The lab's shape is fixed, so docs, tests and scripts can rely on it (see topology.go):
//
//	lab-lan      bridges br-lan (the LAN) and br-mgmt (the management link); every cable's
//	             bridge-side end lives here: lan-<host> on br-lan, mgmt-<node> on br-mgmt
//	lab-node-N   eth0 198.18.0.1N/24, 2001:db8:0:1::1N/64; mgmt0 198.18.254.1N/24
//	lab-router   eth0 198.18.0.1/24, 2001:db8:0:1::1/64; eth1 198.18.1.1/24, 2001:db8:0:2::1/64
//	lab-client   eth0 198.18.0.100/24, 2001:db8:0:1::100/64
//	lab-remote   eth0 198.18.1.100/24, 2001:db8:0:2::100/64 (the other end of lab-router's eth1)
//	host         lab-mgmt 198.18.254.1/24: kube-apiserver listens on https://198.18.254.1:26443
//	pods         198.18.64.0/18, 2001:db8:64::/48: lab-node-N's podCIDRs are 198.18.(64+N).0/24
//	             and 2001:db8:64:N::/64, routed by the other nodes to its LAN address
//
// Nodes and the client route 198.18.1.0/24 and 2001:db8:0:2::/64 via the router, lab-remote
// routes everything via the router, and the router learns the VIPs of BGP pools (198.18.2.0/24,
// 2001:db8:0:3::/120 in examples/bgp.yaml) from the nodes' announcers over BGP; the nodes route
// each other's pod CIDRs. Nothing else is routed, and nothing is configured on a host interface
// the lab did not create.
//
// BGP: lab-router runs FRR (zebra and bgpd, package test/frr) in AS 64512 with its own files in
// .lab/frr (configuration, PID files, vty sockets, logs; the host's /etc/frr is never read), and
// accepts sessions from any LAN address (bgp listen range) over IPv4 and IPv6; the nodes are AS
// 64513 in examples/bgp.yaml. Lab.Router and the helpers in bgp.go read it.
//
// Pods and kube-proxy: kwok binds pods to the Nodes and gives them IPs from the Nodes' podCIDRs
// (198.18.(64+N).0/24 and 2001:db8:64:N::/64 for lab-node-N). In each node namespace the pod host
// (RunPodHost, the lab binary's `pods` subcommand) puts the IPs of the node's pods on lo and
// answers HTTP on them with the pod's name; it is TEST SCAFFOLDING standing in for the kubelet
// and the containers, and the product never touches it. Beside it runs the real kube-proxy,
// built from the pinned Kubernetes source, in nftables mode, as the node (--hostname-override)
// with a token of its own ServiceAccount (kube-system/kube-proxy, bound to
// system:node-proxier), and only inside the namespace: it never writes a host-wide setting.
// Nodes forward, and route each other's pod CIDRs over the LAN; so a VIP's traffic that an
// announcer draws to a node is DNATed there to a pod, masqueraded when that pod runs on
// another node, exactly as in a kubeadm cluster.
//
// One lab exists per machine: its names and addresses are fixed, so `make lab` and the e2e tests
// cannot run at the same time. Up refuses to start over a lab it did not make unless
// Options.Adopt is set (as `make lab` does, to repair and reuse it).
package lab
