package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fwslot/fwslot/fleet"
	"github.com/fwslot/fwslot/fleet/etcdconn"
	"github.com/fwslot/fwslot/fleet/etcdserve"
	"github.com/fwslot/fwslot/internal/sandbox"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Rulesets of the fleet demo: v1 serves ssh and the web service on 8443;
// the bad one forgets 8443; v3 adds 9000 beside v1.
const (
	fleetDemoV1 = `table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		tcp dport { 22, 8443 } accept
		meta l4proto tcp reject with tcp reset
	}
}
`
	fleetDemoBad = `table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		tcp dport 22 accept   # 8443 forgotten
		meta l4proto tcp reject with tcp reset
	}
}
`
	fleetDemoV3 = `table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		tcp dport { 22, 8443, 9000 } accept
		meta l4proto tcp reject with tcp reset
	}
}
`
	// The group's probes: ssh stays open on every host.
	fleetDemoProbes = "accept tcp 198.51.100.7:40000 -> 192.0.2.1:22 in eth0   # admin ssh\n"
	fleetDemoHosts  = 5
)

func newFleetDemo(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Walk through a fleet rollout on 5 throwaway hosts",
		Long: `Start an embedded etcd and 5 hosts (each a network namespace with a
client beside it, a service on 8443 and an agent whose --check connects to
it from the client), then push a good version through canary and waves,
push a version that cuts the service (the canary's check catches it and the
rest never swap), push another good one and roll the fleet back. Everything
is removed at the end, on failure too; the machine's own firewall is never
touched.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFleetDemo(cmd.Context(), cmd.OutOrStdout())
		},
	}
}

// demoHost is one host of the fleet demo.
type demoHost struct {
	name string
	sb   *sandbox.Sandbox
}

func runFleetDemo(ctx context.Context, w io.Writer) (err error) {
	step := func(format string, args ...any) { fmt.Fprintf(w, "\n==> "+format+"\n", args...) }
	dir, err := os.MkdirTemp("", "fwslot-fleetdemo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ports, err := demoPorts(2)
	if err != nil {
		return err
	}
	srv, err := etcdserve.Start(etcdserve.Config{DataDir: filepath.Join(dir, "etcd"), ListenClient: "http://" + ports[0], ListenPeer: "http://" + ports[1]})
	if err != nil {
		return err
	}
	defer srv.Close()
	cli, err := (&etcdconn.Config{Endpoints: []string{srv.Endpoint()}, Prefix: fleet.DefaultPrefix}).Client(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	k := fleet.Keys{Prefix: fleet.DefaultPrefix, Group: "demo"}
	step("etcd serving on %s (data in %s)", srv.Endpoint(), dir)

	var hosts []demoHost
	defer func() {
		var names []string
		for _, h := range hosts {
			if cerr := h.sb.Close(); cerr != nil && err == nil {
				err = cerr
			}
			names = append(names, h.sb.Target, h.sb.Client)
		}
		fmt.Fprintf(w, "\nremoved namespaces %s\n", strings.Join(names, " "))
	}()
	for i := 1; i <= fleetDemoHosts; i++ {
		sb, err := sandbox.New(fmt.Sprintf("fwslot-fd%d-", i))
		if err != nil {
			return err
		}
		hosts = append(hosts, demoHost{name: fmt.Sprintf("host%d", i), sb: sb})
		if err := sb.Listen(22, 8443, 9000); err != nil {
			return err
		}
	}
	actx, stop := context.WithCancel(ctx)
	var agents sync.WaitGroup
	defer func() { stop(); agents.Wait() }()
	for _, h := range hosts {
		lh := &fleet.LibHost{NetNS: h.sb.Target, DB: filepath.Join(dir, h.name+".db"),
			CheckCmd: fmt.Sprintf("ip netns exec %s timeout 2 bash -c 'exec 3<>/dev/tcp/%s/8443'", h.sb.Client, sandbox.TargetIP)}
		a := &fleet.Agent{Client: cli, Keys: k, Name: h.name, Local: lh}
		agents.Add(1)
		go func() {
			defer agents.Done()
			a.Run(actx) //nolint:errcheck // returns nil when stopped
		}()
	}
	step("%d hosts, each a namespace with a client beside it and servers on 22, 8443, 9000; agents run with --check 'connect to 8443 from the client'", len(hosts))
	if err := demoWaitAlive(ctx, cli, k, len(hosts)); err != nil {
		return err
	}
	p := &fleet.Pusher{Client: cli, Keys: k}
	push := func(src, msg string) error {
		start := time.Now()
		st, err := p.Push(ctx, fleet.PushOptions{Source: []byte(src), Probes: fleetDemoProbes, Message: msg, Author: "demo",
			Canary: 1, Waves: []int{50, 100}, Confirm: time.Minute})
		var fe *fleet.FailedError
		if errors.As(err, &fe) {
			fmt.Fprintf(w, "    push failed, as it should:\n")
			for _, line := range strings.Split(fe.Error(), "\n") {
				fmt.Fprintf(w, "      %s\n", line)
			}
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "    version %d live and confirmed on %d hosts in %d waves, in %v\n", st.Version, len(hosts), len(st.Plan), time.Since(start).Round(time.Millisecond))
		return nil
	}
	reach := func() {
		for _, h := range hosts {
			var parts []string
			for _, port := range []int{22, 8443, 9000} {
				state := "blocked"
				if h.sb.Connect(port, 300*time.Millisecond) {
					state = "open"
				}
				parts = append(parts, fmt.Sprintf("%d %s", port, state))
			}
			fmt.Fprintf(w, "    %s: %s\n", h.name, strings.Join(parts, ", "))
		}
	}
	status := func() error {
		gs, err := fleet.Status(ctx, cli, k)
		if err != nil {
			return err
		}
		return printGroupStatus(w, gs)
	}

	step("fwslot fleet push v1.nft --group demo --canary 1 --waves 50%%,100%%   (ssh and 8443)")
	if err := push(fleetDemoV1, "ssh and the service"); err != nil {
		return err
	}
	reach()
	step("fwslot fleet push bad.nft   (forgets 8443: host1, the canary, fails its --check and reverts; the others only staged it)")
	if err := push(fleetDemoBad, "tighter"); err != nil {
		return err
	}
	reach()
	if err := status(); err != nil {
		return err
	}
	step("fwslot fleet push v3.nft   (adds 9000)")
	if err := push(fleetDemoV3, "open 9000"); err != nil {
		return err
	}
	reach()
	step("fwslot fleet rollback --group demo   (one etcd write; every host flips to the version in its other slot)")
	res, err := fleet.Rollback(ctx, cli, k, 30*time.Second)
	if err != nil {
		return err
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("fleet rollback: %d host(s) did not flip: %v", len(res.Failed), res.Failed)
	}
	fmt.Fprintf(w, "    rollback: version %d live again on %d hosts (was %d), the last one reported %v after the write\n", res.Flip.Version, len(res.Hosts), res.From.Version, res.Took.Round(time.Millisecond))
	reach()
	step("fwslot fleet status --group demo")
	return status()
}

// demoPorts returns n 127.0.0.1 addresses whose ports were free.
func demoPorts(n int) ([]string, error) {
	var out []string
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out, nil
}

func demoWaitAlive(ctx context.Context, cli *clientv3.Client, k fleet.Keys, n int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		hs, err := fleet.AliveHosts(ctx, cli, k)
		if err == nil && len(hs) == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d agents came up: %v", len(hs), n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
