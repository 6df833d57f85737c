package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiffCommand diffs slots, versions and files on a namespace.
func TestDiffCommand(t *testing.T) {
	_, g := newTarget(t)
	args := argsFor(g)
	v1 := writeFile(t, "v1.nft", jumpy)
	v2 := writeFile(t, "v2.nft", strings.Replace(jumpy, "tcp dport 113 reject with tcp reset", "tcp dport 113 drop", 1))
	// v1 again, reformatted and split over an include: no difference.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "admin.nft"), []byte("chain admin {\n  ip saddr 198.51.100.7   accept\n}\n"), 0o600)
	moved := filepath.Join(dir, "moved.nft")
	os.WriteFile(moved, []byte("table inet filter {\n\tinclude \"./admin.nft\"\n}\n"+strings.Replace(jumpy, "\tchain admin { ip saddr 198.51.100.7 accept; }\n", "", 1)), 0o600)
	for _, a := range [][]string{{"load", v1}, {"swap"}, {"load", v2}} {
		if out, code := run(t, args(a...)...); code != 0 {
			t.Fatalf("%v: %s", a, out)
		}
	}
	both := writeFile(t, "both.probes", "reject tcp 203.0.113.9:40002 -> 192.0.2.10:113 in eth0\naccept icmp 203.0.113.9 -> 192.0.2.10 in eth0 type echo-request\n")
	cases := []struct {
		name string
		args []string
		code int
		want []string
		not  []string
	}{
		{"production to staging", args("diff"), 0, []string{"--- production (version 1)\n+++ staging (version 2)\n", "table inet filter\n", "  chain input\n", "- tcp dport 113 reject with tcp reset", "+ tcp dport 113 drop", "1 object differs (+1 -1 lines)"}, []string{"fwslot", "\x1b["}},
		{"versions by number", args("diff", "2", "1"), 0, []string{"- tcp dport 113 drop", "+ tcp dport 113 reject with tcp reset"}, nil},
		{"moved include and whitespace", args("diff", "1", moved), 0, []string{"no differences in the rulesets"}, nil},
		{"file against staging", args("diff", v1), 0, []string{"+++ staging (version 2)", "+ tcp dport 113 drop"}, nil},
		{"colour on request", args("diff", "--color", "always"), 0, []string{"\x1b[32m"}, nil},
		{"with probes", args("diff", "--probes", both), 0, []string{"both.probes:1", "production: reject", "staging:    drop", "1 of 2 probes change verdict from production to staging"}, nil},
		{"missing version", args("diff", "7", "1"), 2, []string{"version 7 not found"}, nil},
		{"not a ruleset", args("diff", "/nonexistent.nft"), 2, []string{"not a version number"}, nil},
		{"too many", args("diff", "1", "2", "3"), 2, []string{"at most two"}, nil},
		{"bad colour", args("diff", "--color", "pink"), 2, []string{"--color"}, nil},
	}
	for _, c := range cases {
		out, code := run(t, c.args...)
		checkRun(t, c.name, out, code, c.code, c.want, c.not)
	}
	out, _ := run(t, args("diff", "--json")...)
	var d struct {
		A, B    struct{ Version int }
		Changes []struct {
			Table, Kind, Name, Status string
			Lines                     []struct{ Op, Text string }
		}
		Summary map[string]int
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.A.Version != 1 || d.B.Version != 2 || len(d.Changes) != 1 || d.Changes[0].Name != "input" || d.Summary["added"] != 1 {
		t.Fatalf("diff --json: %v\n%s", err, out)
	}
}
