package announcer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
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

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/election"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/membership"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// speaker makes the LAN deliver a set of VIPs of one family to this node on one interface.
type speaker interface {
	Set(vips []netip.Addr)
	Run(ctx context.Context) error
	Stats() speakerStats
}

type speakerStats struct {
	Requests, Replies, Gratuitous uint64
}

// speakerFactory opens the speaker of one protocol ("ARP" or "NDP") on an interface.
type speakerFactory func(protocol string, ifi *net.Interface, cfg Config) (speaker, error)

// owned is a VIP this node answers for.
type owned struct {
	view      int
	ifaces    []string
	protocol  string
	services  []string
	announced bool // the ownership event was emitted
}

// App is one node's announcer.
type App struct {
	cfg         Config
	newSpeaker  speakerFactory
	incarnation uint64

	client   kubernetes.Interface
	dynamic  dynamic.Interface
	recorder record.EventRecorder
	metrics  *metrics

	mu        sync.Mutex
	detector  *membership.Detector
	state     membership.State
	joinedAt  time.Time // when the current join grace ends
	linkUp    bool
	owned     map[netip.Addr]*owned
	seq       uint64
	speakers  map[string]speaker // by protocol + "/" + interface
	runCtx    context.Context
	defaultIf *net.Interface

	kick chan struct{}
}

