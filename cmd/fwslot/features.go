package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/fwslot/fwslot/internal/features"
	"github.com/spf13/cobra"
)

func newFeatures(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "List what this kernel's nf_tables supports",
		Long: `Try every family, hook, expression, set type, object type and flowtables
in a private network namespace (never the target) and list which the
running kernel accepts, with the kernel option each needs. A feature this
nft cannot express is listed as missing, with nft's reason.

load and test refuse a ruleset that needs a missing feature, naming the
feature, the file:line and the kernel option (exit 2).`,
		Example: `  fwslot features
  fwslot features --json | jq '.features[] | select(.supported == false)'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := features.Probe(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "kernel %s, %s (probed in %v)\n", rep.Kernel, rep.Nft, rep.Duration.Round(time.Millisecond))
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "FEATURE\tKIND\tSUPPORTED\tKERNEL OPTION\tDETAIL")
			for _, f := range rep.Features {
				yes := "yes"
				if !f.Supported {
					yes = "NO"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", f.Name, f.Kind, yes, f.Config, f.Detail)
			}
			return w.Flush()
		},
	}
}
