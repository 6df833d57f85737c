package probe

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestTwinManyInterfacesAndKeywordNames: a twin mirrors any interface set
// the kernel allows: 300 interfaces (MACs were made from one byte of the
// index, so the 257th repeated the 1st), and names that `ip` reads as its
// keywords (up, dev, type, help), which `ip -batch` refused or misread.
func TestTwinManyInterfacesAndKeywordNames(t *testing.T) {
	requireRoot(t)
	var topo strings.Builder
	names := []string{"up", "dev", "type", "help"}
	for i := len(names); i < 300; i++ {
		names = append(names, fmt.Sprintf("if%d", i))
	}
	for i, n := range names {
		fmt.Fprintf(&topo, "iface %s\naddr %s 10.%d.%d.1/24\n", n, n, i/200, i%200)
	}
	fmt.Fprintf(&topo, "addr up 2001:db8:77::1/64\nroute type 0.0.0.0/0\nroute help ::/0\n")
	ruleset := `table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		iifname "up" tcp dport 22 accept
		iifname "if299" udp dport 53 accept
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		iifname "dev" oifname "type" accept
		iifname "if298" oifname "help" reject
	}
}
`
	probes := parseLines(t, `accept tcp 10.0.0.7 -> 10.0.0.1:22 in up
accept tcp [2001:db8:77::7] -> [2001:db8:77::1]:22 in up
drop   tcp 10.0.1.7 -> 10.0.1.1:22 in dev
accept udp 10.1.99.7 -> 10.1.99.1:53 in if299
drop   udp 10.1.98.7 -> 10.1.99.1:53 in if298
accept tcp 10.0.1.7 -> 203.0.113.9:443 in dev out type
drop   tcp 10.0.2.7 -> 203.0.113.9:443 in type out dev
reject tcp [2001:db8:98::7] -> [2001:db8:1::9]:443 in if298 out help
`)
	file := writeTemp(t, "many.nft", ruleset)
	rep, err := Run(context.Background(), topoOf(t, topo.String()), nftFileLoader(file), probes, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if !r.Passed() {
			t.Errorf("%s: got %s (%s) %v %s\n%s", r.Probe, r.Got, r.Outcome, r.Err, r.Failure, r.Path)
		}
	}
}
