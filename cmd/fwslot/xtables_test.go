package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

// Tables that iptables-nft owns (docker, kube-proxy) are never adopted:
// load and load --from-iptables refuse, naming the table, and neither the
// kernel nor the history file changes.
func TestIptablesNftTablesAreLeftAlone(t *testing.T) {
	testnet.RequireRoot(t)
	ipt := "/usr/sbin/iptables-nft"
	if _, err := os.Stat(ipt); err != nil {
		t.Skip("needs iptables-nft (apt-get install iptables)")
	}
	own := "table ip filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 22 accept\n\t}\n}\n"
	cases := []struct {
		name  string
		rules [][]string // iptables-nft commands that build the target's tables, as docker would
		load  []string   // after "load"
		want  string
	}{
		{"native rules", [][]string{{"-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "ACCEPT"}}, []string{"FILE"}, "built-in chains [INPUT"},
		{"xtables matches", [][]string{{"-N", "DOCKER"}, {"-A", "FORWARD", "-m", "comment", "--comment", "docker", "-j", "DOCKER"}}, []string{"FILE"}, "built-in chains [FORWARD"},
		{"from iptables", [][]string{{"-A", "INPUT", "-j", "ACCEPT"}}, []string{"--from-iptables", filepath.Join("..", "..", "testdata", "iptables", "rules.v4")}, "table ip filter is iptables-nft's"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns, _ := testnet.Pair(t)
			db := filepath.Join(t.TempDir(), "h.db")
			for _, r := range c.rules {
				testnet.Run(t, ns, append([]string{ipt}, r...)...)
			}
			// A history that already exists (a version staged in a table
			// of fwslot's own), so that its bytes can be compared.
			mine := writeFile(t, "mine.nft", "table inet mine {\n\tchain c {\n\t}\n}\n")
			if out, code := run(t, "--netns", ns, "--db", db, "load", mine); code != 0 {
				t.Fatalf("load: %s", out)
			}
			dbBefore, _ := os.ReadFile(db)
			before := testnet.Run(t, ns, "nft", "list", "ruleset")
			args := []string{"--netns", ns, "--db", db, "load"}
			for _, a := range c.load {
				if a == "FILE" {
					a = writeFile(t, "own.nft", own)
				}
				args = append(args, a)
			}
			out, code := run(t, args...)
			if code != 1 || !strings.Contains(out, "iptables-nft") || !strings.Contains(out, c.want) || !strings.Contains(out, "never adopts") {
				t.Fatalf("exit %d, want 1 naming iptables-nft and %q:\n%s", code, c.want, out)
			}
			if after := testnet.Run(t, ns, "nft", "list", "ruleset"); after != before {
				t.Fatalf("the refused load changed the kernel:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if dbAfter, _ := os.ReadFile(db); string(dbAfter) != string(dbBefore) {
				t.Fatal("the refused load changed the history file")
			}
		})
	}
}
