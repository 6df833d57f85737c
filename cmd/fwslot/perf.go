package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fwslot/fwslot/internal/features"
	"github.com/fwslot/fwslot/internal/perf"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/probe"
	"github.com/spf13/cobra"
)

// perfRegressed is returned when --max-regression is exceeded: exit 1.
type perfRegressed struct {
	newer, older string
	reg          perf.Regression
}

func (e perfRegressed) Error() string {
	what := "rules evaluated per packet"
	if e.reg.Metric == perf.PacketsPerSecond {
		what = "packets per second"
	}
	msg := fmt.Sprintf("%s is %.1f%% slower than %s by %s, more than the %.0f%% --max-regression allows", e.newer, 100*e.reg.Slower, e.older, what, 100*e.reg.Max)
	if len(e.reg.Probes) > 0 {
		p := e.reg.Probes[0]
		msg += fmt.Sprintf("; most slowed probe %s (%d -> %d rules)", p.Where, p.Old, p.New)
	}
	if len(e.reg.Chains) > 0 {
		c := e.reg.Chains[0]
		msg += fmt.Sprintf("; most slowed chain %s %s %s", c.Family, c.Table, c.Chain)
	}
	return msg
}

func newPerf(g *globals) *cobra.Command {
	var against, probesFile, topoFile, maxReg, gate string
	var duration time.Duration
	c := &cobra.Command{
		Use:   "perf FILE --probes P [--against production|FILE2]",
		Short: "Load-test a ruleset: packets per second, cost per packet, rules evaluated per probe",
		Long: `Turn the probes into a traffic mix and flood it through a throwaway twin
holding the ruleset in the slot layout (and through one holding --against,
and one with an empty ruleset), then report side by side:

  packets/s            median of the flood slices
  firewall ns/packet   a sender core's time per packet, less the empty twin's
  rules evaluated      per probe, from its trace: the rules the kernel ran
                       before the verdict (a set or map lookup is one rule),
                       with the chains that cost most

--against production measures what the target's production slot holds (the
twin then mirrors the target's interfaces); --against FILE2 another file.
The versions and the empty twin are flooded in short slices, interleaved, so
that a busy machine slows them alike. Nothing on the host changes.

--max-regression 10% makes it a CI gate: exit 1 when FILE is more than 10%
slower than --against for the same mix, naming the probes and chains that
got slower. The gate decides on rules evaluated per packet of the mix
(--gate rules, the default): it is exact and the same on every run and
machine, whereas packets per second vary by several percent from run to run
on a shared CI runner. --gate pps decides on the median of the interleaved
rounds' rate ratios instead: it also sees costs rules do not count (a log
rule, a large anonymous set), but can flap; give it a larger threshold.

Exit codes: 0 measured (and within --max-regression), 1 regression or
failure, 2 bad input (a ruleset nft rejects, a malformed probe file).`,
		Example: `  fwslot perf ruleset.nft --probes ruleset.probes
  fwslot perf ruleset.nft --against production --probes ruleset.probes --max-regression 10%
  fwslot perf new.nft --against old.nft --probes ruleset.probes --duration 2s --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if probesFile == "" {
				return usagef("perf needs --probes FILE: the probes are the traffic mix")
			}
			if duration <= 0 {
				return usagef("--duration must be positive, like 5s")
			}
			var max float64
			if maxReg != "" {
				if against == "" {
					return usagef("--max-regression needs --against production or --against FILE2 to compare with")
				}
				var err error
				if max, err = perf.ParsePercent(maxReg); err != nil {
					return usagef("--max-regression: %v", err)
				}
			}
			metric, err := perf.ParseMetric(gate)
			if err != nil {
				return usagef("--gate: %v", err)
			}
			ps, topo, err := readProbeSet(probesFile, topoFile)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			versions, topo, err := perfVersions(ctx, g, args[0], against, topo, ps)
			if err != nil {
				return err
			}
			res, err := perf.Measure(ctx, topo, ps, versions, perf.Options{Duration: duration, Logf: progress(g, cmd.ErrOrStderr())})
			if err != nil {
				return features.Explain(ctx, err)
			}
			var reg *perf.Regression
			if len(res.Versions) == 2 {
				r := perf.Compare(res.Versions[0], res.Versions[1], metric, max)
				reg = &r
			}
			if err := writePerf(g, cmd.OutOrStdout(), res, reg, maxReg != ""); err != nil {
				return err
			}
			if maxReg != "" && reg.Exceeded {
				return perfRegressed{res.Versions[0].Source, res.Versions[1].Source, *reg}
			}
			return nil
		},
	}
	c.Flags().StringVar(&probesFile, "probes", "", "probe file whose packets make the traffic mix (required)")
	c.Flags().StringVar(&against, "against", "", "compare with production (the target's live slot) or another ruleset file (a file named production: ./production)")
	c.Flags().DurationVar(&duration, "duration", 5*time.Second, "flood time per version")
	c.Flags().StringVar(&maxReg, "max-regression", "", "exit 1 when FILE is this much slower than --against, e.g. 10%")
	c.Flags().StringVar(&gate, "gate", string(perf.RulesEvaluated), "what --max-regression decides on: rules (exact) or pps (noisy)")
	c.Flags().StringVar(&topoFile, "topology", "", "interfaces, addresses and routes of the twins (default: inferred from the probes)")
	return c
}

// perfVersions returns FILE and what --against names, as perf versions,
// and the topology of their twins: the target's interfaces mirrored when
// production is in play, as probes against a slot do.
func perfVersions(ctx context.Context, g *globals, file, against string, topo probe.Topology, ps []probe.Probe) ([]perf.Version, probe.Topology, error) {
	var versions []perf.Version
	if against == "production" {
		t, done, err := g.target()
		if err != nil {
			return nil, topo, err
		}
		// The slot's compiled ruleset is read once; the history lock is
		// not held while the flood runs.
		rs, v, err := slotRuleset(t, "production")
		done()
		if err != nil {
			return nil, topo, fmt.Errorf("--against production: %w", err)
		}
		ifs, err := slots.Interfaces(g.netns)
		if err != nil {
			return nil, topo, err
		}
		if len(topo.Interfaces) == 0 {
			topo = probe.InferTopology(ps)
		}
		topo = probe.MirrorIndexes(topo, ifs)
		versions = append(versions, perf.Version{Source: fmt.Sprintf("production (version %d)", v.Number), Load: probe.RulesetLoader(rs), Locate: historyLocator(v)})
	}
	for _, f := range []string{file, against} {
		if f == "" || f == "production" {
			continue
		}
		b, err := readRuleset(g, f)
		if err != nil {
			return nil, topo, err
		}
		loc, err := probe.SourceLocator(b)
		if err != nil {
			return nil, topo, err
		}
		versions = append(versions, perf.Version{Source: f, Load: probe.CompileLoader(ctx, b), Locate: loc})
	}
	if against == "production" {
		versions[0], versions[1] = versions[1], versions[0] // FILE first
	}
	return versions, topo, nil
}

// progress prints what perf is doing on stderr, unless --json.
func progress(g *globals, w io.Writer) func(string, ...any) {
	if g.json {
		return nil
	}
	return func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
}

// writePerf prints a measurement, with the regression when gating.
func writePerf(g *globals, w io.Writer, res *perf.Result, reg *perf.Regression, gating bool) error {
	if !gating {
		reg = nil
	}
	if g.json {
		return printJSON(w, struct {
			*perf.Result
			Regression *perf.Regression `json:"regression,omitempty"`
		}{res, reg})
	}
	return perf.WriteText(w, res, reg)
}

// testPerf measures the ruleset of `fwslot test --perf` with the test's
// probes as the mix.
func testPerf(ctx context.Context, g *globals, w io.Writer, v perf.Version, topo probe.Topology, ps []probe.Probe, d time.Duration) (*perf.Result, error) {
	if d <= 0 {
		return nil, usagef("--perf-duration must be positive, like 1s")
	}
	res, err := perf.Measure(ctx, topo, ps, []perf.Version{v}, perf.Options{Duration: d, Logf: progress(g, w)})
	if err != nil {
		return nil, features.Explain(ctx, err)
	}
	return res, nil
}

// writeTestReport is writeReport with the figures of --perf: after the
// probe report in text, as "perf" in its JSON object.
func writeTestReport(g *globals, w io.Writer, rep probe.Report, junit, suite string, res *perf.Result) error {
	if res == nil {
		return writeReport(g, w, rep, junit, suite)
	}
	if g.json {
		err := writeReport(g, io.Discard, rep, junit, suite) // the JUnit file and the exit status
		if perr := printJSON(w, struct {
			probe.Report
			Perf *perf.Result `json:"perf"`
		}{rep, res}); perr != nil {
			return perr
		}
		return err
	}
	err := writeReport(g, w, rep, junit, suite)
	fmt.Fprintln(w, "\nperf:")
	if perr := perf.WriteText(w, res, nil); perr != nil {
		return perr
	}
	return err
}
