package main

import (
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// TestTestInfersSidesFromTheRuleset: without --topology, fwslot test reads
// the ruleset's interface names. It used to build the twin from the
// probes' interfaces alone: a ruleset matching `iif "dmz0"` did not load
// (exit 2), and a spoofed probe from the wan decided where the genuine
// lan client's address was routed, so a reverse path filter dropped it.
func TestTestInfersSidesFromTheRuleset(t *testing.T) {
	testnet.RequireRoot(t)
	rules := writeFile(t, "rpfilter.nft", `table inet filter {
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		fib saddr . iif oif missing drop
	}
	chain input {
		type filter hook input priority 0; policy drop;
		iif "dmz0" drop
		tcp dport 22 accept
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		iifname "lan0" oifname "wan0" accept
	}
}
table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" masquerade
	}
}
`)
	probes := writeFile(t, "sides.probes", `drop   tcp 10.0.0.7:40000 -> 192.0.2.1:22 in wan0   # a lan address from the internet
accept tcp 10.0.0.7:40001 -> 203.0.113.9:443 in lan0 out wan0
accept tcp 10.0.0.7:40002 -> 203.0.113.9:443 in lan0 out wan0 frag all
drop   tcp 10.0.0.7:40003 -> 203.0.113.9:443 in lan0 out wan0 frag last  # held by defrag (nat uses conntrack)
`)
	out, code := run(t, "test", rules, "--probes", probes)
	if code != 0 || !strings.Contains(out, "4 probes: 4 passed, 0 failed") {
		t.Fatalf("exit %d, want every probe to pass:\n%s", code, out)
	}
}
