package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	prog "github.com/fwslot/fwslot/internal/progress"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/rulediff"
	"github.com/spf13/cobra"
)

// diffMemoryLimit is the Go heap size at which diff's collector works
// harder (runtime/debug.SetMemoryLimit): soft, so a bigger diff still runs.
const diffMemoryLimit = 128 << 20

// probeChange is a probe whose verdict differs between the two sides.
type probeChange struct {
	Probe string `json:"probe"`
	Where string `json:"where"`
	A     string `json:"a"`
	B     string `json:"b"`
}

// newRulesetDiff is `fwslot diff`: the ruleset diff, and with --probes the
// probes whose verdict changes.
func newRulesetDiff(g *globals) *cobra.Command {
	var probesFile, topoFile, color string
	var context int
	c := &cobra.Command{
		Use:   "diff [A [B]]",
		Short: "Show what changes between two rulesets (default: production and staging)",
		Long: `Compare two rulesets as nft prints them, table by table and chain by chain,
so moved includes, reformatted whitespace and defines do not show, only
what the kernel would run differently. A and B are each a version number,
"production", "staging" or a ruleset file; the defaults are production
and staging, so "fwslot diff" shows what the next swap changes.

Versions are compared in the canonical form history keeps with each
(statements one a line, defines expanded, set elements sorted), a file
in the same form after compiling it once; two sides whose compiled forms
are equal have no differences. A side without a canonical form (a version
stored by an older fwslot, a source using commands like delete or
replace) makes both sides rendered in a private network namespace and
listed with nft. Either way fwslot's slot layout does not show: you see
your own chain and set names.
Lines are coloured on a terminal (--color). With --probes FILE the same
probes run against twins of both sides and the probes whose verdict or
NAT outcome differs are listed too.`,
		Example: `  fwslot diff                       # production -> staging: what a swap changes
  fwslot diff 3 5
  fwslot diff production ruleset.nft
  fwslot diff --probes ruleset.probes`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 2 {
				return usagef("diff takes at most two rulesets, got %d (see fwslot diff --help)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			specs := append(append([]string{}, args...), "production", "staging")[:2]
			if len(args) == 1 {
				specs = []string{args[0], "staging"}
			}
			useColor, err := colorWanted(color, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			var ps []probe.Probe
			var topo probe.Topology
			if probesFile != "" {
				if ps, err = readProbes(probesFile); err != nil {
					return err
				}
				if topo, err = readTopology(topoFile); err != nil {
					return err
				}
			}
			t, done, err := g.target()
			if err != nil {
				return err
			}
			defer done()
			// Two big sets' canonical forms are ~100 MB live; without a
			// limit the collector lets the heap reach twice that before
			// it runs. A soft limit keeps the command near what it holds.
			debug.SetMemoryLimit(diffMemoryLimit)
			r := &sideResolver{ctx: cmd.Context(), g: g, t: t, needCompiled: len(ps) > 0}
			// A side that is a file compiles it (seconds for a big one):
			// the progress line says so on a terminal, never in --json.
			rep := newProgress(g, cmd.ErrOrStderr())
			step := diffProgress(rep, len(ps) > 0)
			rep.Start()
			defer rep.Stop()
			var sides [2]*diffSide
			for i, spec := range specs {
				step.side(i, spec)
				if sides[i], err = r.resolve(spec); err != nil {
					if strings.HasPrefix(err.Error(), spec) { // a file's errors name it already
						return err
					}
					return fmt.Errorf("%s: %w", spec, err)
				}
			}
			step.set("comparing", 80)
			changes, err := r.compare(sides)
			if err != nil {
				return err
			}
			var pchanges []probeChange
			if len(ps) > 0 {
				step.set("running the probes on both sides", 85)
				ifs, err := r.interfaces()
				if err != nil {
					return err
				}
				if pchanges, err = probeChanges(cmd.Context(), sides, ps, topo, ifs); err != nil {
					return err
				}
			}
			rep.Stop() // the line is cleared before the diff is printed
			if g.json {
				out := struct {
					A       *diffSide         `json:"a"`
					B       *diffSide         `json:"b"`
					Changes []rulediff.Change `json:"changes"`
					Probes  []probeChange     `json:"probes,omitempty"`
					Summary map[string]int    `json:"summary"`
				}{A: sides[0], B: sides[1], Changes: changes, Probes: pchanges, Summary: diffSummary(changes)}
				if ps != nil && out.Probes == nil {
					out.Probes = []probeChange{}
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "--- %s\n+++ %s\n", sides[0].Label, sides[1].Label)
			if len(changes) == 0 {
				fmt.Fprintln(w, "no differences in the rulesets")
			} else {
				if err := rulediff.WriteText(w, changes, rulediff.Style{Color: useColor, Context: context}); err != nil {
					return err
				}
				s := diffSummary(changes)
				what := fmt.Sprintf("%d objects differ", s["objects"])
				if s["objects"] == 1 {
					what = "1 object differs"
				}
				fmt.Fprintf(w, "%s (+%d -%d lines)\n", what, s["added"], s["removed"])
			}
			if len(ps) > 0 {
				for _, c := range pchanges {
					fmt.Fprintf(w, "%s: %s\n  %-11s %s\n  %-11s %s\n", c.Where, c.Probe, sides[0].Spec+":", c.A, sides[1].Spec+":", c.B)
				}
				fmt.Fprintf(w, "%d of %d probes change verdict from %s to %s\n", len(pchanges), len(ps), sides[0].Spec, sides[1].Spec)
			}
			return nil
		},
	}
	c.Flags().StringVar(&probesFile, "probes", "", "also list the probes in this file whose verdict differs")
	c.Flags().StringVar(&topoFile, "topology", "", "interfaces of the probe twins (default: inferred from the probes)")
	c.Flags().StringVar(&color, "color", "auto", "colour the diff: auto (on a terminal), always or never")
	c.Flags().IntVar(&context, "context", 3, "unchanged lines shown around each change")
	return c
}

func diffSummary(changes []rulediff.Change) map[string]int {
	s := map[string]int{"objects": len(changes)}
	for _, c := range changes {
		s["added"] += c.Added()
		s["removed"] += c.Removed()
	}
	return s
}

// probeChanges runs the probes against twins of both sides.
func probeChanges(ctx context.Context, sides [2]*diffSide, ps []probe.Probe, topo probe.Topology, ifs []slots.Iface) ([]probeChange, error) {
	if len(topo.Interfaces) == 0 {
		topo = probe.InferTopology(ps)
	}
	topo = probe.MirrorIndexes(topo, ifs)
	var reps [2]probe.Report
	for i, s := range sides {
		rep, err := probe.Run(ctx, topo, probe.RulesetLoader(s.rs), ps, nil, probe.Options{Locate: s.loc})
		if err != nil {
			return nil, fmt.Errorf("probes on %s: %w", s.Label, err)
		}
		reps[i] = rep
	}
	return changedProbes(ps, reps[0], reps[1]), nil
}

// changedProbes lists the probes whose verdict or outcome differs between
// the two reports. A probe whose fate a twin could not tell is always
// listed, with its error: the two sides cannot be said to agree on it.
func changedProbes(ps []probe.Probe, a, b probe.Report) []probeChange {
	out := []probeChange{}
	for i, p := range ps {
		x, y := a.Results[i], b.Results[i]
		if x.Err != nil || y.Err != nil || string(x.Got) != string(y.Got) || x.Outcome != y.Outcome {
			out = append(out, probeChange{p.Text, p.Where(), fateText(x), fateText(y)})
		}
	}
	return out
}

// fateText is a probe's verdict and outcome on one side of a diff, or its
// error when the twin could not tell its fate.
func fateText(r probe.Result) string {
	if r.Err != nil {
		return "error: " + r.Err.Error()
	}
	return fmt.Sprintf("%s (%s)", r.Got, r.Outcome)
}

// colorWanted decides whether to colour output: "auto" colours a terminal
// unless NO_COLOR is set or TERM is dumb.
func colorWanted(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
			return false, nil
		}
		return isTerminal(w), nil
	}
	return false, usagef("--color is auto, always or never, not %q", mode)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool { return prog.IsTerminal(w) }
