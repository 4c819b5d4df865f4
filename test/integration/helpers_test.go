package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1/poolindex"
)

const (
	waitTimeout = 30 * time.Second
	// retryTimeout covers the service controller's retry backoff (5 s, 10 s, 20 s...).
	retryTimeout = 60 * time.Second
	poll         = 50 * time.Millisecond
)

// testNamespace creates a namespace labelled for the test, so the test's pools select only its
// own Services.
func testNamespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-")
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"baremetal-test": name}}}
	if _, err := env.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		// Services first, so the CCM releases their VIPs before pools go.
		if list, err := env.Client.CoreV1().Services(name).List(context.Background(), metav1.ListOptions{}); err == nil {
			for _, svc := range list.Items {
				_ = env.Client.CoreV1().Services(name).Delete(context.Background(), svc.Name, metav1.DeleteOptions{})
			}
		}
		_ = env.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// createPool creates an IPPool selecting only the namespace ns (unless spec sets a selector).
func createPool(t *testing.T, ns, name string, spec v1alpha1.IPPoolSpec) *v1alpha1.IPPool {
	t.Helper()
	if spec.NamespaceSelector == nil {
		spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"baremetal-test": ns}}
	}
	pool := &v1alpha1.IPPool{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "IPPool"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       spec,
	}
	if err := createPoolObject(pool); err != nil {
		t.Fatalf("creating IPPool %s: %v", name, err)
	}
	t.Cleanup(func() { deletePool(name) })
	return pool
}

func createPoolObject(pool *v1alpha1.IPPool) error {
	pool.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "IPPool"}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pool)
	if err != nil {
		return err
	}
	_, err = env.Dynamic.Resource(v1alpha1.IPPoolResource).Create(context.Background(), &unstructured.Unstructured{Object: content}, metav1.CreateOptions{})
	return err
}

func deletePool(name string) {
	_ = env.Dynamic.Resource(v1alpha1.IPPoolResource).Delete(context.Background(), name, metav1.DeleteOptions{})
}

func getPool(t *testing.T, name string) *v1alpha1.IPPool {
	t.Helper()
	u, err := env.Dynamic.Resource(v1alpha1.IPPoolResource).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting IPPool %s: %v", name, err)
	}
	pool := &v1alpha1.IPPool{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

func updatePool(t *testing.T, name string, mutate func(*v1alpha1.IPPool)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), poll, waitTimeout, true, func(ctx context.Context) (bool, error) {
		pool := getPool(t, name)
		mutate(pool)
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pool)
		if err != nil {
			return false, err
		}
		_, err = env.Dynamic.Resource(v1alpha1.IPPoolResource).Update(ctx, &unstructured.Unstructured{Object: content}, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("updating IPPool %s: %v", name, err)
	}
}

// waitPool waits until the pool's status satisfies cond.
func waitPool(t *testing.T, name string, what string, cond func(*v1alpha1.IPPool) bool) *v1alpha1.IPPool {
	t.Helper()
	var last *v1alpha1.IPPool
	err := wait.PollUntilContextTimeout(context.Background(), poll, waitTimeout, true, func(context.Context) (bool, error) {
		last = getPool(t, name)
		return cond(last), nil
	})
	if err != nil {
		t.Fatalf("IPPool %s: waiting for %s: %v; last status %+v", name, what, err, last.Status)
	}
	return last
}

func poolCondition(pool *v1alpha1.IPPool, condType string) *metav1.Condition {
	for i := range pool.Status.Conditions {
		if pool.Status.Conditions[i].Type == condType {
			return &pool.Status.Conditions[i]
		}
	}
	return nil
}

func hasCondition(condType string, status metav1.ConditionStatus, msg string) func(*v1alpha1.IPPool) bool {
	return func(p *v1alpha1.IPPool) bool {
		c := poolCondition(p, condType)
		return c != nil && c.Status == status && strings.Contains(c.Message, msg) && c.ObservedGeneration == p.Generation
	}
}

// newService is a LoadBalancer Service exposing 80/TCP to pods labelled app=<name>.
func newService(ns, name string) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.ServiceSpec{
			Type:     v1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": name},
			Ports:    []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(80)}},
		},
	}
}

func createService(t *testing.T, svc *v1.Service) *v1.Service {
	t.Helper()
	created, err := env.Client.CoreV1().Services(svc.Namespace).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Service %s/%s: %v", svc.Namespace, svc.Name, err)
	}
	return created
}

func deleteService(t *testing.T, ns, name string) {
	t.Helper()
	if err := env.Client.CoreV1().Services(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting Service %s/%s: %v", ns, name, err)
	}
	// The service controller removes its finalizer after releasing the VIP.
	err := wait.PollUntilContextTimeout(context.Background(), poll, waitTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := env.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("Service %s/%s was not deleted: %v", ns, name, err)
	}
}

