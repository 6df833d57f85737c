package main

import "github.com/spf13/cobra"

// newFleet is the parent of the fleet commands (issue 13): many hosts,
// one desired ruleset per group, kept in etcd. Each subcommand lives in
// its own fleet*.go file and is listed in fleetCommands.
func newFleet(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Roll rulesets out to groups of hosts through etcd",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q; run 'fwslot fleet --help' for the list", "fleet "+args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(fleetCommands(g)...)
	return cmd
}

// fleetCommands returns the fleet subcommands, one per line.
func fleetCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{
		newFleetServe(g),
		newFleetKeygen(g),
		newFleetPush(g),
		newFleetResume(g),
		newFleetStatus(g),
		newFleetRollback(g),
		newFleetDemo(g),
	}
}
