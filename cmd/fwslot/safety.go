package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/session"
	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"
)

func newSwap(g *globals) *cobra.Command {
	var confirm time.Duration
	var force bool
	var keep string
	c := &cobra.Command{
		Use:   "swap",
		Short: "Make the staged version live, atomically",
		Long: `Make the staging slot live in one netlink transaction: the dispatch rules
of every base chain are replaced together, so each packet sees the old
ruleset or the new one, never a mix. Conntrack entries survive. The old
production stays loaded in the other slot: "fwslot rollback" flips back.

With --confirm D the swap is provisional: a watchdog, detached from your
shell and ssh session, swaps back when D passes unless "fwslot confirm"
runs first. Over ssh (SSH_CONNECTION set) swap first proves with probes
that the new version keeps your session and lets you reconnect; it
refuses otherwise. It also refuses while the slots have drifted (changed
behind fwslot's back). --force skips these checks; over drift it restages
the staged version from history instead of making a hand-edited slot live,
and names everything it deleted that fwslot did not write.`,
		Example: `  fwslot swap
  fwslot swap --confirm 2m      # then, from a new ssh session: fwslot confirm`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if confirm < 0 || (confirm == 0 && cmd.Flags().Changed("confirm")) {
				return usagef("--confirm needs a positive duration like 2m")
			}
			guard, err := lockoutGuard(g, keep, force)
			if err != nil {
				return err
			}
			s, err := g.open(cmd.Context(), guard, false)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.Swap(cmd.Context(), session.SwapOptions{Confirm: confirm, Force: force})
			if err != nil {
				return err
			}
			if confirm > 0 {
				if err := startWatchdog(g, s.Target(), res); err != nil {
					// Without a watchdog the next command still
					// reverts once the deadline passed.
					fmt.Fprintf(cmd.ErrOrStderr(), "fwslot: warning: start watchdog: %v; the next fwslot command after the deadline reverts\n", err)
				}
			}
			if err := printActivation(g, cmd, res); err != nil {
				return err
			}
			if confirm > 0 && !g.json {
				fmt.Fprintf(cmd.OutOrStdout(), "confirm within %v (by %s) with `fwslot confirm`, or version %d comes back\n",
					confirm, res.Deadline.Local().Format("15:04:05"), res.From)
			}
			return nil
		},
	}
	c.Flags().DurationVar(&confirm, "confirm", 0, "revert automatically unless `fwslot confirm` runs within this time (e.g. 2m)")
	c.Flags().BoolVar(&force, "force", false, "swap despite drift, a pending confirmation or a failing lockout guard")
	c.Flags().StringVar(&keep, "keep-access", "", `prove this connection survives, like "198.51.100.7:50022 -> 192.0.2.10:22" (default: $SSH_CONNECTION on the host)`)
	return c
}

func newConfirm(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "confirm",
		Short: "Keep the version of a pending `swap --confirm`",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd.Context(), session.Guard{}, true)
			if err != nil {
				return err
			}
			defer s.Close()
			v, err := s.Confirm(cmd.Context())
			if errors.Is(err, session.ErrNothingPending) {
				if g.json {
					return printJSON(cmd.OutOrStdout(), map[string]any{"confirmed": nil})
				}
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to confirm: no swap waits for confirmation")
				return nil
			}
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"confirmed": v})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "confirmed: version %d stays live\n", v)
			return nil
		},
	}
}

