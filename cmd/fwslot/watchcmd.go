package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/watch"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/session"
	"github.com/spf13/cobra"
)

// cliStager stages through the same path as `fwslot load`, opening the
// history only for the time of one change, so other fwslot commands run
// while watch waits.
type cliStager struct {
	g       *globals
	message string
	probes  []probe.Probe
	topo    probe.Topology
	swap    bool
	confirm time.Duration
	keep    string // --keep-access; the lockout guard as in load and swap
}

// Stage stages file (and with --swap makes it live); a refusal carries the
// command line's advice, as the one-shot commands print it.
func (s *cliStager) Stage(ctx context.Context, file string) (watch.Outcome, error) {
	out, err := s.stage(ctx, file)
	return out, withAdvice(err)
}

func (s *cliStager) stage(ctx context.Context, file string) (watch.Outcome, error) {
	guard, err := lockoutGuard(s.g, s.keep, false)
	if err != nil {
		return watch.Outcome{}, err
	}
	// One session for the change: staging and, with --swap, going live
	// share the lock, the kernel connection and the guard.
	sess, err := s.g.open(ctx, guard, false)
	if err != nil {
		return watch.Outcome{}, err
	}
	defer sess.Close()
	opts := session.LoadOptions{Message: s.message, IncludeDirs: s.g.includeDirs}
	if len(s.probes) > 0 {
		opts.Check = func(ctx context.Context, file string, rs *slots.Ruleset) error {
			return runProbes(ctx, s.g, file, rs, s.probes, s.topo)
		}
	}
	res, err := sess.Load(ctx, file, opts)
	if err != nil {
		return watch.Outcome{}, err
	}
	if res.Unchanged != "" {
		return watch.Outcome{Kind: watch.Unchanged, Version: res.Version, Detail: res.Unchanged + " holds it"}, nil
	}
	out := watch.Outcome{Kind: watch.Staged, Version: res.Version}
	if !s.swap || res.Unchanged != "" {
		return out, nil
	}
	// Probes passed (Load refuses otherwise): make it live, provisionally.
	sw, err := sess.Swap(ctx, session.SwapOptions{Confirm: s.confirm})
	if err != nil {
		out.Detail = "not made live: " + watch.FirstErrorLine(withAdvice(err))
		return out, nil
	}
	if err := startWatchdog(s.g, sess.Target(), sw); err != nil {
		out.Detail = fmt.Sprintf("watchdog did not start (%v); the next fwslot command after the deadline reverts", err)
	}
	out.Live = true
	return out, nil
}

// runProbes proves a compiled candidate in a twin with the target's
// interface indexes; an error names the first failing probe.
func runProbes(ctx context.Context, g *globals, file string, rs *slots.Ruleset, ps []probe.Probe, topo probe.Topology) error {
	rep, err := proveCandidate(ctx, g, file, rs, ps, topo)
	if err != nil {
		return err
	}
	if rep.OK() {
		return nil
	}
	for i, r := range rep.Results {
		if !r.Passed() {
			why := r.Failure
			if why == "" {
				why = r.Error
			}
			return fmt.Errorf("probe %s failed: %s (%d of %d probes failed)", ps[i].Where(), why, rep.Failed, len(rep.Results))
		}
	}
	return probesFailed{rep.Failed, len(rep.Results)}
}

func newWatch(g *globals) *cobra.Command {
	var probesFile, topoFile, msg, keep string
	var doSwap bool
	var confirm, debounce time.Duration
	c := &cobra.Command{
		Use:   "watch RULESET",
		Short: "Stage a ruleset again whenever it or a file it includes changes",
		Long: `Follow RULESET and every file it includes (the include list is read again
after each change; editors that save by renaming a new file over the old
one are followed), and on each change of content compile it, run the
probes (--probes) and stage it, printing one line per outcome:

  staged v7            rejected: ruleset.nft:12:5-9: Error: ...       unchanged

Bursts of writes are staged once (--debounce). Nothing goes live unless
--swap is given; then every staged version that passes all probes (--probes
is required) is swapped live provisionally, with --confirm D: unless
"fwslot confirm" runs within D, the previous version comes back. watch runs
in the foreground until SIGINT or SIGTERM; deploy/systemd ships a unit.`,
		Example: `  fwslot watch /etc/fwslot/ruleset.nft --probes /etc/fwslot/ruleset.probes
  fwslot watch ruleset.nft --probes ruleset.probes --swap --confirm 2m`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if doSwap && (probesFile == "" || confirm <= 0) {
				return usagef("--swap needs --probes FILE and --confirm DURATION: watch makes nothing live that no probe proved, nor without a way back")
			}
			if !doSwap && confirm != 0 {
				return usagef("--confirm only goes with --swap")
			}
			if _, err := os.Stat(args[0]); err != nil {
				return usageError{fmt.Errorf("watch: %w", err)}
			}
			if _, err := lockoutGuard(g, keep, false); err != nil {
				return err
			}
			st := &cliStager{g: g, message: msg, swap: doSwap, confirm: confirm, keep: keep}
			if probesFile != "" {
				var err error
				if st.probes, st.topo, err = readProbeSet(probesFile, topoFile); err != nil {
					return err
				}
			}
			if st.message == "" {
				st.message = "watch: " + filepath.Base(args[0]) + " changed"
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			w := cmd.OutOrStdout()
			report := func(r watch.Report) {
				if r.Outcome.Kind == watch.Same {
					return
				}
				if g.json {
					printJSONLine(w, r)
					return
				}
				fmt.Fprintln(w, watchLine(r))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "fwslot: watching %s and its includes (Ctrl-C stops)\n", args[0])
			return watch.Run(ctx, watch.Config{File: args[0], IncludeDirs: g.includeDirs, Debounce: debounce, Stager: st, Report: report})
		},
	}
	c.Flags().StringVar(&probesFile, "probes", "", "refuse to stage a version unless every probe in this file passes")
	c.Flags().StringVar(&topoFile, "topology", "", "interfaces of the probe twin (default: inferred from the probes)")
	c.Flags().StringVarP(&msg, "message", "m", "", `message recorded with each version (default "watch: FILE changed")`)
	c.Flags().BoolVar(&doSwap, "swap", false, "make each staged version that passes all probes live (needs --probes and --confirm)")
	c.Flags().DurationVar(&confirm, "confirm", 0, "with --swap: revert unless `fwslot confirm` runs within this time")
	c.Flags().DurationVar(&debounce, "debounce", watch.DefaultDebounce, "quiet time after the last write before a change is staged")
	c.Flags().StringVar(&keep, "keep-access", "", `refuse to stage or swap a version that would cut this connection, like "198.51.100.7:50022 -> 192.0.2.10:22" (default: $SSH_CONNECTION on the host)`)
	return c
}

// watchLine is the one line watch prints for a report.
func watchLine(r watch.Report) string {
	ts := r.Time.Local().Format("15:04:05")
	o := r.Outcome
	var line string
	switch o.Kind {
	case watch.Staged:
		line = fmt.Sprintf("staged v%d", o.Version)
		if o.Live {
			line += ", live pending confirmation (fwslot confirm)"
		}
	case watch.Unchanged:
		line = fmt.Sprintf("unchanged (v%d)", o.Version)
	default:
		line = o.Kind
	}
	if o.Detail != "" {
		if o.Kind == watch.Rejected {
			line += ": " + o.Detail
		} else {
			line += " (" + o.Detail + ")"
		}
	}
	return ts + " " + line
}

func printJSONLine(w io.Writer, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	w.Write(append(data, '\n'))
}
