package announcer

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/bgpspeaker"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/desired"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// restartMarker is the file, in the state directory, that says a BGP speaker runs on this node.
// It is refreshed while the speaker runs and removed only when it stops for good, so an
// announcer that finds a fresh one follows a restart or a crash: it announces a graceful
// restart (the routers hold the routes as stale meanwhile). A reboot clears /run.
const restartMarker = "bgp-running"

// markerFresh bounds the age of a marker that still means a restart: the longest restart time a
// router may grant (RFC 4724's 12-bit field); after that the routers have flushed the routes.
const markerFresh = 4095 * time.Second

// passwordTTL bounds how stale a cached BGP password may be while its session is up, and
// passwordRetry while it is down (the Secret may have been fixed).
const (
	passwordTTL   = 30 * time.Second
	passwordRetry = 2 * time.Second
)

// bgpRunner runs one node's BGP: it turns the caches into a plan, hands it to the speaker, and
// reports the sessions in the BGPPeers' status, events and metrics.
type bgpRunner struct {
	cfg      Config
	lister   objectLister
	peers    cache.GenericLister
	synced   cache.InformerSynced
	client   kubernetes.Interface
	status   *bgpStatusWriter
	recorder record.EventRecorder
	metrics  *metrics
	kick     chan struct{}
	// stopForGood is set when the announcer is told the node goes away (not a restart).
	stopForGood *atomic.Bool

	speaker       *bgpspeaker.Speaker
	speakerDone   chan error
	restarting    bool
	drainSince    time.Time
	advertised    bool // some route was handed to the speaker since the start or the last drain
	markerWritten time.Time
	lastPools     map[string]*v1alpha1.IPPool
	passwords     map[string]cachedSecret
	lastStates    map[string]string
	lastProblems  string
}

type cachedSecret struct {
	secretValue
	at time.Time
}

func (r *bgpRunner) run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("protocol", "BGP")
	ctx = klog.NewContext(ctx, logger)
	if !cache.WaitForCacheSync(ctx.Done(), r.synced) {
		return nil
	}
	r.restarting = r.takeRestartMarker(logger)
	r.passwords = map[string]cachedSecret{}
	r.lastStates = map[string]string{}
	statusCtx, stopStatus := context.WithCancel(ctx)
	defer stopStatus()
	go r.status.run(statusCtx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var plan bgpPlan
	for {
		select {
		case <-ctx.Done():
			return r.exit(context.WithoutCancel(ctx), plan)
		case err := <-r.speakerDone:
			return fmt.Errorf("BGP speaker stopped: %w", err)
		case <-r.kick:
		case <-tick.C:
		}
		plan = r.sync(ctx, time.Now())
		r.report(ctx, plan)
		if r.speaker != nil {
			r.writeRestartMarker(logger)
		}
	}
}

// sync plans and converges the speaker once.
func (r *bgpRunner) sync(ctx context.Context, now time.Time) bgpPlan {
	in := r.inputs(ctx, now)
	plan := planBGP(in)
	plan.objects = in.peers
	if len(plan.desired.Peers) == 0 && r.speaker == nil {
		return plan
	}
	if r.speaker == nil && !r.startSpeaker(ctx, in.self) {
		return plan
	}
	problems, err := r.speaker.Set(ctx, plan.desired)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Applying the BGP plan")
	}
	for _, p := range problems {
		if p.Peer != "" {
			plan.problem(p.Peer, "%s", p.Reason)
		}
	}
	if len(plan.desired.Routes) > 0 {
		r.advertised = true
	}
	return plan
}

func (r *bgpRunner) startSpeaker(ctx context.Context, self *v1.Node) bool {
	logger := klog.FromContext(ctx)
	routerID, ok := internalIPs(self)[4]
	if !ok {
		// BGP identifiers are 32-bit: an IPv6-only node gets one derived from its name.
		routerID = routerIDFromName(self.Name)
	}
	sp, err := bgpspeaker.New(bgpspeaker.Config{
		RouterID: routerID, Restarting: r.restarting,
		Log: func(msg string, kv ...any) { logger.V(2).Info(msg, kv...) },
	})
	if err != nil {
		logger.Error(err, "Creating the BGP speaker")
		return false
	}
	r.speaker = sp
	r.speakerDone = make(chan error, 1)
	// The speaker outlives ctx: on a restart the process exits with its sessions open, so the
	// routers keep forwarding (graceful restart); exit() decides.
	go func() { r.speakerDone <- sp.Run(context.WithoutCancel(ctx)) }()
	logger.Info("BGP speaker started", "routerID", routerID, "restarting", r.restarting)
	return true
}

