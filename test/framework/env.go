package framework

import (
	"context"
	"fmt"
	"path/filepath"

	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Env is a control plane with the project's CRDs and RBAC installed and the real
// baremetal-cloud-controller-manager binary running against it as its own ServiceAccount.
type Env struct {
	*ControlPlane
	Client  *kubernetes.Clientset
	Dynamic dynamic.Interface
	ccm     *Process
	ccmArgs []string
}

// CCMArgs are the flags every test CCM runs with: quick leader election and the service
// controller's default concurrency raised, as in the shipped manifests.
func CCMArgs() []string {
	return []string{
		"--cloud-provider=baremetal",
		"--secure-port=0",
		"--webhook-secure-port=0",
		"--leader-elect=true",
		"--leader-elect-lease-duration=4s",
		"--leader-elect-renew-deadline=3s",
		"--leader-elect-retry-period=500ms",
		"--concurrent-service-syncs=8",
		"--node-monitor-period=1s",
		"--v=2",
	}
}

// StartEnv starts the control plane under dir, installs manifests/crd and the CCM's RBAC, and
// starts the CCM with CCMArgs and a token the API server issued for its ServiceAccount.
func StartEnv(ctx context.Context, dir string) (*Env, error) {
	cp, err := StartControlPlane(ctx, dir, ControlPlaneOptions{})
	if err != nil {
		return nil, err
	}
	env := &Env{ControlPlane: cp}
	if env.Client, err = cp.Client(); err != nil {
		cp.Stop()
		return nil, err
	}
	if env.Dynamic, err = dynamic.NewForConfig(cp.Config(AdminUser)); err != nil {
		cp.Stop()
		return nil, err
	}
	root := RepoRoot()
	if err := ApplyFiles(ctx, cp.Config(AdminUser),
		filepath.Join(root, "manifests/crd/bases/baremetal.dev_ippools.yaml"),
		filepath.Join(root, "manifests/crd/bases/baremetal.dev_bgppeers.yaml"),
		filepath.Join(root, "manifests/ccm/rbac.yaml"),
	); err != nil {
		cp.Stop()
		return nil, fmt.Errorf("installing manifests: %w", err)
	}
	if err := cp.UseServiceAccountToken(ctx, CCMUser); err != nil {
		cp.Stop()
		return nil, err
	}
	if err := env.StartCCM(CCMArgs()...); err != nil {
		cp.Stop()
		return nil, err
	}
	return env, nil
}

// StartCCM starts the cloud-controller-manager with the given flags (plus --kubeconfig).
func (e *Env) StartCCM(args ...string) error {
	bin, err := ProjectBinary("baremetal-cloud-controller-manager")
	if err != nil {
		return err
	}
	e.ccmArgs = args
	full := append([]string{"--kubeconfig=" + e.Kubeconfig(CCMUser)}, args...)
	e.ccm, err = StartProcess("baremetal-cloud-controller-manager", e.Dir, bin, full...)
	return err
}

// StartCCMBinary starts another cloud-controller-manager binary in the CCM's place (with its
// credentials), for benchmarks that compare ours with another provider on the same API server.
// StopCCM stops it; StartCCM brings ours back.
func (e *Env) StartCCMBinary(bin string, args ...string) error {
	full := append([]string{"--kubeconfig=" + e.Kubeconfig(CCMUser)}, args...)
	var err error
	e.ccm, err = StartProcess(filepath.Base(bin), e.Dir, bin, full...)
	return err
}

// StopCCM stops the cloud-controller-manager with SIGTERM.
func (e *Env) StopCCM() {
	if e.ccm != nil {
		e.ccm.Stop(10 * time.Second)
	}
}

// KillCCM ends the cloud-controller-manager with SIGKILL, as a crash would.
func (e *Env) KillCCM() {
	if e.ccm != nil {
		e.ccm.Kill()
	}
}

// RestartCCM stops (SIGTERM) and starts the cloud-controller-manager with the same flags.
func (e *Env) RestartCCM() error {
	e.StopCCM()
	return e.StartCCM(e.ccmArgs...)
}

// CCMAlive reports an error if the cloud-controller-manager has exited.
func (e *Env) CCMAlive() error {
	if e.ccm == nil {
		return fmt.Errorf("cloud-controller-manager not started")
	}
	if exited, err := e.ccm.Exited(); exited {
		return fmt.Errorf("cloud-controller-manager (pid %d) exited: %w; log %s", e.ccm.PID(), err, e.ccm.LogPath)
	}
	return nil
}

// CCMPID is the process ID of the running cloud-controller-manager, or 0.
func (e *Env) CCMPID() int {
	if e.ccm == nil {
		return 0
	}
	return e.ccm.PID()
}

// CCMLog is the path of the cloud-controller-manager's log.
func (e *Env) CCMLog() string { return filepath.Join(e.Dir, "baremetal-cloud-controller-manager.log") }

// Stop ends the CCM and the control plane.
func (e *Env) Stop() {
	e.StopCCM()
	e.ControlPlane.Stop()
}
