package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/features"
	"github.com/fwslot/fwslot/internal/perf"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/session"
	"github.com/spf13/cobra"
)

func newTest(g *globals) *cobra.Command {
	var probesFile, junit, topoFile string
	var sequential, perfOn bool
	var perfDuration time.Duration
	c := &cobra.Command{
		Use:   "test RULESET --probes FILE",
		Short: "Prove a ruleset with probe packets in a throwaway twin (for CI)",
		Long: `Build a throwaway network namespace ("twin") with the ruleset live in the
same slot layout it has in production, send every probe packet through the
real kernel, and check each verdict (accept, drop, reject) and NAT rewrite.
Failed probes print the probe's file:line, expected vs got, and the path of
chains and rules (with their source file:line) that decided the packet.
Rules no probe reached are listed as coverage.

Nothing on the host changes. Exit 0 when every probe passes, 1 when one
fails, 2 for bad input (a ruleset nft rejects, a malformed probe file).

Probe file: one probe per line, "# name" after it, "#" lines are comments:
  VERDICT PROTO SRC -> DST [in IFACE] [out IFACE] [OPTION ...]
  accept tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0   # ssh from the office
See the README for every option.`,
		Example: `  fwslot test ruleset.nft --probes ruleset.probes
  fwslot test ruleset.nft --probes ruleset.probes --junit probes.xml`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if probesFile == "" {
				return usagef("test needs --probes FILE")
			}
			file := args[0]
			ps, topo, err := readProbeSet(probesFile, topoFile)
			if err != nil {
				return err
			}
			b, err := readRuleset(g, file)
			if err != nil {
				return err
			}
			loc, err := probe.SourceLocator(b)
			if err != nil {
				return err
			}
			if len(topo.Interfaces) == 0 {
				topo = probe.InferTopologyWith(ps, b.Flat)
			}
			rep, err := probe.Run(cmd.Context(), topo, probe.CompileLoader(cmd.Context(), b), ps, nil, probe.Options{Locate: loc, Sequential: sequential})
			if err != nil {
				return features.Explain(cmd.Context(), err)
			}
			var pr *perf.Result
			if perfOn {
				v := perf.Version{Source: file, Load: probe.CompileLoader(cmd.Context(), b), Locate: loc}
				if pr, err = testPerf(cmd.Context(), g, cmd.ErrOrStderr(), v, topo, ps, perfDuration); err != nil {
					return err
				}
			}
			return writeTestReport(g, cmd.OutOrStdout(), rep, junit, filepath.Base(file), pr)
		},
	}
	c.Flags().StringVar(&probesFile, "probes", "", "probe file (required)")
	c.Flags().StringVar(&junit, "junit", "", "also write a JUnit XML report to this file")
	c.Flags().StringVar(&topoFile, "topology", "", "interfaces, addresses and routes of the twin (default: inferred from the probes and the ruleset's interface names)")
	c.Flags().BoolVar(&sequential, "sequential", false, "let limits, quotas, meters and dynamic sets carry state from one probe to the next (to test a rate limit)")
	c.Flags().BoolVar(&perfOn, "perf", false, "also flood the probes as a traffic mix and report packets/s, ns/packet and rules evaluated (see fwslot perf)")
	c.Flags().DurationVar(&perfDuration, "perf-duration", time.Second, "flood time of --perf")
	return c
}

// slotRuleset returns the compiled ruleset and history record of a slot.
func slotRuleset(t *session.Target, which string) (*slots.Ruleset, history.Version, error) {
	st, err := t.Status(context.Background())
	if err != nil {
		return nil, history.Version{}, err
	}
	var info *slots.SlotInfo
	switch which {
	case "production":
		info = st.Production
	case "staging":
		info = st.Staging
	default:
		return nil, history.Version{}, usagef("--slot is production or staging, not %q", which)
	}
	if info == nil {
		return nil, history.Version{}, fmt.Errorf("the %s slot is empty", which)
	}
	if t.Store == nil {
		return nil, history.Version{}, fmt.Errorf("no history file: cannot read the %s slot's version %d", which, info.Version)
	}
	v, err := t.Store.Get(t.Key(), info.Version)
	if err != nil {
		return nil, v, err
	}
	blob, err := t.Store.Compiled(t.Key(), info.Version)
	if err != nil {
		return nil, v, err
	}
	rs, err := slots.Decode(blob)
	return rs, v, err
}

// twinFor returns how to build a twin that runs what a slot of the
// target (or a file) holds.
func twinFor(ctx context.Context, g *globals, file, slot string, topo probe.Topology, ps []probe.Probe) (probe.Loader, probe.Topology, probe.Locator, func(), error) {
	if file != "" {
		b, err := readRuleset(g, file)
		if err != nil {
			return nil, topo, nil, nil, err
		}
		loc, err := probe.SourceLocator(b)
		if err != nil {
			return nil, topo, nil, nil, err
		}
		return probe.CompileLoader(ctx, b), topo, loc, func() {}, nil
	}
	t, done, err := g.target()
	if err != nil {
		return nil, topo, nil, nil, err
	}
	rs, v, err := slotRuleset(t, slot)
	if err != nil {
		done()
		return nil, topo, nil, nil, err
	}
	ifs, err := slots.Interfaces(g.netns)
	if err != nil {
		done()
		return nil, topo, nil, nil, err
	}
	if len(topo.Interfaces) == 0 {
		topo = probe.InferTopology(ps)
	}
	return probe.RulesetLoader(rs), probe.MirrorIndexes(topo, ifs), historyLocator(v), done, nil
}

