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

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/membership"
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

func TestReadyz(t *testing.T) {
	m := newMetrics()
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		m.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get(); code != 503 {
		t.Errorf("before anything: %d, want 503", code)
	}
	m.setNotReady("waiting for the membership key (Secret kube-system/x)")
	if code, body := get(); code != 503 || !strings.Contains(body, "membership key") {
		t.Errorf("waiting for the key: %d %q", code, body)
	}
	r := newReporter("n1", nil, m)
	r.membership(membership.Joining, 0, 0, 0)
	if code, body := get(); code != 503 || !strings.Contains(body, "joining") {
		t.Errorf("joining: %d %q", code, body)
	}
	r.membership(membership.Active, 2, 2, 1)
	if code, _ := get(); code != 200 {
		t.Errorf("active: %d, want 200", code)
	}
}
