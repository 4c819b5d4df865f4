package integration

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// TestIPPoolSchemaValidation checks that the API server itself (OpenAPI + CEL in the CRD)
// refuses malformed pools with a message that names the bad value.
func TestIPPoolSchemaValidation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		addresses []string
		wantErr   string // "" = accepted
	}{
		{"single v4", []string{"198.18.5.1"}, ""},
		{"cidr v4", []string{"198.18.5.0/24"}, ""},
		{"cidr v6", []string{"2001:db8:5::/64"}, ""},
		{"range v4", []string{"198.18.5.10-198.18.5.20"}, ""},
		{"range v4 spaces", []string{"198.18.5.10 - 198.18.5.20"}, ""},
		{"range v4 one address", []string{"198.18.5.10-198.18.5.10"}, ""},
		{"range v4 across octets", []string{"198.18.5.255-198.18.6.0"}, ""},
		{"range v6", []string{"2001:db8:5::10-2001:db8:5::1:0"}, ""},
		{"range v6 wide", []string{"2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}, ""},
		{"mixed list", []string{"198.18.5.0/28", "2001:db8:5::/120"}, ""},
		{"garbage", []string{"not-an-ip"}, `"not-an-ip" is not an IP address, a CIDR`},
		{"bad octet", []string{"198.18.5.300"}, `"198.18.5.300" is not an IP address`},
		{"bad prefix", []string{"198.18.5.0/33"}, `"198.18.5.0/33" is not an IP address`},
		{"host bits", []string{"198.18.5.7/24"}, `"198.18.5.7/24" has host bits set`},
		{"reversed v4", []string{"198.18.5.20-198.18.5.10"}, `range "198.18.5.20-198.18.5.10" ends below its start`},
		{"reversed v4 low bit", []string{"198.18.5.11-198.18.5.10"}, `ends below its start`},
		{"reversed v4 high bit", []string{"199.18.5.10-198.18.5.10"}, `ends below its start`},
		{"reversed v6", []string{"2001:db8:5::1:0-2001:db8:5::10"}, `range "2001:db8:5::1:0-2001:db8:5::10" ends below its start`},
		{"mixed family range", []string{"198.18.5.1-2001:db8::1"}, `range "198.18.5.1-2001:db8::1" mixes IPv4 and IPv6`},
		{"three dashes", []string{"198.18.5.1-198.18.5.2-198.18.5.3"}, `is not an IP address, a CIDR`},
		{"empty list", nil, "spec.addresses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "validation-" + strings.ReplaceAll(strings.ReplaceAll(tc.name, " ", "-"), "_", "-")
			pool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.IPPoolSpec{
				Addresses:         addrs(tc.addresses...),
				AutoAssign:        ptrTo(false),
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"nothing": "matches"}},
			}}
			err := createPoolObject(pool)
			if err == nil {
				deletePool(name)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("pool %v refused: %v", tc.addresses, err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("pool %v accepted, want an error containing %q", tc.addresses, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("pool %v refused with %q, want it to contain %q", tc.addresses, err, tc.wantErr)
			}
		})
	}
}
