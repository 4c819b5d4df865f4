package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

// The benchmark runs each CCM with the flags manifests/install.yaml ships, so the numbers are an
// install's: the API client's QPS and burst in particular decide the burst rate. Only what cannot
// apply on a test machine changes: the serving port (none, or a free one for pprof), and a short
// leader-election lease so switching CCMs does not wait out the default 15 s.

// profileDir, when set (BENCH_PROFILE_DIR), makes the benchmark serve pprof from our CCM and save
// a CPU profile of the 1,000-Service burst and of the 10,000-Service fill, and a heap profile
// after the fill.
var profileDir = os.Getenv("BENCH_PROFILE_DIR")

// shippedCCMArgs are the CCM container's arguments in manifests/install.yaml, adapted as above;
// profilePort > 0 serves pprof there.
func shippedCCMArgs(b *testing.B, profilePort int) []string {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "manifests/install.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	objs, err := framework.DecodeYAML(data)
	if err != nil {
		b.Fatal(err)
	}
	var shipped []string
	for _, obj := range objs {
		var d appsv1.Deployment
		if obj.GetKind() != "Deployment" || runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d) != nil {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if slices.Contains(c.Args, "--cloud-provider=baremetal") {
				shipped = append(shipped, c.Args...)
			}
		}
	}
	if len(shipped) == 0 {
		b.Fatal("manifests/install.yaml has no Deployment running --cloud-provider=baremetal")
	}
	var out []string
	for _, arg := range shipped {
		name, _, _ := strings.Cut(arg, "=")
		switch name {
		case "--bind-address", "--secure-port", "--leader-elect-lease-duration", "--leader-elect-renew-deadline", "--leader-elect-retry-period":
			continue
		}
		out = append(out, arg)
	}
	out = append(out, "--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms", "--v=2")
	if profilePort > 0 {
		out = append(out, "--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", profilePort), "--profiling=true",
			"--authorization-always-allow-paths=/healthz,/readyz,/livez,/debug/pprof/*")
	} else {
		out = append(out, "--secure-port=0")
	}
	return out
}

// freePort is a TCP port on loopback nobody listens on right now.
func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// processUsage is a process' CPU time so far and its memory, from /proc.
type processUsage struct {
	cpu          time.Duration
	rssMiB       float64
	peakRSSMiB   float64
	measuredWell bool
}

func usageOf(pid int) processUsage {
	var u processUsage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u
	}
	// The command name may hold spaces; the fields after it are space-separated.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 13 {
		return u
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	u.cpu = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u
	}
	for _, line := range strings.Split(string(status), "\n") {
		name, value, _ := strings.Cut(line, ":")
		kib, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			u.rssMiB = kib / 1024
		case "VmHWM":
			u.peakRSSMiB = kib / 1024
		}
	}
	u.measuredWell = true
	return u
}

// profiler saves pprof profiles from a CCM serving them on port.
type profiler struct {
	port   int
	client *http.Client
}

func newProfiler(port int) *profiler {
	if port == 0 || profileDir == "" {
		return nil
	}
	return &profiler{port: port, client: &http.Client{
		Timeout: 5 * time.Minute,
		// The CCM's self-signed serving certificate, on loopback.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec
	}}
}

// cpu starts a CPU profile of the next seconds and returns a function that waits for it and
// saves it as name.
func (p *profiler) cpu(b *testing.B, name string, seconds int) (wait func()) {
	if p == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.save(b, fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), name)
	}()
	return func() { <-done }
}

// heap saves a heap profile (after a GC) as name.
func (p *profiler) heap(b *testing.B, name string) {
	if p != nil {
		p.save(b, "/debug/pprof/heap?gc=1", name)
	}
}

func (p *profiler) save(b *testing.B, path, name string) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d%s", p.port, path), nil)
	if err != nil {
		b.Error(err)
		return
	}
	resp, err := p.client.Do(req)
	if err != nil {
		b.Errorf("profile %s: %v", path, err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Errorf("profile %s: HTTP %d %v: %.200s", path, resp.StatusCode, err, data)
		return
	}
	if err := os.MkdirAll(profileDir, 0o755); err != nil {
		b.Error(err)
		return
	}
	out := filepath.Join(profileDir, name)
	if err := os.WriteFile(out, data, 0o644); err != nil {
		b.Error(err)
		return
	}
	b.Logf("saved %s (%d bytes)", out, len(data))
}
