package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/sandbox"
	"github.com/fwslot/fwslot/session"
	"github.com/spf13/cobra"
)

// Rulesets of the demo: version 1 lets ssh in, version 2 adds the web.
const (
	demoDefs = `# included by the demo rulesets
define ssh_port = 22
define web_ports = { 80, 443 }
`
	demoV1 = `include "defs.nft"
table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept   # IPv6 needs neighbour discovery
		tcp dport $ssh_port accept
		meta l4proto tcp reject with tcp reset
	}
}
`
	demoV2 = `include "defs.nft"
table inet filter {
	chain web { tcp dport $web_ports accept; }
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept   # IPv6 needs neighbour discovery
		tcp dport $ssh_port accept
		jump web
		meta l4proto tcp reject with tcp reset
	}
}
`
)

func newDemo(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Walk through load, probe, swap and rollback in a throwaway sandbox",
		Long: `Create two network namespaces joined by a veth pair (a "host" and a
client), then load, probe, swap and roll back real rulesets on the host
while the client opens real TCP connections. Everything is removed at the
end, on failure too; the machine's own firewall is never touched.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout())
		},
	}
}

func runDemo(ctx context.Context, w io.Writer) (err error) {
	step := func(format string, args ...any) { fmt.Fprintf(w, "\n==> "+format+"\n", args...) }
	dir, err := os.MkdirTemp("", "fwslot-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for name, body := range map[string]string{"defs.nft": demoDefs, "v1.nft": demoV1, "v2.nft": demoV2} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	sb, err := sandbox.New("fwslot-demo-")
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sb.Close(); cerr != nil && err == nil {
			err = cerr
		}
		fmt.Fprintf(w, "\nremoved namespaces %s and %s\n", sb.Target, sb.Client)
	}()
	if err := sb.Listen(22, 80, 443); err != nil {
		return err
	}
	store, err := history.Open(filepath.Join(dir, "fwslot.db"), history.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	t := &session.Target{NetNS: sb.Target, Store: store}
	reach := func() {
		var parts []string
		for _, p := range []int{22, 80, 443} {
			state := "blocked"
			if sb.Connect(p, 300*time.Millisecond) {
				state = "open"
			}
			parts = append(parts, fmt.Sprintf("%d %s", p, state))
		}
		fmt.Fprintf(w, "    client %s -> host %s: %s\n", sandbox.ClientIP, sandbox.TargetIP, strings.Join(parts, ", "))
	}

	step("sandbox: host namespace %s, client namespace %s, servers on 22, 80, 443", sb.Target, sb.Client)
	reach()

	step("fwslot --netns %s load v1.nft   (ssh only; staged, production untouched)", sb.Target)
	r, err := t.Load(ctx, filepath.Join(dir, "v1.nft"), session.LoadOptions{Message: "ssh only"})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "    staged version %d in slot %s in %v\n", r.Version, r.Slot, r.Duration.Round(time.Millisecond))
	reach()

	step("fwslot swap   (one atomic transaction)")
	if err := demoActivate(w, func() (*session.Result, error) { return t.Swap(ctx, session.SwapOptions{}) }); err != nil {
		return err
	}
	reach()

	step("fwslot load v2.nft -m \"open the web\"")
	if r, err = t.Load(ctx, filepath.Join(dir, "v2.nft"), session.LoadOptions{Message: "open the web"}); err != nil {
		return err
	}
	fmt.Fprintf(w, "    staged version %d in slot %s; production still runs version 1:\n", r.Version, r.Slot)
	reach()

	step("fwslot test v2.nft --probes v2.probes   (prove version 2 with real packets in a twin)")
	if err := demoProbe(ctx, w, dir); err != nil {
		return err
	}

	step("fwslot swap")
	if err := demoActivate(w, func() (*session.Result, error) { return t.Swap(ctx, session.SwapOptions{}) }); err != nil {
		return err
	}
	reach()

	step("fwslot rollback   (version 1 is still loaded in the other slot: same instant flip)")
	if err := demoActivate(w, func() (*session.Result, error) { return t.Rollback(ctx, 0) }); err != nil {
		return err
	}
	reach()

	step("fwslot status")
	st, err := t.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "    production: %s\n    staging:    %s\n", slotLine(st.Production), slotLine(st.Staging))
	return nil
}

func demoActivate(w io.Writer, fn func() (*session.Result, error)) error {
	res, err := fn()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "    %s: version %d live (was %d) in %v\n", res.How, res.To, res.From, res.Duration.Round(time.Microsecond))
	return nil
}
