// Package integration runs the real cloud-controller-manager binary against a real etcd and
// kube-apiserver built from pinned upstream source (hack/build-upstream.sh). `make test` builds
// everything these tests need; run alone they fail, never skip, when a binary is missing.
package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

// env is the control plane shared by every test in this package. Tests isolate themselves by
// namespace and by pools whose namespaceSelector matches only their namespace.
var env *framework.Env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "baremetal-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env, err = framework.StartEnv(ctx, dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane: %v\n", err)
		return 1
	}
	code := m.Run()
	env.Stop()
	if code == 0 && os.Getenv("BAREMETAL_KEEP_LOGS") == "" {
		os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "logs kept in %s\n", filepath.Clean(dir))
	}
	return code
}
