package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
)

const adminUser = framework.AdminUser

// peerSpec is a valid eBGP BGPPeer spec with the given fields replaced; a nil value removes the
// field. Specs are maps, not Go structs, so that tests can send what the Go types cannot hold
// (a negative ASN, a duration that does not parse, a missing required field).
func peerSpec(fields map[string]any) map[string]any {
	spec := map[string]any{"peerAddress": "198.18.0.1", "peerASN": int64(64512), "myASN": int64(64513)}
	for k, v := range fields {
		if v == nil {
			delete(spec, k)
		} else {
			spec[k] = v
		}
	}
	return spec
}

// createPeer creates a BGPPeer with the given spec as the admin and, when the API server accepts
// it, checks that the stored object decodes into the Go types: a value the schema lets through
// but the announcer's typed client cannot decode would break its whole watch.
func createPeer(t *testing.T, name string, spec map[string]any) (*v1alpha1.BGPPeer, error) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "BGPPeer",
		"metadata": map[string]any{"name": name},
		"spec":     spec,
	}}
	// Strict, as kubectl: unknown fields are refused, not dropped with a warning.
	got, err := env.Dynamic.Resource(v1alpha1.BGPPeerResource).Create(context.Background(), u, metav1.CreateOptions{FieldValidation: "Strict"})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { deletePeer(name) })
	data, err := got.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	peer := &v1alpha1.BGPPeer{}
	if err := json.Unmarshal(data, peer); err != nil {
		t.Fatalf("BGPPeer %s accepted but does not decode into the Go type: %v\n%s", name, err, data)
	}
	return peer, nil
}

func deletePeer(name string) {
	_ = env.Dynamic.Resource(v1alpha1.BGPPeerResource).Delete(context.Background(), name, metav1.DeleteOptions{})
}