// inputs reads the caches and works out the drain phase.
func (r *bgpRunner) inputs(ctx context.Context, now time.Time) bgpInputs {
	in := bgpInputs{pools: r.knownPools(), passwords: map[string]secretValue{}, peers: r.peerObjects()}
	self, err := r.lister.nodes.Get(r.cfg.NodeName)
	if err != nil {
		return in
	}
	in.self = self
	services, _ := r.lister.services.List(labels.Everything())
	endpointSlices, _ := r.lister.slices.List(labels.Everything())
	in.vips = desired.BGPVIPs(services, endpointSlices, in.pools)
	for _, p := range in.peers {
		if ns, name, key, ok := passwordRef(p); ok && selects(p.Spec.NodeSelector, self.Labels) {
			// A session that is down may be waiting for a corrected password: read it often.
			ttl := passwordTTL
			if r.lastStates[p.Name] != bgpspeaker.StateEstablished {
				ttl = passwordRetry
			}
			in.passwords[p.Name] = r.password(ctx, ns, name, key, now, ttl)
		}
	}
	reason := drainReason(self)
	if r.stopForGood.Load() && reason == "" {
		reason = "the announcer is stopping for good"
	}
	if reason != "" && r.drainSince.IsZero() && r.advertised {
		klog.FromContext(ctx).Info("Draining: advertising with GRACEFUL_SHUTDOWN before withdrawing", "reason", reason, "wait", r.cfg.BGPDrainTime)
	}
	in.drain, r.drainSince = nextDrain(reason != "", r.advertised, r.drainSince, now, r.cfg.BGPDrainTime)
	if in.drain == drainWithdrawn {
		r.advertised = false
	}
	return in
}

// knownPools are the pools in the cache and, for pools that have left it, the last version seen:
// a pool deleted (or replaced by a GitOps tool) leaves its Services their VIPs, so they stay
// advertised with the settings they had, as layer 2 keeps answering for them.
func (r *bgpRunner) knownPools() map[string]*v1alpha1.IPPool {
	pools := r.lister.poolMap()
	if r.lastPools == nil {
		r.lastPools = map[string]*v1alpha1.IPPool{}
	}
	for name, p := range pools {
		r.lastPools[name] = p
	}
	for name, p := range r.lastPools {
		if _, ok := pools[name]; !ok {
			pools[name] = p
		}
	}
	return pools
}

// nextDrain is the drain phase of a node that must leave (or not), given whether it advertised
// anything since it last drained and since when it drains: a node with nothing advertised has
// nothing to de-prefer, and withdraws at once.
func nextDrain(leaving, advertised bool, since, now time.Time, wait time.Duration) (drainPhase, time.Time) {
	switch {
	case !leaving:
		return notDraining, time.Time{}
	case !advertised && since.IsZero():
		return drainWithdrawn, time.Time{}
	case since.IsZero():
		since = now
	}
	if now.Sub(since) >= wait {
		return drainWithdrawn, since
	}
	return drainAdvertising, since
}

func (r *bgpRunner) peerObjects() []*v1alpha1.BGPPeer {
	return listTyped[v1alpha1.BGPPeer](r.peers)
}

// password reads a BGP password, cached for ttl. A read that fails keeps the last password that
// was read: an API outage or a deleted Secret must not tear down an established session (its
// Cease would flush the node's routes); the failure is only reported.
func (r *bgpRunner) password(ctx context.Context, ns, name, key string, now time.Time, ttl time.Duration) secretValue {
	ref := ns + "/" + name + "/" + key
	cached, ok := r.passwords[ref]
	if ok && now.Sub(cached.at) < ttl {
		return cached.secretValue
	}
	getCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var v secretValue
	secret, err := r.client.CoreV1().Secrets(ns).Get(getCtx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsForbidden(err):
		v.err = fmt.Errorf("cannot read the password Secret %s/%s: forbidden (the announcer reads Secrets only in namespace baremetal-bgp)", ns, name)
	case apierrors.IsNotFound(err):
		v.err = fmt.Errorf("the password Secret %s/%s does not exist", ns, name)
	case err != nil:
		v.err = fmt.Errorf("cannot read the password Secret %s/%s: %w", ns, name, err)
	default:
		pw, ok := secret.Data[key]
		if !ok || len(pw) == 0 {
			v.err = fmt.Errorf("the password Secret %s/%s has no key %q", ns, name, key)
		} else {
			v.value = string(pw)
		}
	}
	if v.err != nil && cached.value != "" {
		v.value, v.stale = cached.value, true
	}
	r.passwords[ref] = cachedSecret{secretValue: v, at: now}
	return v
}

