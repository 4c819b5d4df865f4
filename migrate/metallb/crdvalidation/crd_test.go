package crdvalidation_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/baremetal-dev/cloud-provider-baremetal/migrate/metallb"
)

// The API server's limits on CEL (k8s.io/apiserver/pkg/apis/cel), repeated here so the test
// does not import the apiserver module for two numbers.
const (
	celPerCallLimit   = 1000000
	celRuntimeBudget  = 10000000
	crdDirFromPackage = "../../../manifests/crd/bases"
)

// crdSchema is one CRD's schema, ready to check objects the way the API server does on create:
// defaults, pruning of unknown fields, OpenAPI validation, then the CEL rules.
type crdSchema struct {
	structural *structuralschema.Structural
	openapi    apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

// loadCRDs reads our CRDs from manifests/ by kind.
func loadCRDs(t testing.TB) map[string]*crdSchema {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(crdDirFromPackage, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs under %s: %v", crdDirFromPackage, err)
	}
	out := map[string]*crdSchema{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096).Decode(crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		internal := &apiextensions.JSONSchemaProps{}
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, internal, nil); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		structural, err := structuralschema.NewStructural(internal)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		openapi, _, err := apiservervalidation.NewSchemaValidator(internal)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[crd.Spec.Names.Kind] = &crdSchema{structural: structural, openapi: openapi, cel: cel.NewValidator(structural, true, celPerCallLimit)}
	}
	return out
}

// validate checks obj against its kind's CRD and returns every problem the API server would
// report, unknown fields included.
func (s *crdSchema) validate(t testing.TB, obj runtime.Object) field.ErrorList {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var content map[string]any
	// Integers as int64, as the API server decodes them; CEL refuses float64 for an integer.
	if err := utiljson.Unmarshal(data, &content); err != nil {
		t.Fatal(err)
	}
	delete(content, "status")
	var errs field.ErrorList
	for _, path := range structuralpruning.PruneWithOptions(content, s.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
		errs = append(errs, field.Invalid(field.NewPath(path), nil, "unknown field: the API server would drop it"))
	}
	structuraldefaulting.Default(content, s.structural)
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, content, s.openapi)...)
	celErrs, _ := s.cel.Validate(context.Background(), nil, s.structural, content, nil, celRuntimeBudget)
	return append(errs, celErrs...)
}

// validateResult checks every IPPool and BGPPeer of r against our CRDs.
func validateResult(t testing.TB, crds map[string]*crdSchema, r *metallb.Result) {
	t.Helper()
	for i := range r.Pools {
		if errs := crds["IPPool"].validate(t, &r.Pools[i]); len(errs) > 0 {
			t.Errorf("IPPool %s fails the CRD: %v", r.Pools[i].Name, errs.ToAggregate())
		}
	}
	for i := range r.Peers {
		if errs := crds["BGPPeer"].validate(t, &r.Peers[i]); len(errs) > 0 {
			t.Errorf("BGPPeer %s fails the CRD: %v", r.Peers[i].Name, errs.ToAggregate())
		}
	}
}

// TestCRDValidatorRefuses proves the validator above is not vacuous: objects the CRDs refuse,
// by OpenAPI, by CEL or by pruning, are refused by it.
func TestCRDValidatorRefuses(t *testing.T) {
	crds := loadCRDs(t)
	r, err := metallb.Convert(strings.NewReader(`
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p}
spec: {addresses: [192.168.1.0/24]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: r}
spec: {myASN: 64512, peerASN: 64512, peerAddress: 10.0.0.1}
`))
	if err != nil {
		t.Fatal(err)
	}
	validateResult(t, crds, r)

	pool := *r.Pools[0].DeepCopy()
	pool.Spec.Addresses[0] = "192.168.1.1/24"
	if errs := crds["IPPool"].validate(t, &pool); !strings.Contains(errs.ToAggregate().Error(), "host bits") {
		t.Errorf("a CIDR with host bits: want the CEL rule's error, got %v", errs)
	}
	peer := *r.Peers[0].DeepCopy()
	peer.Spec.EBGPMultihop = 2
	if errs := crds["BGPPeer"].validate(t, &peer); !strings.Contains(errs.ToAggregate().Error(), "eBGP") {
		t.Errorf("ebgpMultihop on an iBGP peer: want the CEL rule's error, got %v", errs)
	}
	peer = *r.Peers[0].DeepCopy()
	peer.Spec.PeerASN = 0
	if errs := crds["BGPPeer"].validate(t, &peer); len(errs) == 0 {
		t.Error("peerASN 0: want the OpenAPI minimum's error, got none")
	}
	content := map[string]any{"apiVersion": "baremetal.dev/v1alpha1", "kind": "BGPPeer", "metadata": map[string]any{"name": "x"},
		"spec": map[string]any{"peerAddress": "10.0.0.1", "peerASN": int64(1), "myASN": int64(2), "bogus": true}}
	if paths := structuralpruning.PruneWithOptions(content, crds["BGPPeer"].structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}); len(paths) != 1 {
		t.Errorf("pruning an object with spec.bogus: got unknown paths %v, want one", paths)
	}
}

// TestConvertedObjectsPassCRDs converts every input of ../testdata and checks each IPPool and
// BGPPeer made against the CRDs.
func TestConvertedObjectsPassCRDs(t *testing.T) {
	crds := loadCRDs(t)
	inputs, err := filepath.Glob("../testdata/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			r, err := metallb.Convert(strings.NewReader(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Pools)+len(r.Peers) == 0 {
				t.Fatal("nothing converted: the check would be vacuous")
			}
			validateResult(t, crds, r)
		})
	}
}
