package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/baremetal-dev/cloud-provider-baremetal/migrate/metallb"
)

// maxMigrateInput bounds what migrate-metallb reads: a MetalLB configuration is kilobytes, and
// an unbounded read of a wrong file (a disk image, /dev/zero) would only exhaust memory.
const maxMigrateInput = 64 << 20

// runMigrateMetalLB is "baremetal-announcer migrate-metallb [-f file|-] [-o file|-]": it converts
// MetalLB objects to ours and returns the exit code: 0 converted (read the report at the top of
// the output), 1 the input could not be read or converted, 2 a usage error.
func runMigrateMetalLB(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("baremetal-announcer migrate-metallb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("f", "-", `MetalLB YAML to convert ("kubectl get -n metallb-system ipaddresspools.metallb.io,l2advertisements.metallb.io,bgpadvertisements.metallb.io,bgppeers.metallb.io,communities.metallb.io -o yaml", or the pre-0.13 ConfigMap); - reads stdin`)
	out := fs.String("o", "-", "where to write the converted objects, led by the report as YAML comments; - writes stdout. The file is created with mode 0600: it may hold BGP passwords")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: baremetal-announcer migrate-metallb [-f file|-] [-o file|-]")
		fmt.Fprintln(stderr, "Converts MetalLB IPAddressPools, L2/BGPAdvertisements, BGPPeers and Communities to IPPools and BGPPeers; see docs/migrate-from-metallb.md.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "migrate-metallb: unexpected argument %q (the input is given with -f)\n", fs.Arg(0))
		return 2
	}

	src, name := stdin, "stdin"
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintf(stderr, "migrate-metallb: %v\n", err)
			return 1
		}
		defer f.Close()
		src, name = f, *in
	}
	data, err := io.ReadAll(io.LimitReader(src, maxMigrateInput+1))
	if err != nil {
		fmt.Fprintf(stderr, "migrate-metallb: reading %s: %v\n", name, err)
		return 1
	}
	if len(data) > maxMigrateInput {
		fmt.Fprintf(stderr, "migrate-metallb: %s is larger than %d MiB; this is not a MetalLB configuration\n", name, maxMigrateInput>>20)
		return 1
	}
	res, err := metallb.Convert(bytes.NewReader(data))
	if err != nil {
		fmt.Fprintf(stderr, "migrate-metallb: %s: %v\n", name, err)
		return 1
	}

	var buf bytes.Buffer
	if err := res.WriteYAML(&buf); err != nil {
		fmt.Fprintf(stderr, "migrate-metallb: %v\n", err)
		return 1
	}
	where := "the output"
	if *out == "-" {
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			fmt.Fprintf(stderr, "migrate-metallb: writing stdout: %v\n", err)
			return 1
		}
	} else {
		if err := os.WriteFile(*out, buf.Bytes(), 0o600); err != nil {
			fmt.Fprintf(stderr, "migrate-metallb: %v\n", err)
			return 1
		}
		where = *out
	}
	fmt.Fprintf(stderr, "migrate-metallb: %d IPPools, %d BGPPeers, %d Secrets from %s; %d settings not converted, %d decisions, %d objects ignored: read the report at the top of %s before applying it\n",
		len(res.Pools), len(res.Peers), len(res.Secrets), name, res.Count(metallb.NotConverted), res.Count(metallb.Decision), res.Count(metallb.Ignored), where)
	for _, f := range res.Findings {
		if f.Kind == metallb.NotConverted {
			fmt.Fprintf(stderr, "  not converted: %s\n", f)
		}
	}
	return 0
}
