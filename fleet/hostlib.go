package fleet

// The agent's local operations on the fwslot library. This is the one
// file that calls session and probe: every operation opens one session
// (lock, one kernel read, reconcile, confirm expiry), so the agent gets
// the same safety checks as the CLI.

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

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/session"
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
	StartWatchdog func(t *session.Target, res *session.Result) error
	// Log receives the in-process watchdog's lines.
	Log io.Writer
	// OnDial, when set, sees every netlink connection an operation
	// opens (tests count connections and kernel requests with it).
	OnDial func(*nfnl.Conn)
}

// open opens a session on the target; the caller closes it. Open
// reverts an unconfirmed swap whose deadline passed, as every fwslot
// command does.
func (h *LibHost) open(ctx context.Context) (*session.Session, error) {
	s, err := session.Open(ctx, &session.Target{NetNS: h.NetNS, OnDial: h.OnDial}, session.Options{DB: h.DB, Wait: h.Wait})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", h.DB, err)
	}
	return s, nil
}

// openStatus opens a session and reads its status; on success the
// caller closes the session.
func (h *LibHost) openStatus(ctx context.Context) (*session.Session, *slots.Status, error) {
	s, err := h.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	st, err := s.Status()
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, st, nil
}

// State implements Host.
func (h *LibHost) State(ctx context.Context) (LocalState, error) {
	s, st, err := h.openStatus(ctx)
	if err != nil {
		return LocalState{}, err
	}
	s.Close()
	return localState(st), nil
}

// localState is what a slot status says the fleet cares about: the hashes
// in each slot and whether a swap waits for confirmation.
func localState(st *slots.Status) LocalState {
	var ls LocalState
	if st.Production != nil {
		ls.Production = st.Production.Hash
	}
	if st.Staging != nil {
		ls.Staging = st.Staging.Hash
	}
	ls.Pending = st.Pending != nil
	return ls
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
	s, err := h.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	opts := session.LoadOptions{Message: fmt.Sprintf("fleet version %d: %s (%s)", v.Version, v.Message, v.Author), Origin: "fleet"}
	if len(ps) > 0 {
		opts.Check = func(ctx context.Context, _ string, rs *slots.Ruleset) error {
			return h.runProbes(ctx, rs, ps)
		}
	}
	res, err := s.Load(ctx, file, opts)
	if err != nil {
		return err
	}
	if res.Hash != v.Hash {
		return fmt.Errorf("%w: version %d staged with hash %s, etcd says %s", ErrCorrupt, v.Version, res.Hash, v.Hash)
	}
	if res.Unchanged != "" && len(ps) > 0 {
		// Load skips the check when a slot holds the content already;
		// this version's probes may differ from the ones that passed.
		rs, err := compiledVersion(s.Target(), res.Version)
		if err != nil {
			return err
		}
		return h.runProbes(ctx, rs, ps)
	}
	return nil
}

func compiledVersion(t *session.Target, n uint64) (*slots.Ruleset, error) {
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
			switch {
			case r.Err != nil:
				why = r.Err.Error()
			case r.Failure != "":
				why = r.Failure
			}
			fails = append(fails, fmt.Sprintf("%s: %s", strings.TrimSpace(r.Probe.Text), why))
		}
	}
	return fmt.Errorf("%d of %d probes failed: %s", rep.Failed, len(rep.Results), strings.Join(fails, "; "))
}

// Swap implements Host.
func (h *LibHost) Swap(ctx context.Context, confirm time.Duration) error {
	s, err := h.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	t := s.Target()
	res, err := s.Swap(ctx, session.SwapOptions{Confirm: confirm})
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
	w := &session.Watchdog{NetNS: h.NetNS, DB: h.DB, Owner: owner, Seq: res.Seq, From: res.From, To: res.To, Deadline: res.Deadline}
	if h.Log != nil {
		w.Log = h.Log
	}
	go w.Run(context.Background()) //nolint:errcheck // it logs what it does; the next command reverts if it fails
	return nil
}

// Confirm implements Host.
func (h *LibHost) Confirm(ctx context.Context) error {
	s, err := h.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Confirm(ctx); err != nil && !errors.Is(err, session.ErrNothingPending) {
		return err
	}
	return nil
}

// Revert implements Host.
func (h *LibHost) Revert(ctx context.Context, reason string) error {
	s, err := h.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = s.Revert(ctx, reason)
	return err
}

// FlipTo implements Host in one session: the state Open read decides
// (what runs, what is staged, a pending swap), then the flip; the state
// after it is what the flip transaction left, so reporting it reads the
// kernel no more. Open's checks (ownership, reconcile, confirm expiry)
// and Rollback's (vanished production, settling a pending swap) all run.
func (h *LibHost) FlipTo(ctx context.Context, hash string) (LocalState, error) {
	s, st, err := h.openStatus(ctx)
	if err != nil {
		return LocalState{}, err
	}
	defer s.Close()
	ls := localState(st)
	if ls.Production == hash {
		return ls, nil
	}
	if st.Staging == nil || ls.Staging != hash {
		return ls, fmt.Errorf("%w: the other slot holds %q", ErrNotStaged, ls.Staging)
	}
	if _, err := s.Rollback(ctx, st.Staging.Version); err != nil {
		return ls, err
	}
	// The flip exchanged the slots and settled a pending swap.
	return LocalState{Production: ls.Staging, Staging: ls.Production}, nil
}

// Check implements Host: the probes against the live ruleset (its
// compiled form from history) in a twin, then CheckCmd on the target.
func (h *LibHost) Check(ctx context.Context, probes string) error {
	s, st, err := h.openStatus(ctx)
	if err != nil {
		return err
	}
	if st.Production == nil {
		s.Close()
		return errors.New("nothing is live")
	}
	rs, err := compiledVersion(s.Target(), st.Production.Version)
	s.Close()
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
