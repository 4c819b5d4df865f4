package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go4.org/netipx"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
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
		// Entries only partly unusable stay: the allocator skips the unusable addresses in them.
		{"everything v4", []string{"0.0.0.0/0"}, ""},
		{"everything v6", []string{"::/0"}, ""},
		{"private v4", []string{"10.0.0.0/8"}, ""},
		{"range into multicast", []string{"223.255.255.250-224.0.0.3"}, ""},
		{"range into loopback", []string{"126.255.255.255-127.0.0.1"}, ""},
		{"cidr over link-local v6", []string{"fe80::/9"}, ""},
		{"documentation v6", []string{"2001:db8::/64"}, ""},
		{"v6 low bits one", []string{"2001:db8:0:1::1"}, ""},
		// Entries none of whose addresses can be a VIP.
		{"multicast cidr v4", []string{"224.0.0.0/24"}, `"224.0.0.0/24" is multicast; no address in it can be a VIP`},
		{"multicast v4", []string{"224.0.0.1"}, `"224.0.0.1" is multicast; it cannot be a VIP`},
		{"multicast v6", []string{"ff02::1"}, `"ff02::1" is multicast; it cannot be a VIP`},
		{"multicast cidr v6", []string{"ff00::/8"}, `"ff00::/8" is multicast; no address in it can be a VIP`},
		{"multicast range v4", []string{"224.0.0.1-239.0.0.1"}, `range "224.0.0.1-239.0.0.1" is multicast; no address in it can be a VIP`},
		{"multicast range v4 spaces", []string{"239.0.0.1 - 239.0.0.9"}, `range "239.0.0.1 - 239.0.0.9" is multicast`},
		{"multicast in a list", []string{"198.18.5.0/28", "224.0.0.0/24"}, `"224.0.0.0/24" is multicast`},
		{"unspecified v6", []string{"::"}, `"::" is the unspecified address; it cannot be a VIP`},
		{"unspecified cidr v6", []string{"::/128"}, `"::/128" is the unspecified address; no address in it`},
		{"unspecified v4", []string{"0.0.0.0"}, `"0.0.0.0" is in 0.0.0.0/8 ("this network", RFC 1122); it cannot be a VIP`},
		{"this network v4", []string{"0.1.2.3"}, `"0.1.2.3" is in 0.0.0.0/8`},
		{"this network cidr v4", []string{"0.0.0.0/8"}, `"0.0.0.0/8" is in 0.0.0.0/8`},
		{"broadcast v4", []string{"255.255.255.255"}, `"255.255.255.255" is the IPv4 broadcast address; it cannot be a VIP`},
		{"broadcast cidr v4", []string{"255.255.255.255/32"}, `"255.255.255.255/32" is the IPv4 broadcast address`},
		{"loopback v4", []string{"127.0.0.1"}, `"127.0.0.1" is loopback; it cannot be a VIP`},
		{"loopback cidr v4", []string{"127.0.0.0/8"}, `"127.0.0.0/8" is loopback; no address in it`},
		{"loopback v6", []string{"::1"}, `"::1" is loopback; it cannot be a VIP`},
		{"loopback range v6", []string{"::1-::1"}, `range "::1-::1" is loopback`},
		{"link-local v4", []string{"169.254.1.1"}, `"169.254.1.1" is link-local; it cannot be a VIP`},
		{"link-local cidr v4", []string{"169.254.0.0/16"}, `"169.254.0.0/16" is link-local; no address in it can be a VIP`},
		{"link-local v6", []string{"fe80::1"}, `"fe80::1" is link-local; it cannot be a VIP`},
		{"link-local cidr v6", []string{"fe80::/64"}, `"fe80::/64" is link-local; no address in it can be a VIP`},
		{"subnet-router anycast v6", []string{"2001:db8:0:1::"}, `"2001:db8:0:1::" is the subnet-router anycast address of its /64`},
		{"ipv4-mapped v6", []string{"::ffff:198.18.5.1"}, `"::ffff:198.18.5.1" is not an IP address`},
		{"ipv4-mapped cidr v6", []string{"::ffff:0:0/96"}, `"::ffff:0:0/96" is not an IP address`},
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

