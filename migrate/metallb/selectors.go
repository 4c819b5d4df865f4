package metallb

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// namespaceNameLabel is set by the API server on every Namespace to its name, so a list of
// namespace names becomes a label selector.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// mergeSelectors turns MetalLB's list of selectors, any of which may match, into our single
// selector. exact is false when the list cannot be expressed as one selector; the first one is
// returned then, and the caller reports the others. Lists whose selectors each test one key for
// a set of values, the same key in all, merge exactly into one "key In (union)": that is the
// common case (a list of hostnames, a list of namespaces).
func mergeSelectors(sels []metav1.LabelSelector) (merged *metav1.LabelSelector, exact bool) {
	if len(sels) == 0 {
		return nil, true
	}
	for _, s := range sels {
		if isEmpty(s) {
			return nil, true // one selector matches everything: so does the list
		}
	}
	if len(sels) == 1 {
		s := sels[0]
		return &s, true
	}
	key, values, ok := oneKey(sels[0])
	for _, s := range sels[1:] {
		k, v, one := oneKey(s)
		if !ok || !one || k != key {
			s := sels[0]
			return &s, false
		}
		values = append(values, v...)
	}
	slices.Sort(values)
	values = slices.Compact(values)
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: metav1.LabelSelectorOpIn, Values: values}}}, true
}

func isEmpty(s metav1.LabelSelector) bool {
	return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

// oneKey returns the key and values of a selector that only tests one key for a set of values.
func oneKey(s metav1.LabelSelector) (string, []string, bool) {
	switch {
	case len(s.MatchLabels) == 1 && len(s.MatchExpressions) == 0:
		for k, v := range s.MatchLabels {
			return k, []string{v}, true
		}
	case len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 1:
		r := s.MatchExpressions[0]
		if r.Operator == metav1.LabelSelectorOpIn && len(r.Values) > 0 {
			return r.Key, slices.Clone(r.Values), true
		}
	}
	return "", nil, false
}

// namesSelector selects the objects whose label key has one of the values.
func namesSelector(key string, values []string) *metav1.LabelSelector {
	values = slices.Clone(values)
	slices.Sort(values)
	values = slices.Compact(values)
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: metav1.LabelSelectorOpIn, Values: values}}}
}

// describeSelectors prints selectors for a report line.
func describeSelectors(sels []metav1.LabelSelector) string {
	parts := make([]string, len(sels))
	for i := range sels {
		parts[i] = "{" + metav1.FormatLabelSelector(&sels[i]) + "}"
	}
	return strings.Join(parts, ", ")
}

// peerLabelValue is the PeerLabel value of a MetalLB BGPPeer name. Names are up to 253
// characters and label values up to 63: a longer name keeps its start and gets a hash of the
// whole, so two long names never collide.
func peerLabelValue(name string) string {
	if len(validation.IsValidLabelValue(name)) == 0 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	prefix := strings.TrimRight(name[:min(len(name), 50)], "-_.")
	return prefix + "-" + hex.EncodeToString(sum[:6])
}
