package framework

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Identities of the tests' clients and components.
const (
	// AdminUser is in the API server's static token file, in group system:masters.
	AdminUser = "admin"
	// CCMUser is the cloud-controller-manager's ServiceAccount. It is not in the token file: Env
	// runs the CCM with a token the API server issues for that ServiceAccount
	// (UseServiceAccountToken), so the RBAC in manifests/ is what authorises it, as in a cluster.
	CCMUser = "system:serviceaccount:kube-system:baremetal-cloud-controller-manager"
)

// ControlPlaneOptions tunes StartControlPlane.
type ControlPlaneOptions struct {
	// ServiceCIDRs for --service-cluster-ip-range; default dual-stack lab ranges.
	ServiceCIDRs string
}

// ControlPlane is a running etcd and kube-apiserver on loopback.
type ControlPlane struct {
	Dir       string
	URL       string
	etcd      *Process
	apiserver *Process
	tokens    map[string]string
}

// StartControlPlane starts etcd and kube-apiserver with their state and logs under dir and waits
// until the API server is ready.
func StartControlPlane(ctx context.Context, dir string, opts ControlPlaneOptions) (*ControlPlane, error) {
	if opts.ServiceCIDRs == "" {
		// Cluster IPs are API data only here; they come from the lab ranges all the same.
		opts.ServiceCIDRs = "198.19.0.0/16,fd00:96::/112"
	}
	etcdBin, err := UpstreamBinary("etcd")
	if err != nil {
		return nil, err
	}
	apiserverBin, err := UpstreamBinary("kube-apiserver")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cp := &ControlPlane{Dir: dir}
	ok := false
	defer func() {
		if !ok {
			cp.Stop()
		}
	}()

	clientPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	peerPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	cp.etcd, err = StartProcess("etcd", dir, etcdBin, EtcdArgs(dir, clientPort, peerPort)...)
	if err != nil {
		return nil, err
	}
	if err := WaitHTTP(ctx, clientURL+"/health", "", 30*time.Second, cp.etcd.Exited); err != nil {
		return nil, fmt.Errorf("etcd did not become healthy (log %s): %w", cp.etcd.LogPath, err)
	}

	if cp.tokens, err = WriteCredentials(dir); err != nil {
		return nil, err
	}
	securePort, err := FreePort()
	if err != nil {
		return nil, err
	}
	cp.URL = "https://127.0.0.1:" + strconv.Itoa(securePort)
	cp.apiserver, err = StartProcess("kube-apiserver", dir, apiserverBin, APIServerArgs(dir, clientURL, securePort, opts.ServiceCIDRs)...)
	if err != nil {
		return nil, err
	}
	if err := WaitHTTP(ctx, cp.URL+"/readyz", cp.tokens[AdminUser], 90*time.Second, cp.apiserver.Exited); err != nil {
		return nil, fmt.Errorf("kube-apiserver did not become ready (log %s): %w", cp.apiserver.LogPath, err)
	}
	for user := range cp.tokens {
		if err := cp.writeKubeconfig(user); err != nil {
			return nil, err
		}
	}
	ok = true
	return cp, nil
}

// Stop ends the API server and etcd.
func (cp *ControlPlane) Stop() {
	if cp.apiserver != nil {
		cp.apiserver.Stop(10 * time.Second)
	}
	if cp.etcd != nil {
		cp.etcd.Stop(10 * time.Second)
	}
}

// Kubeconfig is the path of a kubeconfig file for one of the token-file users.
func (cp *ControlPlane) Kubeconfig(user string) string {
	return filepath.Join(cp.Dir, "kubeconfig-"+sanitize(user))
}

// Config returns a client configuration for a token-file user, with limits that do not throttle tests.
func (cp *ControlPlane) Config(user string) *rest.Config {
	return &rest.Config{
		Host:            cp.URL,
		BearerToken:     cp.tokens[user],
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             1000,
		Burst:           2000,
	}
}

// Client returns a clientset for the admin user.
func (cp *ControlPlane) Client() (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(cp.Config(AdminUser))
}

