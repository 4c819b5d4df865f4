package integration

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

// BenchmarkTimeToExternalIP measures, with a watch, the time from a Service's creation to the
// first watch event carrying its VIP, on two clocks: from just before the Create call (ms-p50,
// the clock MetalLB comparisons in docs/benchmarks.md use) and from the Create call returning
// (ms-p50-from-return). It does so for Services created one after another, and for a burst
// created at once (with the time for all to be assigned); it counts the API writes per Service
// from the API server's own request counters (the harness' Create included); and it measures
// how fast a new Service gets its VIP after a CCM restart with 10,000 Services. It reports
// numbers; it never fails on them. Run with -benchtime=1x (make bench-time-to-ip).
func BenchmarkTimeToExternalIP(b *testing.B) {
	// settle lets the writes that follow a Service's VIP (a second sync, its events) land before
	// they are counted.
	const settle = 3 * time.Second
	// Three Ready Nodes, as in a real cluster: without any, the service controller adds an
	// UnAvailableLoadBalancer warning to every sync, and the writes counted would not be a
	// cluster's.
	benchNodes(b, 3)
	port := 0
	if profileDir != "" {
		port = freePort(b)
	}
	ours := func() {
		env.StopCCM()
		if err := env.StartCCM(shippedCCMArgs(b, port)...); err != nil {
			b.Fatal(err)
		}
		// Not timed: a new CCM first waits for the old one's Lease to expire.
		_, stop := measureSequential(b, fmt.Sprintf("bench-warmup-%d", time.Now().UnixNano()%1e6), 1)
		stop()
	}
	ours()
	defer func() {
		env.StopCCM()
		if err := env.StartCCM(framework.CCMArgs()...); err != nil {
			b.Fatal(err)
		}
	}()
	prof := newProfiler(port)
	b.Run("sequential-200", func(b *testing.B) { benchSequential(b, "bench-seq", settle) })
	b.Run("burst-1000", func(b *testing.B) {
		wait := prof.cpu(b, "cpu-burst-1000.pprof", 15)
		benchBurst(b, "bench-burst", settle)
		wait()
	})
	// The upstream floor, in the same run: the same command and flags with a provider whose
	// EnsureLoadBalancer returns at once (test/integration/floorccm).
	b.Run("floor-sequential-200", func(b *testing.B) {
		withFloorCCM(b, ours, func() { benchSequential(b, "bench-floor-seq", settle) })
	})
	b.Run("floor-burst-1000", func(b *testing.B) {
		withFloorCCM(b, ours, func() { benchBurst(b, "bench-floor-burst", settle) })
	})
	b.Run("restart-with-10000", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			measureRestart(b, fmt.Sprintf("bench-restart-%d", i), 10000, port, prof)
		}
	})
}

// benchSequential reports 200 Services created back to back: latencies, then the writes counted
// once settle has passed.
func benchSequential(b *testing.B, prefix string, settle time.Duration) {
	for i := 0; i < b.N; i++ {
		before := apiWrites(b)
		lat, stop := measureSequential(b, fmt.Sprintf("%s-%d", prefix, i), 200)
		reportPercentiles(b, lat)
		time.Sleep(settle)
		reportWrites(b, before, apiWrites(b), 200)
		stop()
	}
}

// benchBurst reports 1,000 Services created at once, as benchSequential does, and the rate.
func benchBurst(b *testing.B, prefix string, settle time.Duration) {
	for i := 0; i < b.N; i++ {
		before := apiWrites(b)
		total, lat, stop := measureBurst(b, fmt.Sprintf("%s-%d", prefix, i), 1000)
		reportPercentiles(b, lat)
		b.ReportMetric(total.Seconds(), "s-all-assigned")
		b.ReportMetric(float64(len(lat.fromStart))/total.Seconds(), "services/s")
		time.Sleep(settle)
		reportWrites(b, before, apiWrites(b), 1000)
		stop()
	}
}

// measureSequential creates n Services one after another; stop tears the namespace down, once
// the writes that follow have been counted.
func measureSequential(b *testing.B, ns string, n int) (latencies, func()) {
	created, assigned, stop := benchNamespace(b, ns, "198.18.128.0/17")
	for i := range n {
		name := fmt.Sprintf("svc-%04d", i)
		start := time.Now()
		if _, err := env.Client.CoreV1().Services(ns).Create(context.Background(), benchService(ns, name), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		created(name, start)
	}
	return assigned(n), stop
}

func measureBurst(b *testing.B, ns string, n int) (time.Duration, latencies, func()) {
	created, assigned, stop := benchNamespace(b, ns, "198.18.128.0/17")
	start := time.Now()
	createBurst(b, ns, n, created)
	lat := assigned(n)
	return time.Since(start), lat, stop
}

// createBurst creates n Services from 16 concurrent clients, recording each creation.
func createBurst(b *testing.B, ns string, n int, created func(string, time.Time)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("svc-%05d", i)
			start := time.Now()
			if _, err := env.Client.CoreV1().Services(ns).Create(context.Background(), benchService(ns, name), metav1.CreateOptions{}); err != nil {
				b.Error(err)
				return
			}
			created(name, start)
		})
	}
	wg.Wait()
}

