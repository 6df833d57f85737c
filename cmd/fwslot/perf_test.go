package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/testnet"
)

// perfPolicy is one policy (drop 5,000 sources, accept the rest) written
// as 5,000 linear rules or as one set lookup.
func perfPolicy(linear bool) string {
	var elems []string
	for i := range 5000 {
		elems = append(elems, fmt.Sprintf("10.0.%d.%d", i/250, i%250+1))
	}
	var b strings.Builder
	b.WriteString("table inet filter {\n")
	if !linear {
		fmt.Fprintf(&b, "\tset blocked { type ipv4_addr; elements = { %s } }\n", strings.Join(elems, ", "))
	}
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n")
	if linear {
		for _, e := range elems {
			fmt.Fprintf(&b, "\t\tip saddr %s drop\n", e)
		}
	} else {
		b.WriteString("\t\tip saddr @blocked drop\n")
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

const perfMix = `accept udp 198.51.100.7 -> 192.0.2.10:9999 in eth0
accept tcp 198.51.100.8:40000 -> 192.0.2.10:22 in eth0
drop udp 10.0.9.250 -> 192.0.2.10:9999 in eth0
`

// perfJSON is the part of perf --json the tests read.
type perfJSON struct {
	Versions []struct {
		Source         string  `json:"source"`
		PPS            float64 `json:"pps"`
		NsPerPacket    float64 `json:"ns_per_packet"`
		RulesEvaluated struct {
			Median float64 `json:"median"`
			Max    int     `json:"max"`
		} `json:"rules_evaluated"`
		Probes []struct {
			Where string `json:"where"`
			Rules int    `json:"rules_evaluated"`
		} `json:"probes"`
	} `json:"versions"`
	Regression *struct {
		Exceeded bool `json:"exceeded"`
	} `json:"regression"`
}

// swappedTarget is a fresh target (one side of a namespace pair, a new
// history database) with file loaded and swapped into production.
func swappedTarget(t *testing.T, file string) (ns, db string) {
	t.Helper()
	ns, _ = testnet.Pair(t)
	db = filepath.Join(t.TempDir(), "h.db")
	for _, args := range [][]string{{"load", file}, {"swap"}} {
		if out, code := run(t, append([]string{"--netns", ns, "--db", db}, args...)...); code != 0 {
			t.Fatalf("%s: %s", args[0], out)
		}
	}
	return ns, db
}

// fwslot perf against a file and against production: the gate fails
// (exit 1) on 5,000 linear rules against the same policy with a set,
// naming the probes and the chain, and passes the other way round; the
// JSON carries the figures; bad usage is exit 2; test --perf adds the
// figures to a test run.
func TestPerfCommand(t *testing.T) {
	testnet.RequireRoot(t)
	linear := writeFile(t, "linear.nft", perfPolicy(true))
	set := writeFile(t, "set.nft", perfPolicy(false))
	mix := writeFile(t, "mix.probes", perfMix)
	ns, db := swappedTarget(t, linear)
	before := testnet.Run(t, ns, "nft", "list", "ruleset")
	short := []string{"--probes", mix, "--duration", "300ms"}
	cases := []struct {
		name string
		args []string
		code int
		want []string
		// rules evaluated per probe of each version, with --json
		rules [][]int
	}{
		{"linear against set fails the gate", append([]string{"perf", linear, "--against", set, "--max-regression", "10%"}, short...), 1,
			[]string{"REGRESSION", "mix.probes:1 accept udp 198.51.100.7 -> 192.0.2.10:9999 in eth0: 1 -> 5000 rules",
				"mix.probes:3 drop udp 10.0.9.250 -> 192.0.2.10:9999 in eth0: 1 -> 2500 rules", "slower chain inet filter input: 3 -> 12500", "mix.probes:1 (1 -> 5000 rules); most slowed chain inet filter input"}, nil},
		{"set against linear passes", append([]string{"perf", set, "--against", linear, "--max-regression", "10%"}, short...), 0,
			[]string{"within the 10% allowed", "5000, 5000", "1, 1"}, nil},
		{"json", append([]string{"--json", "perf", set, "--against", linear, "--max-regression", "10%"}, short...), 0,
			nil, [][]int{{1, 1, 1}, {5000, 5000, 2500}}},
		{"set against production (linear) passes", append([]string{"--netns", ns, "--db", db, "perf", set, "--against", "production", "--max-regression", "10%"}, short...), 0,
			[]string{"production (version 1)", "within"}, nil},
		{"linear against production (linear): no change", append([]string{"--netns", ns, "--db", db, "perf", linear, "--against", "production", "--max-regression", "0%"}, short...), 0,
			[]string{"+0.0% slower", "within"}, nil},
		// The set is about ten times faster: far beyond the noise of
		// packets per second, so the pps gate is robust here.
		{"pps gate: linear against set fails", append([]string{"perf", linear, "--against", set, "--gate", "pps", "--max-regression", "10%"}, short...), 1,
			[]string{"by packets per second (median of interleaved rounds): REGRESSION"}, nil},
		{"pps gate: set against linear passes", append([]string{"perf", set, "--against", linear, "--gate", "pps", "--max-regression", "10%"}, short...), 0,
			[]string{"by packets per second (median of interleaved rounds): within"}, nil},
		{"test --perf", []string{"test", set, "--probes", mix, "--perf", "--perf-duration", "300ms"}, 0,
			[]string{"3 passed", "perf:", "packets/s (median)", "firewall ns/packet", "rules evaluated (median, max)", "1, 1"}, nil},
		{"test --perf --json", []string{"--json", "test", set, "--probes", mix, "--perf", "--perf-duration", "300ms"}, 0,
			[]string{`"passed": 3`, `"perf": {`, `"ns_per_packet"`, `"rules_evaluated": {`}, nil},
		{"no probes", []string{"perf", set}, 2, []string{"perf needs --probes"}, nil},
		{"gate without a version to compare", []string{"perf", set, "--probes", mix, "--max-regression", "10%"}, 2, []string{"needs --against"}, nil},
		{"bad percentage", []string{"perf", set, "--against", linear, "--probes", mix, "--max-regression", "ten"}, 2, []string{"not a percentage"}, nil},
		{"bad gate", []string{"perf", set, "--against", linear, "--probes", mix, "--gate", "speed"}, 2, []string{"rules or pps"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := run(t, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d:\n%s", code, c.code, out)
			}
			checkOutput(t, "", out, c.want, nil)
			if c.rules != nil {
				var got perfJSON
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, out)
				}
				if len(got.Versions) != len(c.rules) || got.Regression == nil || got.Regression.Exceeded {
					t.Fatalf("versions %d, regression %+v:\n%s", len(got.Versions), got.Regression, out)
				}
				for i, v := range got.Versions {
					var rules []int
					for _, p := range v.Probes {
						rules = append(rules, p.Rules)
					}
					if fmt.Sprint(rules) != fmt.Sprint(c.rules[i]) || v.PPS <= 0 || v.RulesEvaluated.Max != c.rules[i][0] {
						t.Errorf("%s: rules %v (want %v), pps %.0f, summary %+v", v.Source, rules, c.rules[i], v.PPS, v.RulesEvaluated)
					}
				}
				if got.Versions[0].PPS <= got.Versions[1].PPS {
					t.Errorf("set %.0f packets/s, linear %.0f: want the set faster", got.Versions[0].PPS, got.Versions[1].PPS)
				}
			}
		})
	}
	if after := testnet.Run(t, ns, "nft", "list", "ruleset"); after != before {
		t.Errorf("perf changed the target:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// Ctrl-C or SIGTERM during a flood stops perf, says interrupted, and
// leaves the target as it was; the process holds no twin when it exits.
func TestPerfSignals(t *testing.T) {
	testnet.RequireRoot(t)
	bin := fwslotBinary(t)
	set := writeFile(t, "set.nft", perfPolicy(false))
	mix := writeFile(t, "mix.probes", perfMix)
	ns, db := swappedTarget(t, set)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			before := testnet.Run(t, ns, "nft", "list", "ruleset")
			cmd := exec.Command(bin, "--netns", ns, "--db", db, "perf", set, "--against", "production", "--probes", mix, "--duration", "60s")
			var out syncBuffer // read while the process writes
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The flood starts once every twin is built.
			if !waitUntil(func() bool { return strings.Contains(out.String(), "perf: flood") }, 30*time.Second) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the flood never started:\n%s", out.String())
			}
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(out.String(), "interrupted") {
					t.Errorf("exit %v, want a failure that says interrupted:\n%s", err, out.String())
				}
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("perf did not stop on %v:\n%s", sig, out.String())
			}
			if after := testnet.Run(t, ns, "nft", "list", "ruleset"); after != before {
				t.Errorf("the target changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// An unprivileged user (uid 65534) runs perf and test --perf inside
// `unshare -Urn`, as a CI container would, on the router example with
// NAT, reject and IPv6 probes.
func TestRootlessPerf(t *testing.T) {
	bin, dir := rootlessRouter(t)
	common := []string{"--probes", "router.probes", "--topology", "router.topology"}
	cases := []struct {
		name string
		argv []string
		want []string
	}{
		{"perf against itself is within 0%", append([]string{"unshare", "-Urn", bin, "perf", "router.nft", "--against", "router.nft", "--duration", "300ms", "--max-regression", "0%"}, common...),
			[]string{"+0.0% slower", "within the 0% allowed", "rules evaluated, per probe", "router.probes:"}},
		{"test --perf", append([]string{"unshare", "-Urn", bin, "test", "router.nft", "--perf", "--perf-duration", "300ms"}, common...),
			[]string{"0 failed", "perf:", "packets/s (median)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := asNobody(t, dir, c.argv...)
			if code != 0 {
				t.Fatalf("exit %d, want 0:\n%s", code, out)
			}
			checkOutput(t, "", out, c.want, nil)
		})
	}
}
