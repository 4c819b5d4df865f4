package integration

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

const (
	// announcerUser is the announcer's ServiceAccount, so the RoleBindings of
	// manifests/announcer/rbac.yaml are what authorise it.
	announcerUser = "system:serviceaccount:kube-system:baremetal-announcer"
	// bgpSecretsNamespace is where operators put BGP password Secrets (manifests/announcer/rbac.yaml).
	bgpSecretsNamespace = "baremetal-bgp"
)

// announcerConfig is a client configuration that acts as the announcer's ServiceAccount, with the
// groups a service account token carries. The admin (system:masters) may impersonate anyone.
func announcerConfig() *rest.Config {
	cfg := env.Config(adminUser)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: announcerUser,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
	}
	return cfg
}

func createSecret(t *testing.T, namespace, name string) {
	t.Helper()
	secret := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Data: map[string][]byte{"password": []byte("s3cret")}}
	_, err := env.Client.CoreV1().Secrets(namespace).Create(context.Background(), secret, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating Secret %s/%s: %v", namespace, name, err)
	}
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Secrets(namespace).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// TestAnnouncerRBAC applies manifests/announcer/rbac.yaml (a Namespace, then a Role in it) and
// checks, as the announcer's ServiceAccount, what BGP mode needs and what it must not get: it
// reads BGPPeers and writes their status, reads BGP password Secrets in baremetal-bgp, and reads
// no other Secret than the membership key.
func TestAnnouncerRBAC(t *testing.T) {
	ctx := context.Background()
	if err := framework.ApplyFiles(ctx, env.Config(adminUser), filepath.Join(framework.RepoRoot(), "manifests/announcer/rbac.yaml")); err != nil {
		t.Fatalf("applying the announcer's RBAC: %v", err)
	}
	if _, err := createPeer(t, "rbac-router", peerSpec(nil)); err != nil {
		t.Fatal(err)
	}
	createSecret(t, bgpSecretsNamespace, "rbac-router")
	createSecret(t, "kube-system", "baremetal-announcer-membership")
	createSecret(t, "kube-system", "rbac-not-for-the-announcer")
	createSecret(t, metav1.NamespaceDefault, "rbac-not-for-the-announcer")

	cfg := announcerConfig()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	peers := dyn.Resource(v1alpha1.BGPPeerResource)

	allowed := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v, want it allowed", what, err)
		}
	}
	forbidden := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: err = %v, want Forbidden", what, err)
		}
	}

	// BGPPeers: read and watch.
	list, err := peers.List(ctx, metav1.ListOptions{})
	allowed("listing BGPPeers", err)
	if err == nil && !slices.ContainsFunc(list.Items, func(u unstructured.Unstructured) bool { return u.GetName() == "rbac-router" }) {
		t.Errorf("listing BGPPeers: rbac-router missing")
	}
	_, err = peers.Get(ctx, "rbac-router", metav1.GetOptions{})
	allowed("getting a BGPPeer", err)
	w, err := peers.Watch(ctx, metav1.ListOptions{})
	allowed("watching BGPPeers", err)
	if err == nil {
		w.Stop()
	}

	// BGPPeer status: each node's announcer applies its own entry; one writes the summary.
	allowed("applying node-a's status entry", applyPeerStatus(t, cfg, "rbac-router", "baremetal-announcer/node-a",
		map[string]any{"nodes": []any{map[string]any{"node": "node-a", "state": "Established", "prefixesAdvertised": int64(2)}}}))
	allowed("applying node-b's status entry", applyPeerStatus(t, cfg, "rbac-router", "baremetal-announcer/node-b",
		map[string]any{"nodes": []any{map[string]any{"node": "node-b", "state": "Active", "lastError": "no answer from 198.18.0.1:179"}}}))
	allowed("applying the summary", applyPeerStatus(t, cfg, "rbac-router", "baremetal-announcer-summary",
		map[string]any{"summary": "Established 1/2"}))
	got, err := env.Dynamic.Resource(v1alpha1.BGPPeerResource).Get(ctx, "rbac-router", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, _ := unstructured.NestedSlice(got.Object, "status", "nodes")
	summary, _, _ := unstructured.NestedString(got.Object, "status", "summary")
	if len(nodes) != 2 || summary != "Established 1/2" {
		t.Errorf("status = %v, want both nodes' entries and the summary (each manager owns its own)", got.Object["status"])
	}

	// BGPPeer spec: the operator's, never the announcer's.
	got.SetLabels(map[string]string{"changed": "by-the-announcer"})
	_, err = peers.Update(ctx, got, metav1.UpdateOptions{})
	forbidden("updating a BGPPeer", err)
	forbidden("deleting a BGPPeer", peers.Delete(ctx, "rbac-router", metav1.DeleteOptions{}))
	_, err = peers.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "BGPPeer",
		"metadata": map[string]any{"name": "rbac-by-the-announcer"}, "spec": peerSpec(nil),
	}}, metav1.CreateOptions{})
	forbidden("creating a BGPPeer", err)

	// Secrets: BGP passwords in baremetal-bgp, the membership key in kube-system, nothing else.
	secrets := client.CoreV1().Secrets
	_, err = secrets(bgpSecretsNamespace).Get(ctx, "rbac-router", metav1.GetOptions{})
	allowed("getting a password Secret in "+bgpSecretsNamespace, err)
	_, err = secrets(bgpSecretsNamespace).List(ctx, metav1.ListOptions{})
	allowed("listing Secrets in "+bgpSecretsNamespace, err)
	_, err = secrets("kube-system").Get(ctx, "baremetal-announcer-membership", metav1.GetOptions{})
	allowed("getting the membership Secret", err)
	_, err = secrets("kube-system").Get(ctx, "rbac-not-for-the-announcer", metav1.GetOptions{})
	forbidden("getting another Secret in kube-system", err)
	_, err = secrets("kube-system").List(ctx, metav1.ListOptions{})
	forbidden("listing Secrets in kube-system", err)
	_, err = secrets(metav1.NamespaceDefault).Get(ctx, "rbac-not-for-the-announcer", metav1.GetOptions{})
	forbidden("getting a Secret in default", err)
	_, err = secrets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	forbidden("listing Secrets in every namespace", err)
	forbidden("deleting a password Secret", secrets(bgpSecretsNamespace).Delete(ctx, "rbac-router", metav1.DeleteOptions{}))
	_, err = secrets(bgpSecretsNamespace).Create(ctx, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rbac-by-the-announcer"}}, metav1.CreateOptions{})
	forbidden("creating a Secret in "+bgpSecretsNamespace, err)

	// Everything else it reads, and what it must never write: Services (the CCM's and the
	// users'), IPPools, Nodes, workloads, RBAC.
	pools := access{group: "baremetal.dev", resource: "ippools"}
	checkAccess(t, announcerUser, true, slices.Concat(
		each(access{resource: "services"}, "get", "list", "watch"),
		each(access{resource: "nodes"}, "get", "list", "watch"),
		each(access{group: "discovery.k8s.io", resource: "endpointslices"}, "get", "list", "watch"),
		each(pools, "get", "list", "watch"),
		each(access{resource: "events", namespace: "default"}, "create", "patch"),
	))
	checkAccess(t, announcerUser, false, slices.Concat(
		each(access{resource: "services", namespace: "default"}, "create", "update", "patch", "delete"),
		each(access{resource: "services", subresource: "status", namespace: "default"}, "update", "patch"),
		each(pools, "create", "update", "patch", "delete"),
		each(access{group: "baremetal.dev", resource: "ippools", subresource: "status"}, "update", "patch"),
		each(access{resource: "nodes"}, "update", "patch", "delete"),
		each(access{resource: "nodes", subresource: "status"}, "patch"),
		each(access{resource: "configmaps", namespace: "kube-system"}, "get", "list"),
		each(access{resource: "pods", namespace: "kube-system"}, "create", "list"),
		each(access{resource: "serviceaccounts", subresource: "token", namespace: "kube-system", name: "baremetal-cloud-controller-manager"}, "create"),
		each(access{group: "coordination.k8s.io", resource: "leases", namespace: "kube-system"}, "create", "update"),
		each(access{group: "rbac.authorization.k8s.io", resource: "roles", namespace: "kube-system"}, "create", "bind", "escalate"),
	))
}

