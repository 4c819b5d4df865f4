package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider"
)

// TestOldVIPStaysHeldUntilStatusWritten: a Service that moves to a new VIP keeps its old one held
// until its status no longer lists it. A ValidatingAdmissionPolicy refusing mover's status writes
// holds that window open: mover's EnsureLoadBalancer has returned Y but its status still says X.
// No other Service may take X meanwhile, not even across a crash of the CCM, and nothing ever
// conflicts. The old code freed X as soon as EnsureLoadBalancer chose Y, so taker got X while
// mover's status still named it (and a restart then found two statuses naming X).
func TestOldVIPStaysHeldUntilStatusWritten(t *testing.T) {
	ns := testNamespace(t)
	const x, y = "198.18.35.1", "198.18.35.2"
	createPool(t, ns, "held", v1alpha1.IPPoolSpec{Addresses: addrs("198.18.35.1-198.18.35.4")})
	mover := newService(ns, "mover")
	mover.Annotations = map[string]string{provider.AnnotationLoadBalancerIPs: x}
	createService(t, mover)
	waitIPs(t, ns, "mover", waitTimeout, x)

	// probe is a ClusterIP Service the policy also covers: writing its status tells whether the
	// policy is in force yet.
	probe := newService(ns, "probe")
	probe.Spec.Type = v1.ServiceTypeClusterIP
	createService(t, probe)
	denyStatusWrites(t, ns, "mover", "probe")
	waitFor(t, "the policy to refuse status writes", func() bool { return probeStatusWrite(ns, "probe") != nil })

	ensured := eventCount(ns, "mover", "EnsuredLoadBalancer")
	updateService(t, ns, "mover", func(s *v1.Service) { s.Annotations[provider.AnnotationLoadBalancerIPs] = y })
	waitEventCountAbove(t, ns, "mover", ensured, waitTimeout, "EnsuredLoadBalancer")
	waitEvent(t, ns, "mover", v1.EventTypeWarning, "failed to update load balancer status")
	assertIPs(t, ns, "mover", x)

	taker := newService(ns, "taker")
	taker.Annotations = map[string]string{provider.AnnotationLoadBalancerIPs: x}
	createService(t, taker)
	waitEvent(t, ns, "taker", v1.EventTypeWarning, x+" is held by "+ns+"/mover")
	assertStaysPending(t, ns, "taker", 3*time.Second)

	// A crash while the window is open: the restart finds X only in mover's status, and mover
	// still holds it.
	failed := eventCount(ns, "taker", "SyncLoadBalancerFailed")
	moverFailed := eventCount(ns, "mover", "SyncLoadBalancerFailed")
	restartCCMBy(t, true)
	waitEventCountAbove(t, ns, "taker", failed, waitTimeout, "SyncLoadBalancerFailed")
	waitEventCountAbove(t, ns, "mover", moverFailed, waitTimeout, "SyncLoadBalancerFailed")
	if msg := lastEvent(ns, "taker", "SyncLoadBalancerFailed"); !strings.Contains(msg, x+" is held by "+ns+"/mover") {
		t.Errorf("after the restart taker's sync fails with %q, want it to say %s is held by mover", msg, x)
	}
	assertStaysPending(t, ns, "taker", 2*time.Second)
	assertIPs(t, ns, "mover", x)
	assertNoEventInNamespace(t, ns, "VIPConflict")

	// The status write goes through: X is given up, and only then can taker have it.
	allowStatusWrites(t)
	waitFor(t, "the policy to be gone", func() bool { return probeStatusWrite(ns, "probe") == nil })
	touchService(t, ns, "mover")
	waitIPs(t, ns, "mover", retryTimeout, y)
	touchService(t, ns, "taker")
	waitIPs(t, ns, "taker", retryTimeout, x)
	assertNoEventInNamespace(t, ns, "VIPConflict")
	requireCCMAlive(t)
}

// denyStatusWrites installs a ValidatingAdmissionPolicy and binding refusing every status write
// of the named Services in ns. allowStatusWrites (also a cleanup) removes them.
func denyStatusWrites(t *testing.T, ns string, names ...string) {
	t.Helper()
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "'" + n + "'"
	}
	fail := admissionregistrationv1.Fail
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: heldPolicyName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"baremetal-test": ns}},
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
						Rule: admissionregistrationv1.Rule{
							APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"services/status"},
						},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: "!(object.metadata.name in [" + strings.Join(quoted, ", ") + "])",
				Message:    "the test holds back status writes of this Service",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: heldPolicyName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        heldPolicyName,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	client := env.Client.AdmissionregistrationV1()
	if _, err := client.ValidatingAdmissionPolicies().Create(context.Background(), policy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ValidatingAdmissionPolicy: %v", err)
	}
	t.Cleanup(func() { allowStatusWrites(t) })
	if _, err := client.ValidatingAdmissionPolicyBindings().Create(context.Background(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ValidatingAdmissionPolicyBinding: %v", err)
	}
}

const heldPolicyName = "baremetal-test-deny-status-writes"

func allowStatusWrites(t *testing.T) {
	t.Helper()
	client := env.Client.AdmissionregistrationV1()
	if err := client.ValidatingAdmissionPolicyBindings().Delete(context.Background(), heldPolicyName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting ValidatingAdmissionPolicyBinding: %v", err)
	}
	if err := client.ValidatingAdmissionPolicies().Delete(context.Background(), heldPolicyName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting ValidatingAdmissionPolicy: %v", err)
	}
}

// probeStatusWrite writes a condition into the Service's status and returns the API server's
// answer.
func probeStatusWrite(ns, name string) error {
	return wait.PollUntilContextTimeout(context.Background(), poll, waitTimeout, true, func(ctx context.Context) (bool, error) {
		svc, err := env.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		svc.Status.Conditions = []metav1.Condition{{
			Type: "Probe", Status: metav1.ConditionTrue, Reason: "Probe",
			Message: time.Now().Format(time.RFC3339Nano), LastTransitionTime: metav1.Now(),
		}}
		_, err = env.Client.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return true, err
	})
}
