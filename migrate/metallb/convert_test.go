package metallb

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the converter's output")

func mustConvert(t testing.TB, in string) *Result {
	t.Helper()
	r, err := Convert(strings.NewReader(in))
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	return r
}

// findings returns the findings of kind k as strings.
func findings(r *Result, k FindingKind) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Kind == k {
			out = append(out, f.String())
		}
	}
	return out
}

// requireFinding fails unless some finding of kind k contains every part.
func requireFinding(t *testing.T, r *Result, k FindingKind, parts ...string) {
	t.Helper()
	for _, f := range findings(r, k) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(f, p)
		}
		if ok {
			return
		}
	}
	t.Errorf("no %s finding with %q; findings: %s", k, parts, strings.Join(findings(r, k), "\n"))
}

// TestGolden converts each testdata/*.yaml (MetalLB's documented configurations, the seed's, and
// the pre-0.13 ConfigMap) and compares the output with its .golden file; the output must decode
// strictly into our types. (crdvalidation checks the same objects against the CRDs: its
// dependencies would slow the fuzzing of this package a thousandfold.)
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, in := range inputs {
		t.Run(strings.TrimSuffix(filepath.Base(in), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			r := mustConvert(t, string(data))
			var out bytes.Buffer
			if err := r.WriteYAML(&out); err != nil {
				t.Fatal(err)
			}
			decodeStrictly(t, out.Bytes())
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("output differs from %s (-want +got; go test -update rewrites it):\n%s", golden, diff)
			}
		})
	}
}

// decodeStrictly reads the converter's output back, each document into its Go type, refusing
// unknown fields: what the output says is what our types hold.
func decodeStrictly(t testing.TB, out []byte) {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := reader.Read()
		if err != nil {
			break
		}
		data, err := utilyaml.ToJSON(doc)
		if err != nil {
			t.Fatalf("output is not YAML: %v\n%s", err, doc)
		}
		if s := strings.TrimSpace(string(data)); s == "null" || s == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(data, &tm); err != nil {
			t.Fatal(err)
		}
		var obj any
		switch tm.Kind {
		case "IPPool":
			obj = &v1alpha1.IPPool{}
		case "BGPPeer":
			obj = &v1alpha1.BGPPeer{}
		case "Secret":
			obj = &corev1.Secret{}
		default:
			t.Fatalf("output holds a %q", tm.Kind)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			t.Errorf("output %s does not decode strictly: %v", tm.Kind, err)
		}
	}
}

func TestSeedConfiguration(t *testing.T) {
	// The seed articles' pool and L2Advertisement (DESIGN.md section 1) become one IPPool with
	// the same addresses, announced at layer 2, and nothing is lost.
	data, err := os.ReadFile("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := mustConvert(t, string(data))
	want := []v1alpha1.IPPool{{
		TypeMeta:   metav1.TypeMeta{APIVersion: "baremetal.dev/v1alpha1", Kind: "IPPool"},
		ObjectMeta: metav1.ObjectMeta{Name: "first-pool"},
		Spec: v1alpha1.IPPoolSpec{
			Addresses: []v1alpha1.AddressBlock{"192.168.1.240-192.168.1.250"},
			Announce:  &v1alpha1.Announce{L2: &v1alpha1.L2Announce{}},
		},
	}}
	if diff := cmp.Diff(want, r.Pools); diff != "" {
		t.Errorf("pools (-want +got):\n%s", diff)
	}
	if n := r.Count(NotConverted); n != 0 {
		t.Errorf("%d settings not converted: %v", n, findings(r, NotConverted))
	}
}

func TestParseError(t *testing.T) {
	_, err := Convert(strings.NewReader("apiVersion: v1\nkind: List\n---\nkey: [unclosed\n"))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Document != 2 {
		t.Fatalf("want a ParseError for document 2, got %v", err)
	}
}

func TestListsAndIgnored(t *testing.T) {
	// kubectl get -o yaml writes a List; other objects are reported as ignored, never converted.
	r := mustConvert(t, `
apiVersion: v1
kind: List
items:
- apiVersion: metallb.io/v1beta1
  kind: IPAddressPool
  metadata: {name: a, namespace: metallb-system, annotations: {owner: me, kubectl.kubernetes.io/last-applied-configuration: "{}"}}
  spec: {addresses: [10.1.0.10-10.1.0.20], AutoAssign: false, brandNew: 1}
  status: {assignedIPv4: 0}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: controller, namespace: metallb-system}
- apiVersion: metallb.io/v1beta1
  kind: ServiceL2Status
  metadata: {name: l2-x, namespace: metallb-system}
- apiVersion: metallb.io/v1beta1
  kind: BFDProfile
  metadata: {name: fast, namespace: metallb-system}
- just a string
`)
	if len(r.Pools) != 1 || r.Pools[0].Spec.AutoAssign != nil {
		t.Fatalf("pools %+v: want one, autoAssign unset (the field is case-sensitive)", r.Pools)
	}
	requireFinding(t, r, NotConverted, "IPAddressPool metallb-system/a", "spec.AutoAssign", "not a field")
	requireFinding(t, r, NotConverted, "spec.brandNew")
	requireFinding(t, r, NotConverted, "BFDProfile metallb-system/fast", "BFD")
	requireFinding(t, r, Decision, "metadata.annotations", "owner")
	requireFinding(t, r, Ignored, "Deployment metallb-system/controller")
	requireFinding(t, r, Ignored, "ServiceL2Status")
	requireFinding(t, r, Ignored, "item 4", "not a Kubernetes object")
	for _, f := range findings(r, Decision) {
		if strings.Contains(f, "last-applied") {
			t.Errorf("kubectl's last-applied annotation reported: %s", f)
		}
	}
}

func TestDuplicateNames(t *testing.T) {
	r := mustConvert(t, `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: a, namespace: one}
spec: {addresses: [10.1.0.1/32]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: a, namespace: two}
spec: {addresses: [10.2.0.1/32]}
`)
	if len(r.Pools) != 1 || r.Pools[0].Spec.Addresses[0] != "10.1.0.1/32" {
		t.Fatalf("pools %+v: want the first only", r.Pools)
	}
	requireFinding(t, r, NotConverted, "IPAddressPool two/a", "already comes from IPAddressPool one/a")
	requireFinding(t, r, Decision, "namespaces one, two")
}