func getService(t *testing.T, ns, name string) *v1.Service {
	t.Helper()
	svc, err := env.Client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting Service %s/%s: %v", ns, name, err)
	}
	return svc
}

func ingressIPs(svc *v1.Service) []string {
	var ips []string
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		ips = append(ips, ing.IP)
	}
	return ips
}

// waitIngress waits until the Service has n ingress IPs and returns them in status order.
func waitIngress(t *testing.T, ns, name string, n int, timeout time.Duration) []string {
	t.Helper()
	var last *v1.Service
	err := wait.PollUntilContextTimeout(context.Background(), poll, timeout, true, func(ctx context.Context) (bool, error) {
		svc, err := env.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = svc
		return len(svc.Status.LoadBalancer.Ingress) >= n, nil
	})
	if err != nil {
		t.Fatalf("Service %s/%s: waiting for %d ingress IPs: %v (status %v; events: %s)", ns, name, n, err, ingressIPs(last), eventSummary(ns, name))
	}
	if got := len(last.Status.LoadBalancer.Ingress); got != n {
		t.Fatalf("Service %s/%s has %d ingress IPs %v, want %d", ns, name, got, ingressIPs(last), n)
	}
	for _, ing := range last.Status.LoadBalancer.Ingress {
		if ing.IPMode == nil || *ing.IPMode != v1.LoadBalancerIPModeVIP {
			t.Errorf("Service %s/%s ingress %s has ipMode %v, want VIP", ns, name, ing.IP, ing.IPMode)
		}
	}
	return ingressIPs(last)
}

// waitEvent waits for an event on the Service whose message contains every fragment.
func waitEvent(t *testing.T, ns, name, eventType string, fragments ...string) v1.Event {
	t.Helper()
	var found v1.Event
	err := wait.PollUntilContextTimeout(context.Background(), poll, waitTimeout, true, func(ctx context.Context) (bool, error) {
		for _, ev := range serviceEvents(ns, name) {
			if ev.Type != eventType {
				continue
			}
			if containsAll(ev.Message, fragments) {
				found = ev
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("Service %s/%s: no %s event containing %q; events: %s", ns, name, eventType, fragments, eventSummary(ns, name))
	}
	return found
}

func serviceEvents(ns, name string) []v1.Event {
	list, err := env.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + name,
	})
	if err != nil {
		return nil
	}
	return list.Items
}

func eventSummary(ns, name string) string {
	var lines []string
	for _, ev := range serviceEvents(ns, name) {
		lines = append(lines, fmt.Sprintf("[%s %s x%d] %s", ev.Type, ev.Reason, ev.Count, ev.Message))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n  ")
}

func containsAll(s string, fragments []string) bool {
	for _, f := range fragments {
		if !strings.Contains(s, f) {
			return false
		}
	}
	return true
}

// assertStaysPending checks the Service gets no VIP for a while.
func assertStaysPending(t *testing.T, ns, name string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ips := ingressIPs(getService(t, ns, name)); len(ips) > 0 {
			t.Fatalf("Service %s/%s got %v, want it pending", ns, name, ips)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func requireCCMAlive(t *testing.T) {
	t.Helper()
	if err := env.CCMAlive(); err != nil {
		t.Fatal(err)
	}
}

func addrs(s ...string) []v1alpha1.AddressBlock {
	out := make([]v1alpha1.AddressBlock, len(s))
	for i, a := range s {
		out[i] = v1alpha1.AddressBlock(a)
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), poll, waitTimeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// attributedPool is the pool the announcer and a restarted CCM attribute a VIP of svc to: the
// allocated-pool annotation's entry, else the first IPPool containing it (package poolindex).
func attributedPool(t *testing.T, svc *v1.Service, vip string) string {
	t.Helper()
	list, err := env.Dynamic.Resource(v1alpha1.IPPoolResource).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing IPPools: %v", err)
	}
	pools := make([]*v1alpha1.IPPool, 0, len(list.Items))
	for i := range list.Items {
		p := &v1alpha1.IPPool{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, p); err != nil {
			t.Fatal(err)
		}
		pools = append(pools, p)
	}
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == vip {
			return poolindex.New(pools).PoolOf(svc.Annotations, vip, i)
		}
	}
	t.Fatalf("%s/%s does not hold %s (status %v)", svc.Namespace, svc.Name, vip, svc.Status.LoadBalancer.Ingress)
	return ""
}

// expectNoPin fails if the CCM wrote an allocated-pool annotation where the addresses tell the
// pools: a write, and a second sync of the Service, for nothing.
func expectNoPin(t *testing.T, svc *v1.Service) {
	t.Helper()
	if value, ok := svc.Annotations[v1alpha1.AnnotationAllocatedPool]; ok {
		t.Errorf("%s/%s has allocated-pool %q although its addresses tell its pools", svc.Namespace, svc.Name, value)
	}
}
