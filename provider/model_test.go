package provider

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

var (
	modelSeeds = flag.Int("model.seeds", 24, "random schedules of the allocation model")
	modelSteps = flag.Int("model.steps", 700, "steps per schedule of the allocation model")
	modelSeed  = flag.Uint64("model.seed", 0, "run only this schedule of the allocation model")
)

// TestAllocationModel drives the provider as the upstream service controller and a careless
// operator would: Services are created, deleted, synced, and changed (ports, sharing keys,
// requested IPs, pools, traffic policy, annotations broken and repaired); the controller's
// status writes come later than the syncs that produced them; pools are edited; the pool-status
// writer runs now and then; and the CCM restarts at random points, losing the status writes not
// done yet (a restart between giving a VIP up and writing the status included). After every
// step it checks:
//   - invariant 1: every VIP a status lists is held by that Service in the allocator, and the
//     holders of every address are pairwise compatible (so two statuses never share a VIP on
//     incompatible terms);
//   - invariant 2: a status write drops a VIP only if the Service's own spec or annotations
//     changed since its last status write; an unchanged Service holding VIPs never fails a sync;
//   - a restart changes nothing: right after it, each Service holds exactly its status VIPs,
//     and no VIPConflict is reported.
func TestAllocationModel(t *testing.T) {
	if *modelSeed != 0 {
		runAllocationModel(t, *modelSeed, *modelSteps)
		return
	}
	for seed := uint64(1); seed <= uint64(*modelSeeds); seed++ {
		if !t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runAllocationModel(t, seed, *modelSteps) }) {
			t.Fatalf("reproduce with: go test ./provider/ -run TestAllocationModel -model.seed=%d -model.steps=%d", seed, *modelSteps)
		}
	}
}

type modelService struct {
	svc *v1.Service // the API object: spec and status
	// gen counts the Service's own changes; written is the gen its last status write came from.
	gen, written int
	pending      *statusWrite
}

type statusWrite struct {
	uid     string
	gen     int
	ingress []v1.LoadBalancerIngress
	// poolEdits is the world's count of pool edits when the sync ran.
	poolEdits int
}

type modelWorld struct {
	t          *testing.T
	rng        *rand.Rand
	c          *Cloud
	events     *record.FakeRecorder
	services   map[string]*modelService
	pools      map[string]*v1alpha1.IPPool
	namespaces map[string]*v1.Namespace
	uid        int
	poolEdits  int
	step       int
	what       string
	history    []string
	stats      map[string]int
}

var modelPorts = []v1.ServicePort{tcp(80), tcp(443), udp(53), tcp(53)}

func newModelWorld(t *testing.T, seed uint64) *modelWorld {
	w := &modelWorld{
		t:        t,
		rng:      rand.New(rand.NewPCG(seed, seed*7919)),
		services: map[string]*modelService{},
		pools:    map[string]*v1alpha1.IPPool{},
		namespaces: map[string]*v1.Namespace{
			"default": {ObjectMeta: metav1.ObjectMeta{Name: "default"}},
			"prod":    {ObjectMeta: metav1.ObjectMeta{Name: "prod", Labels: map[string]string{"env": "prod"}}},
		},
		stats: map[string]int{},
	}
	manual := testPool("manual", "10.0.2.1-10.0.2.4", "2001:db8:2::/126")
	manual.Spec.AutoAssign = boolPtr(false)
	v6pool := testPool("v6", "2001:db8::/125")
	v6pool.Spec.Priority = 1
	prodOnly := testPool("prod-only", "10.0.3.1-10.0.3.3")
	prodOnly.Spec.Priority = -1
	prodOnly.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	// Over all of them, last by priority and handing out nothing by itself: every VIP's address
	// is in two pools, and a Service naming this one takes it from under the others.
	wide := testPool("wide", "10.0.0.0/22")
	wide.Spec.Priority = 10
	wide.Spec.AutoAssign = boolPtr(false)
	for _, p := range []*v1alpha1.IPPool{testPool("a", "10.0.0.0/29"), w.editedB(), manual, v6pool, prodOnly, wide} {
		w.pools[p.Name] = p
	}
	w.start()
	return w
}

