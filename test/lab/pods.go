package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// The pod host is TEST SCAFFOLDING: it stands in for the kubelet and container runtime of a lab
// node, which kwok only fakes in the API. Nothing of the product depends on it, and it never
// touches Services, VIPs, ARP or NDP: kube-proxy (the real one, built from the pinned
// Kubernetes source) delivers VIP traffic to the pod IPs it serves.
const (
	// PodHostStatusPort is where each node's pod host serves its status (the pods it serves, one
	// per line), on the node's management address only.
	PodHostStatusPort = 8080
	// PodPort is the port every pod's server listens on besides the pod's TCP containerPorts.
	PodPort = 80
	// HeaderNode and HeaderClient are set on every answer of a pod's server: the node the pod
	// runs on, and the source address of the connection as the pod saw it.
	HeaderNode   = "X-Lab-Node"
	HeaderClient = "X-Lab-Client"
	// podResync re-applies the addresses now and then, so a flushed lo repairs itself.
	podResync = 30 * time.Second
)

// PodHostConfig configures RunPodHost.
type PodHostConfig struct {
	// Node is the node whose pods are served (pods with spec.nodeName = Node).
	Node string
	// Kubeconfig reaches the API server over the management link.
	Kubeconfig string
	// StatusAddr is where the status server listens (the node's management address).
	StatusAddr string
}

// RunPodHost serves the pods bound to one lab node, inside that node's network namespace,
// until ctx ends. It watches the node's pods; for each Running pod with IPs (kwok gives them
// from the Node's podCIDRs) it puts the pod's IPs on lo and answers HTTP on each of them, on
// PodPort and every TCP containerPort, with the pod's name and a newline (headers HeaderNode
// and HeaderClient say where the pod runs and whom it saw). A pod that goes away loses its
// addresses and server. Pod addresses on lo that no pod holds (left by a killed predecessor)
// are removed at start; on exit every address it added is removed.
func RunPodHost(ctx context.Context, cfg PodHostConfig) error {
	if cfg.Node == "" {
		return errors.New("pods: --node is required")
	}
	// It adds and removes addresses on lo of whatever namespace it runs in: never the host's.
	if own, ok := processNamespace(os.Getpid()); !ok {
		return errors.New("pods: cannot tell which network namespace this process is in")
	} else if host, ok := processNamespace(1); ok && own == host {
		return fmt.Errorf("pods: refusing to run in the host's network namespace: run it as `ip netns exec %s ...` (the lab does)", cfg.Node)
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("pods: %w", err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("pods: %w", err)
	}
	h := &podHost{node: cfg.Node, servers: map[string]*podServer{}}
	defer h.stopAll()
	if err := h.removeStrayAddresses(ctx); err != nil {
		return err
	}

	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.Node).String()
		}))
	pods := factory.Core().V1().Pods()
	changed := make(chan struct{}, 1)
	notify := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, obj any) { notify(obj) },
		DeleteFunc: notify,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()

	statusErr := make(chan error, 1)
	if cfg.StatusAddr != "" {
		listener, err := net.Listen("tcp", cfg.StatusAddr)
		if err != nil {
			return fmt.Errorf("pods: status server: %w", err)
		}
		status := &http.Server{Handler: http.HandlerFunc(h.serveStatus), ReadHeaderTimeout: 5 * time.Second}
		go func() { statusErr <- status.Serve(listener) }()
		defer status.Close()
	}
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced) {
		return nil
	}
	notify(nil)

	resync := time.NewTicker(podResync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-statusErr:
			return fmt.Errorf("pods: status server: %w", err)
		case <-changed:
		case <-resync.C:
		}
		list, err := pods.Lister().List(labels.Everything())
		if err != nil {
			continue
		}
		h.sync(ctx, desiredPods(cfg.Node, list))
		h.setSynced()
	}
}

// podSpec is what a pod's server serves: the pod's name, addresses and ports.
type podSpec struct {
	namespace, name string
	ips             []netip.Addr
	ports           []int
}

func (s podSpec) key() string { return s.namespace + "/" + s.name }

func (s podSpec) String() string {
	return fmt.Sprintf("%s %v %v", s.key(), s.ips, s.ports)
}

