// Package perf load-tests rulesets before they go live. It turns probes
// into a traffic mix, floods the mix through a twin holding each version
// (the slot layout and interfaces probe builds) and through the same twin
// with an empty ruleset, and reports per version: packets per second, the
// firewall's cost per packet, and for each probe the number of rules the
// kernel evaluated before its verdict (from the probe's trace), with the
// chains that cost most. Compare gates a new version against another.
//
// Packets per second are noisy on a shared machine: the versions are
// flooded in short slices, interleaved (A B base, base B A, ...), so that
// drift hits all alike, and the medians of the slices are reported. Rules
// evaluated are deterministic: the same ruleset and probes always give the
// same counts.
package perf

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/fwslot/fwslot/probe"
)

// Version is one ruleset to measure.
type Version struct {
	// Source names the version in reports: a file, "production (version 3)".
	Source string
	// Load puts the ruleset into a twin (probe.CompileLoader, probe.RulesetLoader).
	Load probe.Loader
	// Locate, when set, gives rules their source file:line.
	Locate probe.Locator
}

// Options tune a measurement. The zero value uses the defaults.
type Options struct {
	// Duration is how long each version (and the empty baseline) is
	// flooded in total (default 5s).
	Duration time.Duration
	// Slice is the length of one interleaved flood slice (default 100ms,
	// at most Duration).
	Slice time.Duration
	// Senders is the number of sending threads, each pinned to a CPU of
	// its own (default 1: one core's cost per packet, and the other cores
	// stay free on a shared machine).
	Senders int
	// Probe tunes the probing that gives each probe's trace.
	Probe probe.Options
	// Logf, when set, receives progress lines.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults() Options {
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.Slice <= 0 {
		o.Slice = 100 * time.Millisecond
	}
	o.Slice = min(o.Slice, o.Duration)
	if o.Senders <= 0 {
		o.Senders = 1
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// Summary sums up the rules evaluated over the probes of the mix.
type Summary struct {
	Median float64 `json:"median"`
	Max    int     `json:"max"`
	// Mean is the rules evaluated per packet of the mix (every probe is
	// sent equally often): the figure the gate compares.
	Mean float64 `json:"mean"`
}

// ProbeCost is one probe of the mix in one version.
type ProbeCost struct {
	Probe string `json:"probe"`
	Where string `json:"where"`
	// Verdict is the verdict the probe got in this version.
	Verdict string `json:"verdict,omitempty"`
	// RulesEvaluated counts the rules the packet was evaluated against
	// before its verdict; Chains splits them by chain, costliest first.
	RulesEvaluated int                `json:"rules_evaluated"`
	Chains         []probe.ChainRules `json:"chains,omitempty"`
	// Error says why the probe has no count (it could not be traced).
	Error string `json:"error,omitempty"`
}

// VersionResult is one version's figures.
type VersionResult struct {
	Source string `json:"source"`
	// PPS is the median packets per second of the flood slices.
	PPS float64 `json:"pps"`
	// NsPerPacket is the firewall's cost per packet: the time a sender's
	// core spends per packet (senders / PPS), less that of the same twin
	// with an empty ruleset (negative when the ruleset saves the kernel
	// work, by dropping packets early).
	NsPerPacket    float64     `json:"ns_per_packet"`
	RulesEvaluated Summary     `json:"rules_evaluated"`
	Probes         []ProbeCost `json:"probes"`
	// Chains are the chains that cost most over the mix: the rules
	// evaluated in each, summed over the probes, costliest first.
	Chains []probe.ChainRules `json:"chains"`
	// Samples are the packets per second of each flood slice.
	Samples []float64 `json:"pps_samples"`
	// Packets were sent in all; Dropped were lost before the twin (a
	// full veth backlog) and are not counted in PPS.
	Packets int64 `json:"packets"`
	Dropped int64 `json:"dropped,omitempty"`
}

// Result is a measurement of one or more versions with the same mix.
type Result struct {
	Versions []VersionResult `json:"versions"`
	// BaselinePPS is the median packets per second of the twin with an
	// empty ruleset.
	BaselinePPS float64   `json:"baseline_pps"`
	Baseline    []float64 `json:"baseline_samples"`
	Duration    float64   `json:"duration_s"`
	Slice       float64   `json:"slice_s"`
	Senders     int       `json:"senders"`
	Probes      int       `json:"probes"`
}

// twinRun is a twin being measured: a version's or the baseline's.
type twinRun struct {
	name    string
	tw      *probe.Twin
	flood   *probe.Flood
	samples []float64
	packets int64
	dropped int64
}

// Measure builds a twin per version and one with an empty ruleset, all
// with topo (inferred from the probes when it has no interfaces), traces
// every probe through each version, then floods the mix through all twins
// in interleaved slices. Every twin is removed before it returns, also
// when ctx is cancelled.
func Measure(ctx context.Context, topo probe.Topology, probes []probe.Probe, versions []Version, opt Options) (res *Result, err error) {
	if len(probes) == 0 {
		return nil, errors.New("perf: no probes to make a traffic mix of")
	}
	if len(versions) == 0 {
		return nil, errors.New("perf: no version to measure")
	}
	opt = opt.withDefaults()
	if len(topo.Interfaces) == 0 {
		topo = probe.InferTopology(probes)
	}
	res = &Result{Duration: opt.Duration.Seconds(), Slice: opt.Slice.Seconds(), Senders: opt.Senders, Probes: len(probes)}
	var runs []*twinRun
	defer func() {
		for _, r := range runs {
			if cerr := r.tw.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("remove the twin of %s: %w", r.name, cerr))
			}
		}
	}()
	for _, v := range versions {
		opt.Logf("perf: %s: build the twin and trace %d probes", v.Source, len(probes))
		tw, err := probe.NewTwin(ctx, topo, v.Load)
		if err != nil {
			return nil, fmt.Errorf("perf: %s: %w", v.Source, err)
		}
		runs = append(runs, &twinRun{name: v.Source, tw: tw})
		vr, err := trace(ctx, tw, v, probes, opt.Probe)
		if err != nil {
			return nil, fmt.Errorf("perf: %s: %w", v.Source, err)
		}
		res.Versions = append(res.Versions, vr)
	}
	opt.Logf("perf: build the twin with an empty ruleset")
	base, err := probe.NewTwin(ctx, topo, nil)
	if err != nil {
		return nil, fmt.Errorf("perf: the empty twin: %w", err)
	}
	runs = append(runs, &twinRun{name: "the empty ruleset", tw: base})
	// The empty twin meets the probes like the others, so that it holds
	// the same neighbours and sockets.
	if _, err := base.Probe(ctx, probes, nil, opt.Probe); err != nil {
		return nil, fmt.Errorf("perf: the empty twin: %w", err)
	}
	for _, r := range runs {
		if r.flood, err = r.tw.NewFlood(probes); err != nil {
			return nil, fmt.Errorf("perf: %s: %w", r.name, err)
		}
	}
	if err := flood(ctx, runs, opt); err != nil {
		return nil, err
	}
	basePPS := median(runs[len(runs)-1].samples)
	res.BaselinePPS, res.Baseline = basePPS, runs[len(runs)-1].samples
	for i := range res.Versions {
		r, v := runs[i], &res.Versions[i]
		v.Samples, v.Packets, v.Dropped = r.samples, r.packets, r.dropped
		v.PPS = median(r.samples)
		if v.PPS > 0 && basePPS > 0 {
			v.NsPerPacket = 1e9 * float64(opt.Senders) * (1/v.PPS - 1/basePPS)
		}
	}
	return res, nil
}

