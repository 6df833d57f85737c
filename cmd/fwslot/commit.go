package main

import (
	"fmt"
	"time"

	"github.com/fwslot/fwslot/internal/commit"
	"github.com/fwslot/fwslot/session"
	"github.com/spf13/cobra"
)

func newCommit(g *globals) *cobra.Command {
	var msg string
	var staged bool
	c := &cobra.Command{
		Use:   "commit -m MESSAGE",
		Short: "Record what runs now, hand changes included, as a new version",
		Long: `Record production as it runs now, with the rules and elements added by hand
(nft add rule, nft add element), as a new version in history, so drift is
gone and the next swap and rollback keep the change.

fwslot reads production back from the kernel under your own names (the
version's source is what nft prints for it: fwslot show N), stages it
beside production and makes it live in one atomic flip: the live slot then
holds exactly the recorded version, the same rules as before.
Staging gets back the version it held before. With --staged, the staging
slot is recorded and restaged in place; production is not touched.

Elements of state sets (blocklists) are recorded as they are now.`,
		Example: `  nft add rule inet filter fwslot_b_input tcp dport 8443 accept   # during an incident
  fwslot commit -m "keep 8443 open for the new API"
  fwslot commit --staged -m "fix typo in the staged version"`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if msg == "" {
				return usagef("commit needs -m MESSAGE: say why the hand change exists")
			}
			s, err := g.open(cmd.Context(), session.Guard{}, true)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := commit.Run(cmd.Context(), s, commit.Options{Staged: staged, Message: msg})
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			for _, n := range res.Notes {
				fmt.Fprintln(cmd.ErrOrStderr(), "fwslot: note: "+n)
			}
			if res.Unchanged {
				fmt.Fprintf(w, "nothing to commit: %s already holds exactly version %d\n", res.Slot, res.Version)
				return nil
			}
			if staged {
				fmt.Fprintf(w, "recorded staging (version %d with its hand changes) as version %d and restaged it; production untouched\n", res.From, res.Version)
				return nil
			}
			fmt.Fprintf(w, "recorded production (version %d with its hand changes) as version %d; it is live (slot %s) in %v\n",
				res.From, res.Version, res.Swap.Slot, res.Duration.Round(time.Millisecond))
			if res.Staging != 0 {
				fmt.Fprintf(w, "staging holds version %d again, as before; fwslot rollback returns to version %d\n", res.Staging, res.From)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&msg, "message", "m", "", "why the hand change exists (required; kept in history)")
	c.Flags().BoolVar(&staged, "staged", false, "record the staging slot instead of production")
	return c
}
