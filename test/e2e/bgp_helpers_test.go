package e2e

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/lab"
)

// The BGP tests use what `lab.Up` applies from examples/bgp.yaml: BGPPeers lab-router (IPv4)
// and lab-router-v6, the pool bgp-pool (198.18.2.0/24, 2001:db8:0:3::/120, communities
// 64513:100 and 64513:1:1) and the dual-stack Service bgp-demo in front of the demo pod.
const (
	bgpPool    = "bgp-pool"
	bgpPeer4   = "lab-router"
	poolAnnot  = "baremetal.dev/pool"
	bgpSession = 20 * time.Second // an announcer's sessions are up well within this (target: 3 s)
	bgpRoute   = 10 * time.Second // a VIP's route reaches the router well within this (target: 200 ms)
	// gshutCommunity is GRACEFUL_SHUTDOWN (65535:0, RFC 8326) as FRR prints it.
	gshutCommunity = "graceful-shutdown"
)

var allFamilies = []int{4, 6}

// bgpReady waits until every node has its IPv4 and IPv6 sessions with lab-router Established:
// the state each BGP test starts from.
func bgpReady(t testing.TB) {
	t.Helper()
	if env.Router() == nil {
		t.Fatal("the lab has no handle on lab-router's FRR (lab.Up starts it; an adopted lab has none)")
	}
	if err := env.WaitSessions(context.Background(), bgpSession, allFamilies, lab.Nodes...); err != nil {
		t.Fatal(err)
	}
}

// bgpDemoVIP is the bgp-demo Service's VIP of a family (4 or 6).
func bgpDemoVIP(t testing.TB, family int) netip.Addr {
	t.Helper()
	for _, a := range env.BGPDemoVIPs {
		if (family == 4) == a.Is4() {
			return a
		}
	}
	t.Fatalf("Service %s has no IPv%d VIP (VIPs %v)", lab.BGPDemoService, family, env.BGPDemoVIPs)
	return netip.Addr{}
}

// waitVia waits until lab-router routes vip through exactly these nodes, in BGP and in its
// kernel (no nodes: until the route is gone from both).
func waitVia(t testing.TB, vip netip.Addr, timeout time.Duration, nodes ...string) lab.RouteState {
	t.Helper()
	st, err := env.WaitRouteVia(context.Background(), lab.HostRoute(vip), timeout, nodes...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// routeState reads lab-router's state for vip's host route.
func routeState(t testing.TB, vip netip.Addr) lab.RouteState {
	t.Helper()
	st, err := env.RouteState(context.Background(), lab.HostRoute(vip))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// bgpService creates a LoadBalancer Service in front of the demo pods with VIPs from pool,
// deleted when the test ends, and returns its VIPs once it has want of them.
func bgpService(t *testing.T, name, pool string, want int, mutate func(*v1.Service)) []netip.Addr {
	t.Helper()
	l2Service(t, name, func(s *v1.Service) {
		s.Annotations = map[string]string{poolAnnot: pool}
		if mutate != nil {
			mutate(s)
		}
	})
	var vips []netip.Addr
	for _, ip := range waitIngress(t, name, want) {
		vips = append(vips, netip.MustParseAddr(ip))
	}
	return vips
}

// applyPool creates (or updates) an IPPool from YAML; it is deleted when the test ends, after
// the Services registered later are gone (cleanups run last-in first-out).
func applyPool(t *testing.T, name, yaml string) {
	t.Helper()
	objs, err := framework.DecodeYAML([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := framework.Apply(context.Background(), env.Config, objs...); err != nil {
		t.Fatalf("creating IPPool %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			list, err := env.Client.CoreV1().Services("default").List(ctx, metav1.ListOptions{})
			if err == nil && !slices.ContainsFunc(list.Items, func(s v1.Service) bool { return s.Annotations[poolAnnot] == name }) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := dynamicClient(t).Resource(v1alpha1.IPPoolResource).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting IPPool %s: %v", name, err)
		}
	})
}

func dynamicClient(t testing.TB) dynamic.Interface {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return dyn
}

// peerTimers reads a BGPPeer's holdTime and gracefulRestart.restartTime (the API's defaults
// when unset: 90 s and 120 s).
func peerTimers(t testing.TB, name string) (hold, restart time.Duration) {
	t.Helper()
	obj, err := dynamicClient(t).Resource(v1alpha1.BGPPeerResource).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading BGPPeer %s: %v", name, err)
	}
	duration := func(def time.Duration, fields ...string) time.Duration {
		s, found, _ := unstructured.NestedString(obj.Object, fields...)
		if !found {
			return def
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("BGPPeer %s: %v: %v", name, fields, err)
		}
		return d
	}
	return duration(90*time.Second, "spec", "holdTime"), duration(120*time.Second, "spec", "gracefulRestart", "restartTime")
}

// kwokPod creates a pod bound to node (kwok makes it Running and Ready at once), deleted when
// the test ends.
func kwokPod(t *testing.T, name, node, app string) {
	t.Helper()
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": app}},
		Spec: v1.PodSpec{
			NodeName:    node,
			Containers:  []v1.Container{{Name: "web", Image: "nginx:1.27-alpine"}},
			Tolerations: []v1.Toleration{{Operator: v1.TolerationOpExists}},
		},
	}
	if _, err := env.Client.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deletePod(name) })
}

// setUnschedulable cordons (true) or uncordons a Node, as kubectl cordon does.
func setUnschedulable(t testing.TB, node string, on bool) {
	t.Helper()
	patch := []byte(`{"spec":{"unschedulable":false}}`)
	if on {
		patch = []byte(`{"spec":{"unschedulable":true}}`)
	}
	if _, err := env.Client.CoreV1().Nodes().Patch(context.Background(), node, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("cordon %s = %v: %v", node, on, err)
	}
}

// connectProbe connects to target every 10 ms from threads moved into network namespace ns (so
// the sockets belong to it) until the returned function is called, which returns every attempt
// sorted by start; a connect not done within timeout fails.
func connectProbe(t testing.TB, ns, target string, timeout time.Duration) func() []attempt {
	t.Helper()
	const workers = 24
	jobs := make(chan time.Time, workers)
	results := make(chan attempt, 1<<16)
	var wg sync.WaitGroup
	ready := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			// The thread stays in ns and dies with the goroutine.
			runtime.LockOSThread()
			if err := enterNamespace(ns); err != nil {
				ready <- err
				return
			}
			ready <- nil
			d := net.Dialer{Timeout: timeout}
			for at := range jobs {
				conn, err := d.Dial("tcp", target)
				if err == nil {
					conn.Close()
				}
				results <- attempt{at: at, ok: err == nil}
			}
		})
	}
	for range workers {
		if err := <-ready; err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				close(jobs)
				return
			case now := <-tick.C:
				select {
				case jobs <- now:
				default: // every worker busy: the attempt counts as failed
					results <- attempt{at: now}
				}
			}
		}
	}()
	var once sync.Once
	var out []attempt
	finish := func() []attempt {
		once.Do(func() {
			close(stop)
			<-done
			wg.Wait()
			close(results)
			for a := range results {
				out = append(out, a)
			}
			slices.SortFunc(out, func(x, y attempt) int { return x.at.Compare(y.at) })
		})
		return out
	}
	t.Cleanup(func() { finish() })
	return finish
}
