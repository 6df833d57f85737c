package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/session"
	"github.com/spf13/cobra"
)

func newLoad(g *globals) *cobra.Command {
	f := &loadFlags{}
	c := &cobra.Command{
		Use:   "load FILE",
		Short: "Compile a ruleset and stage it beside production",
		Long: `Compile FILE with nft in a private network namespace that mirrors the
target's interfaces, then write it into the staging slot in one netlink
transaction. Production keeps running untouched, also when the file is
rejected. Tables the file does not declare are never touched, even if the
file says "flush ruleset".

On the first load, tables that already exist (say, from nftables.service)
keep running; the first swap takes them over, and their old content is kept
as a version of its own, so "fwslot rollback" returns to it.

A ruleset that needs a feature this kernel lacks (see fwslot features) is
refused with the feature, the line that needs it and the kernel option.`,
		Example: `  fwslot load /etc/fwslot/ruleset.nft -m "open 8443 for the new API"
  fwslot --netns lab load ruleset.nft`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoad(g, cmd, args[0], f, "")
		},
	}
	f.register(c)
	return c
}

func newRollback(g *globals) *cobra.Command {
	var to uint64
	c := &cobra.Command{
		Use:   "rollback",
		Short: "Go back to the previous version (or --to N)",
		Long: `Make the previous production live again. When it still sits in the other
slot this is the same instant flip as a swap; otherwise, and with --to N,
the version is restaged from history (no compiling) and made live in the
same transaction.`,
		Example: `  fwslot rollback
  fwslot rollback --to 3`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("to") && to == 0 {
				return usagef("--to needs a version number (1 or more; see `fwslot history`)")
			}
			s, err := g.open(cmd.Context(), session.Guard{}, false)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.Rollback(cmd.Context(), to)
			if err != nil {
				return err
			}
			return printActivation(g, cmd, res)
		},
	}
	c.Flags().Uint64Var(&to, "to", 0, "version to make live (default: the previous one)")
	return c
}

func printActivation(g *globals, cmd *cobra.Command, res *session.Result) error {
	for _, r := range res.Repaired {
		fmt.Fprintln(cmd.ErrOrStderr(), "fwslot: repaired: "+r)
	}
	for _, d := range res.Overrode {
		fmt.Fprintln(cmd.ErrOrStderr(), "fwslot: forced over drift: "+d)
	}
	for _, d := range res.Deleted {
		fmt.Fprintln(cmd.ErrOrStderr(), "fwslot: deleted what fwslot did not write: "+d)
	}
	if g.json {
		return printJSON(cmd.OutOrStdout(), res)
	}
	how := "flipped"
	if res.Restaged {
		how = "restaged from history and flipped"
	}
	from := "nothing"
	if res.From != 0 {
		from = "version " + strconv.FormatUint(res.From, 10)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: version %d is live (slot %s, was %s); %s in %v\n",
		res.How, res.To, res.Slot, from, how, res.Duration.Round(time.Microsecond))
	return nil
}

func newStatus(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show what is live and what is staged",
		Long: `Read the slots from the kernel (the source of truth) and cross-check them
with history. Warnings say where the two disagree.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, t, done, err := g.status(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			statusAdvice(s)
			// Drift shown as nft rules: a detail, so a failure to render
			// it is a warning, not a failed status.
			rules, err := driftRules(cmd.Context(), t, s)
			if err != nil {
				s.Warnings = append(s.Warnings, "cannot show the drift as nft rules: "+err.Error())
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), statusView{Status: s, DriftRules: rules})
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "target\t%s\n", s.Target)
			for _, row := range []struct {
				name string
				info any
			}{{"production", s.Production}, {"staging", s.Staging}} {
				line := slotLine(row.info)
				if row.name == "production" && s.Vanished != 0 {
					line = fmt.Sprintf("(empty: version %d is no longer in the kernel; run `fwslot restore`)", s.Vanished)
				}
				fmt.Fprintf(w, "%s\t%s\n", row.name, line)
			}
			w.Flush()
			if s.Takeover {
				fmt.Fprintln(cmd.OutOrStdout(), "note: tables still run the content they had before fwslot; the next swap takes them over")
			}
			if p := s.Pending; p != nil {
				if p.SecondsLeft > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "pending: version %d goes back to %d in %v unless you run `fwslot confirm`\n", p.Version, p.From, time.Duration(p.SecondsLeft*float64(time.Second)).Round(time.Second))
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "pending: version %d was not confirmed by %s; the next fwslot command reverts it to %d\n", p.Version, p.Deadline.Local().Format("15:04:05"), p.From)
				}
			}
			if s.Drift {
				fmt.Fprintln(cmd.OutOrStdout(), "drift: the managed tables were changed behind fwslot's back:")
				for _, c := range s.DriftChanges {
					fmt.Fprintln(cmd.OutOrStdout(), "  "+c)
				}
				for _, slot := range []string{"production", "staging"} {
					if d := rules[slot]; d != "" {
						fmt.Fprintf(cmd.OutOrStdout(), "%s as nft rules (- what fwslot wrote, + what runs):\n%s", slot, d)
					}
				}
			}
			for _, warn := range s.Warnings {
				fmt.Fprintln(cmd.OutOrStdout(), "warning: "+warn)
			}
			return nil
		},
	}
}

func newHistory(g *globals) *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use:   "history",
		Short: "List versions and activations",
		Long: `List versions, newest last, with time, user, short hash, lines changed
against the version before (from the flattened sources), the slot each sits
in, and the message; then activations (what went live when) with how each
ended: replaced by a later swap, rolled back, reverted, confirmed, or live.`,
		Example: `  fwslot history
  fwslot history --limit 10
  fwslot history --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error { return runHistory(g, cmd, limit) },
	}
	c.Flags().IntVar(&limit, "limit", 0, "show only the newest N versions")
	return c
}

func newShow(g *globals) *cobra.Command {
	var original bool
	c := &cobra.Command{
		Use:   "show N",
		Short: "Print the source of version N (includes resolved)",
		Example: `  fwslot show 3
  fwslot show 3 --original`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || n == 0 {
				return usagef("show: %q is not a version number (see `fwslot history`)", args[0])
			}
			t, done, err := g.targetWithHistory()
			if err != nil {
				return err
			}
			defer done()
			v, err := t.Store.Get(t.Key(), n)
			if err != nil {
				return usageError{err}
			}
			if original {
				return printOriginal(g, cmd, n, v)
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), struct {
					history.Version
					Source string `json:"source"`
				}{v, v.Source})
			}
			fmt.Fprint(cmd.OutOrStdout(), v.Source)
			return nil
		},
	}
	c.Flags().BoolVar(&original, "original", false, "print the files as written (includes separate, each after a \"# ==> FILE <==\" line) instead of the flattened source")
	return c
}

// exactArgs is cobra.ExactArgs with the documented exit code for misuse.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %d argument(s), got %d (see fwslot %s --help)", cmd.Name(), n, len(args), cmd.Name())
		}
		return nil
	}
}
