package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/rulediff"
	"github.com/fwslot/fwslot/session"
	"github.com/fwslot/fwslot/slots"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// diffSide is one ruleset a diff compares.
type diffSide struct {
	Spec    string `json:"spec"`
	Label   string `json:"label"`
	Version uint64 `json:"version,omitempty"`
	File    string `json:"file,omitempty"`
	rs      *slots.Ruleset
	loc     probe.Locator
}

// sideResolver turns diff arguments into compiled rulesets, reading the
// target's status and history only when an argument needs them.
type sideResolver struct {
	ctx    context.Context
	g      *globals
	t      *session.Target
	status *slots.Status
	ifaces []slots.Iface
}

func (r *sideResolver) resolve(spec string) (*diffSide, error) {
	s := &diffSide{Spec: spec}
	switch {
	case spec == "production" || spec == "staging":
		if r.status == nil {
			st, err := r.t.Status(context.Background())
			if err != nil {
				return nil, err
			}
			r.status = st
		}
		info := r.status.Production
		if spec == "staging" {
			info = r.status.Staging
		}
		if info == nil {
			return nil, fmt.Errorf("the %s slot is empty; name a version number or a file instead", spec)
		}
		if err := r.version(s, info.Version); err != nil {
			return nil, err
		}
		s.Label = fmt.Sprintf("%s (version %d)", spec, info.Version)
	case isNumber(spec):
		n, _ := strconv.ParseUint(spec, 10, 64)
		if err := r.version(s, n); err != nil {
			return nil, err
		}
		s.Label = "version " + spec
	default:
		if _, err := os.Stat(spec); err != nil {
			return nil, usagef("diff: %q is not a version number, production, staging or a readable file (%v)", spec, err)
		}
		// Read under the include policy before nft sees anything, and
		// compile exactly what was read.
		b, err := readRuleset(r.g, spec)
		if err != nil {
			return nil, err
		}
		rs, err := slots.CompileBundle(r.ctx, b, r.ifaces, nil)
		if err != nil {
			return nil, err
		}
		loc, err := probe.SourceLocator(b)
		if err != nil {
			return nil, err
		}
		s.File, s.rs, s.loc, s.Label = spec, rs, loc, spec
	}
	return s, nil
}

func isNumber(s string) bool {
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n > 0
}

// version loads a stored version: its compiled form, or, when history
// holds none, its flattened source compiled again.
func (r *sideResolver) version(s *diffSide, n uint64) error {
	if r.t.Store == nil {
		return usagef("no history yet (%s does not exist)", r.g.db)
	}
	v, err := r.t.Store.Get(r.t.Key(), n)
	if err != nil {
		if errors.Is(err, history.ErrNotFound) {
			return usageError{err}
		}
		return err
	}
	s.Version, s.loc = n, historyLocator(v)
	blob, err := r.t.Store.Compiled(r.t.Key(), n)
	if err != nil {
		return err
	}
	if len(blob) > 0 {
		s.rs, err = slots.Decode(blob)
		return err
	}
	// Compiled from memory: no file a user could swap in between.
	b, err := source.FromText(fmt.Sprintf("/version-%d.nft", n), v.Source)
	if err != nil {
		return fmt.Errorf("version %d: %w", n, err)
	}
	s.rs, err = slots.CompileBundle(r.ctx, b, r.ifaces, nil)
	return err
}

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

Each side is rendered in a private network namespace (compiled for the
target's interfaces, or installed from history) and listed with nft;
fwslot's slot layout is removed, so you see your own chain and set names.
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
			ifs, err := slots.Interfaces(g.netns)
			if err != nil {
				return err
			}
			r := &sideResolver{ctx: cmd.Context(), g: g, t: t, ifaces: ifs}
			var sides [2]*diffSide
			for i, spec := range specs {
				if sides[i], err = r.resolve(spec); err != nil {
					if strings.HasPrefix(err.Error(), spec) { // a file's errors name it already
						return err
					}
					return fmt.Errorf("%s: %w", spec, err)
				}
			}
			var rendered [2]*rulediff.Ruleset
			for i, s := range sides {
				if rendered[i], err = rulediff.RenderCompiled(cmd.Context(), s.rs, ifs); err != nil {
					return fmt.Errorf("render %s: %w", s.Label, err)
				}
			}
			changes := rulediff.Compare(rendered[0], rendered[1])
			var pchanges []probeChange
			if len(ps) > 0 {
				if pchanges, err = probeChanges(cmd.Context(), sides, ps, topo, ifs); err != nil {
					return err
				}
			}
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
	out := []probeChange{}
	for i, p := range ps {
		a, b := reps[0].Results[i], reps[1].Results[i]
		if string(a.Got) != string(b.Got) || a.Outcome != b.Outcome {
			out = append(out, probeChange{p.Text, p.Where(), fmt.Sprintf("%s (%s)", a.Got, a.Outcome), fmt.Sprintf("%s (%s)", b.Got, b.Outcome)})
		}
	}
	return out, nil
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
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
