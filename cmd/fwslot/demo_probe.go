package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/probe"
)

const demoProbes = `# what version 2 must do
accept tcp 198.51.100.7:40000 -> 192.0.2.1:22 in eth0     # ssh stays open
accept tcp 198.51.100.7:40001 -> 192.0.2.1:80 in eth0     # the web opens
accept tcp [2001:db8:ffff::7]:40002 -> [2001:db8::1]:443 in eth0   # also over IPv6
reject tcp 203.0.113.9:40003 -> 192.0.2.1:3306 in eth0    # everything else is refused
drop   udp 203.0.113.9:40004 -> 192.0.2.1:53 in eth0      # and udp is dropped
`

// demoProbe proves version 2 with probe packets in a throwaway twin before
// it goes live, as `fwslot test v2.nft --probes v2.probes` does.
func demoProbe(ctx context.Context, w io.Writer, dir string) error {
	pf := filepath.Join(dir, "v2.probes")
	if err := os.WriteFile(pf, []byte(demoProbes), 0o600); err != nil {
		return err
	}
	ps, err := readProbes(pf)
	if err != nil {
		return err
	}
	file := filepath.Join(dir, "v2.nft")
	b, err := source.Load(file, source.Options{})
	if err != nil {
		return err
	}
	loc, err := probe.SourceLocator(b)
	if err != nil {
		return err
	}
	rep, err := probe.Run(ctx, probe.Topology{}, probe.CompileLoader(ctx, b), ps, nil, probe.Options{Locate: loc})
	if err != nil {
		return err
	}
	for _, r := range rep.Results {
		mark := "ok  "
		if !r.Passed() {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "    %s %-7s %s\n", mark, r.Got, r.Probe.Text)
		if r.Err != nil {
			fmt.Fprintf(w, "         %v\n", r.Err)
		}
	}
	fmt.Fprintf(w, "    %d of %d probes passed in a twin namespace (set up in %v, probed in %v)\n",
		rep.Passed, len(rep.Results), rep.Setup.Round(1e6), rep.Probing.Round(1e6))
	if !rep.OK() {
		return probesFailed{rep.Failed, len(rep.Results)}
	}
	return nil
}
