package ndpspeaker

import "golang.org/x/net/bpf"

// filter is the classic BPF program Listen attaches to its AF_PACKET socket, so that of all the
// IPv6 traffic on the interface the kernel copies to the speaker only ICMPv6 Neighbor
// Solicitations and Advertisements without extension headers. The speaker checks everything
// again; the filter only saves work.
var filter = mustAssemble([]bpf.Instruction{
	/* 0 */ bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
	/* 1 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv6, SkipTrue: 6},
	/* 2 */ bpf.LoadAbsolute{Off: ethHeaderLen + 6, Size: 1}, // IPv6 next header
	/* 3 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: 4},
	/* 4 */ bpf.LoadAbsolute{Off: ethHeaderLen + ipv6HeaderLen, Size: 1}, // ICMPv6 type
	/* 5 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpTypeNS, SkipTrue: 1},
	/* 6 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: icmpTypeNA, SkipTrue: 1},
	/* 7 */ bpf.RetConstant{Val: 1 << 16}, // keep the whole frame: 64 KiB is more than any frame
	/* 8 */ bpf.RetConstant{Val: 0}, // drop
})

func mustAssemble(prog []bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic(err)
	}
	return raw
}
