package perf

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Metric names the figure a regression gate decides on.
type Metric string

// The metrics a gate can decide on.
const (
	// RulesEvaluated compares the rules evaluated per packet of the mix
	// (the mean over the probes). It is deterministic: the same rulesets
	// and probes always give the same verdict, on any machine, under any
	// load. It is the default.
	RulesEvaluated Metric = "rules"
	// PacketsPerSecond compares the flood rates: the median, over the
	// interleaved rounds, of the old version's rate over the new one's.
	// It sees costs rules evaluated do not (a big anonymous set, a log
	// rule), but it is noisy on a shared machine.
	PacketsPerSecond Metric = "pps"
)

// ParseMetric reads a Metric by its name ("rules" or "pps").
func ParseMetric(s string) (Metric, error) {
	switch m := Metric(s); m {
	case RulesEvaluated, PacketsPerSecond:
		return m, nil
	}
	return "", fmt.Errorf("unknown metric %q: rules or pps", s)
}

// ParsePercent reads a threshold such as "10%" (or "10") as 0.10.
func ParsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("%q is not a percentage such as 10%%", s)
	}
	return v / 100, nil
}

// ProbeChange is a probe whose rules evaluated changed between versions.
type ProbeChange struct {
	Probe string `json:"probe"`
	Where string `json:"where"`
	Old   int    `json:"old"`
	New   int    `json:"new"`
}

// ChainChange is a chain whose rules evaluated over the mix changed.
type ChainChange struct {
	Family string `json:"family"`
	Table  string `json:"table"`
	Chain  string `json:"chain"`
	Old    int    `json:"old"`
	New    int    `json:"new"`
}

// Regression is how much slower a new version is than an old one for
// the same mix, and where.
type Regression struct {
	Metric Metric `json:"metric"`
	// Max is the threshold (0.10 for 10%).
	Max float64 `json:"max"`
	// Slower is the relative increase in cost per packet by Metric: 0.25
	// is 25% slower, negative is faster.
	Slower float64 `json:"slower"`
	// RulesSlower and PPSSlower are both metrics' figures: the mean rules
	// evaluated per packet, new over old, less one (with the old mean
	// counted as at least one rule); and the median of old over new
	// packets per second of the interleaved rounds, less one.
	RulesSlower float64 `json:"rules_slower"`
	PPSSlower   float64 `json:"pps_slower"`
	// Exceeded is set when Slower is above Max: the gate fails.
	Exceeded bool `json:"exceeded"`
	// Probes and Chains evaluate more rules in the new version, most
	// added first.
	Probes []ProbeChange `json:"probes,omitempty"`
	Chains []ChainChange `json:"chains,omitempty"`
}

// Compare measures how much slower newer is than older (both measured
// with the same mix by one Measure call) and whether that exceeds max by
// metric.
func Compare(newer, older VersionResult, metric Metric, max float64) Regression {
	r := Regression{Metric: metric, Max: max}
	r.RulesSlower = newer.RulesEvaluated.Mean/math.Max(older.RulesEvaluated.Mean, 1) - 1
	if older.RulesEvaluated.Mean == 0 && newer.RulesEvaluated.Mean < 1 {
		r.RulesSlower = newer.RulesEvaluated.Mean // both (almost) free
	}
	var ratios []float64
	for i := range min(len(newer.Samples), len(older.Samples)) {
		if newer.Samples[i] > 0 {
			ratios = append(ratios, older.Samples[i]/newer.Samples[i])
		}
	}
	if len(ratios) > 0 {
		r.PPSSlower = median(ratios) - 1
	}
	r.Slower = r.RulesSlower
	if metric == PacketsPerSecond {
		r.Slower = r.PPSSlower
	}
	r.Exceeded = r.Slower > max+1e-9 // exactly max is allowed, whatever the rounding of 11/10-1
	for i := range min(len(newer.Probes), len(older.Probes)) {
		n, o := newer.Probes[i], older.Probes[i]
		if n.Error == "" && o.Error == "" && n.RulesEvaluated > o.RulesEvaluated {
			r.Probes = append(r.Probes, ProbeChange{Probe: n.Probe, Where: n.Where, Old: o.RulesEvaluated, New: n.RulesEvaluated})
		}
	}
	sort.SliceStable(r.Probes, func(i, j int) bool {
		return r.Probes[i].New-r.Probes[i].Old > r.Probes[j].New-r.Probes[j].Old
	})
	type key struct{ family, table, chain string }
	old := map[key]int{}
	for _, c := range older.Chains {
		old[key{c.Family, c.Table, c.Chain}] = c.Rules
	}
	for _, c := range newer.Chains {
		if o := old[key{c.Family, c.Table, c.Chain}]; c.Rules > o {
			r.Chains = append(r.Chains, ChainChange{Family: c.Family, Table: c.Table, Chain: c.Chain, Old: o, New: c.Rules})
		}
	}
	sort.SliceStable(r.Chains, func(i, j int) bool {
		return r.Chains[i].New-r.Chains[i].Old > r.Chains[j].New-r.Chains[j].Old
	})
	return r
}
