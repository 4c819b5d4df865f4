package integration

import (
	"bufio"
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
)

// writeVerbs are the API verbs that change state.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true, "APPLY": true}

// apiWrites reads the API server's apiserver_request_total counters and sums the write requests
// by resource ("services", "services/status", "events", ...). Leases are left out: leader
// election renews them on a clock, not per Service.
func apiWrites(b *testing.B) map[string]float64 {
	b.Helper()
	raw, err := env.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatalf("reading the API server's metrics: %v", err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labelsEnd := strings.LastIndexByte(line, '}')
		labels := parseLabels(line[len("apiserver_request_total{"):labelsEnd])
		if !writeVerbs[labels["verb"]] || labels["resource"] == "leases" {
			continue
		}
		value, err := strconv.ParseFloat(strings.TrimSpace(line[labelsEnd+1:]), 64)
		if err != nil {
			continue
		}
		key := labels["resource"]
		if sub := labels["subresource"]; sub != "" {
			key += "/" + sub
		}
		out[key] += value
	}
	return out
}

// parseLabels parses `a="x",b="y"` (label values in these counters hold no quotes or commas).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		if ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// reportWrites reports the API writes per Service between two readings, in total and for the
// resources a Service's allocation touches.
func reportWrites(b *testing.B, before, after map[string]float64, services int) {
	var total float64
	for key, v := range after {
		delta := v - before[key]
		total += delta
		switch key {
		case "services", "services/status", "events", "ippools/status":
			b.ReportMetric(delta/float64(services), "writes-"+strings.ReplaceAll(key, "/", "-")+"/svc")
		}
	}
	b.ReportMetric(total/float64(services), "api-writes/svc")
}
