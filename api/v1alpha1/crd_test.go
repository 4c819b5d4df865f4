package v1alpha1

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The BGPPeer CRD checks durations with a regular expression before CEL's duration() sees them:
// duration() on a string that does not parse is a rule that fails to run, and the user would read
// an internal error. The expression must accept only what metav1.Duration decodes (else one bad
// BGPPeer breaks every announcer's watch) and everything it encodes (else writing back an object
// read with a typed client is refused). These tests hold it to both, with Go's regexp, which is
// the engine CEL's matches() runs.

// durationFields are the schema paths, under spec, of the BGPPeer's duration fields.
var durationFields = [][]string{{"holdTime"}, {"keepaliveTime"}, {"connectTime"}, {"gracefulRestart", "restartTime"}}

var matchesArg = regexp.MustCompile(`matches\('([^']*)'\)`)

// durationRule returns the regular expression the BGPPeer CRD applies to durations and the
// maxLength of those fields, after checking that every duration field uses the same ones.
func durationRule(t testing.TB) (*regexp.Regexp, int64) {
	t.Helper()
	data, err := os.ReadFile("../../manifests/crd/bases/baremetal.dev_bgppeers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096).Decode(crd); err != nil {
		t.Fatal(err)
	}
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	var expr string
	var maxLength int64
	seen := func(where, got string) {
		t.Helper()
		if expr == "" {
			expr = got
		}
		if got != expr {
			t.Fatalf("%s checks durations with %q, other fields with %q: keep them one expression", where, got, expr)
		}
	}
	for _, path := range durationFields {
		field := spec
		for _, name := range path {
			field = field.Properties[name]
		}
		where := strings.Join(path, ".")
		if field.MaxLength == nil {
			t.Fatalf("%s has no maxLength: the expression's digit limits rely on one", where)
		}
		if maxLength == 0 {
			maxLength = *field.MaxLength
		}
		if *field.MaxLength != maxLength {
			t.Fatalf("%s has maxLength %d, other duration fields %d", where, *field.MaxLength, maxLength)
		}
		n := 0
		for _, rule := range field.XValidations {
			for _, m := range matchesArg.FindAllStringSubmatch(rule.Rule, -1) {
				seen(where, m[1])
				n++
			}
			if strings.Contains(rule.Rule, "duration(self)") && !strings.Contains(rule.Rule, "!self.matches(") {
				t.Errorf("%s: rule %q calls duration() without the guard", where, rule.Rule)
			}
		}
		if n == 0 {
			t.Fatalf("%s has no matches() rule", where)
		}
	}
	for _, rule := range spec.XValidations {
		for _, m := range matchesArg.FindAllStringSubmatch(rule.Rule, -1) {
			seen("a spec rule", m[1])
		}
	}
	return regexp.MustCompile(expr), maxLength
}

// accepted reports whether the CRD's length and syntax checks let s through.
func accepted(re *regexp.Regexp, maxLength int64, s string) bool {
	return int64(len(s)) <= maxLength && re.MatchString(s)
}

func TestDurationRuleMatchesGo(t *testing.T) {
	re, maxLength := durationRule(t)
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"0", true}, {"0s", true}, {"3s", true}, {"90s", true}, {"1m30s", true}, {"1h", true},
		{"1.5s", true}, {"2999ms", true}, {"100ms", true}, {"1us", true}, {"1µs", true}, {"1μs", true},
		{"1ns", true}, {"18h12m14.999999999s", true}, {"65535s", true},
		{"", false}, {"90", false}, {"-3s", false}, {"+3s", false}, {"1d", false}, {"1 day", false},
		{"1.s", false}, {".5s", false}, {"1e3s", false}, {"3 s", false}, {"3S", false},
		{"1234567s", false}, {"1.1234567890s", false}, {"999999h999999h999999h", false},
	} {
		if got := accepted(re, maxLength, tc.s); got != tc.want {
			t.Errorf("%q accepted = %v, want %v", tc.s, got, tc.want)
		}
	}
}

// FuzzDurationRule: whatever the CRD accepts as a duration, metav1.Duration decodes, without
// overflow; and whatever metav1.Duration encodes in the range the CRD allows (up to 65535 s), the
// CRD accepts.
func FuzzDurationRule(f *testing.F) {
	re, maxLength := durationRule(f)
	for _, s := range []string{"0", "90s", "1m30s", "1.5s", "1µs", "999999h999999h99999h", "999999.999999999h"} {
		f.Add(s, int64(0))
	}
	f.Add("", int64(65535*time.Second))
	f.Add("", int64(65535*time.Second-1))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		if accepted(re, maxLength, s) {
			var d metav1.Duration
			if err := json.Unmarshal([]byte(strconv.Quote(s)), &d); err != nil {
				t.Fatalf("the CRD accepts %q, metav1.Duration refuses it: %v", s, err)
			}
			if d.Duration < 0 {
				t.Fatalf("the CRD accepts %q, which decodes negative: %v", s, d.Duration)
			}
		}
		if n < 0 || n > int64(65535*time.Second) {
			return
		}
		data, err := json.Marshal(metav1.Duration{Duration: time.Duration(n)})
		if err != nil {
			t.Fatal(err)
		}
		var encoded string
		if err := json.Unmarshal(data, &encoded); err != nil {
			t.Fatal(err)
		}
		if !accepted(re, maxLength, encoded) {
			t.Fatalf("metav1.Duration encodes %v as %q, which the CRD refuses", time.Duration(n), encoded)
		}
	})
}
