package main

import (
	"fmt"
	"net"
	"net/url"

	"github.com/fwslot/fwslot/internal/etcdserve"
	"github.com/spf13/cobra"
)

func newFleetServe(g *globals) *cobra.Command {
	var cfg etcdserve.Config
	cmd := &cobra.Command{
		Use:   "serve --data-dir DIR",
		Short: "Run a single-member etcd for a lab, a demo or a small site",
		Long: `Run an embedded single-member etcd that the fleet commands and agents use
(--etcd URL). It is meant for a demo, a lab or a small site: one member has
no redundancy, and it serves plain http. For production, run a real etcd
cluster with TLS and authentication (see "Fleet security" in the README).

It serves until Ctrl-C or SIGTERM, then stops cleanly (requests in flight
finish, data is synced). The data directory keeps the fleet's state across
restarts.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.DataDir == "" {
				return usagef("fleet serve needs --data-dir DIR, where etcd keeps the fleet's state")
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			cfg.Log = cmd.ErrOrStderr()
			srv, err := etcdserve.Start(cfg)
			if err != nil {
				return err
			}
			if !loopback(cfg.ListenClient) {
				fmt.Fprintf(cmd.ErrOrStderr(), "fwslot: etcd serves plain http beyond this host on %s: anyone who reaches it can write the fleet's rulesets; start agents with --trust-key (see \"Fleet security\" in the README)\n", cfg.ListenClient)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "etcd serving clients on %s (data %s); Ctrl-C stops it\n", srv.Endpoint(), cfg.DataDir)
			if err := srv.Serve(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "etcd stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory where etcd keeps its data (created 0700)")
	f.StringVar(&cfg.ListenClient, "listen-client", etcdserve.DefaultListenClient, "URL where etcd serves clients (fleet commands, agents)")
	f.StringVar(&cfg.ListenPeer, "listen-peer", etcdserve.DefaultListenPeer, "URL where etcd listens for peers")
	f.StringVar(&cfg.AdvertiseClient, "advertise-client", "", "client URL to advertise (default --listen-client; needed when that listens on 0.0.0.0)")
	f.StringVar(&cfg.AdvertisePeer, "advertise-peer", "", "peer URL to advertise (default --listen-peer; needed when that listens on 0.0.0.0)")
	return cmd
}

// loopback reports whether URL u listens on a loopback address only.
func loopback(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	if p.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(p.Hostname())
	return ip != nil && ip.IsLoopback()
}
