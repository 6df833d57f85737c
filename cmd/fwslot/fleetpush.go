package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fwslot/fwslot/fleet"
	"github.com/fwslot/fwslot/fleet/etcdconn"
	"github.com/fwslot/fwslot/fleet/sign"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// fleetConn is what every fleet command and the agent need: etcd and a
// group.
type fleetConn struct {
	etcd     *etcdconn.Config
	group    string
	lockWait time.Duration
}

func (fc *fleetConn) register(c *cobra.Command) {
	fc.etcd = etcdconn.Register(c.Flags())
	c.Flags().StringVar(&fc.group, "group", "", "the group of hosts (required)")
}

// registerLockWait adds --lock-wait to the commands that push.
func (fc *fleetConn) registerLockWait(c *cobra.Command) {
	c.Flags().DurationVar(&fc.lockWait, "lock-wait", 0, "wait this long for another push of the group to end (a pusher that died holds the lock up to 10s); default: refuse at once")
}

// open checks the flags and connects; the caller closes the client.
func (fc *fleetConn) open(ctx context.Context) (*clientv3.Client, fleet.Keys, error) {
	k := fleet.Keys{Prefix: fc.etcd.Prefix, Group: fc.group}
	if fc.group == "" {
		return nil, k, usagef("--group is required (the group of hosts, like web)")
	}
	if err := fleet.ValidName("group", fc.group); err != nil {
		return nil, k, usageError{err}
	}
	if err := fc.etcd.Validate(); err != nil {
		return nil, k, usageError{err}
	}
	c, err := fc.etcd.Client(ctx)
	if err != nil {
		return nil, k, fmt.Errorf("%w; check --etcd (or start one with `fwslot fleet serve`)", err)
	}
	return c, k, nil
}

// with connects as open does, runs f on the client and closes it.
func (fc *fleetConn) with(ctx context.Context, f func(*clientv3.Client, fleet.Keys) error) error {
	cli, k, err := fc.open(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	return f(cli, k)
}

func newFleetPush(g *globals) *cobra.Command {
	fc := &fleetConn{}
	var probesFile, msg, waves, signKey string
	o := fleet.PushOptions{}
	c := &cobra.Command{
		Use:   "push FILE --group G",
		Short: "Roll a ruleset out to a group: canary, then waves",
		Long: `Store FILE (flattened, includes resolved) in etcd as the group's next
version. Every host's agent stages it at once (compiled against its own
interfaces, the probes run in its twin) and reports staged or refused.
Then the canary hosts swap (with a confirm window), run the health checks
(the probes against the live host, and the agent's --check), and are
confirmed; then each wave in turn.

The push stops at the first failure beyond --max-failures: the failing
wave and the ones before go back to the previous version, later waves
never swap (the new version stays only staged), and the command exits 1
naming each failed host and why. It exits 0 when every host runs the
version, confirmed. Its state lives in etcd: after Ctrl-C, a crash or a
lost connection, "fwslot fleet resume" (or the same push again) carries
on. Only one push runs per group at a time.`,
		Example: `  fwslot fleet push web.nft --group web --probes web.probes -m "open 8443" \
      --canary 1 --waves 10%,50%,100% --confirm 2m`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.Waves, err = fleet.ParseWaves(waves); err != nil {
				return usageError{err}
			}
			if o.Confirm <= 0 {
				return usagef("--confirm needs a positive duration like 2m: it is how long a host waits for the rollout's confirmation before it reverts by itself")
			}
			if o.Canary < 0 || o.MaxFailures < 0 {
				return usagef("--canary and --max-failures cannot be negative")
			}
			b, err := readRuleset(g, args[0])
			if err != nil {
				return err
			}
			o.Source, o.Message, o.Author = []byte(b.Flat), msg, slots.CurrentUser()
			if probesFile != "" {
				if _, err := readProbes(probesFile); err != nil {
					return err
				}
				text, err := os.ReadFile(probesFile)
				if err != nil {
					return usageError{err}
				}
				o.Probes = string(text)
			}
			if signKey != "" {
				priv, err := sign.ReadPrivateKey(signKey)
				if err != nil {
					return usageError{err}
				}
				sum := sha256.Sum256(o.Source)
				if o.Signature, err = sign.Sign(priv, fc.group, hex.EncodeToString(sum[:]), o.Probes); err != nil {
					return usageError{err}
				}
			}
			return fc.rollout(g, cmd, func(ctx context.Context, p *fleet.Pusher) (*fleet.RolloutState, error) {
				return p.Push(ctx, o)
			})
		},
	}
	fc.register(c)
	fc.registerLockWait(c)
	c.Flags().StringVar(&probesFile, "probes", "", "probes every host runs on the version: in its twin before staging, and against the live host after the swap")
	c.Flags().StringVarP(&msg, "message", "m", "", "why this version exists (kept in etcd and in each host's history)")
	c.Flags().IntVar(&o.Canary, "canary", 1, "hosts in the first wave")
	c.Flags().StringVar(&waves, "waves", "100%", "cumulative shares of the group after the canary, like 10%,50%,100%")
	c.Flags().DurationVar(&o.Confirm, "confirm", 2*time.Minute, "how long a swapped host waits for confirmation before it reverts by itself")
	c.Flags().IntVar(&o.MaxFailures, "max-failures", 0, "failed hosts tolerated before the rollout stops")
	c.Flags().StringVar(&signKey, "sign-key", "", "ed25519 private key (fwslot fleet keygen) to sign the version with; agents with --trust-key refuse unsigned versions")
	c.Flags().IntVar(&o.Keep, "keep", fleet.DefaultKeepVersions, "versions of the group kept in etcd")
	return c
}

func newFleetResume(g *globals) *cobra.Command {
	fc := &fleetConn{}
	c := &cobra.Command{
		Use:   "resume --group G",
		Short: "Carry on a rollout that was interrupted",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return fc.rollout(g, cmd, func(ctx context.Context, p *fleet.Pusher) (*fleet.RolloutState, error) {
				return p.Resume(ctx)
			})
		},
	}
	fc.register(c)
	fc.registerLockWait(c)
	return c
}

// rollout runs a push or a resume (run) on the group's etcd and prints
// the rollout it leaves.
func (fc *fleetConn) rollout(g *globals, cmd *cobra.Command, run func(context.Context, *fleet.Pusher) (*fleet.RolloutState, error)) error {
	return fc.with(cmd.Context(), func(cli *clientv3.Client, k fleet.Keys) error {
		p := &fleet.Pusher{Client: cli, Keys: k, Log: cmd.ErrOrStderr(), LockWait: fc.lockWait}
		start := time.Now()
		st, err := run(cmd.Context(), p)
		if err != nil {
			return err
		}
		return printRollout(g, cmd, st, time.Since(start))
	})
}

// printRollout prints a rollout's waves and hosts, or its JSON.
func printRollout(g *globals, cmd *cobra.Command, st *fleet.RolloutState, took time.Duration) error {
	if g.json {
		return printJSON(cmd.OutOrStdout(), st)
	}
	n := 0
	for _, w := range st.Plan {
		n += len(w)
	}
	var tolerated []string
	for _, f := range st.Failed {
		tolerated = append(tolerated, f.Host+" ("+f.Reason+")")
	}
	fmt.Fprintf(cmd.OutOrStdout(), "version %d is live and confirmed on %d of %d host(s) in %d wave(s), in %v\n", st.Version, n-len(st.Failed), n, len(st.Plan), took.Round(time.Millisecond))
	if len(tolerated) > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "failed within --max-failures: %s\n", strings.Join(tolerated, "; "))
	}
	return nil
}
