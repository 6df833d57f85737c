package main

import (
	"fmt"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/features"
	"github.com/fwslot/fwslot/session"
	"github.com/spf13/cobra"
)

// loadFlags are the flags of every command that stages a ruleset (load,
// edit, commit).
type loadFlags struct {
	msg, probesFile, topoFile, keep string
	force                           bool
	keepVersions                    int
	keepBytes                       byteSize
}

func (f *loadFlags) register(c *cobra.Command) {
	c.Flags().StringVarP(&f.msg, "message", "m", "", "why this version exists (kept in history)")
	c.Flags().StringVar(&f.probesFile, "probes", "", "refuse to stage unless every probe in this file passes (see fwslot test)")
	c.Flags().StringVar(&f.topoFile, "topology", "", "interfaces of the probe twin (default: inferred from the probes)")
	c.Flags().StringVar(&f.keep, "keep-access", "", `refuse a ruleset that would cut this connection, like "198.51.100.7:50022 -> 192.0.2.10:22" (default: $SSH_CONNECTION on the host)`)
	c.Flags().BoolVar(&f.force, "force", false, "stage even if the lockout guard fails")
	c.Flags().IntVar(&f.keepVersions, "keep", 0, "versions that never went live to keep in history (default 100); every version that was live is kept")
	f.keepBytes = byteSize(history.DefaultKeepBytes)
	c.Flags().Var(&f.keepBytes, "keep-bytes", "bytes of versions that never went live to keep in history, newest first, besides --keep (0: no bound)")
}

// runLoad stages file as `fwslot load` does and prints the result. origin
// is recorded with the version ("" for a file).
func runLoad(g *globals, cmd *cobra.Command, file string, f *loadFlags, origin string) error {
	res, err := stageFile(g, cmd, file, f, origin)
	if err != nil {
		return err
	}
	return printLoad(g, cmd, res)
}

// stageFile stages file with the probes and guards the flags ask for.
func stageFile(g *globals, cmd *cobra.Command, file string, f *loadFlags, origin string) (*session.LoadResult, error) {
	opts := session.LoadOptions{Message: f.msg, IncludeDirs: g.includeDirs, Keep: f.keepVersions, KeepBytes: keepBytesPolicy(f.keepBytes), Origin: origin, Force: f.force}
	if f.probesFile != "" {
		ps, topo, err := readProbeSet(f.probesFile, f.topoFile)
		if err != nil {
			return nil, err
		}
		opts.Check = probeCheck(g, cmd, ps, topo)
	}
	guard, err := lockoutGuard(g, f.keep, f.force)
	if err != nil {
		return nil, err
	}
	s, err := g.open(cmd.Context(), guard, false)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	rep := newProgress(g, cmd.ErrOrStderr())
	opts.Timer = loadProgress(rep)
	rep.Start()
	res, err := s.Load(cmd.Context(), file, opts)
	rep.Stop()
	if err != nil {
		return nil, features.Explain(cmd.Context(), err)
	}
	return res, nil
}

func printLoad(g *globals, cmd *cobra.Command, res *session.LoadResult) error {
	if g.json {
		return printJSON(cmd.OutOrStdout(), res)
	}
	w := cmd.OutOrStdout()
	for _, r := range res.Repaired {
		fmt.Fprintln(cmd.ErrOrStderr(), "fwslot: repaired: "+r)
	}
	for _, warn := range res.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "fwslot: warning: "+warn)
	}
	if res.Unchanged != "" {
		fmt.Fprintf(w, "unchanged: %s already holds this content as version %d; nothing to do\n", res.Unchanged, res.Version)
		return nil
	}
	if res.Adopted != 0 {
		fmt.Fprintf(w, "recorded the tables that ran before fwslot as version %d; they keep running until the first swap\n", res.Adopted)
	}
	fmt.Fprintf(w, "staged version %d in slot %s (%d rules in %v) in %v; production untouched\n",
		res.Version, res.Slot, res.Rules, res.Tables, res.Duration.Round(time.Millisecond))
	fmt.Fprintln(w, "make it live with: fwslot swap")
	return nil
}
