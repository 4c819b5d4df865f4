package announcer

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type fakeSpeaker struct{ stats speakerStats }

func (f *fakeSpeaker) Set([]netip.Addr)              {}
func (f *fakeSpeaker) Watch([]netip.Addr)            {}
func (f *fakeSpeaker) Probe(netip.Addr) error        { return nil }
func (f *fakeSpeaker) Close() error                  { return nil }
func (f *fakeSpeaker) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeSpeaker) Stats() speakerStats           { return f.stats }

func TestMetricsExposeSpeakerCounters(t *testing.T) {
	m := newMetrics()
	old := &fakeSpeaker{stats: speakerStats{Requests: 100}}
	m.watch("ARP", "eth0", old)
	// A reopened speaker (the interface's MAC changed) replaces the counters of the old one.
	sp := &fakeSpeaker{stats: speakerStats{Requests: 7, Replies: 5, Gratuitous: 3, Probes: 4}}
	m.watch("ARP", "eth0", sp)
	m.vipsOwned.Set(2)
	m.droppedHeartbeats.WithLabelValues("unauthenticated").Add(3)
	m.wireConflicts.WithLabelValues("kernel").Inc()
	srv := httptest.NewServer(promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`baremetal_announcer_requests_total{interface="eth0",protocol="ARP"} 7`,
		`baremetal_announcer_replies_total{interface="eth0",protocol="ARP"} 5`,
		`baremetal_announcer_gratuitous_total{interface="eth0",protocol="ARP"} 3`,
		`baremetal_announcer_probes_total{interface="eth0",protocol="ARP"} 4`,
		`baremetal_announcer_vips_owned 2`,
		`baremetal_announcer_heartbeats_dropped_total{reason="unauthenticated"} 3`,
		`baremetal_announcer_wire_conflicts_total{kind="kernel"} 1`,
		`baremetal_announcer_ownership_changes_total 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Counters follow the speaker.
	sp.stats.Replies = 6
	resp2, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	body, _ = io.ReadAll(resp2.Body)
	if !strings.Contains(string(body), `baremetal_announcer_replies_total{interface="eth0",protocol="ARP"} 6`) {
		t.Error("the replies counter did not follow the speaker")
	}
}
