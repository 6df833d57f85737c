package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/rulediff"
	"github.com/fwslot/fwslot/session"
	"github.com/spf13/cobra"
)

// DefaultDB is where history lives unless --db or FWSLOT_DB say otherwise.
const DefaultDB = "/var/lib/fwslot/fwslot.db"

// globals are the flags every command takes.
type globals struct {
	netns string
	db    string
	json  bool
	wait  time.Duration
	// includeDirs are where the files of a ruleset may be besides its own
	// directory (--include-dir), for every command that reads one.
	includeDirs []string
	// stderr receives notes about repairs; set when a command runs.
	stderr io.Writer
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "fwslot",
		Short: "Change an nftables firewall without fear",
		Long: `fwslot keeps two copies ("slots") of your nftables ruleset in the kernel:
production, which filters packets, and staging, which waits beside it.

  fwslot load ruleset.nft -m "why"   compile the file (nft syntax: include, define)
                                     and write it into the staging slot; production
                                     keeps running untouched
  fwslot swap                        make staging live in one atomic transaction;
                                     the old production stays loaded beside it
  fwslot rollback [--to N]           go back instantly, or to any older version
  fwslot status | history | show N   what runs, what ran, and its source

Every version is kept in a history file (--db). Every command works on the
host's network namespace, or on a named one with --netns NAME.

Exit codes: 0 success, 1 the operation failed (production unchanged),
2 bad usage or bad input.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Runnable, so that an unknown command is bad usage (exit 2)
		// rather than cobra's untyped error.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q; run 'fwslot --help' for the list", args[0])
			}
			return cmd.Help()
		},
	}
	g.stderr = os.Stderr
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		g.stderr = cmd.ErrOrStderr()
		sweepTwins(g.stderr)
		return g.checkNetns(cmd.Flags().Changed("netns"))
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	db := os.Getenv("FWSLOT_DB")
	if db == "" {
		db = DefaultDB
	}
	root.PersistentFlags().StringVar(&g.netns, "netns", "", "act on this named network namespace (ip netns) instead of the host")
	root.PersistentFlags().StringVar(&g.db, "db", db, "history file (env FWSLOT_DB)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print machine-readable JSON")
	root.PersistentFlags().StringArrayVar(&g.includeDirs, "include-dir", nil, "let a ruleset's includes read files in this directory and below (repeatable); by default only the ruleset's own directory and below")
	root.PersistentFlags().DurationVar(&g.wait, "wait", history.DefaultTimeout, "how long to wait for another fwslot command on the same history")
	root.AddCommand(withFromIptables(g, newLoad(g)), newSwap(g), newRollback(g), newStatus(g), newHistory(g), newShow(g), newDemo(g), newConfirm(g), newRestore(g), newWatchdog(g), newTest(g), newPerf(g), newProbeCmd(g, "probe"), newProbeCmd(g, "explain"), newDiff(g), newPrune(g), newExport(g), newImport(g), newWatch(g), newVersion(g), newFeatures(g), newCommit(g), newEdit(g), newLogs(g), newFleet(g), newAgent(g), newGenDocs())
	return root
}

// checkNetns takes --netns as `ip netns` does: a name, not a path. A
// name that pins the initial namespace is the host: the host's guards
// (the SSH lockout guard) and history apply, whatever its spelling.
func (g *globals) checkNetns(given bool) error {
	if !given {
		return nil
	}
	if err := nsutil.ValidName(g.netns); err != nil {
		return usagef("--netns: %v", err)
	}
	host, err := nsutil.IsHost(g.netns)
	if err != nil {
		return err
	}
	if host {
		fmt.Fprintf(g.stderr, "fwslot: --netns %s is the host's own network namespace; acting on the host\n", g.netns)
		g.netns = ""
	}
	return nil
}

// targetWithHistory is target for commands that read history: no history
// file is a usage error.
func (g *globals) targetWithHistory() (*session.Target, func(), error) {
	t, done, err := g.target()
	if err != nil {
		return nil, nil, err
	}
	if t.Store == nil {
		done()
		return nil, nil, usagef("no history yet (%s does not exist)", g.db)
	}
	return t, done, nil
}

// target returns the target with its history opened read-only, for
// commands that only read history (history, show, diff, export, probes);
// Store is nil when the history file does not exist. The caller calls
// the returned func when done. Commands that change the target or its
// history open a session instead (open).
func (g *globals) target() (*session.Target, func(), error) {
	t := &session.Target{NetNS: g.netns}
	if _, err := os.Stat(g.db); errors.Is(err, os.ErrNotExist) {
		return t, func() {}, nil
	}
	s, err := history.Open(g.db, history.Options{ReadOnly: true, Timeout: g.wait, Canonical: rulediff.CanonicalSource})
	if err != nil {
		return nil, nil, historyError(err)
	}
	t.Store = s
	return t, func() { s.Close() }, nil
}

// open starts the session of a command that changes the target or its
// history: history lock (--wait), one kernel read, reconcile, and the
// revert of a `swap --confirm` whose deadline passed, said on stderr.
// printRepaired prints what reconciling repaired, for commands whose
// result does not carry it. The caller closes the session.
func (g *globals) open(ctx context.Context, guard session.Guard, printRepaired bool) (*session.Session, error) {
	s, err := session.Open(ctx, &session.Target{NetNS: g.netns}, session.Options{DB: g.db, Wait: g.wait, Guard: guard})
	if err != nil {
		return nil, historyError(err)
	}
	if printRepaired {
		for _, r := range s.Repaired() {
			fmt.Fprintln(g.stderr, "fwslot: repaired: "+r)
		}
	}
	if res := s.Expired(); res != nil {
		fmt.Fprintf(g.stderr, "fwslot: reverted to version %d: version %d was not confirmed in time\n", res.To, res.From)
	}
	return s, nil
}

// status reads the target's status in a read-only session: nothing is
// reconciled or reverted, and no history file is no history.
func (g *globals) status(ctx context.Context) (*slots.Status, *session.Target, func(), error) {
	s, err := session.Open(ctx, &session.Target{NetNS: g.netns}, session.Options{DB: g.db, Wait: g.wait, ReadOnly: true})
	if err != nil {
		return nil, nil, nil, historyError(err)
	}
	st, err := s.Status()
	if err != nil {
		s.Close()
		return nil, nil, nil, err
	}
	return st, s.Target(), func() { s.Close() }, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// historyOpen opens the history file for writing.
func historyOpen(path string, wait time.Duration) (*history.Store, error) {
	s, err := history.Open(path, history.Options{Timeout: wait, Canonical: rulediff.CanonicalSource})
	return s, historyError(err)
}

// historyError turns a permission problem into the one-line refusal.
func historyError(err error) error {
	if err != nil && errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: %v", slots.ErrPermission, err)
	}
	return err
}

// sweepTwins removes probe twins that a killed fwslot left behind, and says
// so. It needs root; without it there is nothing it could have made.
func sweepTwins(w io.Writer) {
	if os.Geteuid() != 0 {
		return
	}
	swept, err := probe.SweepStaleTwins()
	if len(swept) > 0 {
		fmt.Fprintf(w, "fwslot: removed %d probe namespace(s) left by a process that died: %s\n", len(swept), strings.Join(swept, " "))
	}
	if err != nil {
		fmt.Fprintf(w, "fwslot: warning: %v\n", err)
	}
}

// adoptIdentity gives an empty history the identity of the history an
// import comes from, so that it owns the targets that one owned. A
// history that already holds versions keeps its own.
func adoptIdentity(s *history.Store, id string) error {
	if id == "" {
		return nil
	}
	have, err := s.ID()
	if err != nil || have == id {
		return err
	}
	if err := s.AdoptID(id); err != nil && !errors.Is(err, history.ErrNotEmpty) {
		return err
	}
	return nil
}
