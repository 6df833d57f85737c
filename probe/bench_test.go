package probe

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeBigRuleset writes a ruleset whose input chain holds n rules that no
// probe matches, in front of the rules that decide.
func writeBigRuleset(tb testing.TB, n int) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString("flush ruleset\ntable inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "\t\tip saddr 10.%d.%d.%d tcp dport %d accept\n", i>>16&255, i>>8&255, i&255, 1000+i%50000)
	}
	b.WriteString("\t\ttcp dport 22 accept\n\t\tudp dport 53 reject\n\t}\n}\n")
	path := filepath.Join(tb.TempDir(), "big.nft")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// bigProbes returns n probes: 90% accepted ssh, 5% rejected dns, 5% dropped.
func bigProbes(tb testing.TB, n int) []Probe {
	tb.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		src := fmt.Sprintf("203.0.%d.%d", 113+i/250%10, 1+i%250)
		switch {
		case i%20 == 0:
			fmt.Fprintf(&b, "reject udp %s -> 192.0.2.10:53 in eth0\n", src)
		case i%20 == 1:
			fmt.Fprintf(&b, "drop tcp %s -> 192.0.2.10:23 in eth0\n", src)
		default:
			fmt.Fprintf(&b, "accept tcp %s -> 192.0.2.10:22 in eth0\n", src)
		}
	}
	probes, err := Parse("bench.probes", strings.NewReader(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return probes
}

// BenchmarkTwinSetup measures building and removing a two-interface twin
// with a tiny ruleset.
func BenchmarkTwinSetup(b *testing.B) {
	requireRoot(b)
	path := writeBigRuleset(b, 10)
	topo := Topology{Interfaces: []Interface{{Name: "eth0"}, {Name: "eth1"}}}
	for b.Loop() {
		tw, err := NewTwin(context.Background(), topo, nftFileLoader(path))
		if err != nil {
			b.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRun1000Probes10kRules is the target: 1,000 probes on a
// 10k-rule ruleset, twin setup and teardown included (target < 3 s).
func BenchmarkRun1000Probes10kRules(b *testing.B) {
	requireRoot(b)
	path := writeBigRuleset(b, 10000)
	probes := bigProbes(b, 1000)
	var setup, probing time.Duration
	for b.Loop() {
		rep, err := Run(context.Background(), Topology{}, nftFileLoader(path), probes, nil, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Failed != 0 {
			for _, r := range rep.Results {
				if !r.Passed() {
					b.Fatalf("%s: got %s err %v", r.Probe.Text, r.Got, r.Err)
				}
			}
		}
		setup += rep.Setup
		probing += rep.Probing
	}
	b.ReportMetric(setup.Seconds()/float64(b.N), "setup-s/op")
	b.ReportMetric(float64(len(probes)*b.N)/probing.Seconds(), "probes/s")
}

// BenchmarkProbe10kRules measures probes per second alone on a twin that
// holds a 10k-rule ruleset (built once, outside the timing).
func BenchmarkProbe10kRules(b *testing.B) {
	requireRoot(b)
	path := writeBigRuleset(b, 10000)
	probes := bigProbes(b, 1000)
	tw, err := NewTwin(context.Background(), InferTopology(probes), nftFileLoader(path))
	if err != nil {
		b.Fatal(err)
	}
	defer tw.Close()
	start := time.Now()
	n := 0
	for b.Loop() {
		res, err := tw.Probe(context.Background(), probes, nil, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if !r.Passed() {
				b.Fatalf("%s: got %s err %v", r.Probe.Text, r.Got, r.Err)
			}
		}
		n += len(res)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "probes/s")
}

// BenchmarkRun100ProbesStateful10kRules measures the cost of meeting the
// ruleset as loaded on every probe: a 10k-rule ruleset holding one `limit`
// rule is reloaded between probes (compare with Options.Sequential).
func BenchmarkRun100ProbesStateful10kRules(b *testing.B) {
	requireRoot(b)
	path := writeBigRuleset(b, 10000)
	src, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), "\t\ttcp dport 22 accept\n", "\t\ticmp type echo-request limit rate 1/minute accept\n\t\ttcp dport 22 accept\n", 1))
	if err := os.WriteFile(path, src, 0o644); err != nil {
		b.Fatal(err)
	}
	probes := bigProbes(b, 100)
	for _, seq := range []bool{false, true} {
		b.Run(fmt.Sprintf("sequential=%v", seq), func(b *testing.B) {
			var probing, resets time.Duration
			n := 0
			for b.Loop() {
				rep, err := Run(context.Background(), Topology{}, nftFileLoader(path), probes, nil, Options{Sequential: seq})
				if err != nil {
					b.Fatal(err)
				}
				if rep.Failed != 0 {
					b.Fatalf("%d probes failed", rep.Failed)
				}
				probing += rep.Probing
				resets += rep.ResetTime
				n += rep.Resets
			}
			b.ReportMetric(float64(len(probes)*b.N)/probing.Seconds(), "probes/s")
			if n > 0 {
				b.ReportMetric(float64(resets.Microseconds())/float64(n), "µs/reset")
			}
		})
	}
}