// editedB is pool b with a random size, so edits shrink and grow it under its holders.
func (w *modelWorld) editedB() *v1alpha1.IPPool {
	return testPool("b", fmt.Sprintf("10.0.1.1-10.0.1.%d", 2+w.rng.IntN(7)))
}

// start runs a fresh CCM: pools as the informer delivers them (status included), then the
// restore from the Services' statuses.
func (w *modelWorld) start() {
	c, err := New(nil)
	if err != nil {
		w.t.Fatal(err)
	}
	w.events = record.NewFakeRecorder(100000)
	c.recorder = w.events
	names := make([]string, 0, len(w.pools))
	for name := range w.pools {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		setPool(c, w.pools[name].DeepCopy())
	}
	w.c = c
	w.syncLister()
	_, ctx := ktesting.NewTestContext(w.t)
	c.restore(ctx)
}

// syncLister gives the provider a Service lister over the world's API objects.
func (w *modelWorld) syncLister() {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, m := range w.services {
		if err := idx.Add(m.svc); err != nil {
			w.t.Fatal(err)
		}
	}
	w.c.services = corelisters.NewServiceLister(idx)
}

func (w *modelWorld) fail(format string, args ...any) {
	w.t.Helper()
	if *modelSeed != 0 {
		w.t.Logf("history:\n%s", strings.Join(w.history, "\n"))
	} else {
		w.t.Logf("last steps:\n%s", strings.Join(w.history[max(0, len(w.history)-40):], "\n"))
	}
	w.t.Fatalf("step %d (%s): %s", w.step, w.what, fmt.Sprintf(format, args...))
}

// sync is the service controller's sync of one Service: EnsureLoadBalancer, whose result it
// writes to the status later (a later step, unless a restart comes first).
func (w *modelWorld) sync(key string, m *modelService) {
	if m.pending != nil {
		w.writeStatus(key, m)
		return
	}
	svc := m.svc.DeepCopy()
	req, err := parseRequest(svc)
	if err == nil {
		w.c.mu.Lock()
		var vips []vip
		vips, err = w.c.allocate(svc, w.namespaces[svc.Namespace], req)
		w.c.mu.Unlock()
		if err == nil {
			w.checkNew(m, vips, req)
			w.recordShares(vips)
			w.annotatePools(m, vips)
			m.pending = &statusWrite{uid: string(svc.UID), gen: m.gen, ingress: loadBalancerStatus(svc, vips).Ingress, poolEdits: w.poolEdits}
			w.stats["ensured"]++
			return
		}
	}
	w.stats["failed"]++
	if len(m.svc.Status.LoadBalancer.Ingress) > 0 && m.gen == m.written {
		w.fail("sync of %s, unchanged since its status %v was written, failed: %v", key, ingressAddrs(m.svc), err)
	}
}

// checkNew checks every VIP a sync adds against the Service's request and the pools.
func (w *modelWorld) checkNew(m *modelService, vips []vip, req request) {
	old := ingressAddrs(m.svc)
	var families []ipam.Family
	for _, v := range vips {
		f := ipam.FamilyOf(v.addr)
		if slices.Contains(families, f) {
			w.fail("%s got two %v VIPs: %+v", serviceKey(m.svc), f, vips)
		}
		families = append(families, f)
		if slices.Contains(old, v.addr) {
			continue
		}
		if want, ok := req.requested[f]; ok && want != v.addr {
			w.fail("%s requested %s, got %s", serviceKey(m.svc), want, v.addr)
		}
		p, ok := w.c.pools[v.pool]
		if !ok || p.addresses == nil || !p.addresses.Contains(v.addr) {
			w.fail("%s got new VIP %s from pool %q, which does not contain it", serviceKey(m.svc), v.addr, v.pool)
		}
		if ok, why := p.selects(m.svc, w.namespaces[m.svc.Namespace]); !ok {
			w.fail("%s got new VIP %s from pool %q: %s", serviceKey(m.svc), v.addr, v.pool, why)
		}
	}
	if req.requireAll && len(vips) != len(req.families) {
		w.fail("%s requires %v, got %+v", serviceKey(m.svc), req.families, vips)
	}
}

