package announcer

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/l2"
	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/membership"
)

// received is a heartbeat that passed authentication, with where and when it arrived.
type received struct {
	h    membership.Heartbeat
	from netip.Addr
	at   time.Time
}

// l2View is what the API says, translated for the core.
type l2View struct {
	members []l2.Member
	vips    []l2.VIP
	// services names, by VIP, the Services ("namespace/name") that use it, for events.
	services map[netip.Addr][]string
}

// layer2 runs one node's layer-2 announcing: it owns the core, the heartbeat transport and the
// speakers, all from one goroutine, so nothing the core decides waits on a lock.
type layer2 struct {
	cfg       Config
	core      *l2.Core
	transport *membership.Transport
	links     *links
	report    *reporter
	nodeAddr  netip.Addr

	view     func() l2View // reads the informers' caches
	apiFresh func() bool
	kick     chan struct{}
	inbox    chan received
	foreign  chan l2.Foreign
}

func newIncarnation() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// run announces until ctx ends, then leaves: it stops answering and tells the peers, naming
// what it releases, so they take over at once.
func (r *layer2) run(ctx context.Context) error {
	recvCtx, stopRecv := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRecv()
	recvDone := make(chan error, 1)
	go func() {
		recvDone <- r.transport.Receive(recvCtx, func(h membership.Heartbeat, from netip.AddrPort) {
			select {
			case r.inbox <- received{h: h, from: from.Addr(), at: time.Now()}:
			default:
				r.report.metrics.droppedHeartbeats.WithLabelValues("overload").Inc()
			}
		}, func(err error, from netip.AddrPort) {
			r.report.droppedHeartbeat(ctx, err, from)
		})
	}()
	speakerCtx, stopSpeakers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSpeakers()
	defer r.links.closeAll()

	heartbeat := time.NewTicker(r.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	linkCheck := time.NewTicker(20 * time.Millisecond)
	defer linkCheck.Stop()
	resync := time.NewTicker(time.Second)
	defer resync.Stop()
	deadline := time.NewTimer(time.Hour)
	defer deadline.Stop()

	var view l2View
	fresh := r.apiFresh()
	refresh := func() {
		view = r.view()
		fresh = r.apiFresh()
		r.core.SetView(view.members, view.vips, fresh)
	}
	refresh()
	r.syncLinks(speakerCtx, view)
	for {
		select {
		case <-ctx.Done():
			r.leave(speakerCtx, view)
			stopRecv()
			if err := <-recvDone; err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case err := <-recvDone:
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case m := <-r.inbox:
			changed, err := r.core.Receive(m.at, m.h, m.from)
			if err != nil {
				r.report.droppedHeartbeat(ctx, err, netip.AddrPortFrom(m.from, 0))
			}
			if !changed {
				continue
			}
		case f := <-r.foreign:
			r.core.Observe(time.Now(), f)
		case <-heartbeat.C:
			r.sendHeartbeats(ctx)
			if fresh != r.apiFresh() {
				refresh()
			}
		case <-linkCheck.C:
			r.syncLinks(speakerCtx, view)
		case <-r.kick:
			refresh()
			r.syncLinks(speakerCtx, view)
		case <-resync.C:
			refresh()
		case <-deadline.C:
		}
		r.step(speakerCtx, view)
		if next := r.core.NextDeadline(); !next.IsZero() {
			deadline.Reset(max(time.Until(next), time.Millisecond))
		}
	}
}

// syncLinks opens, reopens and closes speakers for the links the VIPs need, and tells the core
// what this node can answer on.
func (r *layer2) syncLinks(ctx context.Context, view l2View) {
	var want []string
	seen := map[string]bool{}
	for _, v := range view.vips {
		for _, l := range v.Links {
			if !seen[l] {
				seen[l] = true
				want = append(want, l)
			}
		}
	}
	cannot, macs, primaryUp := r.links.sync(ctx, want)
	r.core.SetLinks(cannot, macs)
	r.core.SetPrimaryLink(time.Now(), primaryUp)
}

// step runs the core and carries out its decisions.
func (r *layer2) step(ctx context.Context, view l2View) {
	out := r.core.Step(time.Now())
	r.links.apply(r.core.Owned(), r.core.Watching())
	for _, p := range out.Probes {
		r.links.probe(ctx, p)
	}
	for _, p := range out.Reannounce {
		r.links.reannounce(p)
	}
	r.report.events(ctx, out.Events, view, r.core.Owned(), func(name string) string {
		if name == "" {
			return r.links.defaultIf
		}
		return name
	})
	alive, connected := r.core.Peers(time.Now())
	r.report.membership(r.core.State(), alive, connected, len(r.core.Owned()))
}

func (r *layer2) sendHeartbeats(ctx context.Context) {
	for _, o := range r.core.Heartbeats(time.Now()) {
		to, ok := r.peerAddr(o.Addrs)
		if !ok {
			continue
		}
		if err := r.transport.Send(o.Heartbeat, to); err != nil {
			klog.FromContext(ctx).V(4).Info("Sending heartbeat", "err", err)
		}
	}
}

// peerAddr picks the peer address of our socket's family.
func (r *layer2) peerAddr(addrs []netip.Addr) (netip.AddrPort, bool) {
	for _, a := range addrs {
		if a.Is4() == r.nodeAddr.Is4() {
			return netip.AddrPortFrom(a, r.cfg.HeartbeatPort), true
		}
	}
	return netip.AddrPort{}, false
}

func (r *layer2) leave(ctx context.Context, view l2View) {
	r.core.Leave()
	r.step(ctx, view)
	// Three copies, in case one is lost; the peers ignore repeats.
	for range 3 {
		r.sendHeartbeats(ctx)
	}
	klog.FromContext(ctx).Info("Left: VIPs handed over")
}
