package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/fwslot/fwslot/fleet"
	"github.com/fwslot/fwslot/fleet/metrics"
	"github.com/fwslot/fwslot/fleet/sign"
	"github.com/fwslot/fwslot/slots"
	"github.com/fwslot/fwslot/swap"
	"github.com/spf13/cobra"
)

func newAgent(g *globals) *cobra.Command {
	fc := &fleetConn{}
	var host, check, trustKey, metricsAddr string
	c := &cobra.Command{
		Use:   "agent --group G",
		Short: "Keep this host in line with its fleet group (runs as a service)",
		Long: `Run the fleet agent for one target (the host, or --netns NAME, with its
history --db). It holds a liveness lease in etcd and follows the group's
keys from the last revision it saw, so nothing is missed across a lost
connection. It stages every new desired version at once (compiled against
this host's interfaces, the version's probes run in a twin) and reports
staged or refused; it swaps only when the rollout orders it to, with a
confirm window whose deadline reverts the host if etcd is lost before the
confirmation; after each swap it runs the health checks (the group's
probes against the live ruleset, and --check CMD) and reverts at once if
one fails. On "fwslot fleet rollback" it flips back at once. A host that
was offline converges to the group's version when it returns.`,
		Example: `  fwslot agent --etcd http://10.0.0.1:2379 --group web
  fwslot agent --group web --host web-3 --netns web3 --db /var/lib/fwslot/web3.db --check 'curl -fsS http://127.0.0.1:8080/health'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if host == "" {
				h, err := os.Hostname()
				if err != nil {
					return usagef("cannot read the hostname (%v): name this host with --host", err)
				}
				host = h
			}
			if err := fleet.ValidName("host", host); err != nil {
				return usageError{err}
			}
			db, err := filepath.Abs(g.db)
			if err != nil {
				return usageError{fmt.Errorf("--db %s: %w", g.db, err)}
			}
			g.db = db
			cli, k, err := fc.open(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			lh := &fleet.LibHost{NetNS: g.netns, DB: db, CheckCmd: check, Wait: g.wait,
				// A detached watchdog: it reverts an unconfirmed swap
				// even when the agent is killed.
				StartWatchdog: func(t *slots.Target, res *swap.Result) error { return startWatchdog(g, t, res) }}
			a := &fleet.Agent{Client: cli, Keys: k, Name: host, Local: lh, Log: cmd.ErrOrStderr()}
			if trustKey != "" {
				if a.TrustKey, err = sign.ReadPublicKey(trustKey); err != nil {
					return usageError{err}
				}
			}
			if metricsAddr != "" {
				a.Metrics = metrics.New(k.Group, host)
				l, err := net.Listen("tcp", metricsAddr)
				if err != nil {
					return usagef("--metrics-addr %s: %v", metricsAddr, err)
				}
				go func() {
					if err := a.Metrics.ServeListener(cmd.Context(), l); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "fwslot agent: metrics: %v\n", err)
					}
				}()
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "fwslot agent: host %s in group %s (etcd %v, history %s)\n", host, k.Group, fc.etcd.Endpoints, db)
			return a.Run(cmd.Context())
		},
	}
	fc.register(c)
	c.Flags().StringVar(&host, "host", "", "this host's name in the group (default: the hostname)")
	c.Flags().StringVar(&trustKey, "trust-key", "", "ed25519 public key (fwslot fleet keygen): refuse every version not signed with its private key (fleet push --sign-key)")
	c.Flags().StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics on this address, like 127.0.0.1:9469 (path /metrics)")
	c.Flags().StringVar(&check, "check", "", "shell command run on the target after every swap; a non-zero exit reverts the host (like 'curl -fsS http://127.0.0.1/health')")
	return c
}