// recordShares is EnsureLoadBalancer writing a new share's terms to the pool status before it
// returns.
func (w *modelWorld) recordShares(vips []vip) {
	w.c.mu.Lock()
	needed := false
	for _, v := range vips {
		needed = needed || w.c.unrecordedShare(v.addr) != ""
	}
	w.c.mu.Unlock()
	if needed {
		w.writePoolStatuses()
		w.stats["shares recorded"]++
	}
}

// annotatePools is EnsureLoadBalancer writing the allocated-pool annotation, when the addresses
// do not tell the pools, before it returns: the CCM's own write, not a change of the Service's.
func (w *modelWorld) annotatePools(m *modelService, vips []vip) {
	svc := m.svc.DeepCopy()
	if applyPin(w.c, svc, vips) {
		w.stats["pools pinned"]++
	}
	m.svc = svc
	w.syncLister()
}

// writeStatus is the service controller's status patch, then the informer's update event.
func (w *modelWorld) writeStatus(key string, m *modelService) {
	write := m.pending
	m.pending = nil
	if write.uid != string(m.svc.UID) {
		return
	}
	before := ingressAddrs(m.svc)
	svc := m.svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = write.ingress
	after := ingressAddrs(svc)
	if write.gen == m.written {
		for _, a := range before {
			if !slices.Contains(after, a) {
				w.fail("%s's VIPs went from %v to %v, and nothing of its own changed", key, before, after)
			}
		}
	}
	if !slices.Equal(before, after) {
		w.stats["status changed"]++
	}
	m.svc = svc
	m.written = write.gen
	w.syncLister()
	w.c.onServiceUpdated(svc)
	w.writePins()
	// Nothing changed since the sync: the annotation it wrote must be the one the Service needs,
	// or every pool event would rewrite it and every rewrite sync it again.
	if write.gen == m.gen && write.poolEdits == w.poolEdits {
		w.c.mu.Lock()
		value, again := w.c.pinFor(svc)
		w.c.mu.Unlock()
		if again {
			w.fail("%s: the allocated-pool annotation %q its sync wrote would be rewritten to %v", key, svc.Annotations[AnnotationAllocatedPool], ptrString(value))
		}
	}
}

// pinAfterEdit is a pool edit's pin pass: Services whose annotation no longer says what their
// next sync would report are queued, and the pin writer runs.
func (w *modelWorld) pinAfterEdit() {
	w.poolEdits++
	w.c.mu.Lock()
	w.c.pinAfterPoolChange()
	w.c.mu.Unlock()
	w.writePins()
}

// writePins is the CCM's pin writer: each queued Service gets the annotation pinFor says.
func (w *modelWorld) writePins() {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	for key := range w.c.pinPending {
		delete(w.c.pinPending, key)
		m, ok := w.services[key]
		if !ok {
			continue
		}
		value, write := w.c.pinFor(m.svc)
		if !write {
			continue
		}
		svc := m.svc.DeepCopy()
		if value == nil {
			delete(svc.Annotations, AnnotationAllocatedPool)
		} else {
			withAnnotation(AnnotationAllocatedPool, *value)(svc)
		}
		m.svc = svc
		w.stats["pinned"]++
	}
	w.syncLister()
}

func (w *modelWorld) remove(key string, m *modelService) {
	w.c.mu.Lock()
	w.c.releaseLocked(key)
	w.c.mu.Unlock()
	delete(w.services, key)
	w.syncLister()
	w.stats["deleted"]++
}

// writePoolStatuses is the pool-status writer: the records it writes survive restarts.
func (w *modelWorld) writePoolStatuses() {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	for name, p := range w.pools {
		if cfg, ok := w.c.pools[name]; ok {
			p.Status = w.c.poolStatusLocked(name)
			cfg.recorded = recordedTerms(p.Status.SharedVIPs)
		}
	}
}

func (w *modelWorld) restart() {
	for _, m := range w.services {
		m.pending = nil
	}
	w.start()
	w.stats["restarts"]++
	for key, m := range w.services {
		held := w.heldActive(key)
		if want := ingressAddrs(m.svc); !slices.Equal(held, want) {
			w.fail("after the restart %s holds %v, its status says %v", key, held, want)
		}
	}
}

func (w *modelWorld) heldActive(key string) []netip.Addr {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	held := w.c.activeHeld(key)
	slices.SortFunc(held, netip.Addr.Compare)
	return held
}

