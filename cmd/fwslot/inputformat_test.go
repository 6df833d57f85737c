package main

import (
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// JSON rulesets load like nft syntax; iptables-save input and CRLF files
// are refused with what to do, and leave the target as it was.
func TestInputFormats(t *testing.T) {
	ns, g := newTarget(t)
	src := "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n\t\ttcp dport 22 accept\n\t}\n}\n"
	// The JSON form is what nft itself prints for src.
	scratch := testnet.Namespace(t, "fwslot-json-")
	testnet.Run(t, scratch, "nft", "-f", writeFile(t, "src.nft", src))
	asJSON := testnet.Run(t, scratch, "nft", "-j", "list", "ruleset")
	cases := []struct {
		name string
		file string
		code int
		want string
	}{
		{"iptables-save", writeFile(t, "rules.v4", "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"), 2, "--from-iptables"},
		{"crlf", writeFile(t, "crlf.nft", strings.ReplaceAll(src, "\n", "\r\n")), 2, "Windows line endings"},
		{"json", writeFile(t, "ruleset.json", asJSON), 0, "staged version 1"},
	}
	for _, c := range cases {
		before := testnet.Run(t, ns, "nft", "list", "ruleset")
		out, code := run(t, append(g, "load", c.file)...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Fatalf("%s: exit %d, want %d with %q:\n%s", c.name, code, c.code, c.want, out)
		}
		if c.code != 0 {
			if after := testnet.Run(t, ns, "nft", "list", "ruleset"); after != before {
				t.Fatalf("%s: a refused file changed the target:\n%s", c.name, after)
			}
		}
	}
	if out, code := run(t, append(g, "swap")...); code != 0 {
		t.Fatalf("swap the JSON version: %s", out)
	}
	live := testnet.Run(t, ns, "nft", "list", "chain", "inet", "filter", "fwslot_b_input")
	if !strings.Contains(live, "tcp dport 22 accept") {
		t.Fatalf("the JSON version's rule is not live:\n%s", live)
	}
}
