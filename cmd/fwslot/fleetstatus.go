package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fwslot/fwslot/fleet"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newFleetStatus(g *globals) *cobra.Command {
	fc := &fleetConn{}
	c := &cobra.Command{
		Use:   "status --group G",
		Short: "Show the group's version, its rollout and every host",
		Long: `Show the group's desired version, the state of its last rollout, and per
host what runs in production and staging (fleet version and hash), the
agent's state, when it last reported and its last error. A host whose
agent lost its liveness lease shows as offline.`,
		Example: `  fwslot fleet status --group web
  fwslot fleet status --group web --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return fc.with(cmd.Context(), func(cli *clientv3.Client, k fleet.Keys) error {
				gs, err := fleet.Status(cmd.Context(), cli, k)
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(cmd.OutOrStdout(), gs)
				}
				return printGroupStatus(cmd.OutOrStdout(), gs)
			})
		},
	}
	fc.register(c)
	return c
}

// printGroupStatus prints a group's status as a table.
func printGroupStatus(w io.Writer, gs *fleet.GroupStatus) error {
	desired := "none"
	if gs.Desired != nil {
		desired = refText(gs.Desired)
	}
	fmt.Fprintf(w, "group %s: desired %s\n", gs.Group, desired)
	if r := gs.Rollout; r != nil {
		fmt.Fprintf(w, "rollout: %s (wave %d)\n", r.State, r.Wave)
		for _, f := range r.Failed {
			fmt.Fprintf(w, "  failed: %s: %s\n", f.Host, f.Reason)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tPRODUCTION\tSTAGING\tSTATE\tLAST SEEN\tERROR")
	for _, h := range gs.Hosts {
		seen := "-"
		if !h.LastSeen.IsZero() {
			seen = h.LastSeen.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Host, refText(h.Production), refText(h.Staging), h.State, seen, h.Error)
	}
	return tw.Flush()
}

func refText(r *fleet.Ref) string {
	if r == nil {
		return "-"
	}
	h := r.Hash
	if len(h) > 12 {
		h = h[:12]
	}
	if r.Version == 0 {
		return "? (" + h + ")"
	}
	return fmt.Sprintf("%d (%s)", r.Version, h)
}

func newFleetRollback(g *globals) *cobra.Command {
	fc := &fleetConn{}
	var wait time.Duration
	c := &cobra.Command{
		Use:   "rollback --group G",
		Short: "Flip every host of the group back to the previous version",
		Long: `Send every host of the group back to the version before the last
rollout, in one etcd write: each agent flips at once to the version in its
other slot (no compiling). A push still running for the group stops. The
command waits (--wait) for the live hosts to report, and exits 1 naming
each host that did not flip. Hosts that are offline flip when they return.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return fc.with(cmd.Context(), func(cli *clientv3.Client, k fleet.Keys) error {
				res, err := fleet.Rollback(cmd.Context(), cli, k, wait)
				if errors.Is(err, fleet.ErrNothingToRollBack) {
					return usageError{err}
				}
				if err != nil {
					return err
				}
				if g.json {
					if err := printJSON(cmd.OutOrStdout(), res); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "group %s: version %d -> %d; %d of %d live host(s) flipped in %v\n", k.Group, res.From.Version, res.Flip.Version,
						len(res.Hosts)-len(res.Failed), len(res.Hosts), res.Took.Round(time.Millisecond))
				}
				if len(res.Failed) > 0 {
					var lines []string
					for _, f := range res.Failed {
						lines = append(lines, f.Host+": "+f.Reason)
					}
					return fmt.Errorf("%d host(s) did not flip back:\n  %s", len(res.Failed), strings.Join(lines, "\n  "))
				}
				return nil
			})
		},
	}
	fc.register(c)
	c.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the hosts to report the flip")
	return c
}
