package announcer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/check"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/desired"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/l2"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/membership"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// App is one node's announcer.
type App struct {
	cfg        Config
	newSpeaker speakerFactory
	metrics    *metrics
	// stopForGood turns the next stop into a departure (BGP: drain, withdraw, Cease) rather
	// than a restart (BGP: keep the sessions open so the routers hold the routes).
	stopForGood atomic.Bool
}

// StopForGood tells the announcer that the coming stop is for good (the node shuts down): BGP
// routes are drained and withdrawn instead of kept for a restart. Call it before cancelling Run.
func (a *App) StopForGood() { a.stopForGood.Store(true) }

// New builds the announcer; Run starts it.
func New(cfg Config) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &App{cfg: cfg, newSpeaker: openSpeaker, metrics: newMetrics()}, nil
}

func (a *App) restConfig() (*rest.Config, error) {
	if a.cfg.Kubeconfig == "" {
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", a.cfg.Kubeconfig)
}

// Run announces until ctx ends, then hands its VIPs over (a Leaving heartbeat) and returns.
func (a *App) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("node", a.cfg.NodeName)
	ctx = klog.NewContext(ctx, logger)
	restCfg, err := a.restConfig()
	if err != nil {
		return fmt.Errorf("building the API client configuration: %w", err)
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "baremetal-announcer", Host: a.cfg.NodeName})

	factory := informers.NewSharedInformerFactory(client, 0)
	services := factory.Core().V1().Services()
	slicesInformer := factory.Discovery().V1().EndpointSlices()
	nodes := factory.Core().V1().Nodes()
	dynFactory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	pools := dynFactory.ForResource(v1alpha1.IPPoolResource)
	// BGPPeers have their own factory: layer 2 must not wait for them (an install without the
	// BGPPeer CRD, or without the RBAC to read it, still announces at layer 2).
	bgpFactory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	bgpPeers := bgpFactory.ForResource(v1alpha1.BGPPeerResource)
	kick, bgpKick := make(chan struct{}, 1), make(chan struct{}, 1)
	kickFn := func() {
		for _, ch := range []chan struct{}{kick, bgpKick} {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { kickFn() },
		UpdateFunc: func(any, any) { kickFn() },
		DeleteFunc: func(any) { kickFn() },
	}
	var registrations []cache.ResourceEventHandlerRegistration
	for _, inf := range []cache.SharedIndexInformer{services.Informer(), slicesInformer.Informer(), nodes.Informer(), pools.Informer()} {
		reg, err := inf.AddEventHandler(handler)
		if err != nil {
			return err
		}
		registrations = append(registrations, reg)
	}
	// Status writes (every node writes its entry) must not wake every announcer: only a change
	// of a BGPPeer's spec (its generation) or labels, or a BGPPeer coming or going, does.
	peersReg, err := bgpPeers.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { kickFn() },
		UpdateFunc: func(oldObj, newObj any) {
			o, okOld := oldObj.(metav1.Object)
			n, okNew := newObj.(metav1.Object)
			if !okOld || !okNew || o.GetGeneration() != n.GetGeneration() || !maps.Equal(o.GetLabels(), n.GetLabels()) {
				kickFn()
			}
		},
		DeleteFunc: func(any) { kickFn() },
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	dynFactory.Start(ctx.Done())
	bgpFactory.Start(ctx.Done())
	defer factory.Shutdown()
	defer dynFactory.Shutdown()
	defer bgpFactory.Shutdown()
	// Serve /metrics and /readyz from the start, so a probe sees why the announcer is not ready.
	a.metrics.setNotReady("waiting for the API server's objects")
	if a.cfg.MetricsAddr != "" {
		go a.metrics.serve(ctx, a.cfg.MetricsAddr)
	}
	logger.Info("Waiting for the API server's objects")
	synced := make([]cache.InformerSynced, 0, len(registrations))
	for _, r := range registrations {
		synced = append(synced, r.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil // stopped before it started: nothing to hand over
	}
	lister := objectLister{services: services.Lister(), slices: slicesInformer.Lister(), nodes: nodes.Lister(), pools: pools.Lister()}

	// A DaemonSet pod can start before the cloud-controller-manager has initialised its Node
	// (or before the Node exists): wait for the node's InternalIP rather than crash-looping.
	a.metrics.setNotReady("waiting for this node's InternalIP on a local interface")
	var defaultIf *net.Interface
	var nodeAddr netip.Addr
	var lastProblem string
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(context.Context) (bool, error) {
		self, err := lister.nodes.Get(a.cfg.NodeName)
		if err == nil {
			defaultIf, err = interfaceOfNode(self)
		}
		if err == nil {
			var ok bool
			if nodeAddr, ok = nodeIP(self); !ok {
				err = fmt.Errorf("node %s has no InternalIP", self.Name)
			}
		}
		if err != nil {
			if err.Error() != lastProblem {
				logger.Info("Waiting for this node to be ready for announcing", "reason", err.Error())
				lastProblem = err.Error()
			}
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return nil // stopped while waiting: nothing to hand over
	}
	a.metrics.setNotReady("waiting for the membership key (Secret " + a.cfg.MembershipSecret + ")")
	keys := newMembershipKeys(client, a.cfg.MembershipSecret)
	sealer, err := keys.ensure(ctx)
	if err != nil {
		return nil // stopped while waiting for the key
	}
	// Bound to the node's own address: heartbeats arriving on any other address (a pod
	// network, a VIP) never reach the socket.
	transport, err := membership.Listen(netip.AddrPortFrom(nodeAddr, a.cfg.HeartbeatPort), sealer)
	if err != nil {
		return err
	}
	defer transport.Close()
	go keys.watch(ctx, transport.SetSealer)
	// What keeps this node from announcing (kube-proxy IPVS without strictARP, a missing
	// capability, a down interface...) becomes Node events. No ARP/NDP probes here: a probe for
	// a VIP another node is taking over would look like a conflict to it and delay the takeover.
	go func() {
		findings := check.Run(ctx, check.Config{NodeName: a.cfg.NodeName, Client: client, Dynamic: dyn,
			MemberSelector: a.cfg.MemberSelector, HeartbeatPort: a.cfg.HeartbeatPort, HeartbeatBound: true, BGPPortOwned: true, ProbeWait: -1})
		for _, f := range findings {
			logger.Info("Node check", "finding", f.String())
		}
		check.RecordEvents(recorder, a.cfg.NodeName, findings, check.Warning)
		// Whether heartbeats pass between nodes shows only once the announcers run: look at this
		// announcer's own membership metrics after it has had time to hear its peers.
		url := localMetricsURL(a.cfg.MetricsAddr)
		if url == "" {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(heartbeatCheckDelay):
		}
		later := check.Run(ctx, check.Config{NodeName: a.cfg.NodeName, Client: client, Dynamic: dyn, MetricsURL: url,
			MemberSelector: a.cfg.MemberSelector, HeartbeatPort: a.cfg.HeartbeatPort, HeartbeatBound: true, BGPPortOwned: true, ProbeWait: -1})
		later = slices.DeleteFunc(later, func(f check.Finding) bool { return !heartbeatFinding[f.Reason] })
		for _, f := range later {
			logger.Info("Node check", "finding", f.String())
		}
		check.RecordEvents(recorder, a.cfg.NodeName, later, check.Warning)
	}()
	health := &apiHealth{client: client}
	go health.run(ctx)

	var memberSel labels.Selector
	if a.cfg.MemberSelector != "" {
		memberSel, _ = labels.Parse(a.cfg.MemberSelector)
	}
	core, err := l2.New(a.cfg.l2Config(), newIncarnation(), time.Now())
	if err != nil {
		return err
	}
	r := &layer2{
		cfg: a.cfg, core: core, transport: transport, nodeAddr: nodeAddr,
		report: newReporter(a.cfg.NodeName, recorder, a.metrics),
		kick:   kick, inbox: make(chan received, 4096), foreign: make(chan l2.Foreign, 1024),
		apiFresh: health.fresh,
	}
	r.links = newLinks(a.cfg, a.newSpeaker, defaultIf.Name, func(f l2.Foreign) {
		select {
		case r.foreign <- f:
		default:
		}
	}, a.metrics)
	r.view = func() l2View { return lister.view(a.cfg.NodeName, memberSel) }
	logger.Info("Announcer started", "interface", defaultIf.Name, "address", nodeAddr, "heartbeatPort", a.cfg.HeartbeatPort,
		"heartbeatInterval", a.cfg.HeartbeatInterval, "failureTimeout", a.cfg.FailureTimeout, "keyID", fmt.Sprintf("%08x", sealer.CurrentID()))
	bgp := &bgpRunner{
		cfg: a.cfg, lister: lister, peers: bgpPeers.Lister(), synced: peersReg.HasSynced, client: client,
		status: newBGPStatusWriter(dyn, a.cfg.NodeName, func(name string) bool {
			_, err := lister.nodes.Get(name)
			return err == nil
		}),
		recorder: recorder, metrics: a.metrics, kick: bgpKick, stopForGood: &a.stopForGood,
	}
	// A BGP failure stops the announcer (the pod restarts) rather than leaving layer 2 running
	// with BGP dead and nobody told.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	bgpDone := make(chan error, 1)
	go func() {
		err := bgp.run(runCtx)
		if err != nil {
			cancel()
		}
		bgpDone <- err
	}()
	l2Err := r.run(runCtx)
	// Layer 2 may stop on its own (its socket failed): BGP must not keep the process alive.
	cancel()
	bgpErr := <-bgpDone
	return errors.Join(l2Err, bgpErr)
}

// heartbeatCheckDelay is how long after its start the announcer checks, from its own metrics,
// that heartbeats pass both ways between it and the other members.
const heartbeatCheckDelay = 30 * time.Second

// heartbeatFinding are the check's findings that need a running announcer's metrics.
var heartbeatFinding = map[string]bool{
	"PeersNotHeard": true, "PeersOneWay": true, "HeartbeatsUnauthenticated": true, "HeartbeatsFromUnknownAddresses": true,
}

// localMetricsURL is where this process serves its metrics, seen from itself ("" when it serves
// none).
func localMetricsURL(addr string) string {
	if addr == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/metrics"
}

// view reads the caches into the core's inputs.
func (l objectLister) view(self string, memberSel labels.Selector) l2View {
	services, _ := l.services.List(labels.Everything())
	endpointSlices, _ := l.slices.List(labels.Everything())
	nodes, _ := l.nodes.List(labels.Everything())
	vips := desired.VIPs(services, endpointSlices, l.poolMap())
	v := l2View{members: l2Members(self, nodes, memberSel), vips: l2VIPs(vips), services: map[netip.Addr][]string{}}
	for _, vi := range vips {
		v.services[vi.Addr] = vi.Services
	}
	return v
}

// apiHealth tracks whether the API server answers: a node cut off from it defers to peers
// whose view is current.
type apiHealth struct {
	client kubernetes.Interface
	lastOK atomic.Int64 // unix nanoseconds
}

const apiStaleAfter = 5 * time.Second

func (h *apiHealth) run(ctx context.Context) {
	h.lastOK.Store(time.Now().UnixNano())
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			probeCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := h.client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(probeCtx).Error()
			cancel()
			if err == nil {
				h.lastOK.Store(time.Now().UnixNano())
			}
		}
	}
}