// measureRestart fills the cluster with n Services, restarts the CCM and measures how long a
// Service created right after the restart waits for its VIP, and how many of the existing
// Services' statuses the restart rewrote (it should rewrite none). The restarted CCM runs without
// leader election: with it, a restart first waits for the old lease to expire (15 s by default).
func measureRestart(b *testing.B, ns string, n int, port int, prof *profiler) {
	created, assigned, stop := benchNamespace(b, ns, "198.18.128.0/17")
	defer stop()
	before := usageOf(env.CCMPID())
	waitProfile := prof.cpu(b, "cpu-fill-10000.pprof", 60)
	fillStart := time.Now()
	createBurst(b, ns, n, created)
	assigned(n)
	fill := time.Since(fillStart)
	time.Sleep(3 * time.Second) // the pool status and events that follow the last VIP
	after := usageOf(env.CCMPID())
	waitProfile()
	prof.heap(b, "heap-after-10000.pprof")
	if before.measuredWell && after.measuredWell {
		b.ReportMetric((after.cpu - before.cpu).Seconds(), "cpu-s-fill")
		b.ReportMetric(after.rssMiB, "MiB-rss-after-fill")
		b.ReportMetric(after.peakRSSMiB, "MiB-peak-rss")
	}
	b.ReportMetric(float64(n)/fill.Seconds(), "services/s-fill")

	w, err := env.Client.CoreV1().Services(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var rewrites int
	var mu sync.Mutex
	go func() {
		for ev := range w.ResultChan() {
			if svc, ok := ev.Object.(*v1.Service); ok && ev.Type == watch.Modified && svc.Name != "after-restart" {
				mu.Lock()
				rewrites++
				mu.Unlock()
			}
		}
	}()
	time.Sleep(time.Second) // let the watch start
	env.StopCCM()
	args := append(slices.DeleteFunc(shippedCCMArgs(b, port), func(a string) bool { return a == "--leader-elect=true" }), "--leader-elect=false")
	start := time.Now()
	if err := env.StartCCM(args...); err != nil {
		b.Fatal(err)
	}
	defer func() {
		env.StopCCM()
		if err := env.StartCCM(shippedCCMArgs(b, port)...); err != nil {
			b.Fatal(err)
		}
	}()
	createStart := time.Now()
	if _, err := env.Client.CoreV1().Services(ns).Create(context.Background(), benchService(ns, "after-restart"), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	created("after-restart", createStart)
	assigned(n + 1)
	got := time.Since(start)
	time.Sleep(2 * time.Second) // rewrites, if any, land within the first resync of the queue
	mu.Lock()
	defer mu.Unlock()
	b.ReportMetric(got.Seconds(), "s-new-service-ip-after-restart")
	b.ReportMetric(float64(rewrites), "existing-services-rewritten")
	b.ReportMetric(float64(n), "services")
}

// benchNamespace makes a namespace with its own pool and a watch on its Services. created
// records a Service's creation time; assigned waits for n Services to get a VIP and returns the
// latencies.
func benchNamespace(b *testing.B, ns, cidr string) (created func(name string, start time.Time), assigned func(int) latencies, stop func()) {
	b.Helper()
	ctx := context.Background()
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"baremetal-test": ns}}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	pool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: ns}, Spec: v1alpha1.IPPoolSpec{
		Addresses:         addrs(cidr),
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"baremetal-test": ns}},
	}}
	if err := createPoolObject(pool); err != nil {
		b.Fatal(err)
	}
	w, err := env.Client.CoreV1().Services(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	startedAt := map[string]time.Time{}
	createdAt := map[string]time.Time{}
	assignedAt := map[string]time.Time{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			svc, ok := ev.Object.(*v1.Service)
			if !ok || ev.Type == watch.Deleted || len(svc.Status.LoadBalancer.Ingress) == 0 {
				continue
			}
			now := time.Now()
			mu.Lock()
			if _, seen := assignedAt[svc.Name]; !seen {
				assignedAt[svc.Name] = now
			}
			mu.Unlock()
		}
	}()
	created = func(name string, start time.Time) {
		now := time.Now()
		mu.Lock()
		startedAt[name] = start
		createdAt[name] = now
		mu.Unlock()
	}
	assigned = func(n int) latencies {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			mu.Lock()
			got := len(assignedAt)
			mu.Unlock()
			if got >= n {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d Services got a VIP in 5 minutes", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		var lat latencies
		for name, at := range assignedAt {
			if c, ok := createdAt[name]; ok {
				lat.fromStart = append(lat.fromStart, at.Sub(startedAt[name]))
				// A watch event can beat the Create call's return; count that as zero.
				lat.fromReturn = append(lat.fromReturn, max(0, at.Sub(c)))
			}
		}
		return lat
	}
	stop = func() {
		w.Stop()
		<-done
		// The Services first: deleting a pool under Services that hold its VIPs makes the CCM
		// pin each of them to it, writes no benchmark should count or wait for.
		deleteServicesOf(b, ns)
		_ = env.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		deletePool(ns)
	}
	return created, assigned, stop
}

