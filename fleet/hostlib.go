package fleet

// The agent's local operations on the fwslot library. This is the one
// file that calls slots, swap and probe: when the session layer lands it
// is rewired here and nowhere else.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/slots"
	"github.com/fwslot/fwslot/swap"
)

// LibHost is a Host on the fwslot library: one target (the host, or a
// named network namespace) and its history file.
type LibHost struct {
	// NetNS is the target's namespace ("" for the host).
	NetNS string
	// DB is the history file; it must be absolute for the watchdog.
	DB string
	// CheckCmd, when set, is a shell command run after every swap (in
	// the target's namespace); a non-zero exit fails the health check.
	CheckCmd string
	// Wait is how long to wait for another fwslot command holding the
	// history (0: history's default).
	Wait time.Duration
	// StartWatchdog starts what reverts a swap with a confirm window at
	// its deadline when nobody confirms; it must outlive the agent (the
	// CLI starts a detached `fwslot __watchdog`). When nil, a watchdog
	// runs in this process.
	StartWatchdog func(t *slots.Target, res *swap.Result) error
	// Log receives the in-process watchdog's lines.
	Log io.Writer
}

// open opens the history; the caller calls done. An unconfirmed swap
// whose deadline passed is reverted first, as every fwslot command does.
func (h *LibHost) open(ctx context.Context) (t *slots.Target, done func(), err error) {
	s, err := history.Open(h.DB, history.Options{Timeout: h.Wait})
	if err != nil {
		return nil, nil, fmt.Errorf("open history %s: %w", h.DB, err)
	}
	t = &slots.Target{NetNS: h.NetNS, Store: s}
	if _, err := swap.ExpirePending(ctx, t); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("revert an unconfirmed swap: %w", err)
	}
	return t, func() { s.Close() }, nil
}

// State implements Host.
func (h *LibHost) State(ctx context.Context) (LocalState, error) {
	var ls LocalState
	t, done, err := h.open(ctx)
	if err != nil {
		return ls, err
	}
	defer done()
	st, err := t.Status()
	if err != nil {
		return ls, err
	}
	if st.Production != nil {
		ls.Production = st.Production.Hash
	}
	if st.Staging != nil {
		ls.Staging = st.Staging.Hash
	}
	_, ls.Pending, err = t.Store.Pending(t.Key())
	return ls, err
}