func (h *apiHealth) fresh() bool {
	return time.Since(time.Unix(0, h.lastOK.Load())) < apiStaleAfter
}

// nodeIP is the node's first InternalIP, preferring IPv4.
func nodeIP(n *v1.Node) (netip.Addr, bool) {
	var v6 netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != v1.NodeInternalIP {
			continue
		}
		addr, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		if addr.Is4() {
			return addr, true
		}
		if !v6.IsValid() {
			v6 = addr
		}
	}
	return v6, v6.IsValid()
}

// interfaceOfNode finds the local interface holding one of the node's InternalIPs.
func interfaceOfNode(n *v1.Node) (*net.Interface, error) {
	want := map[netip.Addr]bool{}
	for _, a := range n.Status.Addresses {
		if addr, err := netip.ParseAddr(a.Address); err == nil && a.Type == v1.NodeInternalIP {
			want[addr] = true
		}
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("node %s has no InternalIP yet (is the cloud-controller-manager running?)", n.Name)
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifaces {
		addrs, err := ifaces[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && want[p.Addr()] {
				return &ifaces[i], nil
			}
		}
	}
	return nil, fmt.Errorf("no local interface holds node %s's InternalIPs %v", n.Name, keys(want))
}

func keys(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// objectLister reads the informers' caches.
type objectLister struct {
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	nodes    corelisters.NodeLister
	pools    cache.GenericLister
}

func (l objectLister) poolMap() map[string]*v1alpha1.IPPool {
	out := map[string]*v1alpha1.IPPool{}
	for _, pool := range listTyped[v1alpha1.IPPool](l.pools) {
		out[pool.Name] = pool
	}
	return out
}

// listTyped lists a dynamic informer's cache as typed objects; objects that do not convert (the
// CRD's schema refuses what would not) are left out.
func listTyped[T any](lister cache.GenericLister) []*T {
	objs, err := lister.List(labels.Everything())
	if err != nil {
		return nil
	}
	out := make([]*T, 0, len(objs))
	for _, obj := range objs {
		u, ok := obj.(interface{ UnstructuredContent() map[string]any })
		if !ok {
			continue
		}
		typed := new(T)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), typed); err == nil {
			out = append(out, typed)
		}
	}
	return out
}
