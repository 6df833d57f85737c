package probe

import (
	"fmt"
	"strings"
	"testing"
)

// Real topologies of the example rulesets (the documented --topology form).
const (
	serverTopo    = "addr eth0 192.0.2.10/24\naddr eth0 2001:db8::10/64\n"
	routerTopo    = "addr lan0 10.0.0.1/24\naddr wan0 192.0.2.1/24\n"
	dualstackTopo = "addr eth0 192.0.2.20/24\naddr eth0 2001:db8:2::20/64\n"
)

func repeatProbes(t testing.TB, n int, format string) []Probe {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, format+"\n", i)
	}
	return parseLines(t, b.String())
}

// TestICMPRejectsAreNotRateLimited: the twin must answer every rejected
// probe, however many came before from the same source (the kernel's ICMP
// error rate limit lives in the twin's namespace and is off there).
func TestICMPRejectsAreNotRateLimited(t *testing.T) {
	probes := append(repeatProbes(t, 10, "reject udp 203.0.113.9 -> 192.0.2.20:3344%d in eth0"),
		repeatProbes(t, 10, "reject udp [2001:db8:ffff::9] -> [2001:db8:2::20]:3345%d in eth0")...)
	outs := runDiff(t, "../testdata/examples/dualstack.nft", topoOf(t, dualstackTopo), Topology{}, probes, nil)
	requireAgreement(t, outs)
}
