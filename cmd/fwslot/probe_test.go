package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwslot/fwslot/internal/testnet"
)

const jumpy = `table inet filter {
	chain admin { ip saddr 198.51.100.7 accept; }
	chain ssh { jump admin; return; }
	chain pings { icmp type echo-request accept; }
	chain input {
		type filter hook input priority 0; policy drop;
		tcp dport 22 jump ssh
		ip protocol icmp goto pings
		tcp dport 113 reject with tcp reset
	}
}
`

func TestProbeCommands(t *testing.T) {
	testnet.RequireRoot(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "jumpy.nft")
	os.WriteFile(rules, []byte(jumpy), 0o600)
	good := writeFile(t, "good.probes", `# probes of jumpy.nft
accept tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0   # admin ssh
drop   tcp 203.0.113.9:40001 -> 192.0.2.10:22 in eth0    # stranger ssh
reject tcp 203.0.113.9:40002 -> 192.0.2.10:113 in eth0   # ident
accept icmp 203.0.113.9 -> 192.0.2.10 in eth0 type echo-request
`)
	bad := writeFile(t, "bad.probes", "accept tcp 203.0.113.9:40001 -> 192.0.2.10:22 in eth0   # wrong on purpose\n")
	junit := filepath.Join(dir, "report.xml")
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"all pass", []string{"test", rules, "--probes", good, "--junit", junit}, 0, []string{"4 probes: 4 passed, 0 failed", "rule coverage"}},
		{"one fails", []string{"test", rules, "--probes", bad}, 1, []string{"bad.probes:1", "expected accept, got drop", "jumpy.nft:7", "chain ssh", "policy drop"}},
		{"malformed probes", []string{"test", rules, "--probes", writeFile(t, "m.probes", "accept tcp 1.2.3.4 => 5.6.7.8\n")}, 2, []string{"m.probes:1", "expected"}},
		{"broken ruleset", []string{"test", writeFile(t, "b.nft", "table inet x { chain c { acept; } }\n"), "--probes", good}, 2, []string{"b.nft:1:"}},
		{"no probes flag", []string{"test", rules}, 2, []string{"--probes"}},
		{"explain shows jumps", []string{"explain", "--file", rules, "tcp 198.51.100.7:40003 -> 192.0.2.10:22 in eth0"}, 0, []string{"accept", "jump ssh", "jump admin", "jumpy.nft:2"}},
		{"probe a goto", []string{"probe", "--file", rules, "icmp 203.0.113.9 -> 192.0.2.10 in eth0 type echo-request"}, 0, []string{"accept", "jumpy.nft:4"}},
	}
	for _, c := range cases {
		out, code := run(t, c.args...)
		checkRun(t, c.name, out, code, c.code, c.want, nil)
	}
	x, err := os.ReadFile(junit)
	if err != nil || !strings.Contains(string(x), "<testsuite") || !strings.Contains(string(x), "admin ssh") {
		t.Fatalf("junit report: %v\n%s", err, x)
	}
}

func TestLoadRefusesWhenProbesFail(t *testing.T) {
	ns, _ := testnet.Pair(t)
	db := filepath.Join(t.TempDir(), "h.db")
	rules := writeFile(t, "jumpy.nft", jumpy)
	good := writeFile(t, "good.probes", "accept tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0\n")
	bad := writeFile(t, "bad.probes", "accept tcp 203.0.113.9:40000 -> 192.0.2.10:22 in eth0\n")
	before := testnet.Run(t, ns, "nft", "list", "ruleset")
	out, code := run(t, "--netns", ns, "--db", db, "load", rules, "--probes", bad)
	if code != 1 || !strings.Contains(out, "refusing to stage") {
		t.Fatalf("load with a failing probe: exit %d\n%s", code, out)
	}
	if after := testnet.Run(t, ns, "nft", "list", "ruleset"); after != before {
		t.Fatalf("refused load changed the kernel:\n%s", after)
	}
	out, code = run(t, "--netns", ns, "--db", db, "load", rules, "--probes", good)
	if code != 0 || !strings.Contains(out, "staged version 1") {
		t.Fatalf("load with passing probes: exit %d\n%s", code, out)
	}
	// The staged slot can be probed and explained without touching the host.
	out, code = run(t, "--netns", ns, "--db", db, "explain", "--slot", "staging", "tcp 198.51.100.7:40001 -> 192.0.2.10:22 in eth0")
	if code != 0 || !strings.Contains(out, "jump admin") {
		t.Fatalf("explain staging: exit %d\n%s", code, out)
	}
	run(t, "--netns", ns, "--db", db, "swap")
	v2 := writeFile(t, "v2.nft", strings.Replace(jumpy, "198.51.100.7", "203.0.113.9", 1))
	if out, code = run(t, "--netns", ns, "--db", db, "load", v2); code != 0 {
		t.Fatalf("load v2: %s", out)
	}
	both := writeFile(t, "both.probes", "accept tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0\naccept icmp 203.0.113.9 -> 192.0.2.10 in eth0 type echo-request\n")
	out, code = run(t, "--netns", ns, "--db", db, "diff", "--probes", both)
	if code != 0 || !strings.Contains(out, "1 of 2 probes change") || !strings.Contains(out, "both.probes:1") {
		t.Fatalf("diff: exit %d\n%s", code, out)
	}
}

// TestTestSequential: by default every probe meets a `limit` as loaded;
// --sequential lets the bucket empty from probe to probe.
func TestTestSequential(t *testing.T) {
	testnet.RequireRoot(t)
	rules := writeFile(t, "limit.nft", `table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		icmp type echo-request limit rate 1/minute burst 2 packets accept
	}
}
`)
	probes := writeFile(t, "pings.probes", strings.Repeat("accept icmp 203.0.113.9 -> 192.0.2.10 in eth0 type echo-request\n", 3))
	if out, code := run(t, "test", rules, "--probes", probes); code != 0 {
		t.Errorf("each probe should meet a fresh limit: exit %d\n%s", code, out)
	}
	out, code := run(t, "test", rules, "--probes", probes, "--sequential")
	if code != 1 || !strings.Contains(out, "pings.probes:3") || !strings.Contains(out, "3 probes: 2 passed, 1 failed") {
		t.Errorf("--sequential: exit %d, want the 3rd probe over the limit:\n%s", code, out)
	}
}
