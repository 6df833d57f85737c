package perf

import (
	"testing"

	"github.com/fwslot/fwslot/probe"
)

func costs(rules ...int) VersionResult {
	v := VersionResult{}
	for _, r := range rules {
		v.Probes = append(v.Probes, ProbeCost{Probe: "p", Where: "f:1", RulesEvaluated: r})
	}
	v.RulesEvaluated = summarize(rules)
	v.Chains = []probe.ChainRules{{Family: "inet", Table: "filter", Chain: "input", Rules: v.Probes[0].RulesEvaluated}}
	return v
}

// The gate on rules evaluated: the mean per packet of the mix, the old
// mean counted as at least one rule, slower probes and chains named.
func TestCompareRules(t *testing.T) {
	cases := []struct {
		name         string
		newer, older VersionResult
		max          float64
		slower       float64
		exceeded     bool
		probes       int
	}{
		{"same", costs(3, 5), costs(3, 5), 0, 0, false, 0},
		{"one rule more in ten", costs(11, 11), costs(10, 10), 0.10, 0.10, false, 2},
		{"two rules more in ten", costs(12, 10), costs(10, 10), 0.10, 0.10, false, 1},
		{"three rules more in ten", costs(13, 10), costs(10, 10), 0.10, 0.15, true, 1},
		{"faster", costs(1, 1), costs(5000, 2500), 0.10, 1.0/3750 - 1, false, 0},
		{"from an empty chain", costs(2, 2), costs(0, 0), 0.10, 1, true, 2},
		{"both empty", costs(0, 0), costs(0, 0), 0, 0, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Compare(c.newer, c.older, RulesEvaluated, c.max)
			if d := r.Slower - c.slower; d > 1e-9 || d < -1e-9 || r.Exceeded != c.exceeded || len(r.Probes) != c.probes {
				t.Errorf("slower %.4f exceeded %v probes %d; want %.4f %v %d", r.Slower, r.Exceeded, len(r.Probes), c.slower, c.exceeded, c.probes)
			}
			if c.exceeded && (len(r.Chains) != 1 || r.Chains[0].Chain != "input") {
				t.Errorf("slower chains %+v, want input", r.Chains)
			}
		})
	}
}

func TestParsePercent(t *testing.T) {
	cases := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"10%", 0.10, true}, {"10", 0.10, true}, {" 2.5% ", 0.025, true}, {"0%", 0, true},
		{"ten", 0, false}, {"-5%", 0, false}, {"", 0, false}, {"NaN", 0, false}, {"Inf%", 0, false},
	}
	for _, c := range cases {
		got, err := ParsePercent(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}
