package integration

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

// serviceAccountGroups are the groups a kube-system ServiceAccount's token carries.
var serviceAccountGroups = []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}

// access is one request a component may or may not make: verb on group/resource[/subresource]
// [named name] [in namespace].
type access struct {
	verb, group, resource, subresource, namespace, name string
}

func (a access) String() string {
	s := a.verb + " " + a.resource
	if a.group != "" {
		s += "." + a.group
	}
	if a.subresource != "" {
		s += "/" + a.subresource
	}
	if a.name != "" {
		s += " " + a.name
	}
	if a.namespace != "" {
		s += " in " + a.namespace
	}
	return s
}

// checkAccess asks the API server (SubjectAccessReview) whether user, a kube-system
// ServiceAccount, may make each request, and reports every answer that is not want.
func checkAccess(t *testing.T, user string, want bool, requests []access) {
	t.Helper()
	for _, a := range requests {
		review, err := env.Client.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user, Groups: serviceAccountGroups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace, Name: a.name,
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("reviewing %s: %v", a, err)
		}
		if review.Status.Allowed != want {
			t.Errorf("%s may %s: allowed = %t, want %t", user, a, review.Status.Allowed, want)
		}
	}
}

// each expands verbs into one access per verb.
func each(a access, verbs ...string) []access {
	var out []access
	for _, v := range verbs {
		a.verb = v
		out = append(out, a)
	}
	return out
}

// TestCCMRunsAsItsServiceAccount: the CCM that every integration test exercises authenticates
// with a token the API server issued for its manifest ServiceAccount, so those tests prove that
// manifests/ccm/rbac.yaml grants all it needs.
func TestCCMRunsAsItsServiceAccount(t *testing.T) {
	client, err := kubernetes.NewForConfig(env.Config(framework.CCMUser))
	if err != nil {
		t.Fatal(err)
	}
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	info := review.Status.UserInfo
	if info.Username != framework.CCMUser || !slices.Contains(info.Groups, "system:serviceaccounts:kube-system") {
		t.Errorf("the CCM's token authenticates as %q %v, want %s", info.Username, info.Groups, framework.CCMUser)
	}
	if _, ok := info.Extra["authentication.kubernetes.io/credential-id"]; !ok {
		t.Errorf("the CCM's token carries no credential id (extra %v): not a token the API server issued", info.Extra)
	}
}

// TestCCMRBAC: what manifests/ccm/rbac.yaml grants the CCM, and what it must not grant. The
// allowed list is what the upstream controllers and our LoadBalancer call; the forbidden list is
// what a leaked CCM token must not reach: Secrets, workloads, RBAC, other controllers' leader
// locks, the IPPools' and BGPPeers' specs, tokens of other ServiceAccounts.
func TestCCMRBAC(t *testing.T) {
	if err := framework.ApplyFiles(context.Background(), env.Config(adminUser), filepath.Join(framework.RepoRoot(), "manifests/ccm/rbac.yaml")); err != nil {
		t.Fatal(err)
	}
	core := func(resource string) access { return access{resource: resource} }
	pools := access{group: "baremetal.dev", resource: "ippools"}
	peers := access{group: "baremetal.dev", resource: "bgppeers"}
	lease := access{group: "coordination.k8s.io", resource: "leases", namespace: "kube-system"}
	sub := func(a access, subresource string) access { a.subresource = subresource; return a }
	named := func(a access, name string) access { a.name = name; return a }
	in := func(a access, namespace string) access { a.namespace = namespace; return a }

	allowed := slices.Concat(
		each(core("nodes"), "get", "list", "watch", "update", "patch", "delete"), // cloud-node, cloud-node-lifecycle
		each(sub(core("nodes"), "status"), "patch"),                              // node addresses
		each(core("services"), "get", "list", "watch", "patch"),                  // allocated-pool annotation
		each(sub(core("services"), "status"), "patch"),                           // finalizer, status.loadBalancer
		each(core("namespaces"), "get", "list", "watch"),                         // namespaceSelector
		each(pools, "get", "list", "watch"),
		each(sub(pools, "status"), "patch"),
		each(in(core("events"), "default"), "create", "patch", "update"),
		each(lease, "create"),
		each(named(lease, "cloud-controller-manager"), "get", "update"),
		// Delegated authentication and authorization of the secure port.
		each(access{group: "authentication.k8s.io", resource: "tokenreviews"}, "create"),
		each(access{group: "authorization.k8s.io", resource: "subjectaccessreviews"}, "create"),
		each(named(in(core("configmaps"), "kube-system"), "extension-apiserver-authentication"), "get", "list", "watch"),
	)
	checkAccess(t, framework.CCMUser, true, allowed)

	forbidden := slices.Concat(
		each(in(core("secrets"), "kube-system"), "get", "list", "watch", "create"),
		each(core("secrets"), "list"),
		each(in(core("services"), "default"), "create", "update", "delete"),
		each(in(core("pods"), "kube-system"), "create", "delete"),
		each(sub(core("nodes"), "proxy"), "get", "create"),
		each(in(core("serviceaccounts"), "kube-system"), "create"),
		each(in(sub(named(core("serviceaccounts"), "baremetal-announcer"), "token"), "kube-system"), "create"),
		each(core("namespaces"), "create", "update", "delete"),
		each(pools, "create", "update", "patch", "delete"),
		each(sub(pools, "status"), "update"),
		each(peers, "get", "list", "create", "update", "patch", "delete"),
		each(sub(peers, "status"), "patch"),
		each(named(lease, "kube-controller-manager"), "get", "update"),
		each(named(lease, "kube-scheduler"), "update"),
		each(in(named(access{group: "coordination.k8s.io", resource: "leases"}, "cloud-controller-manager"), "default"), "update"),
		each(named(in(core("configmaps"), "kube-system"), "kube-proxy"), "get", "update"),
		each(access{group: "discovery.k8s.io", resource: "endpointslices", namespace: "default"}, "create", "update", "delete"),
		each(access{group: "apps", resource: "daemonsets", namespace: "kube-system"}, "update", "patch"),
		each(access{group: "rbac.authorization.k8s.io", resource: "clusterroles"}, "create", "update", "bind", "escalate"),
		each(access{group: "rbac.authorization.k8s.io", resource: "clusterrolebindings"}, "create"),
		each(access{group: "admissionregistration.k8s.io", resource: "validatingadmissionpolicies"}, "update", "delete"),
	)
	checkAccess(t, framework.CCMUser, false, forbidden)
}
