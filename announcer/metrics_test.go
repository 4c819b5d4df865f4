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
func (f *fakeSpeaker) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeSpeaker) Stats() speakerStats           { return f.stats }

func TestMetricsExposeSpeakerCounters(t *testing.T) {
	m := newMetrics()
	sp := &fakeSpeaker{stats: speakerStats{Requests: 7, Replies: 5, Gratuitous: 3}}
	m.watch("ARP/eth0", sp)
	m.vipsOwned.Set(2)
	m.failureDetections.Inc()
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
		`baremetal_announcer_vips_owned 2`,
		`baremetal_announcer_failure_detections_total 1`,
		`baremetal_announcer_ownership_changes_total 0`,
		`baremetal_announcer_malformed_heartbeats_total 0`,
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