// New builds the announcer; Run starts it.
func New(cfg Config) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &App{
		cfg:         cfg,
		newSpeaker:  openSpeaker,
		incarnation: uint64(time.Now().UnixNano()),
		detector:    membership.NewDetector(cfg.NodeName, cfg.FailureTimeout),
		state:       membership.Joining,
		owned:       map[netip.Addr]*owned{},
		speakers:    map[string]speaker{},
		kick:        make(chan struct{}, 1),
		metrics:     newMetrics(),
	}, nil
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
	if a.client, err = kubernetes.NewForConfig(restCfg); err != nil {
		return err
	}
	if a.dynamic, err = dynamic.NewForConfig(restCfg); err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	a.recorder = broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "baremetal-announcer", Host: a.cfg.NodeName})

	factory := informers.NewSharedInformerFactory(a.client, 0)
	services := factory.Core().V1().Services()
	slicesInformer := factory.Discovery().V1().EndpointSlices()
	nodes := factory.Core().V1().Nodes()
	dynFactory := dynamicinformer.NewDynamicSharedInformerFactory(a.dynamic, 0)
	pools := dynFactory.ForResource(v1alpha1.IPPoolResource)
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { a.kickReconcile() },
		UpdateFunc: func(any, any) { a.kickReconcile() },
		DeleteFunc: func(any) { a.kickReconcile() },
	}
	for _, inf := range []cache.SharedIndexInformer{services.Informer(), slicesInformer.Informer(), nodes.Informer(), pools.Informer()} {
		if _, err := inf.AddEventHandler(kick); err != nil {
			return err
		}
	}
	factory.Start(ctx.Done())
	dynFactory.Start(ctx.Done())
	defer factory.Shutdown()
	defer dynFactory.Shutdown()
	logger.Info("Waiting for the API server's objects")
	if !cache.WaitForCacheSync(ctx.Done(), services.Informer().HasSynced, slicesInformer.Informer().HasSynced, nodes.Informer().HasSynced, pools.Informer().HasSynced) {
		return nil // stopped before it started: nothing to hand over
	}
	lister := objectLister{services: services.Lister(), slices: slicesInformer.Lister(), nodes: nodes.Lister(), pools: pools.Lister()}

	// A DaemonSet pod can start before the cloud-controller-manager has initialised its Node
	// (or before the Node exists): wait for the node's InternalIP rather than crash-looping.
	var lastProblem string
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(context.Context) (bool, error) {
		self, err := lister.nodes.Get(a.cfg.NodeName)
		if err == nil {
			a.defaultIf, err = interfaceOfNode(self)
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
	transport, err := membership.Listen(netip.AddrPortFrom(netip.IPv6Unspecified(), a.cfg.HeartbeatPort))
	if err != nil {
		return err
	}
	defer transport.Close()
	if a.cfg.MetricsAddr != "" {
		go a.metrics.serve(ctx, a.cfg.MetricsAddr)
	}
	logger.Info("Announcer started", "interface", a.defaultIf.Name, "heartbeatPort", a.cfg.HeartbeatPort,
		"heartbeatInterval", a.cfg.HeartbeatInterval, "failureTimeout", a.cfg.FailureTimeout)

	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	a.runCtx = runCtx
	var wg sync.WaitGroup
	wg.Go(func() {
		err := transport.Receive(runCtx, func(h membership.Heartbeat, _ netip.AddrPort) {
			a.mu.Lock()
			changed := a.detector.Observe(time.Now(), h)
			a.mu.Unlock()
			if changed {
				a.kickReconcile()
			}
		}, func(err error, from netip.AddrPort) {
			a.metrics.malformedHeartbeats.Inc()
			logger.V(4).Info("Dropped a malformed heartbeat", "from", from, "err", err)
		})
		if err != nil && runCtx.Err() == nil {
			logger.Error(err, "Heartbeat receiver stopped")
		}
	})
	wg.Go(func() { a.watchLink(runCtx) })

	heartbeat := time.NewTicker(a.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	resync := time.NewTicker(time.Second)
	defer resync.Stop()
	a.setLink(ctx, interfaceRunning(a.defaultIf.Name))
	for {
		select {
		case <-ctx.Done():
			a.leave(logger, transport, lister)
			cancelRun()
			wg.Wait()
			return nil
		case <-heartbeat.C:
			a.sendHeartbeat(logger, transport, lister)
			a.mu.Lock()
			failed := a.detector.Expire(time.Now())
			a.mu.Unlock()
			if len(failed) > 0 {
				a.metrics.failureDetections.Add(float64(len(failed)))
				logger.Info("Peers stopped answering", "peers", failed)
				a.reconcile(ctx, lister)
			}
			if a.finishJoin(ctx) {
				a.reconcile(ctx, lister)
			}
		case <-a.kick:
			a.reconcile(ctx, lister)
		case <-resync.C:
			a.reconcile(ctx, lister)
		}
	}
}

func (a *App) kickReconcile() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// finishJoin makes a joining node active once its grace has passed and its link is up.
func (a *App) finishJoin(ctx context.Context) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state != membership.Joining || !a.linkUp || time.Now().Before(a.joinedAt) {
		return false
	}
	a.state = membership.Active
	klog.FromContext(ctx).Info("Joined: may own VIPs now", "peers", len(a.detector.Alive(time.Now())))
	return true
}

// setLink records the carrier state of the announce interface. Losing it withdraws every VIP at
// once (the node is cut off: another node takes over) and makes the node join again when the
// link returns, so it hears who owns what before it answers for anything.
func (a *App) setLink(ctx context.Context, up bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if up == a.linkUp && !a.joinedAt.IsZero() {
		return
	}
	a.linkUp = up
	logger := klog.FromContext(ctx)
	if !up {
		logger.Info("Link down: withdrawing every VIP", "interface", a.defaultIf.Name)
		a.state = membership.Joining
		a.applyOwnedLocked(ctx, map[netip.Addr]*owned{})
		return
	}
	a.state = membership.Joining
	a.joinedAt = time.Now().Add(a.cfg.JoinGrace)
	logger.Info("Link up: joining", "interface", a.defaultIf.Name, "grace", a.cfg.JoinGrace)
}

func (a *App) watchLink(ctx context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			up := interfaceRunning(a.defaultIf.Name)
			a.mu.Lock()
			changed := up != a.linkUp
			a.mu.Unlock()
			if changed {
				a.setLink(ctx, up)
				a.kickReconcile()
			}
		}
	}
}

func interfaceRunning(name string) bool {
	ifi, err := net.InterfaceByName(name)
	return err == nil && ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0
}

// sendHeartbeat tells every other node what this one owns now.
func (a *App) sendHeartbeat(logger klog.Logger, transport *membership.Transport, lister objectLister) {
	a.mu.Lock()
	a.seq++
	h := membership.Heartbeat{Node: a.cfg.NodeName, Incarnation: a.incarnation, Seq: a.seq, State: a.state, Claims: a.claimsLocked()}
	a.mu.Unlock()
	if err := transport.Send(h, a.peerAddresses(lister)); err != nil {
		logger.V(4).Info("Sending heartbeat", "err", err)
	}
}