// Stage implements Host: the flattened source goes through `fwslot load`
// from a private file, with the version's probes as the load's check.
func (h *LibHost) Stage(ctx context.Context, v *Version) error {
	ps, err := parseProbes(v)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fwslot-fleet-")
	if err != nil {
		return fmt.Errorf("stage version %d: %w", v.Version, err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, fmt.Sprintf("version-%d.nft", v.Version))
	if err := os.WriteFile(file, []byte(v.Source), 0o600); err != nil {
		return fmt.Errorf("stage version %d: %w", v.Version, err)
	}
	t, done, err := h.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	opts := slots.LoadOptions{Message: fmt.Sprintf("fleet version %d: %s (%s)", v.Version, v.Message, v.Author), Origin: "fleet"}
	if len(ps) > 0 {
		opts.Check = func(ctx context.Context, _ string, rs *slots.Ruleset) error {
			return h.runProbes(ctx, rs, ps)
		}
	}
	res, err := t.Load(ctx, file, opts)
	if err != nil {
		return err
	}
	if res.Hash != v.Hash {
		return fmt.Errorf("%w: version %d staged with hash %s, etcd says %s", ErrCorrupt, v.Version, res.Hash, v.Hash)
	}
	if res.Unchanged != "" && len(ps) > 0 {
		// Load skips the check when a slot holds the content already;
		// this version's probes may differ from the ones that passed.
		rs, err := compiledVersion(t, res.Version)
		if err != nil {
			return err
		}
		return h.runProbes(ctx, rs, ps)
	}
	return nil
}

func compiledVersion(t *slots.Target, n uint64) (*slots.Ruleset, error) {
	blob, err := t.Store.Compiled(t.Key(), n)
	if err != nil {
		return nil, err
	}
	return slots.Decode(blob)
}

func parseProbes(v *Version) ([]probe.Probe, error) {
	if strings.TrimSpace(v.Probes) == "" {
		return nil, nil
	}
	ps, err := probe.Parse(fmt.Sprintf("probes of version %d", v.Version), strings.NewReader(v.Probes))
	if err != nil {
		return nil, err
	}
	return ps, nil
}

// runProbes runs ps on rs in a twin that mirrors the target's interfaces.
func (h *LibHost) runProbes(ctx context.Context, rs *slots.Ruleset, ps []probe.Probe) error {
	ifs, err := slots.Interfaces(h.NetNS)
	if err != nil {
		return err
	}
	rep, err := probe.Run(ctx, probe.MirrorIndexes(probe.InferTopology(ps), ifs), probe.RulesetLoader(rs), ps, nil, probe.Options{})
	if err != nil {
		return fmt.Errorf("probes: %w", err)
	}
	if rep.OK() {
		return nil
	}
	var fails []string
	for _, r := range rep.Results {
		if !r.Passed() {
			why := fmt.Sprintf("got %s", r.Got)
			if r.Failure != "" {
				why = r.Failure
			}
			fails = append(fails, fmt.Sprintf("%s: %s", strings.TrimSpace(r.Probe.Text), why))
		}
	}
	return fmt.Errorf("%d of %d probes failed: %s", rep.Failed, len(rep.Results), strings.Join(fails, "; "))
}

// Swap implements Host.
func (h *LibHost) Swap(ctx context.Context, confirm time.Duration) error {
	t, done, err := h.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	res, err := swap.Swap(ctx, t, swap.Options{Confirm: confirm})
	if err != nil {
		return err
	}
	if confirm <= 0 {
		return nil
	}
	if h.StartWatchdog != nil {
		return h.StartWatchdog(t, res)
	}
	owner, err := t.Store.ID()
	if err != nil {
		return err
	}
	w := &swap.Watchdog{NetNS: h.NetNS, DB: h.DB, Owner: owner, Seq: res.Seq, From: res.From, To: res.To, Deadline: res.Deadline}
	if h.Log != nil {
		w.Log = h.Log
	}
	go w.Run(context.Background()) //nolint:errcheck // it logs what it does; the next command reverts if it fails
	return nil
}

// Confirm implements Host.
func (h *LibHost) Confirm(ctx context.Context) error {
	t, done, err := h.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	if _, err := swap.Confirm(t); err != nil && !errors.Is(err, swap.ErrNothingPending) {
		return err
	}
	return nil
}

// Revert implements Host.
func (h *LibHost) Revert(ctx context.Context, reason string) error {
	t, done, err := h.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	p, ok, err := t.Store.Pending(t.Key())
	if err != nil || !ok {
		return err
	}
	_, err = swap.Revert(ctx, t, p.Seq, reason)
	return err
}

// FlipBack implements Host.
func (h *LibHost) FlipBack(ctx context.Context) error {
	t, done, err := h.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	st, err := t.Status()
	if err != nil {
		return err
	}
	if st.Staging == nil {
		return errors.New("the other slot is empty: nothing to flip back to")
	}
	_, err = swap.Rollback(ctx, t, st.Staging.Version)
	return err
}

// Check implements Host: the probes against the live ruleset (its
// compiled form from history) in a twin, then CheckCmd on the target.
func (h *LibHost) Check(ctx context.Context, probes string) error {
	t, done, err := h.open(ctx)
	if err != nil {
		return err
	}
	st, err := t.Status()
	if err != nil {
		done()
		return err
	}
	if st.Production == nil {
		done()
		return errors.New("nothing is live")
	}
	rs, err := compiledVersion(t, st.Production.Version)
	done()
	if err != nil {
		return err
	}
	ps, err := parseProbes(&Version{VersionMeta: VersionMeta{Version: st.Production.Version, Probes: probes}})
	if err != nil {
		return err
	}
	if len(ps) > 0 {
		if err := h.runProbes(ctx, rs, ps); err != nil {
			return err
		}
	}
	if h.CheckCmd == "" {
		return nil
	}
	var out []byte
	err = nsutil.Do(h.NetNS, func() error {
		var err error
		out, err = exec.CommandContext(ctx, "/bin/sh", "-c", h.CheckCmd).CombinedOutput()
		return err
	})
	if err != nil {
		return fmt.Errorf("--check %q: %v: %s", h.CheckCmd, err, strings.Join(strings.Fields(string(out)), " "))
	}
	return nil
}
