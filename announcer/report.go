package announcer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/l2"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/membership"
)

// warnEvery bounds how often one wire conflict (a VIP and a MAC) is reported as an event.
const warnEvery = 10 * time.Minute

// reporter turns the core's events into logs, Kubernetes events and metrics.
type reporter struct {
	self     string
	recorder record.EventRecorder
	metrics  *metrics

	mu     sync.Mutex
	warned map[string]time.Time
}

func newReporter(self string, recorder record.EventRecorder, m *metrics) *reporter {
	return &reporter{self: self, recorder: recorder, metrics: m, warned: map[string]time.Time{}}
}

// events reports the core's events; iface resolves a link's interface name ("" is the
// interface holding the node's IP).
func (r *reporter) events(ctx context.Context, events []l2.Event, view l2View, owned map[netip.Addr]l2.Owned, iface func(string) string) {
	logger := klog.FromContext(ctx)
	for _, e := range events {
		switch e.Kind {
		case l2.Took:
			r.metrics.ownershipChanges.Inc()
			links := owned[e.VIP].Links
			protocol, ifaces := "", make([]string, 0, len(links))
			for _, l := range links {
				p, name, _ := strings.Cut(l, "/")
				protocol = p
				ifaces = append(ifaces, iface(name))
			}
			logger.Info("Announcing", "vip", e.VIP, "generation", e.Gen, "protocol", protocol, "interfaces", ifaces, "services", view.services[e.VIP])
			r.onServices(view, e.VIP, v1.EventTypeNormal, "Announcing", fmt.Sprintf("announcing %s from %s via %s on %s", e.VIP, r.self, protocol, strings.Join(ifaces, ", ")))
		case l2.Yielded:
			r.metrics.ownershipChanges.Inc()
			logger.Info("Stopped announcing", "vip", e.VIP, "newOwner", e.Peer, "reason", e.Reason)
		case l2.ProbeAnswered:
			r.metrics.wireConflicts.WithLabelValues("probe-answered").Inc()
			logger.V(2).Info("Takeover probe answered: waiting", "vip", e.VIP, "by", e.Peer, "mac", e.MAC.String())
		case l2.KernelAnswers:
			r.metrics.wireConflicts.WithLabelValues("kernel").Inc()
			if r.firstIn(e.VIP.String()+"/"+e.Peer+"/kernel", warnEvery) {
				msg := fmt.Sprintf("node %s (MAC %s) answers ARP/NDP for %s although %s announces it: its kernel %s. If kube-proxy runs in IPVS mode there, set ipvs.strictARP: true", e.Peer, e.MAC, e.VIP, r.self, e.Reason)
				logger.Info("Another node's kernel answers for a VIP", "vip", e.VIP, "node", e.Peer, "mac", e.MAC.String(), "reason", e.Reason)
				r.onServices(view, e.VIP, v1.EventTypeWarning, "KernelAnswersARP", msg)
			}
		case l2.ForeignAnswer:
			r.metrics.wireConflicts.WithLabelValues("foreign").Inc()
			if r.firstIn(e.VIP.String()+"/"+e.MAC.String()+"/foreign", warnEvery) {
				msg := fmt.Sprintf("a host that is not a cluster node (MAC %s) answers for %s, which %s announces: remove the address from that host, or from the IPPool", e.MAC, e.VIP, r.self)
				logger.Info("A host outside the cluster answers for a VIP", "vip", e.VIP, "mac", e.MAC.String())
				r.onServices(view, e.VIP, v1.EventTypeWarning, "AddressConflict", msg)
			}
		case l2.NoQuorum:
			logger.Info("Lost the quorum: keeping what this node announces, taking nothing over", "detail", e.Reason)
		}
	}
}

func (r *reporter) onServices(view l2View, vip netip.Addr, kind, reason, msg string) {
	if r.recorder == nil {
		return
	}
	for _, key := range view.services[vip] {
		ns, name, _ := strings.Cut(key, "/")
		ref := &v1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: ns, Name: name}
		r.recorder.Event(ref, kind, reason, msg)
	}
}

func (r *reporter) firstIn(key string, d time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if last, ok := r.warned[key]; ok && now.Sub(last) < d {
		return false
	}
	if len(r.warned) > 10000 {
		clear(r.warned)
	}
	r.warned[key] = now
	return true
}

// droppedHeartbeat counts a datagram that was not accepted, by reason.
func (r *reporter) droppedHeartbeat(ctx context.Context, err error, from netip.AddrPort) {
	reason := "other"
	for _, c := range []struct {
		err    error
		reason string
	}{
		{membership.ErrUnauthenticated, "unauthenticated"}, {membership.ErrMalformed, "malformed"},
		{membership.ErrNotMember, "not-member"}, {membership.ErrSource, "wrong-source"},
		{membership.ErrStale, "stale"}, {membership.ErrUnproven, "unproven"},
		{membership.ErrNotForUs, "not-for-us"}, {membership.ErrOwnMessage, "own"},
	} {
		if errors.Is(err, c.err) {
			reason = c.reason
			break
		}
	}
	r.metrics.droppedHeartbeats.WithLabelValues(reason).Inc()
	klog.FromContext(ctx).V(4).Info("Dropped a heartbeat", "from", from, "reason", reason, "err", err)
}

func (r *reporter) membership(state membership.State, alive, connected, owned int) {
	r.metrics.state.Set(float64(state))
	switch state {
	case membership.Active:
		r.metrics.setNotReady("")
	case membership.Leaving:
		r.metrics.setNotReady("leaving: handing the VIPs over")
	default:
		r.metrics.setNotReady("joining: listening to the other announcers before owning VIPs")
	}
	r.metrics.peersAlive.Set(float64(alive))
	r.metrics.peersConnected.Set(float64(connected))
	r.metrics.vipsOwned.Set(float64(owned))
}