// TestAnnouncerSecretPolicy: RBAC lets the announcer create Secrets in kube-system (the first
// announcer creates the membership key), and manifests/announcer/secret-policy.yaml admits only
// that one Secret: not another name, and not a service-account-token Secret under the
// membership name, which the token controller would fill with a token the announcer may read.
func TestAnnouncerSecretPolicy(t *testing.T) {
	ctx := context.Background()
	root := framework.RepoRoot()
	if err := framework.ApplyFiles(ctx, env.Config(adminUser),
		filepath.Join(root, "manifests/announcer/rbac.yaml"), filepath.Join(root, "manifests/announcer/secret-policy.yaml")); err != nil {
		t.Fatalf("applying the announcer's RBAC and Secret policy: %v", err)
	}
	const membership = "baremetal-announcer-membership"
	deleteMembership := func() {
		_ = env.Client.CoreV1().Secrets("kube-system").Delete(ctx, membership, metav1.DeleteOptions{})
	}
	deleteMembership()
	t.Cleanup(deleteMembership)
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Secrets("kube-system").Delete(ctx, "rbac-by-the-announcer", metav1.DeleteOptions{})
	})
	client, err := kubernetes.NewForConfig(announcerConfig())
	if err != nil {
		t.Fatal(err)
	}
	secrets := client.CoreV1().Secrets("kube-system")

	// The policy takes effect once the API server has loaded it: wait for the first refusal.
	other := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rbac-by-the-announcer"}, Data: map[string][]byte{"current": make([]byte, 32)}}
	var err2 error
	waitFor(t, "the Secret policy to refuse another Secret", func() bool {
		_, err2 = secrets.Create(ctx, other, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err2 != nil
	})
	if !apierrors.IsForbidden(err2) || !strings.Contains(err2.Error(), "only its membership Secret") {
		t.Errorf("creating another Secret in kube-system: err = %v, want Forbidden by the policy", err2)
	}
	token := &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: membership, Annotations: map[string]string{v1.ServiceAccountNameKey: "baremetal-cloud-controller-manager"}},
		Type:       v1.SecretTypeServiceAccountToken,
	}
	_, err = secrets.Create(ctx, token, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("creating a service-account-token Secret named %s: err = %v, want Forbidden", membership, err)
	}
	key := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: membership}, Data: map[string][]byte{"current": make([]byte, 32)}}
	if _, err := secrets.Create(ctx, key, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating the membership Secret: %v, want it allowed", err)
	}
	// The admin is not the announcer: the policy does not apply.
	if _, err := env.Client.CoreV1().Secrets("kube-system").Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Errorf("the admin creating a Secret in kube-system: %v", err)
	}
}