// flood runs the interleaved slices: one warm-up slice per twin (not
// counted), then rounds in which every twin gets one slice, the order
// reversed every other round.
func flood(ctx context.Context, runs []*twinRun, opt Options) error {
	rounds := max(1, int(opt.Duration/opt.Slice))
	opt.Logf("perf: flood %d twins, %d rounds of %v each, %d sender(s)", len(runs), rounds, opt.Slice, opt.Senders)
	order := make([]*twinRun, len(runs))
	for round := -1; round < rounds; round++ {
		copy(order, runs)
		if round%2 != 0 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, r := range order {
			c, err := r.flood.Run(ctx, opt.Slice, opt.Senders)
			if err != nil {
				return fmt.Errorf("perf: flood %s: %w", r.name, err)
			}
			if round < 0 {
				continue // warm-up: caches, conntrack entries, neighbour entries
			}
			r.samples = append(r.samples, c.PPS())
			r.packets += c.Packets
			r.dropped += c.Dropped
		}
	}
	return nil
}

// trace probes a version's twin once and counts, per probe, the rules
// evaluated before the verdict.
func trace(ctx context.Context, tw *probe.Twin, v Version, probes []probe.Probe, po probe.Options) (VersionResult, error) {
	vr := VersionResult{Source: v.Source}
	idx, err := probe.TwinRuleIndex(tw, v.Locate)
	if err != nil {
		return vr, err
	}
	po.Locate = v.Locate
	results, err := tw.Probe(ctx, probes, idx, po)
	if err != nil {
		return vr, err
	}
	chains := map[probe.ChainRules]int{} // keyed with Rules 0
	var counts []int
	for _, r := range results {
		pc := ProbeCost{Probe: r.Probe.String(), Where: r.Probe.Where(), Verdict: string(r.Got)}
		if r.Err != nil {
			pc.Error = r.Err.Error()
			vr.Probes = append(vr.Probes, pc)
			continue
		}
		c, err := r.EvalCost(idx)
		if err != nil {
			pc.Error = err.Error()
			vr.Probes = append(vr.Probes, pc)
			continue
		}
		pc.RulesEvaluated, pc.Chains = c.Rules, c.Chains
		counts = append(counts, c.Rules)
		for _, ch := range c.Chains {
			k := ch
			k.Rules = 0
			chains[k] += ch.Rules
		}
		vr.Probes = append(vr.Probes, pc)
	}
	if len(counts) == 0 {
		return vr, errors.New("no probe could be traced: nothing to count rules with")
	}
	vr.RulesEvaluated = summarize(counts)
	for k, n := range chains {
		k.Rules = n
		vr.Chains = append(vr.Chains, k)
	}
	sort.Slice(vr.Chains, func(i, j int) bool {
		a, b := vr.Chains[i], vr.Chains[j]
		if a.Rules != b.Rules {
			return a.Rules > b.Rules
		}
		return a.Family+" "+a.Table+" "+a.Chain < b.Family+" "+b.Table+" "+b.Chain
	})
	return vr, nil
}

func summarize(counts []int) Summary {
	s := append([]int(nil), counts...)
	sort.Ints(s)
	total := 0
	for _, c := range s {
		total += c
	}
	med := float64(s[len(s)/2])
	if len(s)%2 == 0 {
		med = float64(s[len(s)/2-1]+s[len(s)/2]) / 2
	}
	return Summary{Median: med, Max: s[len(s)-1], Mean: float64(total) / float64(len(s))}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