// latencies are per-Service times to the VIP on the benchmark's two clocks.
type latencies struct {
	fromStart  []time.Duration // from just before the Create call
	fromReturn []time.Duration // from the Create call returning
}

func reportPercentiles(b *testing.B, lat latencies) {
	for _, clock := range []struct {
		suffix string
		lat    []time.Duration
	}{{"", lat.fromStart}, {"-from-return", lat.fromReturn}} {
		slices.Sort(clock.lat)
		pct := func(p float64) float64 {
			if len(clock.lat) == 0 {
				return 0
			}
			i := int(p * float64(len(clock.lat)-1))
			return float64(clock.lat[i].Microseconds()) / 1000
		}
		b.ReportMetric(pct(0.50), "ms-p50"+clock.suffix)
		b.ReportMetric(pct(0.99), "ms-p99"+clock.suffix)
		if clock.suffix == "" {
			b.ReportMetric(pct(0.90), "ms-p90")
			b.ReportMetric(pct(1), "ms-max")
		}
	}
	b.ReportMetric(float64(len(lat.fromStart)), "services")
}

// benchService is a LoadBalancer Service without node ports: the 2768 ports of the default
// NodePort range would cap the benchmark, and a VIP-mode load balancer does not need them.
func benchService(ns, name string) *v1.Service {
	svc := newService(ns, name)
	svc.Spec.AllocateLoadBalancerNodePorts = ptrTo(false)
	return svc
}

// benchNodes creates n Ready Nodes for the benchmark and removes them when it ends.
func benchNodes(b *testing.B, n int) {
	b.Helper()
	ctx := context.Background()
	for i := range n {
		name := fmt.Sprintf("bench-node-%d", i+1)
		node, err := env.Client.CoreV1().Nodes().Create(ctx, &v1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       v1.NodeSpec{ProviderID: "baremetal://" + name},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatalf("creating node %s: %v", name, err)
		}
		b.Cleanup(func() { _ = env.Client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}) })
		node.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
		node.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: fmt.Sprintf("198.18.0.%d", 201+i)}}
		if _, err := env.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			b.Fatalf("making node %s Ready: %v", name, err)
		}
	}
}

// withFloorCCM runs measure with test/integration/floorccm in our CCM's place, then brings ours
// back with restore.
func withFloorCCM(b *testing.B, restore func(), measure func()) {
	bin := filepath.Join(b.TempDir(), "floorccm")
	build := exec.Command("go", "build", "-o", bin, "./floorccm")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the floor CCM: %v\n%s", err, out)
	}
	// Each CCM starts on an API server without the other's Services: a CCM resyncs every
	// load-balanced Service when it starts, and the floor would rewrite ours (and we its).
	deleteBenchServices(b)
	env.StopCCM()
	defer func() {
		deleteBenchServices(b)
		restore()
	}()
	args := slices.DeleteFunc(shippedCCMArgs(b, 0), func(a string) bool { return strings.HasPrefix(a, "--cloud-provider=") })
	if err := env.StartCCMBinary(bin, append(args, "--cloud-provider=floor", "--controllers=service")...); err != nil {
		b.Fatal(err)
	}
	// Not timed: the floor CCM first waits for our CCM's Lease to expire.
	_, stop := measureSequential(b, fmt.Sprintf("bench-floor-warmup-%d", time.Now().UnixNano()%1e6), 1)
	stop()
	measure()
}

// deleteBenchServices deletes the Services of the benchmark's namespaces and waits until they are
// gone (the running CCM removes their finalizers; the integration control plane has no namespace
// controller, so the namespaces stay, empty).
func deleteBenchServices(b *testing.B) {
	list, err := env.Client.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, ns := range list.Items {
		if strings.HasPrefix(ns.Name, "bench-") {
			deleteServicesOf(b, ns.Name)
		}
	}
}

// deleteServicesOf deletes a namespace's Services and waits until they are gone.
func deleteServicesOf(b *testing.B, ns string) {
	ctx := context.Background()
	services, err := env.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16) // Services have no deletecollection
	for _, svc := range services.Items {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_ = env.Client.CoreV1().Services(ns).Delete(ctx, svc.Name, metav1.DeleteOptions{})
		})
	}
	wg.Wait()
	// Each deletion waits for the CCM to release the VIP and drop the finalizer.
	wait := 2*time.Minute + time.Duration(len(services.Items))*50*time.Millisecond
	deadline := time.Now().Add(wait)
	for {
		left, err := env.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if err == nil && len(left.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("Services of namespace %s are still there after %s", ns, wait)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
