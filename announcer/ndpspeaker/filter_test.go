package ndpspeaker

import (
	"testing"

	"golang.org/x/net/bpf"
)

func TestFilter(t *testing.T) {
	raw := make([]bpf.Instruction, len(filter))
	for i, r := range filter {
		raw[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(raw)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		frame []byte
		pass  bool
	}{
		"solicitation":         {solicit(vip), true},
		"advertisement":        {goldenUnsolicited, true},
		"echo request":         {ipv6Frame(ourMAC, peerMAC, peerLL, vip, 64, []byte{128, 0, 0, 0, 0, 1, 0, 1}), false},
		"router advertisement": {ipv6Frame(allNodesMAC, peerMAC, peerLL, allNodes, 255, append([]byte{134, 0, 0, 0}, make([]byte, 12)...)), false},
		"UDP":                  {mutate(solicit(vip), func(b []byte) { b[20] = 17 }), false},
		"ARP":                  {append(goldenReply[:12:12], 0x08, 0x06, 0, 1, 0x08, 0, 6, 4), false},
		"short":                {goldenReply[:20], false},
	}
	for name, c := range cases {
		n, err := vm.Run(c.frame)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := n > 0; got != c.pass {
			t.Errorf("%s: filter kept %d bytes, want pass=%v", name, n, c.pass)
		}
		if c.pass && n < len(c.frame) {
			t.Errorf("%s: filter truncated the frame to %d of %d bytes", name, n, len(c.frame))
		}
	}
}