// desiredPods are the pods a node serves: Running, not being deleted, not host-network, with
// IPs inside the lab's pod prefixes; sorted by namespace and name.
func desiredPods(node string, pods []*v1.Pod) []podSpec {
	var out []podSpec
	for _, p := range pods {
		if p.Spec.NodeName != node || p.DeletionTimestamp != nil || p.Spec.HostNetwork || p.Status.Phase != v1.PodRunning {
			continue
		}
		var ips []netip.Addr
		for _, ip := range p.Status.PodIPs {
			a, err := netip.ParseAddr(ip.IP)
			if err == nil && (PodPrefix.Contains(a) || PodPrefix6.Contains(a)) {
				ips = append(ips, a)
			}
		}
		if len(ips) == 0 {
			continue
		}
		ports := []int{PodPort}
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Protocol == "" || cp.Protocol == v1.ProtocolTCP {
					ports = append(ports, int(cp.ContainerPort))
				}
			}
		}
		slices.Sort(ports)
		out = append(out, podSpec{namespace: p.Namespace, name: p.Name, ips: ips, ports: slices.Compact(ports)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// podHost holds the running pod servers of a node.
type podHost struct {
	node    string
	mu      sync.Mutex
	servers map[string]*podServer
	synced  bool
}

// podServer is one pod's HTTP server on its addresses.
type podServer struct {
	spec   podSpec
	server *http.Server
}

func (h *podHost) setSynced() {
	h.mu.Lock()
	h.synced = true
	h.mu.Unlock()
}

// sync makes the running servers match want: it stops those of pods gone or changed (and drops
// their addresses), then starts the missing ones. Addresses are (re)applied every time.
func (h *podHost) sync(ctx context.Context, want []podSpec) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wanted := map[string]podSpec{}
	for _, s := range want {
		wanted[s.key()] = s
	}
	for key, srv := range h.servers {
		if w, ok := wanted[key]; !ok || w.String() != srv.spec.String() {
			h.stop(srv)
			delete(h.servers, key)
			logf("stopped %s", srv.spec)
		}
	}
	for _, s := range want {
		if err := addAddresses(ctx, s.ips); err != nil {
			logf("adding the addresses of %s: %v", s.key(), err)
			continue
		}
		if _, ok := h.servers[s.key()]; ok {
			continue
		}
		srv, err := h.serve(s)
		if err != nil {
			logf("serving %s: %v", s.key(), err)
			continue
		}
		h.servers[s.key()] = srv
		logf("serving %s", s)
	}
}

// serve starts a pod's server on every address and port of it.
func (h *podHost) serve(s podSpec) (*podServer, error) {
	node, answer := h.node, []byte(s.name+"\n")
	server := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			client, _, _ := net.SplitHostPort(r.RemoteAddr)
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set(HeaderNode, node)
			w.Header().Set(HeaderClient, client)
			_, _ = w.Write(answer)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	server.SetKeepAlivesEnabled(false)
	var listeners []net.Listener
	for _, ip := range s.ips {
		for _, port := range s.ports {
			l, err := net.Listen("tcp", netip.AddrPortFrom(ip, uint16(port)).String())
			if err != nil {
				for _, l := range listeners {
					l.Close()
				}
				return nil, err
			}
			listeners = append(listeners, l)
		}
	}
	for _, l := range listeners {
		go func() { _ = server.Serve(l) }()
	}
	return &podServer{spec: s, server: server}, nil
}

func (h *podHost) stop(srv *podServer) {
	srv.server.Close()
	if err := deleteAddresses(context.Background(), srv.spec.ips); err != nil {
		logf("removing the addresses of %s: %v", srv.spec.key(), err)
	}
}

func (h *podHost) stopAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, srv := range h.servers {
		h.stop(srv)
		delete(h.servers, key)
	}
}

// serveStatus lists the pods served, one per line; 503 until the first sync.
func (h *podHost) serveStatus(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	if !h.synced {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not synced yet\n")
		return
	}
	var lines []string
	for _, srv := range h.servers {
		lines = append(lines, srv.spec.String())
	}
	slices.Sort(lines)
	_, _ = fmt.Fprintf(w, "node %s: %d pods\n", h.node, len(lines))
	for _, l := range lines {
		_, _ = io.WriteString(w, l+"\n")
	}
}

// removeStrayAddresses deletes the pod addresses on lo that a previous pod host left.
func (h *podHost) removeStrayAddresses(ctx context.Context) error {
	have, err := loAddresses(ctx)
	if err != nil {
		return err
	}
	var stray []netip.Addr
	for _, a := range have {
		if PodPrefix.Contains(a) || PodPrefix6.Contains(a) {
			stray = append(stray, a)
		}
	}
	if len(stray) > 0 {
		logf("removing pod addresses left on lo: %v", stray)
	}
	return deleteAddresses(ctx, stray)
}