func newProbeCmd(g *globals, name string) *cobra.Command {
	var file, slot, topoFile, logLine string
	short := "Send one packet through a slot (or a file) and print its verdict"
	if name == "explain" {
		short = "Show every chain and rule a packet meets, and the rule that decides it"
	}
	c := &cobra.Command{
		Use:   name + " PACKET",
		Short: short,
		Long: short + `.

PACKET is a probe line without the verdict:
  PROTO SRC -> DST [in IFACE] [out IFACE] [OPTION ...]
The packet runs through a throwaway twin namespace built from the slot's
content (default production) or from --file, never through the live host.` + logHelp(name),
		Example: `  fwslot ` + name + ` 'tcp 198.51.100.7:40000 -> 192.0.2.10:22 in eth0'
  fwslot ` + name + ` --slot staging 'udp 203.0.113.9 -> 192.0.2.10:53 in eth0'
  fwslot ` + name + ` --file ruleset.nft 'icmp 203.0.113.9 -> 192.0.2.10 in eth0 type echo-request'
Quote the packet: the shell reads a bare -> as a redirection.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if logLine != "" {
				if len(args) > 0 {
					return usagef("%s takes a packet or --log LINE, not both", name)
				}
				return nil
			}
			if len(args) == 0 {
				return usagef("%s needs a packet, like: tcp 198.51.100.7 -> 192.0.2.10:22 in eth0", name)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			p, prefix, err := packetOf(args, logLine)
			if err != nil {
				return err
			}
			topo, err := readTopology(topoFile)
			if err != nil {
				return err
			}
			ps := []probe.Probe{p}
			load, topo, loc, done, err := twinFor(cmd.Context(), g, file, slot, topo, ps)
			if err != nil {
				return err
			}
			defer done()
			rep, err := probe.Run(cmd.Context(), topo, load, ps, nil, probe.Options{Locate: loc})
			if err != nil {
				return err
			}
			r := rep.Results[0]
			if g.json && logLine != "" {
				return printLogJSON(cmd.OutOrStdout(), r, prefix)
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), r)
			}
			w := cmd.OutOrStdout()
			if r.Err != nil || r.Error != "" {
				msg := r.Error
				if r.Err != nil {
					msg = r.Err.Error()
				}
				return fmt.Errorf("probe: %s", msg)
			}
			fmt.Fprintf(w, "%s: %s (%s)\n", p.Text, r.Got, r.Outcome)
			if r.Failure != "" {
				fmt.Fprintf(w, "  %s\n", r.Failure)
			}
			if logLine != "" {
				if err := writeLogWriters(w, r.Path, prefix); err != nil {
					return err
				}
			}
			if _, st := r.Path.Decision(); st != nil {
				where := ""
				if st.Rule != nil && st.Rule.Where() != "" {
					where = st.Rule.Where() + ": "
				}
				text := st.Verdict
				if st.Rule != nil {
					text = st.Rule.Text
				} else if st.Policy {
					text = "policy " + st.Verdict
				}
				fmt.Fprintf(w, "decided by %schain %s: %s\n", where, st.Chain, text)
			}
			if name == "explain" {
				fmt.Fprint(w, r.Path.String())
			}
			return nil
		},
	}
	c.Flags().StringVar(&file, "file", "", "probe this ruleset file instead of a slot of the target")
	c.Flags().StringVar(&slot, "slot", "production", "which slot of the target: production or staging")
	c.Flags().StringVar(&topoFile, "topology", "", "interfaces of the twin (default: inferred from the packet)")
	if name == "explain" {
		c.Flags().StringVar(&logLine, "log", "", "explain the packet of this kernel log line (dmesg, journalctl -k) and name the log rule that wrote it")
	}
	return c
}

func newDiff(g *globals) *cobra.Command {
	return newRulesetDiff(g) // the ruleset diff and --probes: histcmd.go
}

// proveCandidate runs probes on a compiled candidate in a twin that
// mirrors the target's interfaces, before anything touches the target.
func proveCandidate(ctx context.Context, g *globals, file string, rs *slots.Ruleset, ps []probe.Probe, topo probe.Topology) (probe.Report, error) {
	ifs, err := slots.Interfaces(g.netns)
	if err != nil {
		return probe.Report{}, err
	}
	if len(topo.Interfaces) == 0 {
		topo = probe.InferTopology(ps)
	}
	loc, err := locatorFor(g, file)
	if err != nil {
		return probe.Report{}, err
	}
	rep, err := probe.Run(ctx, probe.MirrorIndexes(topo, ifs), probe.RulesetLoader(rs), ps, nil, probe.Options{Locate: loc})
	if err != nil {
		return rep, fmt.Errorf("probes: %w", err)
	}
	return rep, nil
}

// probeCheck is load's check for --probes: it refuses to stage unless
// every probe passes, printing the report of failures.
func probeCheck(g *globals, cmd *cobra.Command, ps []probe.Probe, topo probe.Topology) func(context.Context, string, *slots.Ruleset) error {
	return func(ctx context.Context, file string, rs *slots.Ruleset) error {
		rep, err := proveCandidate(ctx, g, file, rs, ps, topo)
		if err != nil {
			return err
		}
		if rep.OK() {
			fmt.Fprintf(cmd.ErrOrStderr(), "probes: %d of %d passed\n", rep.Passed, len(rep.Results))
			return nil
		}
		if !g.json {
			probe.WriteText(cmd.ErrOrStderr(), rep)
		}
		return fmt.Errorf("refusing to stage %s (production and staging untouched): %w", file, probesFailed{rep.Failed, len(rep.Results)})
	}
}