func newRestore(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "restore",
		Short: "Rebuild the slots from history after a reboot",
		Long: `After a reboot the kernel holds no ruleset. restore makes the last
confirmed production live again and puts the last staged version beside
it, in one transaction, from history (compiling again only when interface
indexes changed). A swap that was never confirmed is a revert: its version
may come back in staging, never in production. restore is also the way
back after fwslot's tables were deleted or flushed behind its back.
deploy/systemd/fwslot-restore.service runs it at boot, before the network
comes up.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd.Context(), session.Guard{}, false)
			if err != nil {
				return err
			}
			defer s.Close()
			rep := newProgress(g, cmd.ErrOrStderr())
			rep.Start()
			res, err := s.Restore(cmd.Context(), session.RestoreOptions{Progress: stepProgress(rep)})
			rep.Stop()
			if err != nil {
				return err
			}
			return printActivation(g, cmd, res)
		},
	}
}

// access is a connection the lockout guard keeps alive.
type access struct{ src, dst netip.AddrPort }

// accessToKeep returns the connection to protect: --keep-access, or on the
// host the ssh session fwslot runs in ($SSH_CONNECTION). A named
// namespace is not where the operator's ssh session lands, so
// SSH_CONNECTION does not apply there.
func accessToKeep(netns, keep string) (*access, error) {
	if keep != "" {
		src, dst, ok := strings.Cut(keep, "->")
		a := &access{}
		var err1, err2 error
		a.src, err1 = netip.ParseAddrPort(strings.TrimSpace(src))
		a.dst, err2 = netip.ParseAddrPort(strings.TrimSpace(dst))
		if !ok || err1 != nil || err2 != nil {
			return nil, usagef(`--keep-access wants "SRC:PORT -> DST:PORT" (IPv6 in brackets), got %q`, keep)
		}
		return a, nil
	}
	ssh := os.Getenv("SSH_CONNECTION")
	if netns != "" || ssh == "" {
		return nil, nil
	}
	f := strings.Fields(ssh)
	if len(f) != 4 {
		return nil, nil
	}
	src, err1 := netip.ParseAddrPort(net.JoinHostPort(f[0], f[1]))
	dst, err2 := netip.ParseAddrPort(net.JoinHostPort(f[2], f[3]))
	if err1 != nil || err2 != nil {
		return nil, nil
	}
	return &access{netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())}, nil
}

// guard proves with probes that a candidate keeps the operator's
// connection (an established packet of the session) and lets them
// reconnect (a new connection from the same client to the same port). It
// names the rule that would cut the session.
func guard(ctx context.Context, g *globals, a *access, what string, rs *slots.Ruleset, loc probe.Locator) error {
	iface, err := ingressOf(g.netns, a.src.Addr())
	if err != nil {
		return err
	}
	newPort := a.src.Port() + 1
	if newPort < 1024 {
		newPort = 40000
	}
	text := fmt.Sprintf("accept tcp %s -> %s in %s state established   # your session\naccept tcp %s -> %s in %s   # a new connection like yours\n",
		a.src, a.dst, iface, netip.AddrPortFrom(a.src.Addr(), newPort), a.dst, iface)
	ps, err := probe.Parse("lockout guard", strings.NewReader(text))
	if err != nil {
		return fmt.Errorf("lockout guard: %w", err)
	}
	ifs, err := slots.Interfaces(g.netns)
	if err != nil {
		return err
	}
	rep, err := probe.Run(ctx, probe.MirrorIndexes(probe.InferTopology(ps), ifs), probe.RulesetLoader(rs), ps, nil, probe.Options{Locate: loc})
	if err != nil {
		return fmt.Errorf("lockout guard: %w", err)
	}
	for _, r := range rep.Results {
		if r.Passed() {
			continue
		}
		why := fmt.Sprintf("got %s", r.Got)
		if r.Err != nil || r.Error != "" {
			why = r.Error
			if r.Err != nil {
				why = r.Err.Error()
			}
		}
		if _, st := r.Path.Decision(); st != nil {
			rule := "policy " + st.Verdict
			if st.Rule != nil {
				rule = st.Rule.Text
				if w := st.Rule.Where(); w != "" {
					rule = w + ": " + rule
				}
			}
			why = fmt.Sprintf("chain %s: %s", st.Chain, rule)
		}
		return fmt.Errorf("refusing: %s would cut %s (%s -> %s): %s; fix the ruleset, or use --force if you have another way in", what, strings.TrimSpace(r.Probe.Name), a.src, a.dst, why)
	}
	return nil
}

// ingressOf returns the interface of the target through which packets
// from addr arrive (the route back to it).
func ingressOf(netns string, addr netip.Addr) (string, error) {
	var name string
	err := nsutil.Do(netns, func() error {
		routes, err := netlink.RouteGet(net.IP(addr.AsSlice()))
		if err != nil || len(routes) == 0 {
			return fmt.Errorf("lockout guard: no route to %s on the target: %v", addr, err)
		}
		l, err := netlink.LinkByIndex(routes[0].LinkIndex)
		if err != nil {
			return fmt.Errorf("lockout guard: interface towards %s: %w", addr, err)
		}
		name = l.Attrs().Name
		return nil
	})
	return name, err
}