func (a *App) claimsLocked() []membership.Claim {
	claims := make([]membership.Claim, 0, len(a.owned))
	for addr, o := range a.owned {
		claims = append(claims, membership.Claim{Addr: addr, View: uint16(min(o.view, 0xffff))})
	}
	return claims
}

// peerAddresses are the heartbeat addresses of every other node: its first InternalIP.
func (a *App) peerAddresses(lister objectLister) []netip.AddrPort {
	nodes, err := lister.nodes.List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []netip.AddrPort
	for _, n := range nodes {
		if n.Name == a.cfg.NodeName {
			continue
		}
		if addr, ok := nodeIP(n); ok {
			out = append(out, netip.AddrPortFrom(addr, a.cfg.HeartbeatPort))
		}
	}
	return out
}

// leave stops answering, then tells the peers at once so a successor announces without waiting
// for the failure timeout.
func (a *App) leave(logger klog.Logger, transport *membership.Transport, lister objectLister) {
	a.mu.Lock()
	a.applyOwnedLocked(context.Background(), map[netip.Addr]*owned{})
	a.state = membership.Leaving
	a.mu.Unlock()
	// Three copies, in case one is lost; the peers ignore repeats.
	for range 3 {
		a.sendHeartbeat(logger, transport, lister)
	}
	logger.Info("Left: VIPs handed over")
}

// reconcile runs the election with the current objects and peers and applies the result.
func (a *App) reconcile(ctx context.Context, lister objectLister) {
	services, _ := lister.services.List(labels.Everything())
	endpointSlices, _ := lister.slices.List(labels.Everything())
	nodes, _ := lister.nodes.List(labels.Everything())
	pools := lister.poolMap()
	vips := desiredVIPs(services, endpointSlices, pools)

	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	alive := map[string]membership.Peer{}
	for _, p := range a.detector.Alive(now) {
		alive[p.Node] = p
	}
	selfHealthy := a.linkUp && a.state == membership.Active
	active := 0
	for _, p := range alive {
		if p.State == membership.Active {
			active++
		}
	}
	a.metrics.peersActive.Set(float64(active))
	a.metrics.state.Set(float64(a.state))
	var electionNodes []election.Node
	healthy := 0
	for _, n := range nodes {
		ok := false
		if n.Name == a.cfg.NodeName {
			ok = selfHealthy
		} else if p, seen := alive[n.Name]; seen && p.State == membership.Active {
			ok = true
		}
		if ok {
			healthy++
		}
		electionNodes = append(electionNodes, electionNode(n, ok))
	}
	claims := map[netip.Addr][]election.Claim{}
	for _, p := range alive {
		if p.State != membership.Active {
			continue
		}
		for _, c := range p.Claims {
			claims[c.Addr] = append(claims[c.Addr], election.Claim{Node: p.Node, View: int(c.View)})
		}
	}
	for addr, o := range a.owned {
		claims[addr] = append(claims[addr], election.Claim{Node: a.cfg.NodeName, View: o.view})
	}
	plain := make([]election.VIP, len(vips))
	for i, v := range vips {
		plain[i] = v.VIP
	}
	owners := election.Assign(plain, electionNodes, claims)

	next := map[netip.Addr]*owned{}
	for _, v := range vips {
		if owners[v.Addr] != a.cfg.NodeName || !selfHealthy {
			continue
		}
		ifaces := v.Interfaces
		if len(ifaces) == 0 {
			ifaces = []string{a.defaultIf.Name}
		}
		protocol := "ARP"
		if v.Addr.Is6() {
			protocol = "NDP"
		}
		// The claim carries the view the node has now, not the one it took the VIP with: after a
		// partition heals, the side that sees more nodes keeps the VIP, so it never moves back to
		// a node that was cut off.
		o := &owned{view: healthy, ifaces: ifaces, protocol: protocol, services: v.Services}
		if prev, ok := a.owned[v.Addr]; ok {
			o.announced = prev.announced && slices.Equal(prev.services, v.Services)
		}
		next[v.Addr] = o
	}
	a.applyOwnedLocked(ctx, next)
}

