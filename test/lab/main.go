// Command lab runs the project on one machine: etcd, kube-apiserver and
// baremetal-cloud-controller-manager in the background on loopback, with the CRDs, RBAC and
// examples/demo.yaml applied. `make lab` builds and runs it; `make lab-down` undoes it.
//
// Usage: lab up|down|status
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

// Fixed loopback ports, so the kubeconfig stays valid across `make lab` runs.
const (
	etcdPort      = 23790
	etcdPeerPort  = 23800
	apiserverPort = 26443
	serviceCIDRs  = "198.19.0.0/16,fd00:96::/112"
)

type lab struct {
	dir  string
	root string
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: lab up|down|status")
		os.Exit(2)
	}
	root := framework.RepoRoot()
	l := lab{dir: filepath.Join(root, ".lab"), root: root}
	var err error
	switch os.Args[1] {
	case "up":
		err = l.up(context.Background())
	case "down":
		err = l.down()
	case "status":
		err = l.status()
	default:
		err = fmt.Errorf("unknown command %q; want up, down or status", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

// component is one background process of the lab.
type component struct {
	name  string
	bin   string
	args  []string
	ready func(ctx context.Context, exited func() (bool, error)) error
}

func (l lab) components() ([]component, error) {
	etcd, err := framework.UpstreamBinary("etcd")
	if err != nil {
		return nil, err
	}
	apiserver, err := framework.UpstreamBinary("kube-apiserver")
	if err != nil {
		return nil, err
	}
	ccm, err := framework.ProjectBinary("baremetal-cloud-controller-manager")
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	return []component{
		{
			name: "etcd", bin: etcd, args: framework.EtcdArgs(l.dir, etcdPort, etcdPeerPort),
			ready: func(ctx context.Context, exited func() (bool, error)) error {
				return framework.WaitHTTP(ctx, etcdURL+"/health", "", 30*time.Second, exited)
			},
		},
		{
			name: "kube-apiserver", bin: apiserver, args: framework.APIServerArgs(l.dir, etcdURL, apiserverPort, serviceCIDRs),
			ready: func(ctx context.Context, exited func() (bool, error)) error {
				tokens, err := framework.WriteCredentials(l.dir)
				if err != nil {
					return err
				}
				return framework.WaitHTTP(ctx, l.apiserverURL()+"/readyz", tokens[framework.AdminUser], 90*time.Second, exited)
			},
		},
		{
			name: "baremetal-cloud-controller-manager", bin: ccm,
			args: append([]string{"--kubeconfig=" + l.kubeconfig(framework.CCMUser)}, framework.CCMArgs()...),
		},
	}, nil
}

func (l lab) apiserverURL() string { return "https://127.0.0.1:" + strconv.Itoa(apiserverPort) }

func (l lab) kubeconfig(user string) string {
	if user == framework.AdminUser {
		return filepath.Join(l.dir, "kubeconfig")
	}
	return filepath.Join(l.dir, "kubeconfig-ccm")
}

func (l lab) up(ctx context.Context) error {
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	tokens, err := framework.WriteCredentials(l.dir)
	if err != nil {
		return err
	}
	for user := range tokens {
		if err := framework.WriteKubeconfig(l.kubeconfig(user), l.apiserverURL(), user, tokens[user]); err != nil {
			return err
		}
	}
	components, err := l.components()
	if err != nil {
		return err
	}
	for _, c := range components {
		if c.name == "baremetal-cloud-controller-manager" {
			// The CCM's RBAC and CRDs must exist before it starts.
			if err := l.applyManifests(ctx); err != nil {
				return err
			}
		}
		if pid, ok := framework.RunningPID(l.dir, c.name, c.bin); ok {
			fmt.Printf("%-36s running (pid %d)\n", c.name, pid)
			continue
		}
		pid, err := framework.StartDetached(c.name, l.dir, c.bin, c.args...)
		if err != nil {
			return err
		}
		if c.ready != nil {
			exited := func() (bool, error) {
				_, alive := framework.RunningPID(l.dir, c.name, c.bin)
				return !alive, errors.New("see " + filepath.Join(l.dir, c.name+".log"))
			}
			if err := c.ready(ctx, exited); err != nil {
				return fmt.Errorf("%s did not become ready: %w", c.name, err)
			}
		}
		fmt.Printf("%-36s started (pid %d, log .lab/%s.log)\n", c.name, pid, c.name)
	}
	cfg, err := l.adminConfig()
	if err != nil {
		return err
	}
	if err := framework.ApplyFiles(ctx, cfg, filepath.Join(l.root, "examples/demo.yaml")); err != nil {
		return fmt.Errorf("applying examples/demo.yaml: %w", err)
	}
	ip, err := l.waitDemoIP(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf(`
The lab is up. Service default/metallb-demo got EXTERNAL-IP %s.

  export KUBECONFIG=%s
  kubectl get svc metallb-demo          # kubectl: %s
  kubectl get ippools
  kubectl describe svc metallb-demo

Logs and PID files are in .lab/. Stop everything with: make lab-down
`, ip, l.kubeconfig(framework.AdminUser), filepath.Join(l.dir, "bin", "kubectl"))
	return nil
}

func (l lab) adminConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", l.kubeconfig(framework.AdminUser))
}

func (l lab) applyManifests(ctx context.Context) error {
	cfg, err := l.adminConfig()
	if err != nil {
		return err
	}
	return framework.ApplyFiles(ctx, cfg,
		filepath.Join(l.root, "manifests/crd/bases/baremetal.dev_ippools.yaml"),
		filepath.Join(l.root, "manifests/ccm/rbac.yaml"),
	)
}

func (l lab) waitDemoIP(ctx context.Context, cfg *rest.Config) (string, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	var ips []string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		svc, err := client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "metallb-demo", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		ips = ingress(svc)
		return len(ips) > 0, nil
	})
	if err != nil {
		return "", fmt.Errorf("the demo Service got no EXTERNAL-IP (see .lab/baremetal-cloud-controller-manager.log): %w", err)
	}
	return ips[0], nil
}

func ingress(svc *v1.Service) []string {
	var ips []string
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		ips = append(ips, ing.IP)
	}
	return ips
}

func (l lab) down() error {
	components, err := l.components()
	if err != nil {
		components = nil
	}
	// Reverse order: the CCM before the API server before etcd.
	for i := len(components) - 1; i >= 0; i-- {
		c := components[i]
		if pid, ok := framework.RunningPID(l.dir, c.name, c.bin); ok {
			framework.StopPID(pid, 10*time.Second)
			fmt.Printf("%-36s stopped (pid %d)\n", c.name, pid)
		}
	}
	return os.RemoveAll(l.dir)
}

func (l lab) status() error {
	components, err := l.components()
	if err != nil {
		return err
	}
	for _, c := range components {
		if pid, ok := framework.RunningPID(l.dir, c.name, c.bin); ok {
			fmt.Printf("%-36s running (pid %d)\n", c.name, pid)
		} else {
			fmt.Printf("%-36s not running\n", c.name)
		}
	}
	return nil
}
