package perf

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/internal/testnet"
	"github.com/fwslot/fwslot/probe"
)

// blocked is the i-th of the 5,000 addresses the policies drop.
func blocked(i int) string { return fmt.Sprintf("10.0.%d.%d", i/250, i%250+1) }

// Policy writes the same policy (drop 5,000 source addresses, accept the
// rest) as 5,000 linear rules, as a set lookup, or as a verdict map.
func Policy(kind string) string {
	var b strings.Builder
	b.WriteString("table inet filter {\n")
	var elems []string
	for i := range 5000 {
		elems = append(elems, blocked(i))
	}
	switch kind {
	case "set":
		fmt.Fprintf(&b, "\tset blocked { type ipv4_addr; elements = { %s } }\n", strings.Join(elems, ", "))
	case "vmap":
		fmt.Fprintf(&b, "\tmap blocked { type ipv4_addr : verdict; elements = { %s : drop } }\n", strings.Join(elems, " : drop, "))
	}
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n")
	switch kind {
	case "linear":
		for _, e := range elems {
			fmt.Fprintf(&b, "\t\tip saddr %s drop\n", e)
		}
	case "set":
		b.WriteString("\t\tip saddr @blocked drop\n")
	case "vmap":
		b.WriteString("\t\tip saddr vmap @blocked\n")
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// mixText is the traffic mix: two accepted senders that pass every rule
// of the linear policy, and blocked senders at three places in its list.
var mixText = fmt.Sprintf(`accept udp 198.51.100.7 -> 192.0.2.10:9999 in eth0
accept tcp 198.51.100.8:40000 -> 192.0.2.10:22 in eth0
drop udp %s -> 192.0.2.10:9999 in eth0
drop udp %s -> 192.0.2.10:9999 in eth0
drop udp %s -> 192.0.2.10:9999 in eth0
`, blocked(0), blocked(2499), blocked(4999))

// Rules evaluated per probe of the mix, for each way of writing it.
var wantRules = map[string][]int{
	"linear": {5000, 5000, 1, 2500, 5000},
	"set":    {1, 1, 1, 1, 1},
	"vmap":   {1, 1, 1, 1, 1},
}

func version(t *testing.T, kind string) Version {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, kind+".nft")
	if err := os.WriteFile(f, []byte(Policy(kind)), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := source.Load(f, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	loc, err := probe.SourceLocator(b)
	if err != nil {
		t.Fatal(err)
	}
	return Version{Source: kind, Load: probe.CompileLoader(context.Background(), b), Locate: loc}
}

// 5,000 linear rules against the same policy with a set or a verdict
// map, flooded through real twins: the rules evaluated are exact, the
// linear ruleset is the slower by packets per second, and the gate fails
// on the linear version and passes the other way round.
func TestLinearAgainstSet(t *testing.T) {
	testnet.RequireRoot(t)
	probes, err := probe.Parse("mix.probes", strings.NewReader(mixText))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"set", "vmap"} {
		t.Run("linear vs "+kind, func(t *testing.T) {
			res, err := Measure(context.Background(), probe.Topology{}, probes,
				[]Version{version(t, "linear"), version(t, kind)}, Options{Duration: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range res.Versions {
				name := []string{"linear", kind}[i]
				var got []int
				for _, p := range v.Probes {
					if p.Error != "" {
						t.Fatalf("%s: %s: %s", name, p.Where, p.Error)
					}
					got = append(got, p.RulesEvaluated)
				}
				if fmt.Sprint(got) != fmt.Sprint(wantRules[name]) {
					t.Errorf("%s: rules evaluated per probe %v, want %v", name, got, wantRules[name])
				}
				if len(v.Chains) == 0 || v.Chains[0].Chain != "input" || v.Chains[0].Table != "filter" {
					t.Errorf("%s: costliest chains %+v, want inet filter input first", name, v.Chains)
				}
				if v.PPS <= 0 || len(v.Samples) == 0 || v.Packets <= 0 {
					t.Errorf("%s: flood measured nothing: %+v", name, v)
				}
				t.Logf("%s: %.0f packets/s, %.0f ns/packet, rules evaluated median %g max %d mean %.1f (samples %.0f)",
					name, v.PPS, v.NsPerPacket, v.RulesEvaluated.Median, v.RulesEvaluated.Max, v.RulesEvaluated.Mean, v.Samples)
			}
			t.Logf("empty ruleset: %.0f packets/s", res.BaselinePPS)
			lin, fast := res.Versions[0], res.Versions[1]
			if lin.RulesEvaluated.Median != 5000 || lin.RulesEvaluated.Max != 5000 || fast.RulesEvaluated.Median != 1 || fast.RulesEvaluated.Max != 1 {
				t.Errorf("rules evaluated: linear %+v, %s %+v", lin.RulesEvaluated, kind, fast.RulesEvaluated)
			}
			// Every linear packet runs up to 5,000 rules, every other
			// one; the rates differ by far more than any noise.
			if lin.PPS >= fast.PPS {
				t.Errorf("linear %.0f packets/s, %s %.0f: want linear slower", lin.PPS, kind, fast.PPS)
			}
			gates := []struct {
				name          string
				newer, older  VersionResult
				exceeded      bool
				probes, chain bool
			}{
				{"linear is new: fails", lin, fast, true, true, true},
				{kind + " is new: passes", fast, lin, false, false, false},
			}
			for _, g := range gates {
				reg := Compare(g.newer, g.older, RulesEvaluated, 0.10)
				if reg.Exceeded != g.exceeded {
					t.Errorf("%s: exceeded %v (slower %+.2f), want %v", g.name, reg.Exceeded, reg.Slower, g.exceeded)
				}
				if (len(reg.Probes) == 4) != g.probes || (len(reg.Chains) == 1 && reg.Chains[0].Chain == "input") != g.chain {
					t.Errorf("%s: slower probes %+v, chains %+v", g.name, reg.Probes, reg.Chains)
				}
			}
			var out strings.Builder
			reg := Compare(lin, fast, RulesEvaluated, 0.10)
			if err := WriteText(&out, res, &reg); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"packets/s", "firewall ns/packet", "5000, 5000", "1, 1", "REGRESSION", "mix.probes:1", "slower chain inet filter input"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// jumpy walks packets through jumps, a return, a goto and chains they
// fall off the end of; the comments number each chain's rules.
const jumpy = `table inet filter {
	chain sub {
		tcp dport 22 accept		# sub 1
		udp dport 53 return		# sub 2
		counter				# sub 3
	}
	chain tail {
		udp sport 1 drop		# tail 1
		udp dport 7 drop		# tail 2
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "lo" accept		# input 1
		counter				# input 2
		jump sub			# input 3
		udp dport 7 goto tail		# input 4
		ip saddr 10.9.9.9 drop		# input 5
	}
}
`

// Rules evaluated are counted from real traces through jumps, returns,
// gotos and chain ends: each walk through a chain counts its rules up to
// the one that left it, or all of them when it fell off the end.
func TestRulesEvaluatedThroughJumps(t *testing.T) {
	testnet.RequireRoot(t)
	cases := []struct {
		probe  string
		rules  int
		chains string
	}{
		{"accept tcp 198.51.100.7 -> 192.0.2.10:22 in eth0", 3 + 1, "[input:3 sub:1]"},
		{"accept udp 198.51.100.7 -> 192.0.2.10:53 in eth0", 5 + 2, "[input:5 sub:2]"},
		{"drop udp 198.51.100.7 -> 192.0.2.10:7 in eth0", 4 + 3 + 2, "[input:4 sub:3 tail:2]"},
		{"drop udp 10.9.9.9 -> 192.0.2.10:9999 in eth0", 5 + 3, "[input:5 sub:3]"},
		{"accept udp 198.51.100.7 -> 192.0.2.10:9999 in eth0", 5 + 3, "[input:5 sub:3]"},
	}
	var text strings.Builder
	for _, c := range cases {
		text.WriteString(c.probe + "\n")
	}
	probes, err := probe.Parse("j.probes", strings.NewReader(text.String()))
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "jumpy.nft")
	if err := os.WriteFile(f, []byte(jumpy), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := source.Load(f, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tw, err := probe.NewTwin(ctx, probe.InferTopology(probes), probe.CompileLoader(ctx, b))
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	vr, err := trace(ctx, tw, Version{Source: "jumpy"}, probes, probe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		p := vr.Probes[i]
		var chains []string
		for _, ch := range p.Chains {
			chains = append(chains, fmt.Sprintf("%s:%d", ch.Chain, ch.Rules))
		}
		got := fmt.Sprint(chains)
		if p.Error != "" || p.RulesEvaluated != c.rules || got != c.chains || p.Verdict != string(probes[i].Verdict) {
			t.Errorf("%s: %d rules %s, verdict %s, error %q; want %d rules %s", c.probe, p.RulesEvaluated, got, p.Verdict, p.Error, c.rules, c.chains)
		}
	}
}
