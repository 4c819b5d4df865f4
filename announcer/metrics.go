package announcer

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// metrics are the announcer's Prometheus metrics, on their own registry.
type metrics struct {
	registry            *prometheus.Registry
	vipsOwned           prometheus.Gauge
	ownershipChanges    prometheus.Counter
	failureDetections   prometheus.Counter
	malformedHeartbeats prometheus.Counter
	peersActive         prometheus.Gauge
	state               prometheus.Gauge
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
		failureDetections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "baremetal_announcer_failure_detections_total", Help: "Peers declared dead after missing heartbeats.",
		}),
		malformedHeartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "baremetal_announcer_malformed_heartbeats_total", Help: "Heartbeat datagrams dropped because they did not parse.",
		}),
		peersActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "baremetal_announcer_peers_active", Help: "Other announcers heard from within the failure timeout and active.",
		}),
		state: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "baremetal_announcer_member_state", Help: "This announcer's membership state: 1 joining (owns nothing yet), 2 active, 3 leaving.",
		}),
	}
	m.registry.MustRegister(m.vipsOwned, m.ownershipChanges, m.failureDetections, m.malformedHeartbeats, m.peersActive, m.state)
	return m
}

// watch exports a speaker's packet counters, labelled by protocol and interface.
func (m *metrics) watch(key string, sp speaker) {
	protocol, iface, _ := strings.Cut(key, "/")
	labels := prometheus.Labels{"protocol": protocol, "interface": iface}
	for _, c := range []struct {
		name, help string
		value      func(speakerStats) uint64
	}{
		{"baremetal_announcer_requests_total", "ARP requests / Neighbor Solicitations seen for owned VIPs.", func(s speakerStats) uint64 { return s.Requests }},
		{"baremetal_announcer_replies_total", "ARP replies / Neighbor Advertisements sent in answer.", func(s speakerStats) uint64 { return s.Replies }},
		{"baremetal_announcer_gratuitous_total", "Gratuitous ARPs / unsolicited Neighbor Advertisements sent.", func(s speakerStats) uint64 { return s.Gratuitous }},
	} {
		value := c.value
		_ = m.registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help, ConstLabels: labels},
			func() float64 { return float64(value(sp.Stats())) }))
	}
}

func (m *metrics) serve(ctx context.Context, addr string) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		klog.FromContext(ctx).Error(err, "Metrics server stopped", "address", addr)
	}
}