// TestIPPoolSchemaRefusesUnusableBlocks keeps the CEL rules in step with the allocator: each
// fixed block of addresses the allocator never hands out, written as a CIDR, as its first address
// and as a range over the whole block, is refused by the API server with a message naming it.
// IPv4-mapped addresses are refused as not IP addresses at all.
func TestIPPoolSchemaRefusesUnusableBlocks(t *testing.T) {
	for i, block := range ipam.UnusableBlocks() {
		for j, entry := range []string{
			block.String(),
			block.Addr().String(),
			block.Addr().String() + "-" + netipx.PrefixLastIP(block).String(),
		} {
			t.Run(entry, func(t *testing.T) {
				name := fmt.Sprintf("validation-unusable-%d-%d", i, j)
				pool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.IPPoolSpec{
					Addresses:         addrs(entry),
					AutoAssign:        ptrTo(false),
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"nothing": "matches"}},
				}}
				err := createPoolObject(pool)
				if err == nil {
					deletePool(name)
					t.Fatalf("pool [%s] accepted, want it refused: %s is unusable", entry, block)
				}
				want := "be a VIP"
				if block.Addr().Is4In6() {
					want = "is not an IP address"
				}
				if !strings.Contains(err.Error(), `"`+entry+`" `) || !strings.Contains(err.Error(), want) {
					t.Fatalf("pool [%s] refused with %q, want it to name the entry and contain %q", entry, err, want)
				}
			})
		}
	}
}