// EtcdArgs are the flags of a single-member etcd on loopback with its data under dir.
func EtcdArgs(dir string, clientPort, peerPort int) []string {
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	return []string{
		"--name=test",
		"--data-dir=" + filepath.Join(dir, "etcd-data"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=test=" + peerURL,
		"--unsafe-no-fsync",
		"--log-level=warn",
	}
}

// APIServerArgs are the flags of a kube-apiserver on loopback using the credentials that
// WriteCredentials put in dir.
func APIServerArgs(dir, etcdURL string, securePort int, serviceCIDRs string) []string {
	return APIServerArgsAt(dir, etcdURL, "127.0.0.1", securePort, serviceCIDRs)
}

// APIServerArgsAt is APIServerArgs for an API server that binds and advertises address instead of
// loopback (the lab binds the host end of its management link, so that processes inside network
// namespaces reach it). The endpoint reconciler stays off, as on loopback.
func APIServerArgsAt(dir, etcdURL, address string, securePort int, serviceCIDRs string) []string {
	return []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + address,
		"--advertise-address=" + address,
		"--secure-port=" + strconv.Itoa(securePort),
		// A loopback advertise address is refused by the endpoint reconciler.
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(dir, "apiserver-certs"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=" + serviceCIDRs,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--enable-priority-and-fairness=false",
		"--v=1",
	}
}

// WriteCredentials makes the service-account signing key and the static token file in dir, or
// reads them back when a previous run made them, and returns the token of each user.
func WriteCredentials(dir string) (map[string]string, error) {
	return WriteCredentialsFor(dir, map[string]string{AdminUser: "system:masters"})
}

// WriteCredentialsFor is WriteCredentials for a chosen set of token-file users, each mapped to
// its comma-separated groups. A previous run's key and tokens are kept; users it did not know are
// added to the token file (the API server reads it only when it starts). It returns the token of
// every user in the file.
func WriteCredentialsFor(dir string, users map[string]string) (map[string]string, error) {
	tokensPath := filepath.Join(dir, "tokens.csv")
	if data, err := os.ReadFile(tokensPath); err == nil {
		if _, err := os.Stat(filepath.Join(dir, "sa.key")); err == nil {
			tokens, err := parseTokens(string(data))
			if err != nil {
				return nil, err
			}
			var missing strings.Builder
			for _, user := range slices.Sorted(maps.Keys(users)) {
				if _, ok := tokens[user]; !ok {
					token := rand.Text()
					fmt.Fprintf(&missing, "%s,%s,%s,%q\n", token, user, user, users[user])
					tokens[user] = token
				}
			}
			if missing.Len() > 0 {
				if err := os.WriteFile(tokensPath, append(data, missing.String()...), 0o600); err != nil {
					return nil, err
				}
			}
			return tokens, nil
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return nil, err
	}
	var lines strings.Builder
	for _, user := range slices.Sorted(maps.Keys(users)) {
		fmt.Fprintf(&lines, "%s,%s,%s,%q\n", rand.Text(), user, user, users[user])
	}
	if err := os.WriteFile(tokensPath, []byte(lines.String()), 0o600); err != nil {
		return nil, err
	}
	return parseTokens(lines.String())
}

func parseTokens(data string) (map[string]string, error) {
	tokens := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		fields := strings.SplitN(line, ",", 3)
		if len(fields) < 2 {
			return nil, fmt.Errorf("malformed token line %q", line)
		}
		tokens[fields[1]] = fields[0]
	}
	return tokens, nil
}

func (cp *ControlPlane) writeKubeconfig(user string) error {
	return WriteKubeconfig(cp.Kubeconfig(user), cp.URL, user, cp.tokens[user])
}

// WaitHTTP polls url until it answers 200, the process behind it exits (exited reports so),
// the timeout passes or ctx ends. A non-empty token is sent as a bearer token.
func WaitHTTP(ctx context.Context, url, token string, timeout time.Duration, exited func() (bool, error)) error {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if done, err := exited(); done {
			return fmt.Errorf("the process exited: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("timed out after %s: %w", timeout, last)
}