func ingressAddrs(svc *v1.Service) []netip.Addr {
	var out []netip.Addr
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		out = append(out, netip.MustParseAddr(ing.IP))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// check verifies the invariants after a step.
func (w *modelWorld) check() {
	w.t.Helper()
	for {
		select {
		case e := <-w.events.Events:
			if strings.Contains(e, "VIPConflict") {
				w.fail("restore reported a conflict the statuses never agreed to: %s", e)
			}
			if strings.Contains(e, "VIPMoved") {
				w.stats["moved by own change"]++
			}
			continue
		default:
		}
		break
	}
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	statusHolders := map[netip.Addr][]string{}
	for key, m := range w.services {
		for _, a := range ingressAddrs(m.svc) {
			statusHolders[a] = append(statusHolders[a], key)
			if !slices.Contains(w.c.alloc.Held(key), a) {
				w.fail("%s's status lists %s, which the allocator does not give it (holders %v)", key, a, w.c.alloc.Holders(a))
			}
		}
	}
	for a, keys := range statusHolders {
		w.stats["max sharers"] = max(w.stats["max sharers"], len(keys))
		holders := w.c.alloc.Holders(a)
		for i, x := range holders {
			for _, y := range holders[i+1:] {
				if err := ipam.Compatible(x, y); err != nil {
					w.fail("%s held by incompatible %s and %s: %v", a, x.Service, y.Service, err)
				}
			}
		}
	}
}

func runAllocationModel(t *testing.T, seed uint64, steps int) {
	w := newModelWorld(t, seed)
	defer func() { t.Logf("seed %d: %v", seed, w.stats) }()
	names := make([]string, 30)
	for i := range names {
		names[i] = fmt.Sprintf("s%02d", i)
	}
	for w.step = 0; w.step < steps; w.step++ {
		name := names[w.rng.IntN(len(names))]
		var key string
		for k, m := range w.services {
			if m.svc.Name == name {
				key = k
			}
		}
		m := w.services[key]
		switch r := w.rng.IntN(100); {
		case r < 2:
			w.what = "restart"
			w.restart()
		case r < 6:
			w.what = "pool b edited"
			edited := w.editedB()
			edited.Status = w.pools["b"].Status
			w.pools["b"] = edited
			setPool(w.c, w.pools["b"].DeepCopy())
			w.pinAfterEdit()
			w.stats["pool edits"]++
		case r < 12:
			w.what = "pool statuses written"
			w.writePoolStatuses()
		case m == nil:
			svc := w.newService(name)
			key = serviceKey(svc)
			w.what = "create " + key
			w.services[key] = &modelService{svc: svc}
			w.syncLister()
			w.stats["created"]++
		case r < 18:
			w.what = "delete " + key
			w.remove(key, m)
		case r < 32:
			if what := w.change(m); what != "" {
				w.what = "change " + key + ": " + what
				w.syncLister()
				// The informer's update event for the spec change, which may come while a
				// status write of an earlier sync is still pending.
				w.c.onServiceUpdated(m.svc.DeepCopy())
				w.stats["changes"]++
			}
		default:
			w.what = "sync " + key
			w.sync(key, m)
		}
		w.history = append(w.history, fmt.Sprintf("%d %s", w.step, w.what))
		if m := w.services[key]; m != nil {
			w.history = append(w.history, fmt.Sprintf("    %s status %v spec %v ann %v", key, ingressAddrs(m.svc), m.svc.Spec.Ports, m.svc.Annotations))
		}
		w.check()
	}
	// Drain: every Service is synced until its status settles; nothing unchanged moves.
	w.what = "drain"
	for range 3 {
		for key, m := range w.services {
			w.sync(key, m)
			w.sync(key, m)
			w.check()
		}
	}
	for key, m := range w.services {
		w.remove(key, m)
	}
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	for _, name := range w.c.alloc.PoolNames() {
		if u := w.c.alloc.Usage(name); u.Used4 != 0 || u.Used6 != 0 {
			t.Errorf("pool %s still has %d+%d used addresses", name, u.Used4, u.Used6)
		}
	}
	if len(w.c.allocatedFrom) != 0 || len(w.c.retiring) != 0 {
		t.Errorf("bookkeeping not emptied: allocatedFrom %v, retiring %v", w.c.allocatedFrom, w.c.retiring)
	}
}