// TestBGPPeerSchemaValidation checks that the API server itself (OpenAPI + CEL in the CRD)
// accepts good peers and refuses bad ones with a message that names the field and the value.
func TestBGPPeerSchemaValidation(t *testing.T) {
	type m = map[string]any
	for _, tc := range []struct {
		name    string
		fields  m
		wantErr string // "" = accepted
	}{
		{"minimal ebgp", nil, ""},
		{"ibgp", m{"myASN": int64(64512)}, ""},
		{"ipv6", m{"peerAddress": "2001:db8::1"}, ""},
		{"ipv6 with source", m{"peerAddress": "2001:db8::1", "sourceAddress": "2001:db8::10"}, ""},
		{"private v4", m{"peerAddress": "10.0.0.1", "sourceAddress": "10.0.0.2"}, ""},
		{"everything", m{"peerPort": int64(1179), "holdTime": "9s", "keepaliveTime": "3s", "connectTime": "1s",
			"passive": true, "ebgpMultihop": int64(3), "nodeSelector": m{"matchLabels": m{"rack": "a"}},
			"gracefulRestart":   m{"enabled": false, "restartTime": "2m"},
			"passwordSecretRef": m{"name": "router-1", "namespace": "baremetal-bgp", "key": "md5.key"}}, ""},

		// ASNs: 0 is reserved (RFC 7607), 4294967295 too (RFC 7300); 4-byte ASNs above 2^31 work.
		{"asn 1", m{"peerASN": int64(1)}, ""},
		{"asn 4294967294", m{"peerASN": int64(4294967294), "myASN": int64(4294967294)}, ""},
		{"asn above int32", m{"myASN": int64(3000000000)}, ""},
		{"peer asn 0", m{"peerASN": int64(0)}, "spec.peerASN: Invalid value: 0: spec.peerASN in body should be greater than or equal to 1"},
		{"my asn 0", m{"myASN": int64(0)}, "spec.myASN: Invalid value: 0: spec.myASN in body should be greater than or equal to 1"},
		{"peer asn 4294967295", m{"peerASN": int64(4294967295)}, "spec.peerASN in body should be less than or equal to 4294967294"},
		{"my asn 4294967295", m{"myASN": int64(4294967295)}, "spec.myASN in body should be less than or equal to 4294967294"},
		{"asn negative", m{"peerASN": int64(-1)}, "spec.peerASN in body should be greater than or equal to 1"},
		{"asn missing", m{"peerASN": nil}, "spec.peerASN: Required value"},
		{"asn not a number", m{"peerASN": "64512"}, `spec.peerASN: Invalid value: "string": spec.peerASN in body must be of type integer`},

		// Addresses.
		{"peer not an ip", m{"peerAddress": "router.example"}, `peerAddress "router.example" is not an IP address; give the unicast address of the router`},
		{"peer missing", m{"peerAddress": nil}, "spec.peerAddress: Required value"},
		{"peer cidr", m{"peerAddress": "198.18.0.0/24"}, `peerAddress "198.18.0.0/24" is a CIDR`},
		{"peer multicast v4", m{"peerAddress": "224.0.0.5"}, `peerAddress "224.0.0.5" is multicast`},
		{"peer multicast v6", m{"peerAddress": "ff02::5"}, `peerAddress "ff02::5" is multicast`},
		{"peer loopback v4", m{"peerAddress": "127.0.0.1"}, `peerAddress "127.0.0.1" is loopback`},
		{"peer loopback v6", m{"peerAddress": "::1"}, `peerAddress "::1" is loopback`},
		{"peer unspecified", m{"peerAddress": "0.0.0.0"}, `peerAddress "0.0.0.0" is the unspecified address`},
		{"peer link-local v6", m{"peerAddress": "fe80::1"}, `peerAddress "fe80::1" is link-local`},
		{"peer link-local v4", m{"peerAddress": "169.254.0.1"}, `peerAddress "169.254.0.1" is link-local`},
		{"peer broadcast", m{"peerAddress": "255.255.255.255"}, `peerAddress "255.255.255.255" is not a unicast address`},
		{"peer ipv4-mapped", m{"peerAddress": "::ffff:198.18.0.1"}, `peerAddress "::ffff:198.18.0.1" is not an IP address`},
		{"peer with zone", m{"peerAddress": "fe80::1%eth0"}, `peerAddress "fe80::1%eth0" is not an IP address`},
		{"source not an ip", m{"sourceAddress": "eth0"}, `sourceAddress "eth0" is not an IP address; give a unicast address of the node`},
		{"source loopback", m{"sourceAddress": "127.0.0.1"}, `sourceAddress "127.0.0.1" is loopback`},
		{"source v6 peer v4", m{"sourceAddress": "2001:db8::10"}, `sourceAddress "2001:db8::10" and peerAddress "198.18.0.1" are of different families`},
		{"source v4 peer v6", m{"peerAddress": "2001:db8::1", "sourceAddress": "198.18.0.10"}, `are of different families`},

		// Timers: RFC 4271 hold time is 0 or 3-65535 s.
		{"hold 0s", m{"holdTime": "0s"}, ""},
		{"hold 0", m{"holdTime": "0"}, ""},
		{"hold 3s", m{"holdTime": "3s"}, ""},
		{"hold 1m30s", m{"holdTime": "1m30s"}, ""},
		{"hold 65535s", m{"holdTime": "65535s"}, ""},
		{"hold 1s", m{"holdTime": "1s"}, "holdTime 1s is out of range: give 0s (never time out) or 3s to 65535s (RFC 4271)"},
		{"hold 2s", m{"holdTime": "2s"}, "holdTime 2s is out of range"},
		{"hold 2999ms", m{"holdTime": "2999ms"}, "holdTime 2999ms is out of range"},
		{"hold 65536s", m{"holdTime": "65536s"}, "holdTime 65536s is out of range"},
		{"hold 19h", m{"holdTime": "19h"}, "holdTime 19h is out of range"},
		{"hold negative", m{"holdTime": "-3s"}, `holdTime "-3s" is not a duration such as 90s or 1m30s`},
		{"hold no unit", m{"holdTime": "90"}, `holdTime "90" is not a duration`},
		{"hold words", m{"holdTime": "1 day"}, `holdTime "1 day" is not a duration`},
		{"hold days", m{"holdTime": "1d"}, `holdTime "1d" is not a duration`},
		{"hold too long", m{"holdTime": "999999h999999h999999h"}, "spec.holdTime: Too long"},
		{"keepalive 1s", m{"keepaliveTime": "1s"}, ""},
		{"keepalive below hold", m{"holdTime": "9s", "keepaliveTime": "3s"}, ""},
		{"keepalive with hold 0", m{"holdTime": "0s", "keepaliveTime": "30s"}, ""},
		{"keepalive equals hold", m{"holdTime": "9s", "keepaliveTime": "9s"}, "keepaliveTime 9s must be shorter than holdTime 9s"},
		{"keepalive above hold", m{"holdTime": "9s", "keepaliveTime": "1m"}, "keepaliveTime 1m must be shorter than holdTime 9s"},
		{"keepalive above default hold", m{"keepaliveTime": "90s"}, "keepaliveTime 90s must be shorter than holdTime (90s when omitted)"},
		{"keepalive 500ms", m{"keepaliveTime": "500ms"}, "keepaliveTime 500ms is out of range: give 1s to 65535s"},
		{"keepalive garbage", m{"keepaliveTime": "often", "holdTime": "9s"}, `keepaliveTime "often" is not a duration`},
		{"connect 1s", m{"connectTime": "1s"}, ""},
		{"connect 65535s", m{"connectTime": "65535s"}, ""},
		{"connect 0s", m{"connectTime": "0s"}, "connectTime 0s is out of range: give 1s to 65535s"},
		{"connect 100ms", m{"connectTime": "100ms"}, "connectTime 100ms is out of range"},
		{"connect 65536s", m{"connectTime": "65536s"}, "connectTime 65536s is out of range"},
		{"connect garbage", m{"connectTime": "soon"}, `connectTime "soon" is not a duration`},

		// Graceful restart: RFC 4724's restart time is 12 bits.
		{"restart 1s", m{"gracefulRestart": m{"restartTime": "1s"}}, ""},
		{"restart 4095s", m{"gracefulRestart": m{"restartTime": "4095s"}}, ""},
		{"restart 0s", m{"gracefulRestart": m{"restartTime": "0s"}}, "restartTime 0s is out of range: give 1s to 4095s (RFC 4724)"},
		{"restart 4096s", m{"gracefulRestart": m{"restartTime": "4096s"}}, "restartTime 4096s is out of range"},
		{"restart 2h", m{"gracefulRestart": m{"restartTime": "2h"}}, "restartTime 2h is out of range"},
		{"restart garbage", m{"gracefulRestart": m{"restartTime": "2 minutes"}}, `restartTime "2 minutes" is not a duration`},

		// eBGP multihop.
		{"multihop ebgp", m{"ebgpMultihop": int64(255)}, ""},
		{"multihop 0 ibgp", m{"myASN": int64(64512), "ebgpMultihop": int64(0)}, ""},
		{"multihop ibgp", m{"myASN": int64(64512), "ebgpMultihop": int64(2)}, "ebgpMultihop applies to eBGP peers only (peerASN equals myASN here); remove it"},
		{"multihop 256", m{"ebgpMultihop": int64(256)}, "spec.ebgpMultihop in body should be less than or equal to 255"},

		// Ports.
		{"port 0", m{"peerPort": int64(0)}, "spec.peerPort in body should be greater than or equal to 1"},
		{"port 65536", m{"peerPort": int64(65536)}, "spec.peerPort in body should be less than or equal to 65535"},

		// Password references: a Secret's name and namespace, never the password.
		{"password ref", m{"passwordSecretRef": m{"name": "router-1", "namespace": "baremetal-bgp"}}, ""},
		{"password no name", m{"passwordSecretRef": m{"namespace": "baremetal-bgp"}}, "spec.passwordSecretRef.name: Required value"},
		{"password no namespace", m{"passwordSecretRef": m{"name": "router-1"}}, "spec.passwordSecretRef.namespace: Required value"},
		{"password empty name", m{"passwordSecretRef": m{"name": "", "namespace": "baremetal-bgp"}}, "spec.passwordSecretRef.name in body should be at least 1 chars long"},
		{"password bad name", m{"passwordSecretRef": m{"name": "Router_1", "namespace": "baremetal-bgp"}}, `passwordSecretRef.name "Router_1" is not a Secret name`},
		{"password bad namespace", m{"passwordSecretRef": m{"name": "r", "namespace": "bgp.secrets"}}, `passwordSecretRef.namespace "bgp.secrets" is not a namespace name`},
		{"password bad key", m{"passwordSecretRef": m{"name": "r", "namespace": "baremetal-bgp", "key": "a/b"}}, `passwordSecretRef.key "a/b" is not a Secret key`},
		{"password inline", m{"password": "secret"}, `unknown field "spec.password"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := objectName("validation-" + tc.name)
			_, err := createPeer(t, name, peerSpec(tc.fields))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("BGPPeer %v refused: %v", tc.fields, err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("BGPPeer %v accepted, want an error containing %q", tc.fields, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("BGPPeer %v refused with %q, want it to contain %q", tc.fields, err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "evaluating rule"):
				// A CEL rule that failed to run shows the user an internal error; guards keep
				// each rule from running on what another rule refuses.
				t.Fatalf("BGPPeer %v refused with a rule that failed to evaluate: %v", tc.fields, err)
			}
		})
	}
}

// TestBGPPeerSchemaDefaults checks the defaults the API server writes: peerPort 179, the Secret
// key "password", and graceful restart enabled when the struct is given.
func TestBGPPeerSchemaDefaults(t *testing.T) {
	type m = map[string]any
	peer, err := createPeer(t, "defaults-given", peerSpec(m{
		"gracefulRestart":   m{},
		"passwordSecretRef": m{"name": "router-1", "namespace": "baremetal-bgp"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if peer.Spec.PeerPort != 179 {
		t.Errorf("peerPort = %d, want the default 179", peer.Spec.PeerPort)
	}
	if ref := peer.Spec.PasswordSecretRef; ref == nil || ref.Key != "password" {
		t.Errorf("passwordSecretRef = %+v, want key defaulted to \"password\"", ref)
	}
	if gr := peer.Spec.GracefulRestart; gr == nil || gr.Enabled == nil || !*gr.Enabled || gr.RestartTime != nil {
		t.Errorf("gracefulRestart = %+v, want enabled defaulted to true and no restart time", gr)
	}

	peer, err = createPeer(t, "defaults-omitted", peerSpec(nil))
	if err != nil {
		t.Fatal(err)
	}
	if peer.Spec.PeerPort != 179 {
		t.Errorf("peerPort = %d, want the default 179", peer.Spec.PeerPort)
	}
	// Omitted structs stay omitted: the announcer applies its own defaults to them.
	if peer.Spec.GracefulRestart != nil || peer.Spec.PasswordSecretRef != nil || peer.Spec.HoldTime != nil {
		t.Errorf("spec = %+v, want no gracefulRestart, passwordSecretRef or holdTime", peer.Spec)
	}

	// An explicit false stays false.
	peer, err = createPeer(t, "defaults-disabled", peerSpec(m{"gracefulRestart": m{"enabled": false}}))
	if err != nil {
		t.Fatal(err)
	}
	if gr := peer.Spec.GracefulRestart; gr == nil || gr.Enabled == nil || *gr.Enabled {
		t.Errorf("gracefulRestart = %+v, want enabled false as written", gr)
	}
}

// TestBGPPeerSchemaUpdate checks that the rules hold on update too, not only on create.
func TestBGPPeerSchemaUpdate(t *testing.T) {
	if _, err := createPeer(t, "validation-update", peerSpec(map[string]any{"holdTime": "9s"})); err != nil {
		t.Fatal(err)
	}
	u, err := env.Dynamic.Resource(v1alpha1.BGPPeerResource).Get(context.Background(), "validation-update", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := maps.Clone(u.Object["spec"].(map[string]any))
	spec["keepaliveTime"] = "10s"
	u.Object["spec"] = spec
	_, err = env.Dynamic.Resource(v1alpha1.BGPPeerResource).Update(context.Background(), u, metav1.UpdateOptions{})
	if want := "keepaliveTime 10s must be shorter than holdTime 9s"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("update with keepalive above hold: err = %v, want it to contain %q", err, want)
	}
}

// TestBGPPeerPrinterColumns checks what `kubectl get bgppeers` shows, from the API server's Table
// output (kubectl asks for the same).
func TestBGPPeerPrinterColumns(t *testing.T) {
	if _, err := createPeer(t, "columns", peerSpec(map[string]any{"peerASN": int64(4200000000)})); err != nil {
		t.Fatal(err)
	}
	if err := applyPeerStatus(t, env.Config(adminUser), "columns", "test-summary", map[string]any{"summary": "Established 2/3"}); err != nil {
		t.Fatal(err)
	}

	raw, err := env.Client.Discovery().RESTClient().Get().
		AbsPath("/apis", v1alpha1.GroupName, "v1alpha1", "bgppeers", "columns").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	table := &metav1.Table{}
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber() // ASNs above 2^53 would not survive float64; show them as the API sends them
	if err := decoder.Decode(table); err != nil {
		t.Fatalf("decoding the table: %v\n%s", err, raw)
	}
	var names []string
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
	}
	if got, want := strings.Join(names, ","), "Name,Peer,Peer ASN,My ASN,Sessions,Age"; got != want {
		t.Fatalf("columns = %s, want %s", got, want)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("rows = %d, want 1", len(table.Rows))
	}
	cells := fmt.Sprint(table.Rows[0].Cells[:5])
	if want := "[columns 198.18.0.1 4200000000 64513 Established 2/3]"; cells != want {
		t.Fatalf("cells = %s, want %s", cells, want)
	}
}

// applyPeerStatus server-side-applies status fields of a BGPPeer through its status subresource
// as fieldManager, the way each announcer writes its own node's entry.
func applyPeerStatus(t *testing.T, cfg *rest.Config, peer, fieldManager string, status map[string]any) error {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "BGPPeer",
		"metadata": map[string]any{"name": peer},
		"status":   status,
	}}
	_, err = dyn.Resource(v1alpha1.BGPPeerResource).ApplyStatus(context.Background(), peer, u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	return err
}
