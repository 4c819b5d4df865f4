package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

const chartDir = "charts/cloud-provider-baremetal"

// runCommand runs a command in the repository's top directory and returns its standard output; a
// failure reports the command and its standard error.
func runCommand(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	out, err := runErr(stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", filepath.Base(name), strings.Join(args, " "), err)
	}
	return out
}

func runErr(stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = framework.RepoRoot()
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &commandError{err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.Bytes(), nil
}

type commandError struct {
	err    error
	stderr string
}

func (e *commandError) Error() string { return e.err.Error() + ": " + e.stderr }
func (e *commandError) Unwrap() error { return e.err }

// helmTemplate renders the chart with the pinned Helm (hack/tools/helm; make verify builds it),
// for the oldest Kubernetes the chart supports, with extra flags such as --set.
func helmTemplate(t *testing.T, flags ...string) []byte {
	t.Helper()
	args := []string{"helm", "helm.sh/helm/v3/cmd/helm", "template", "baremetal", chartDir, "--namespace=kube-system", "--kube-version=v1.30.0"}
	return runCommand(t, nil, "hack/go-tool.sh", append(args, flags...)...)
}

// TestManifestsInstall installs manifests/ on an empty cluster exactly as the README says,
// `kubectl apply -k manifests/`, then checks that a server-side dry run of every install form is
// clean against it: the kustomize bases, the rendered manifests/install.yaml, and the Helm chart
// (default values, and values that change every knob); a second apply changes nothing. The API
// server validates each object with its admission (CRD schemas, ValidatingAdmissionPolicy type
// checks, Pod templates).
func TestManifestsInstall(t *testing.T) {
	kubectlBin, err := framework.UpstreamBinary("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp, err := framework.StartControlPlane(ctx, t.TempDir(), framework.ControlPlaneOptions{})
	if err != nil {
		t.Fatalf("starting an empty control plane: %v", err)
	}
	t.Cleanup(cp.Stop)
	kubectl := func(stdin []byte, args ...string) []byte {
		t.Helper()
		return runCommand(t, stdin, kubectlBin, append([]string{"--kubeconfig=" + cp.Kubeconfig(framework.AdminUser)}, args...)...)
	}

	out := kubectl(nil, "apply", "-k", "manifests/")
	t.Logf("kubectl apply -k manifests/:\n%s", out)
	out = kubectl(nil, "apply", "--dry-run=server", "-k", "manifests/")
	t.Logf("kubectl apply --dry-run=server -k manifests/:\n%s", out)
	// Applying again changes nothing: no field the API server defaults inside a list that kubectl
	// replaces whole (that would rewrite the object on every apply).
	if bytes.Contains(out, []byte("configured")) {
		t.Errorf("applying manifests/ a second time would change objects:\n%s", out)
	}
	kubectl(nil, "apply", "--dry-run=server", "-f", "manifests/install.yaml")

	chart := helmTemplate(t)
	kubectl(chart, "apply", "--dry-run=server", "-f", "-")
	custom := helmTemplate(t,
		"--set=ccm.replicas=1,ccm.image.repository=registry.example/ccm,ccm.image.tag=v1,ccm.image.pullPolicy=Always",
		"--set=ccm.extraArgs={--v=4},announcer.extraArgs={--v=4},announcer.priorityClassName=system-cluster-critical",
		"--set=announcer.resources.requests.cpu=100m,announcer.nodeSelector.kubernetes\\.io/os=linux",
		"--set=imagePullSecrets[0].name=registry,commonLabels.team=network,crds.keep=false")
	kubectl(custom, "apply", "--dry-run=server", "-f", "-")
	for _, want := range []string{"image: registry.example/ccm:v1", "replicas: 1", "- --v=4", "cpu: 100m", "kubernetes.io/os: linux", "name: registry", "team: network"} {
		if !bytes.Contains(custom, []byte(want)) {
			t.Errorf("helm template with custom values: %q missing", want)
		}
	}
	if bytes.Contains(custom, []byte("helm.sh/resource-policy")) {
		t.Errorf("helm template with crds.keep=false: the CRDs still carry helm.sh/resource-policy")
	}

	t.Run("PodSecurity", func(t *testing.T) { testPodSecurity(t, cp) })
}

// TestChartRendersInstallYAML: the Helm chart has no objects of its own. With default values it
// renders exactly the objects of manifests/install.yaml, so the two install forms cannot drift
// apart (hack/verify.sh keeps install.yaml and the chart's copies in step with manifests/).
func TestChartRendersInstallYAML(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "manifests/install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := objectsByKey(t, data)
	got := objectsByKey(t, helmTemplate(t))
	for key, obj := range got {
		// The chart's only addition: uninstalling a release keeps the CRDs, and so the pools.
		if obj.GetKind() == "CustomResourceDefinition" {
			annotations := obj.GetAnnotations()
			if annotations["helm.sh/resource-policy"] != "keep" {
				t.Errorf("%s: helm.sh/resource-policy = %q, want keep", key, annotations["helm.sh/resource-policy"])
			}
			delete(annotations, "helm.sh/resource-policy")
			if len(annotations) == 0 {
				annotations = nil
			}
			obj.SetAnnotations(annotations)
		}
	}
	if len(want) < 20 {
		t.Fatalf("manifests/install.yaml holds %d objects; is it rendered?", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("helm template (default values) differs from manifests/install.yaml (-install.yaml +chart):\n%s", diff)
	}
}

func objectsByKey(t *testing.T, data []byte) map[string]*unstructured.Unstructured {
	t.Helper()
	objs, err := framework.DecodeYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]*unstructured.Unstructured{}
	for _, obj := range objs {
		key := obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
		if _, dup := byKey[key]; dup {
			t.Errorf("%s appears twice", key)
		}
		byKey[key] = obj
	}
	return byKey
}

// testPodSecurity checks the Pod Security level the manifests document: the Pods of the CCM
// Deployment and of the announcer DaemonSet are admitted in kube-system (privileged unless the
// cluster's admission configuration says otherwise) and refused under the baseline level (host
// network, host path, added capabilities), so a namespace for them needs
// pod-security.kubernetes.io/enforce: privileged. cp has manifests/ applied.
func testPodSecurity(t *testing.T, cp *framework.ControlPlane) {
	ctx := context.Background()
	client, err := cp.Client()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "manifests/install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := framework.DecodeYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	baseline := "psa-baseline"
	_, err = client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: baseline, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := 0
	for _, obj := range objs {
		if obj.GetKind() != "Deployment" && obj.GetKind() != "DaemonSet" {
			continue
		}
		pods++
		template, _, _ := unstructured.NestedMap(obj.Object, "spec", "template")
		pod := &v1.Pod{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(template, pod); err != nil {
			t.Fatal(err)
		}
		pod.GenerateName = obj.GetName() + "-"
		if _, err := dryRunPod(ctx, client, "kube-system", pod); err != nil {
			t.Errorf("%s %s's Pod in kube-system: %v, want it admitted", obj.GetKind(), obj.GetName(), err)
		}
		_, err = client.CoreV1().ServiceAccounts(baseline).Create(ctx, &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: pod.Spec.ServiceAccountName}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod.Spec.PriorityClassName = "" // system-*-critical are for kube-system
		_, err = dryRunPod(ctx, client, baseline, pod)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "violates PodSecurity") {
			t.Errorf("%s %s's Pod under Pod Security baseline: err = %v, want a PodSecurity violation", obj.GetKind(), obj.GetName(), err)
		} else {
			t.Logf("%s %s under baseline: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	if pods != 2 {
		t.Errorf("manifests/install.yaml has %d Deployments and DaemonSets, want 2", pods)
	}
}

func dryRunPod(ctx context.Context, client kubernetes.Interface, namespace string, pod *v1.Pod) (*v1.Pod, error) {
	return client.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}
