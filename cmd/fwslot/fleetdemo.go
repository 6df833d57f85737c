package main

import (
	"io"

	"github.com/fwslot/fwslot/internal/fleetdemo"
	"github.com/spf13/cobra"
)

func newFleetDemo(g *globals) *cobra.Command {
	var verbose bool
	var hosts int
	var pauseAt string
	c := &cobra.Command{
		Use:   "demo",
		Short: "Walk through a fleet rollout on this machine: etcd, 5 hosts, canary, rollback",
		Long: `Start an embedded etcd (as "fwslot fleet serve" runs it, on free 127.0.0.1
ports, data in a temporary directory) and 5 hosts: network namespaces
named after this process, each with its own history and an agent, all
linked to a client namespace that sends them real packets. Then:

  1. push a good version with probes, canary 1 then 50%, 100%; show it
     with real connections;
  2. push a bad version (its probes fail): the canary stops the rollout,
     the later waves keep the good version;
  3. push a third version, then "fleet rollback": every host flips back
     in one etcd write.

Each step prints the fleet status table. Everything the demo made
(namespaces, temporary files, etcd) is removed at the end, on failure,
and on Ctrl-C or SIGTERM; the machine's own firewall is never touched.
It exits 0 when every step had the outcome it shows.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if hosts < 2 || hosts > 250 {
				return usagef("--hosts takes 2 to 250: a canary, a later wave, and one /24 per host")
			}
			var log io.Writer
			if verbose {
				log = cmd.ErrOrStderr()
			}
			return fleetdemo.Run(cmd.Context(), fleetdemo.Options{Out: cmd.OutOrStdout(), Log: log, Hosts: hosts, PauseAt: pauseAt})
		},
	}
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "also print every line of the agents and etcd (on stderr)")
	c.Flags().IntVar(&hosts, "hosts", 5, "number of hosts (at most 250)")
	// A test hook: the signal tests stop the demo at a known step.
	c.Flags().StringVar(&pauseAt, "pause-at", "", "block at the first transcript line containing this text until a signal (for tests)")
	if err := c.Flags().MarkHidden("pause-at"); err != nil {
		panic(err) // the flag is defined just above
	}
	return c
}