// TestIPPoolBGPAnnounceValidation checks spec.announce.bgp as the API server sees it:
// communities (RFC 1997: two 16-bit numbers, or a well-known name; never GRACEFUL_SHUTDOWN,
// which the announcer adds itself while a node drains), large communities (RFC 8092: three
// 32-bit numbers), and LOCAL_PREF and MED (32-bit unsigned). Every accepted pool must decode into
// the Go types: a value the schema lets through but a typed client cannot decode would break the
// watches of the CCM and of every announcer.
func TestIPPoolBGPAnnounceValidation(t *testing.T) {
	type m = map[string]any
	for _, tc := range []struct {
		name    string
		bgp     m
		wantErr string // "" = accepted
	}{
		{"empty", m{}, ""},
		{"community", m{"communities": []any{"65000:100"}}, ""},
		{"community bounds", m{"communities": []any{"0:0", "65535:65535", "00065:00001"}}, ""},
		{"community names", m{"communities": []any{"no-export", "no-advertise", "no-export-subconfed", "no-peer", "blackhole"}}, ""},
		{"community high half", m{"communities": []any{"65536:1"}}, `community "65536:1" is out of range: both numbers must be at most 65535`},
		{"community low half", m{"communities": []any{"1:65536"}}, `community "1:65536" is out of range: both numbers must be at most 65535`},
		{"community 99999", m{"communities": []any{"65000:100", "99999:99999"}}, `community "99999:99999" is out of range`},
		{"community six digits", m{"communities": []any{"100000:1"}}, `community "100000:1" is neither asn:value (two numbers from 0 to 65535, such as 65000:100) nor one of no-export`},
		{"community one number", m{"communities": []any{"65000"}}, `community "65000" is neither asn:value`},
		{"community negative", m{"communities": []any{"-1:1"}}, `community "-1:1" is neither asn:value`},
		{"community unknown name", m{"communities": []any{"no-exports"}}, `community "no-exports" is neither asn:value`},
		{"community upper case", m{"communities": []any{"NO-EXPORT"}}, `community "NO-EXPORT" is neither asn:value`},
		{"community large form", m{"communities": []any{"65000:1:1"}}, `community "65000:1:1" is neither asn:value`},
		{"community graceful-shutdown", m{"communities": []any{"graceful-shutdown"}}, `community "graceful-shutdown" is GRACEFUL_SHUTDOWN (65535:0, RFC 8326): the announcer adds it itself while a node drains; remove it from the pool`},
		{"community 65535:0", m{"communities": []any{"65535:0"}}, `community "65535:0" is GRACEFUL_SHUTDOWN`},
		{"community 65535:00", m{"communities": []any{"65535:00"}}, `community "65535:00" is GRACEFUL_SHUTDOWN`},
		{"community 65535:1", m{"communities": []any{"65535:1"}}, ""},
		{"community duplicate", m{"communities": []any{"65000:1", "65000:1"}}, `Duplicate value: "65000:1"`},
		{"community too many", m{"communities": numbered("65000:%d", 33)}, "spec.announce.bgp.communities: Too many: 33: must have at most 32 items"},
		{"large community", m{"largeCommunities": []any{"65000:1:1"}}, ""},
		{"large community bounds", m{"largeCommunities": []any{"0:0:0", "4294967295:4294967295:4294967295"}}, ""},
		{"large community global", m{"largeCommunities": []any{"4294967296:1:1"}}, `large community "4294967296:1:1" is out of range: each number must be at most 4294967295`},
		{"large community local1", m{"largeCommunities": []any{"1:4294967296:1"}}, `large community "1:4294967296:1" is out of range`},
		{"large community local2", m{"largeCommunities": []any{"1:1:9999999999"}}, `large community "1:1:9999999999" is out of range`},
		{"large community eleven digits", m{"largeCommunities": []any{"1:1:10000000000"}}, `large community "1:1:10000000000" is not global:local1:local2 (three numbers from 0 to 4294967295, such as 65000:1:1)`},
		{"large community two parts", m{"largeCommunities": []any{"65000:1"}}, `large community "65000:1" is not global:local1:local2`},
		{"large community name", m{"largeCommunities": []any{"no-export"}}, `large community "no-export" is not global:local1:local2`},
		{"local pref", m{"localPref": int64(200)}, ""},
		{"local pref bounds", m{"localPref": int64(0), "med": int64(4294967295)}, ""},
		{"local pref above int32", m{"localPref": int64(3000000000)}, ""},
		{"local pref negative", m{"localPref": int64(-1)}, "spec.announce.bgp.localPref in body should be greater than or equal to 0"},
		{"local pref 2^32", m{"localPref": int64(4294967296)}, "spec.announce.bgp.localPref in body should be less than or equal to 4294967295"},
		{"med", m{"med": int64(10)}, ""},
		{"med negative", m{"med": int64(-1)}, "spec.announce.bgp.med in body should be greater than or equal to 0"},
		{"med 2^32", m{"med": int64(4294967296)}, "spec.announce.bgp.med in body should be less than or equal to 4294967295"},
		{"aggregate and selectors", m{"aggregate": true, "peerSelector": m{"matchLabels": m{"router": "tor"}}, "nodeSelector": m{"matchLabels": m{"rack": "a"}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := objectName("validation-bgp-" + tc.name)
			err := createPoolSpec(t, name, map[string]any{
				"addresses":         []any{"198.18.7.0/28"},
				"autoAssign":        false,
				"namespaceSelector": m{"matchLabels": m{"nothing": "matches"}},
				"announce":          m{"l2": m{}, "bgp": tc.bgp},
			})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("pool with bgp %v refused: %v", tc.bgp, err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("pool with bgp %v accepted, want an error containing %q", tc.bgp, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("pool with bgp %v refused with %q, want it to contain %q", tc.bgp, err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "evaluating rule"):
				t.Fatalf("pool with bgp %v refused with a rule that failed to evaluate: %v", tc.bgp, err)
			}
		})
	}
}

// createPoolSpec creates an IPPool from a raw spec (so that tests can send values the Go types
// cannot hold) and, when it is accepted, checks that it decodes into the Go type.
func createPoolSpec(t *testing.T, name string, spec map[string]any) error {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "IPPool",
		"metadata": map[string]any{"name": name},
		"spec":     spec,
	}}
	got, err := env.Dynamic.Resource(v1alpha1.IPPoolResource).Create(context.Background(), u, metav1.CreateOptions{FieldValidation: "Strict"})
	if err != nil {
		return err
	}
	t.Cleanup(func() { deletePool(name) })
	data, err := got.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &v1alpha1.IPPool{}); err != nil {
		t.Fatalf("IPPool %s accepted but does not decode into the Go type: %v\n%s", name, err, data)
	}
	return nil
}

// numbered is n strings made from format and 1..n.
func numbered(format string, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i+1)
	}
	return out
}

// objectName turns a test case's name into an object name: lower case, runs of anything but
// letters and digits as one '-'.
func objectName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}
