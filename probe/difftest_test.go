package probe

import (
	"context"
	"github.com/fwslot/fwslot/internal/source"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// diffCount is how many generated packets the differential test sends for
// the example ruleset name, besides its probes: FWSLOT_DIFFTEST_N (make
// difftest), else 200 for the first three examples and 60 for the others,
// which keeps go test of the package near a minute.
func diffCount(t testing.TB, name string) int {
	if s := os.Getenv("FWSLOT_DIFFTEST_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			t.Fatalf("FWSLOT_DIFFTEST_N=%q: want a count", s)
		}
		return n
	}
	switch name {
	case "server", "router", "dualstack":
		return 200
	}
	return 60
}

// TestDifferential is the differential tester: for every example ruleset
// with probes and a topology under testdata/examples, it sends the example
// probes and generated packets (ports the ruleset names, every direction,
// NAT flows, IPv6, ICMP types, established flows) twice: as probes through
// fwslot's twin (compiled into the slot layout, the topology file as given
// to --topology) and as real packets through a real router namespace with
// the ruleset loaded by plain `nft -f`. Every packet's fate (delivered,
// forwarded with its addresses after NAT, rejected, dropped) must agree.
func TestDifferential(t *testing.T) {
	requireRoot(t)
	matches, _ := filepath.Glob("../testdata/examples/*.probes")
	if len(matches) == 0 {
		t.Fatal("no example probes under testdata/examples")
	}
	for _, pf := range matches {
		base := strings.TrimSuffix(pf, ".probes")
		if !fileExists(base+".nft") || !fileExists(base+".topology") {
			continue
		}
		t.Run(filepath.Base(base), func(t *testing.T) {
			n := diffCount(t, filepath.Base(base))
			file := base + ".nft"
			topo := readTopologyFile(t, base+".topology")
			probes := loadProbes(t, pf)
			g := newGenerator(uint64(len(base)), topo, readFacts(t, file), probes)
			gen := g.generate(t, n)
			gen = append(gen, fragVariants(gen)...)
			t.Logf("%s: %d example probes, %d generated: %s", filepath.Base(file), len(probes), len(gen), mix(gen))
			probes = append(probes, gen...)
			outs := runDiff(t, file, topo, topo, probes, fileLoader(t, file))
			agree := 0
			for _, d := range outs {
				if d.agree() {
					agree++
				} else {
					t.Errorf("disagree: %s", d)
				}
			}
			t.Logf("%s: %d of %d packets agree (%.1f%%)", filepath.Base(file), agree, len(outs), 100*float64(agree)/float64(len(outs)))
			// explain's deciding rule against the real packet's own trace.
			agree = 0
			for _, d := range outs {
				if tw, re := decision(d.twin.Path), decision(d.realPath); tw == re {
					agree++
				} else {
					t.Errorf("deciding rule differs: %s\n\ttwin: %s\n\treal: %s\n%s\n--- real path:\n%s", d.probe, tw, re, d.twin.Path, d.realPath)
				}
			}
			t.Logf("%s: the deciding rule agrees with the real trace for %d of %d packets (%.1f%%)", filepath.Base(file), agree, len(outs), 100*float64(agree)/float64(len(outs)))
			// The same packets with a topology the twin infers from them
			// and the ruleset's interface names (as fwslot test does):
			// the fates must agree (addresses after masquerade may be a
			// placeholder's: the probes give no evidence of the real one).
			rep, err := Run(context.Background(), inferTopologyWith(probes, rulesetNamesOf(t, file)), fileLoader(t, file), probes, nil, Options{})
			if err != nil {
				t.Fatalf("twin with an inferred topology: %v", err)
			}
			agree = 0
			for i, d := range outs {
				d.twin = rep.Results[i]
				if d.twin.Err == nil && d.twin.Outcome == d.real.outcome {
					agree++
				} else {
					t.Errorf("inferred topology: disagree: %s", d)
				}
			}
			t.Logf("%s, inferred topology: %d of %d fates agree (%.1f%%)", filepath.Base(file), agree, len(outs), 100*float64(agree)/float64(len(outs)))
		})
	}
}

// mix summarises generated probes for the log.
func mix(probes []Probe) string {
	counts := map[string]int{}
	for _, p := range probes {
		counts[string(p.direction())]++
		counts[string(p.Proto)]++
		if p.is6() {
			counts["ipv6"]++
		}
		if p.State == StateEstablished {
			counts["established"]++
		}
		if p.SNAT != nil || p.DNAT != nil {
			counts["nat-expectation"]++
		}
		if p.Dst.Addr.IsMulticast() {
			counts["multicast"]++
		}
		if p.State == StateRelated || p.State == StateInvalid {
			counts[string(p.State)]++
		}
		if p.DSCP != 0 || p.TTL != 0 {
			counts["dscp/ttl"]++
		}
		if !p.Proto.hasPorts() && !p.Proto.isICMP() {
			counts["other-proto"]++
		}
		if p.Frag != FragNone {
			counts["frag"]++
		}
	}
	var parts []string
	for _, k := range []string{"in", "forward", "out", "tcp", "udp", "icmp", "icmpv6", "ipv6", "established", "nat-expectation", "multicast", "related", "invalid", "dscp/ttl", "other-proto", "frag"} {
		parts = append(parts, k+"="+strconv.Itoa(counts[k]))
	}
	return strings.Join(parts, " ")
}

// fileLoader reads file under the default include policy and returns the
// loader that compiles it into a twin in the slot layout.
func fileLoader(t testing.TB, file string) Loader {
	t.Helper()
	b, err := source.Load(file, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return CompileLoader(context.Background(), b)
}

// rulesetNamesOf reads the interface names of a ruleset file and its
// includes, as fwslot test does for an inferred topology.
func rulesetNamesOf(t testing.TB, file string) rulesetNames {
	t.Helper()
	b, err := source.Load(file, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rulesetInterfaces(b.Flat)
}
