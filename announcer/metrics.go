package announcer

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/bgpspeaker"
)

// metrics are the announcer's Prometheus metrics, on their own registry.
type metrics struct {
	registry          *prometheus.Registry
	vipsOwned         prometheus.Gauge
	ownershipChanges  prometheus.Counter
	droppedHeartbeats *prometheus.CounterVec
	wireConflicts     *prometheus.CounterVec
	peersAlive        prometheus.Gauge
	peersConnected    prometheus.Gauge
	state             prometheus.Gauge
	bgpEstablished    *prometheus.GaugeVec
	bgpAdvertised     *prometheus.GaugeVec
	bgpUpdates        *prometheus.GaugeVec
	bgpErrors         *prometheus.GaugeVec
	// notReady is why the announcer is not ready ("" once it is); /readyz answers it.
	notReady atomic.Pointer[string]
}

// setNotReady records why the announcer is not ready; "" marks it ready.
func (m *metrics) setNotReady(reason string) { m.notReady.Store(&reason) }

// readyz answers 200 once the announcer takes part in announcing, else 503 with the reason.
func (m *metrics) readyz(w http.ResponseWriter, _ *http.Request) {
	reason := "starting"
	if p := m.notReady.Load(); p != nil {
		reason = *p
	}
	if reason != "" {
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		vipsOwned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "baremetal_announcer_vips_owned", Help: "VIPs this node answers for.",
		}),
		ownershipChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "baremetal_announcer_ownership_changes_total", Help: "VIPs this node started or stopped answering for.",
		}),
		droppedHeartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baremetal_announcer_heartbeats_dropped_total",
			Help: "Heartbeat datagrams dropped, by reason: unauthenticated (no valid tag under the membership key), malformed, not-member, wrong-source, stale (replayed), unproven (a new incarnation without a fresh echo), not-for-us, own (our own datagram looped back), overload, other.",
		}, []string{"reason"}),
		wireConflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baremetal_announcer_wire_conflicts_total",
			Help: "Other MACs seen answering for VIPs: probe-answered (a takeover waited), kernel (a node's kernel answers ARP/NDP for a VIP it does not own: kube-proxy IPVS without strictARP), foreign (a host outside the cluster).",
		}, []string{"kind"}),
		peersAlive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "baremetal_announcer_peers_alive", Help: "Other announcers heard from within the failure timeout.",
		}),
		peersConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "baremetal_announcer_peers_connected", Help: "Other announcers heard from that also hear this one (two-way); takeovers need more than half of the members.",
		}),
		state: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "baremetal_announcer_member_state", Help: "This announcer's membership state: 1 joining (owns nothing yet), 2 active, 3 leaving.",
		}),
	}
	m.bgpEstablished = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "baremetal_announcer_bgp_session_established", Help: "1 while this node's BGP session with the peer is Established, else 0.",
	}, []string{"peer"})
	m.bgpAdvertised = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "baremetal_announcer_bgp_prefixes_advertised", Help: "Prefixes this node advertises to the peer.",
	}, []string{"peer"})
	m.bgpUpdates = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "baremetal_announcer_bgp_updates_sent", Help: "BGP UPDATE messages sent to the peer by the current session speaker (a counter that restarts with the announcer).",
	}, []string{"peer"})
	m.bgpErrors = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "baremetal_announcer_bgp_session_error",
		Help: "1 while the session with the peer has an error, by kind: no-answer, refused, reset, notification, password, other. The words are in the BGPPeer's status.",
	}, []string{"peer", "kind"})
	m.registry.MustRegister(m.vipsOwned, m.ownershipChanges, m.droppedHeartbeats, m.wireConflicts, m.peersAlive, m.peersConnected, m.state,
		m.bgpEstablished, m.bgpAdvertised, m.bgpUpdates, m.bgpErrors)
	return m
}

// watch exports a speaker's packet counters, labelled by protocol and interface. A reopened
// speaker replaces the counters of the one before it.
func (m *metrics) watch(protocol, iface string, sp speaker) {
	labels := prometheus.Labels{"protocol": protocol, "interface": iface}
	for _, c := range []struct {
		name, help string
		value      func(speakerStats) uint64
	}{
		{"baremetal_announcer_requests_total", "ARP requests / Neighbor Solicitations seen for owned VIPs.", func(s speakerStats) uint64 { return s.Requests }},
		{"baremetal_announcer_replies_total", "ARP replies / Neighbor Advertisements sent in answer.", func(s speakerStats) uint64 { return s.Replies }},
		{"baremetal_announcer_gratuitous_total", "Gratuitous ARPs / unsolicited Neighbor Advertisements sent.", func(s speakerStats) uint64 { return s.Gratuitous }},
		{"baremetal_announcer_probes_total", "ARP probes / DAD solicitations sent before takeovers and to check owned VIPs.", func(s speakerStats) uint64 { return s.Probes }},
	} {
		value := c.value
		collector := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help, ConstLabels: labels},
			func() float64 { return float64(value(sp.Stats())) })
		if err := m.registry.Register(collector); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				m.registry.Unregister(are.ExistingCollector)
				_ = m.registry.Register(collector)
			}
		}
	}
}

func (m *metrics) serve(ctx context.Context, addr string) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/readyz", m.readyz)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		klog.FromContext(ctx).Error(err, "Metrics server stopped", "address", addr)
	}
}

// bgpSessions exports the sessions of the peers that select this node; other peers' series go.
func (m *metrics) bgpSessions(statuses map[string]bgpspeaker.PeerStatus, peers []string) {
	m.bgpEstablished.Reset()
	m.bgpAdvertised.Reset()
	m.bgpUpdates.Reset()
	m.bgpErrors.Reset()
	for _, name := range peers {
		st := statuses[name]
		up := 0.0
		if st.State == bgpspeaker.StateEstablished {
			up = 1
		}
		m.bgpEstablished.WithLabelValues(name).Set(up)
		m.bgpAdvertised.WithLabelValues(name).Set(float64(st.Advertised))
		m.bgpUpdates.WithLabelValues(name).Set(float64(st.UpdatesSent))
		if st.LastError != "" {
			m.bgpErrors.WithLabelValues(name, errorKind(st.LastError)).Set(1)
		}
	}
}

// errorKind classifies a session's last error for a metric label: a fixed set, because the words
// come partly from the router (a shutdown message) and would make any label value possible.
func errorKind(lastError string) string {
	low := strings.ToLower(lastError)
	switch {
	case strings.Contains(low, "md5") || strings.Contains(low, "password"):
		return "password"
	case strings.HasPrefix(low, "notification"):
		return "notification"
	case strings.Contains(low, "no answer"):
		return "no-answer"
	case strings.Contains(low, "refused"):
		return "refused"
	case strings.Contains(low, "reset"):
		return "reset"
	}
	return "other"
}