// loAddresses are the addresses on lo, in this process's network namespace.
func loAddresses(ctx context.Context) ([]netip.Addr, error) {
	out, err := run(ctx, "ip", "-j", "addr", "show", "dev", "lo")
	if err != nil {
		return nil, err
	}
	var links []struct {
		AddrInfo []struct {
			Local string `json:"local"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("reading the addresses of lo: %w", err)
	}
	var addrs []netip.Addr
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if addr, err := netip.ParseAddr(a.Local); err == nil {
				addrs = append(addrs, addr)
			}
		}
	}
	return addrs, nil
}

// addAddresses puts host addresses on lo (IPv6 without DAD): the pod IPs live in the node's
// namespace, and the other nodes route the node's podCIDRs to its LAN address.
func addAddresses(ctx context.Context, ips []netip.Addr) error {
	for _, ip := range ips {
		argv := []string{"ip", "addr", "replace", netip.PrefixFrom(ip, ip.BitLen()).String(), "dev", "lo"}
		if ip.Is6() {
			argv = append(argv, "nodad")
		}
		if _, err := run(ctx, argv...); err != nil {
			return err
		}
	}
	return nil
}

func deleteAddresses(ctx context.Context, ips []netip.Addr) error {
	var errs []error
	for _, ip := range ips {
		if _, err := run(ctx, "ip", "addr", "del", netip.PrefixFrom(ip, ip.BitLen()).String(), "dev", "lo"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func logf(format string, args ...any) {
	fmt.Printf("%s %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// Answer is what a pod's server (RunPodHost) answered to an HTTP GET.
type Answer struct {
	// Pod is the pod's name (the body).
	Pod string
	// Node is the node the pod runs on (HeaderNode).
	Node string
	// Client is the source address of the connection as the pod saw it (HeaderClient).
	Client netip.Addr
}

// ReceivedBy is the node that took the request from the network. kube-proxy masquerades
// traffic it forwards to a pod on another node (externalTrafficPolicy Cluster), so the pod
// sees that node's LAN address; a request the pod's own node received (and one under
// externalTrafficPolicy Local, which never leaves the node) keeps the client's address.
func (a Answer) ReceivedBy() string {
	for _, n := range Nodes {
		h, _ := Node(n)
		if c := a.Client.Unmap(); c == h.IPv4 || c == h.IPv6 {
			return n
		}
	}
	return a.Node
}

func (a Answer) String() string {
	return fmt.Sprintf("%s on %s (saw %s, received by %s)", a.Pod, a.Node, a.Client, a.ReceivedBy())
}

// Get fetches http://<addr>/ with curl from inside namespace ns, giving up after timeout, and
// parses the pod's answer. A failure of curl is a *CommandError (curl's exit status: 7 refused,
// 28 timed out).
func (l *Lab) Get(ctx context.Context, ns string, addr netip.AddrPort, timeout time.Duration) (Answer, error) {
	out, err := l.ExecContext(ctx, ns, "curl", "-s", "-i", "-g", "--max-time",
		strconv.FormatFloat(timeout.Seconds(), 'f', 3, 64), "http://"+addr.String()+"/")
	if err != nil {
		return Answer{}, err
	}
	return parseAnswer(out)
}

// parseAnswer reads curl -i's output of a pod server's answer.
func parseAnswer(out string) (Answer, error) {
	head, body, ok := strings.Cut(strings.ReplaceAll(out, "\r\n", "\n"), "\n\n")
	if !ok || !strings.HasPrefix(head, "HTTP/") {
		return Answer{}, fmt.Errorf("not an HTTP answer: %q", out)
	}
	status, headers, _ := strings.Cut(head, "\n")
	if f := strings.Fields(status); len(f) < 2 || f[1] != "200" {
		return Answer{}, fmt.Errorf("HTTP status %q, want 200", status)
	}
	a := Answer{Pod: strings.TrimSpace(body)}
	for _, line := range strings.Split(headers, "\n") {
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch {
		case strings.EqualFold(name, HeaderNode):
			a.Node = value
		case strings.EqualFold(name, HeaderClient):
			a.Client, _ = netip.ParseAddr(value)
		}
	}
	if a.Pod == "" || a.Node == "" || !a.Client.IsValid() {
		return Answer{}, fmt.Errorf("not a lab pod's answer (%s, %s headers): %q", HeaderNode, HeaderClient, out)
	}
	return a, nil
}