// applyOwnedLocked hands each speaker its new set and reports ownership changes. a.mu is held.
func (a *App) applyOwnedLocked(ctx context.Context, next map[netip.Addr]*owned) {
	logger := klog.FromContext(ctx)
	byKey := map[string][]netip.Addr{}
	for addr, o := range next {
		for _, iface := range o.ifaces {
			key := o.protocol + "/" + iface
			byKey[key] = append(byKey[key], addr)
		}
	}
	for key := range a.speakers {
		if _, ok := byKey[key]; !ok {
			byKey[key] = nil
		}
	}
	working := map[string]speaker{}
	for key, addrs := range byKey {
		sp, err := a.speakerLocked(ctx, key)
		if err != nil {
			logger.Error(err, "Cannot announce on this interface", "speaker", key, "vips", addrs)
			continue
		}
		working[key] = sp
	}
	// A VIP none of whose interfaces works is not owned: the node must not claim what it cannot
	// answer for.
	for addr, o := range next {
		if !slices.ContainsFunc(o.ifaces, func(iface string) bool { return working[o.protocol+"/"+iface] != nil }) {
			delete(next, addr)
		}
	}
	for key, sp := range working {
		addrs := slices.DeleteFunc(byKey[key], func(addr netip.Addr) bool { return next[addr] == nil })
		slices.SortFunc(addrs, netip.Addr.Compare)
		sp.Set(addrs)
	}
	for addr := range a.owned {
		if _, ok := next[addr]; !ok {
			a.metrics.ownershipChanges.Inc()
			logger.Info("Stopped announcing", "vip", addr)
		}
	}
	for addr, o := range next {
		if _, had := a.owned[addr]; !had {
			a.metrics.ownershipChanges.Inc()
			logger.Info("Announcing", "vip", addr, "protocol", o.protocol, "interfaces", o.ifaces, "services", o.services)
		}
		if !o.announced && a.recorder != nil {
			a.emitOwnership(addr, o)
			o.announced = true
		}
	}
	a.owned = next
	a.metrics.vipsOwned.Set(float64(len(next)))
}

// emitOwnership puts one event on each Service of the VIP saying who announces it now.
func (a *App) emitOwnership(addr netip.Addr, o *owned) {
	for _, key := range o.services {
		ns, name, _ := strings.Cut(key, "/")
		ref := &v1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: ns, Name: name}
		a.recorder.Eventf(ref, v1.EventTypeNormal, "Announcing", "announcing %s from %s via %s on %s", addr, a.cfg.NodeName, o.protocol, strings.Join(o.ifaces, ", "))
	}
}

// speakerLocked returns the speaker for "protocol/interface", opening it on first use.
func (a *App) speakerLocked(ctx context.Context, key string) (speaker, error) {
	if sp, ok := a.speakers[key]; ok {
		return sp, nil
	}
	protocol, ifname, _ := strings.Cut(key, "/")
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", ifname, err)
	}
	sp, err := a.newSpeaker(protocol, ifi, a.cfg)
	if err != nil {
		return nil, fmt.Errorf("opening the %s speaker on %s: %w", protocol, ifname, err)
	}
	a.speakers[key] = sp
	runCtx := a.runCtx
	if runCtx == nil {
		runCtx = ctx
	}
	go func() {
		if err := sp.Run(runCtx); err != nil && runCtx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Speaker stopped", "speaker", key)
		}
	}()
	a.metrics.watch(key, sp)
	return sp, nil
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
	objs, err := l.pools.List(labels.Everything())
	if err != nil {
		return out
	}
	for _, obj := range objs {
		u, ok := obj.(interface{ UnstructuredContent() map[string]any })
		if !ok {
			continue
		}
		pool := &v1alpha1.IPPool{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), pool); err == nil {
			out[pool.Name] = pool
		}
	}
	return out
}

var errNoSpeaker = errors.New("no speaker for this protocol on this platform")
