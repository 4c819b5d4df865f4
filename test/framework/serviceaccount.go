package framework

import (
	"context"
	"fmt"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ServiceAccountTokenLifetime is how long the tokens that ServiceAccountToken issues for tests
// and the lab stay valid: longer than any test run or `make lab` session.
const ServiceAccountTokenLifetime = 365 * 24 * time.Hour

// ServiceAccountToken asks the API server for a token of the ServiceAccount named by user
// ("system:serviceaccount:<namespace>:<name>"), as the kubelet does for a Pod's projected token.
// The API server then authenticates it as that ServiceAccount, with the groups it carries, only
// while the ServiceAccount exists; so a component run with it has exactly the RBAC that
// manifests/ grant its ServiceAccount.
func ServiceAccountToken(ctx context.Context, client kubernetes.Interface, user string, lifetime time.Duration) (string, error) {
	rest, ok := strings.CutPrefix(user, "system:serviceaccount:")
	namespace, name, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return "", fmt.Errorf("%q is not a ServiceAccount's username (system:serviceaccount:<namespace>:<name>)", user)
	}
	seconds := int64(lifetime.Seconds())
	req, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token of ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return req.Status.Token, nil
}

// UseServiceAccountToken issues a token of the ServiceAccount named by user (it must exist: apply
// its manifest first) and makes Config(user) and Kubeconfig(user) use it.
func (cp *ControlPlane) UseServiceAccountToken(ctx context.Context, user string) error {
	client, err := cp.Client()
	if err != nil {
		return err
	}
	token, err := ServiceAccountToken(ctx, client, user, ServiceAccountTokenLifetime)
	if err != nil {
		return err
	}
	cp.tokens[user] = token
	return cp.writeKubeconfig(user)
}