// exit leaves BGP. Told to stop for good, or on a node that is draining, it de-prefers the
// routes (GRACEFUL_SHUTDOWN) for the drain time, withdraws them, closes the sessions with a
// Cease and removes the restart marker. Otherwise it is a restart: it returns with the
// sessions open and the marker in place, so the routers keep the routes as stale until the
// next announcer is back (RFC 4724).
func (r *bgpRunner) exit(ctx context.Context, plan bgpPlan) error {
	logger := klog.FromContext(ctx)
	if r.speaker == nil {
		return nil
	}
	// The kubelet's graceful node shutdown sends SIGTERM, as a rolling update does; it marks the
	// Node NotReady ("node is shutting down") first. Read the Node live: the cache may lag.
	getCtx, cancelGet := context.WithTimeout(ctx, time.Second)
	self, err := r.client.CoreV1().Nodes().Get(getCtx, r.cfg.NodeName, metav1.GetOptions{})
	cancelGet()
	if err != nil && !apierrors.IsNotFound(err) {
		self, err = r.lister.nodes.Get(r.cfg.NodeName)
	}
	forGood := r.stopForGood.Load() || apierrors.IsNotFound(err) ||
		(self != nil && (drainReason(self) != "" || self.DeletionTimestamp != nil || shuttingDown(self)))
	if !forGood {
		logger.Info("Leaving BGP for a restart: sessions stay open until the process exits, so the routers keep the routes (graceful restart)")
		return nil
	}
	r.stopForGood.Store(true)
	deadline := time.Now().Add(r.cfg.BGPDrainTime)
	for {
		plan = r.sync(ctx, time.Now())
		r.report(ctx, plan)
		if len(plan.desired.Routes) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err = r.speaker.Stop(stopCtx)
	r.removeRestartMarker(logger)
	// The entries would go on saying Established; the writer's goroutine has stopped with ctx.
	r.status.removeAll(stopCtx)
	logger.Info("Left BGP for good: routes withdrawn, sessions closed", "err", err)
	return nil
}

func (r *bgpRunner) takeRestartMarker(logger klog.Logger) bool {
	if r.cfg.StateDir == "" {
		return false
	}
	info, err := os.Stat(filepath.Join(r.cfg.StateDir, restartMarker))
	if err != nil {
		return false
	}
	age := time.Since(info.ModTime())
	fresh := age >= 0 && age < markerFresh
	logger.Info("A BGP speaker ran on this node before this announcer", "markerAge", age.Round(time.Millisecond), "gracefulRestart", fresh)
	return fresh
}

// writeRestartMarker refreshes the marker (at most every few seconds: its age only needs to be
// far below markerFresh).
func (r *bgpRunner) writeRestartMarker(logger klog.Logger) {
	if r.cfg.StateDir == "" || time.Since(r.markerWritten) < 10*time.Second {
		return
	}
	if err := os.MkdirAll(r.cfg.StateDir, 0o700); err != nil {
		logger.Error(err, "Writing the BGP restart marker", "dir", r.cfg.StateDir)
		return
	}
	path := filepath.Join(r.cfg.StateDir, restartMarker)
	if err := os.WriteFile(path, []byte(strconv.FormatInt(time.Now().Unix(), 10)+"\n"), 0o600); err != nil {
		logger.Error(err, "Writing the BGP restart marker", "path", path)
		return
	}
	r.markerWritten = time.Now()
}

func (r *bgpRunner) removeRestartMarker(logger klog.Logger) {
	if r.cfg.StateDir == "" {
		return
	}
	if err := os.Remove(filepath.Join(r.cfg.StateDir, restartMarker)); err != nil && !os.IsNotExist(err) {
		logger.Error(err, "Removing the BGP restart marker")
	}
}

// shuttingDown says whether the kubelet reports the node shutting down (graceful node shutdown
// sets the Ready condition's message while it stops the pods).
func shuttingDown(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady && c.Status != v1.ConditionTrue && strings.Contains(strings.ToLower(c.Message), "shutting down") {
			return true
		}
	}
	return false
}

// routerIDFromName derives a BGP identifier for a node without IPv4: 240.0.0.0/4 is reserved and
// never an interface's address, and BGP only needs the identifier to be unique among peers.
func routerIDFromName(name string) netip.Addr {
	var h uint32 = 2166136261
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return netip.AddrFrom4([4]byte{0xf0 | byte(h>>24)&0x0f, byte(h >> 16), byte(h >> 8), byte(h)})
}
