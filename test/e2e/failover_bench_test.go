package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/lab"
)

// BenchmarkFailover measures, in the lab and with the shipped defaults, how long clients lose a
// VIP when its owner fails, over BAREMETAL_FAILOVER_TRIALS trials (default 20) per scenario. The
// VIP is a Service's with a pod on every node and externalTrafficPolicy Local
// (everyNodeService): a connection is answered by the receiving node's own pod through its
// kube-proxy, so the outage is the layer-2 failover alone, and no pod dies with the cut node
// (the demo's one pod might):
//
//   - cable-cut: the owner's LAN cable is cut. From lab-client a TCP connect to VIP:80 starts every
//     10 ms; the outage is the time from the last connect that succeeded before the cut to the
//     first one that succeeded after it. When the cable is plugged back in, remerge is the time
//     until every announcer is active and sees the two others (their metrics, polled every 10 ms
//     over the management link).
//   - sigkill: the owner's announcer is killed with SIGKILL. The node itself still forwards, so
//     the measure is the time from the kill until lab-client's neighbour entry for the VIP
//     points at another node (the successor's gratuitous ARP).
//   - sigterm: the owner's announcer gets SIGTERM (planned hand-off); measured like sigkill, and
//     the TCP outage is reported too.
//
// It reports p50, p99 and max in milliseconds; it never fails on a number. make bench-failover.
func BenchmarkFailover(b *testing.B) {
	trials := 20
	if v, err := strconv.Atoi(os.Getenv("BAREMETAL_FAILOVER_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	vip := everyNodeService(b, "bench-failover")
	b.Run("cable-cut", func(b *testing.B) {
		for range b.N {
			var outages, remerges []time.Duration
			for i := range trials {
				owner := waitSingleOwner(b, vip, 10*time.Second)
				probe := connectProbe(b, lab.ClientNamespace, net.JoinHostPort(vip, "80"), 100*time.Millisecond)
				time.Sleep(300 * time.Millisecond)
				cut := time.Now()
				if err := env.CutCable(owner); err != nil {
					b.Fatal(err)
				}
				waitNeighbourChange(b, vip, owner, 5*time.Second)
				time.Sleep(300 * time.Millisecond)
				attempts := probe()
				restored := time.Now()
				if err := env.RestoreCable(owner); err != nil {
					b.Fatal(err)
				}
				remerges = append(remerges, waitRemerged(b, 10*time.Second).Sub(restored))
				outage, ok := outageAround(attempts, cut)
				if !ok {
					b.Fatalf("trial %d: no successful connect on both sides of the cut", i)
				}
				outages = append(outages, outage)
				time.Sleep(500 * time.Millisecond)
			}
			report(b, "outage", outages)
			report(b, "remerge", remerges)
		}
	})
	for _, sc := range []struct {
		name string
		sig  syscall.Signal
	}{{"sigkill", syscall.SIGKILL}, {"sigterm", syscall.SIGTERM}} {
		b.Run(sc.name, func(b *testing.B) {
			for range b.N {
				var takeovers, outages []time.Duration
				for i := range trials {
					owner := waitSingleOwner(b, vip, 10*time.Second)
					probe := connectProbe(b, lab.ClientNamespace, net.JoinHostPort(vip, "80"), 100*time.Millisecond)
					time.Sleep(300 * time.Millisecond)
					start := time.Now()
					if err := syscallKill(owner, sc.sig); err != nil {
						b.Fatal(err)
					}
					takeovers = append(takeovers, waitNeighbourChange(b, vip, owner, 5*time.Second).Sub(start))
					time.Sleep(300 * time.Millisecond)
					attempts := probe()
					if outage, ok := outageAround(attempts, start); ok {
						outages = append(outages, outage)
					} else {
						b.Fatalf("trial %d: no successful connect on both sides of the signal", i)
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					err := env.Start(ctx, lab.AnnouncerComponent(owner))
					cancel()
					if err != nil {
						b.Fatal(err)
					}
					time.Sleep(time.Second)
				}
				report(b, "takeover", takeovers)
				report(b, "tcp-outage", outages)
			}
		})
	}
}

type attempt struct {
	at time.Time
	ok bool
}

func enterNamespace(name string) error {
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// outageAround is the time from the last successful attempt started before t to the first one
// started after it.
func outageAround(attempts []attempt, t time.Time) (time.Duration, bool) {
	var before, after time.Time
	for _, a := range attempts {
		if !a.ok {
			continue
		}
		if a.at.Before(t) {
			before = a.at
		} else if after.IsZero() {
			after = a.at
		}
	}
	if before.IsZero() || after.IsZero() {
		return 0, false
	}
	return after.Sub(before), true
}

// waitNeighbourChange polls lab-client's neighbour entry for vip until it points at a node other
// than old, and returns when it saw the change.
func waitNeighbourChange(b *testing.B, vip, old string, timeout time.Duration) time.Time {
	b.Helper()
	oldMAC, err := env.NodeMAC(old)
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		out, _ := env.Exec(lab.ClientNamespace, "ip", "neigh", "show", vip, "dev", lab.LANInterface)
		fields := strings.Fields(out)
		if i := slices.Index(fields, "lladdr"); i >= 0 && i+1 < len(fields) && !strings.EqualFold(fields[i+1], oldMAC.String()) {
			return time.Now()
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatalf("lab-client's neighbour entry for %s still points at %s after %s", vip, old, timeout)
	return time.Time{}
}

func report(b *testing.B, what string, d []time.Duration) {
	slices.Sort(d)
	ms := func(p float64) float64 {
		i := int(p * float64(len(d)-1))
		return float64(d[i].Microseconds()) / 1000
	}
	b.ReportMetric(ms(0.5), what+"-ms-p50")
	b.ReportMetric(ms(0.99), what+"-ms-p99")
	b.ReportMetric(ms(1), what+"-ms-max")
	var all []string
	for _, x := range d {
		all = append(all, fmt.Sprint(x.Round(time.Millisecond)))
	}
	b.Logf("%s over %d trials: %s", what, len(d), strings.Join(all, " "))
}

// syscallKill signals a node's announcer without waiting for it to exit, so the measurement starts
// at the signal.
func syscallKill(node string, sig syscall.Signal) error {
	pid, err := env.PID(lab.AnnouncerComponent(node))
	if err != nil {
		return err
	}
	return syscall.Kill(pid, sig)
}

// waitRemerged polls every announcer's metrics until all are active and each sees the two
// others, and returns when it saw that.
func waitRemerged(b *testing.B, timeout time.Duration) time.Time {
	b.Helper()
	client := &http.Client{Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		merged := true
		for _, name := range lab.Nodes {
			h, err := lab.Node(name)
			if err != nil {
				b.Fatal(err)
			}
			state, peers, ok := announcerView(client, h.Management.String())
			if !ok || state != 2 || peers != len(lab.Nodes)-1 {
				merged = false
				break
			}
		}
		if merged {
			return time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("the announcers did not re-merge within %s", timeout)
	return time.Time{}
}

// announcerView reads an announcer's member state and the number of peers connected both ways.
func announcerView(client *http.Client, addr string) (state, peers int, ok bool) {
	resp, err := client.Get("http://" + net.JoinHostPort(addr, "7472") + "/metrics")
	if err != nil {
		return 0, 0, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, false
	}
	found := 0
	for _, line := range strings.Split(string(body), "\n") {
		name, value, _ := strings.Cut(line, " ")
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "baremetal_announcer_member_state":
			state, found = int(v), found+1
		case "baremetal_announcer_peers_connected":
			peers, found = int(v), found+1
		}
	}
	return state, peers, found == 2
}
