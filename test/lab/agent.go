package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// The node agent is TEST SCAFFOLDING: it emulates the part of kube-proxy the lab needs, and
// nothing of the product depends on it. The announcer never touches it, and it never answers
// ARP or NDP: it only makes a node accept TCP port 80 of every allocated VIP, so that whichever
// node the network delivers a VIP's traffic to answers with its own name.
const (
	// AgentPort is where each node's agent serves HTTP (every address of the node namespace).
	AgentPort = 8080
	// nftTable is the agent's nftables table inside each node namespace.
	nftTable = "lab-proxy"
	// agentResync re-applies the rules now and then, so a flushed ruleset repairs itself.
	agentResync = 30 * time.Second
)

// NodeAgentConfig configures RunNodeAgent.
type NodeAgentConfig struct {
	// Node is the node's name; the HTTP server answers it followed by a newline.
	Node string
	// Kubeconfig reaches the API server over the management link.
	Kubeconfig string
}

// RunNodeAgent runs the emulated kube-proxy of one lab node, inside that node's network namespace,
// until ctx ends: an HTTP server on :8080 answering "<node>\n", and an nftables table (inet
// lab-proxy) redirecting TCP port 80 of every VIP in a Service's status.loadBalancer.ingress to
// it, kept in sync by watching Services. When the API server is unreachable the rules stay as
// they are. The table is removed on exit.
func RunNodeAgent(ctx context.Context, cfg NodeAgentConfig) error {
	if cfg.Node == "" {
		return errors.New("node-agent: --node is required")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("node-agent: %w (install nftables)", err)
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("node-agent: %w", err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("node-agent: %w", err)
	}

	listener, err := net.Listen("tcp", fmt.Sprintf(":%d", AgentPort))
	if err != nil {
		return fmt.Errorf("node-agent: %w", err)
	}
	answer := []byte(cfg.Node + "\n")
	server := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(answer)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(listener) }()
	defer server.Close()

	// Start with no VIP, so the table exists before the first list returns.
	applied := ""
	if err := applyRules(ctx, nil); err != nil {
		return err
	}
	defer func() { _, _ = run(context.Background(), "nft", "delete", "table", "inet", nftTable) }()

	factory := informers.NewSharedInformerFactory(client, 10*time.Minute)
	services := factory.Core().V1().Services()
	changed := make(chan struct{}, 1)
	notify := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := services.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, obj any) { notify(obj) },
		DeleteFunc: notify,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	// Notifications of the first list can all come before HasSynced turns true; without this
	// wait the rules would then only be applied at the next resync.
	if !cache.WaitForCacheSync(ctx.Done(), services.Informer().HasSynced) {
		return nil
	}
	notify(nil)

	resync := time.NewTicker(agentResync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-serveErr:
			return fmt.Errorf("node-agent: HTTP server: %w", err)
		case <-changed:
		case <-resync.C:
			applied = "" // apply again even if unchanged
		}
		if !services.Informer().HasSynced() {
			continue
		}
		list, err := services.Lister().List(labels.Everything())
		if err != nil {
			continue
		}
		vips := serviceVIPs(list)
		key := fmt.Sprint(vips)
		if key == applied {
			continue
		}
		if err := applyRules(ctx, vips); err != nil {
			fmt.Printf("%s applying nftables rules: %v\n", time.Now().Format(time.RFC3339), err)
			continue
		}
		applied = key
		fmt.Printf("%s redirecting port 80 of %v to :%d\n", time.Now().Format(time.RFC3339), vips, AgentPort)
	}
}

// serviceVIPs are the ingress IPs of every Service, sorted and without duplicates.
func serviceVIPs(services []*v1.Service) []netip.Addr {
	var vips []netip.Addr
	for _, svc := range services {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if addr, err := netip.ParseAddr(ing.IP); err == nil {
				vips = append(vips, addr.Unmap())
			}
		}
	}
	slices.SortFunc(vips, netip.Addr.Compare)
	return slices.Compact(vips)
}

// nftRuleset renders the agent's table: one set per family and a prerouting NAT chain that
// redirects TCP port 80 of those addresses to the local HTTP server. Loading it replaces the
// previous table in one transaction.
func nftRuleset(vips []netip.Addr) string {
	var v4, v6 []string
	for _, a := range vips {
		if a.Is4() {
			v4 = append(v4, a.String())
		} else {
			v6 = append(v6, a.String())
		}
	}
	elements := func(addrs []string) string {
		if len(addrs) == 0 {
			return ""
		}
		return " elements = { " + strings.Join(addrs, ", ") + " };"
	}
	return fmt.Sprintf(`# Generated by the lab's node agent: TEST SCAFFOLDING emulating kube-proxy.
table inet %[1]s
delete table inet %[1]s
table inet %[1]s {
	set vip4 { type ipv4_addr;%[2]s }
	set vip6 { type ipv6_addr;%[3]s }
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr @vip4 tcp dport 80 redirect to :%[4]d
		ip6 daddr @vip6 tcp dport 80 redirect to :%[4]d
	}
}
`, nftTable, elements(v4), elements(v6), AgentPort)
}

func applyRules(ctx context.Context, vips []netip.Addr) error {
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(nftRuleset(vips))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
