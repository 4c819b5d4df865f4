package metallb

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzConvert: whatever the input, Convert never panics, and what it converts is written as YAML
// that decodes strictly into our types.
func FuzzConvert(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/*.yaml")
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "---\n---\n", "null", "[1, 2]", "kind: List\nitems: [{kind: List, items: [{kind: List, items: [{}]}]}]",
		"apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [0.0.0.0/0], avoidBuggyIPs: true}",
		"apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: ['255.255.255.250-255.255.255.255'], avoidBuggyIPs: true}",
		"apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: a}\nspec: {myASN: 1, peerASN: 2, peerAddress: '::', holdTime: -1s, nodeSelectors: [{matchExpressions: [{key: '', operator: Bogus}]}]}",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config}\ndata: {config: 'peers: [{}]\naddress-pools: [{name: x, protocol: bgp, addresses: [1.2.3.4/32], bgp-advertisements: [{communities: [large:1:2:3]}]}]'}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Convert(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := r.WriteYAML(&out); err != nil {
			t.Fatalf("WriteYAML: %v", err)
		}
		decodeStrictly(t, out.Bytes())
	})
}
