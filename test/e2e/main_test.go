// Package e2e runs the project in the lab (package test/lab): network namespaces as hosts, a real
// control plane, kwok standing in for kubelets, our real binaries. TestMain builds our binaries,
// brings up a lab of its own and tears it down at the end.
//
// It needs root and the pinned upstream binaries (make lab builds both, or
// hack/build-upstream.sh etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy
// kwok); it fails, never skips, without them. There is one lab per machine: stop a running `make lab` first
// (make lab-down); the tests refuse to take it over. make lab-test builds everything and runs them.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/lab"
)

// env is the lab every test in this package shares.
var env *lab.Lab

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "FAIL: the e2e tests need root: they build a lab of network namespaces (run them with sudo, or make lab-test as root)")
		return 1
	}
	for _, cmd := range []string{"ip", "nft", "curl"} {
		if _, err := exec.LookPath(cmd); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: %s is missing: run hack/install-deps.sh lab\n", cmd)
			return 1
		}
	}
	// A fixed directory, so a run killed before its cleanup leaves no pile of binaries behind.
	bin := filepath.Join(os.TempDir(), "baremetal-e2e-bin")
	defer os.RemoveAll(bin)
	if err := build(bin); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: building the binaries: %v\n", err)
		return 1
	}
	// Our binaries come from this build, not from a possibly stale bin/.
	os.Setenv("BAREMETAL_BIN", bin)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	env, err = lab.Up(ctx, lab.Options{LabBinary: filepath.Join(bin, "lab"), Out: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: bringing the lab up: %v\n", err)
		if !lab.IsAlreadyUp(err) && os.Getenv("BAREMETAL_KEEP_LAB") == "" {
			_ = lab.Down(os.Stdout)
		}
		return 1
	}
	code := m.Run()
	if code != 0 && os.Getenv("BAREMETAL_KEEP_LAB") != "" {
		fmt.Fprintln(os.Stderr, "BAREMETAL_KEEP_LAB is set: the lab stays up for inspection (logs in .lab/); make lab-down removes it")
		return code
	}
	if err := env.Down(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: tearing the lab down: %v\n", err)
		return 1
	}
	return code
}

// build compiles our commands and the lab binary (whose pods subcommand serves the pods of every
// node namespace) into dir.
func build(dir string) error {
	root := framework.RepoRoot()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, pkg := range []string{"./cmd/...", "./test/lab/cmd/lab"} {
		cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	return nil
}
