package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
)

var (
	// ErrNothingStaged means swap found an empty staging slot.
	ErrNothingStaged = errors.New("nothing is staged")
	// ErrDrift means production was changed behind fwslot's back.
	ErrDrift = errors.New("production has drifted")
	// ErrPending means a confirmed swap still waits for confirmation.
	ErrPending = errors.New("a swap waits for confirmation")
	// ErrNoEarlier means rollback found no version that was live before
	// the current one; a caller can still name a version to make live.
	ErrNoEarlier = errors.New("rollback refused")
)

// SwapOptions tune Swap.
type SwapOptions struct {
	// Confirm, when set, makes the swap provisional: unless Confirm is
	// called before the deadline, the previous version comes back.
	Confirm time.Duration
	// Force swaps despite drift, a pending confirmation or a failing
	// lockout guard (the session's Guard.Live is skipped).
	Force bool
	// Timer, when set, receives the duration of each phase (SwapPhases).
	Timer slots.Timer
}

// Phases of a swap, in order. Those only a benchmark names are exported;
// SwapPhases lists them all.
const (
	PhaseOpen   = "dial, read state, reconcile"
	PhaseDrift  = "pending confirmation + drift check"
	phaseCheck  = "checks (lockout guard)"
	phaseBatch  = "build flip batch"
	PhaseCommit = "commit (one transaction)"
	PhaseRecord = "history: activation + kernel record"
	PhaseClose  = "close netlink socket"
)

// SwapPhases lists the phases of Swap in order.
var SwapPhases = []string{PhaseOpen, PhaseDrift, phaseCheck, phaseBatch, PhaseCommit, PhaseRecord, PhaseClose}

// Result says what went live.
type Result struct {
	From     uint64     `json:"from"`
	To       uint64     `json:"to"`
	Slot     names.Slot `json:"slot"`
	How      string     `json:"how"`
	Restaged bool       `json:"restaged"`
	Seq      uint64     `json:"activation"`
	Deadline time.Time  `json:"deadline,omitempty"`
	Repaired []string   `json:"repaired"`
	// Overrode lists the drift a forced swap went over; the version was
	// then restaged from history rather than flipped.
	Overrode []string `json:"overrode"`
	// Deleted names what the swap deleted that fwslot did not write
	// (another tool's base chain in a managed table, rules added by
	// hand).
	Deleted  []string      `json:"deleted"`
	Duration time.Duration `json:"duration_ns"`
}

// Swap makes the staged version live in one transaction. The previous
// production stays loaded in the other slot, so rollback is the same flip.
// It refuses while production has drifted, a confirmation is pending or
// the lockout guard fails, unless opts.Force. It closes the kernel
// connection when done (a later operation of the session dials again).
func (s *Session) Swap(ctx context.Context, opts SwapOptions) (*Result, error) {
	start := time.Now()
	if err := s.begin(opts.Timer, start); err != nil {
		return nil, err
	}
	t := s.t
	if opened := s.opening(); s.timer != nil {
		s.timer(PhaseOpen, opened+time.Since(start))
	}
	s.mark = time.Now()
	if err := s.checkVanished(s.status); err != nil {
		return nil, err
	}
	if s.status.Staging == nil {
		return nil, ErrNothingStaged
	}
	if !opts.Force {
		if p, ok, err := t.Store.Pending(t.Key()); err != nil {
			return nil, err
		} else if ok {
			return nil, fmt.Errorf("%w: version %d reverts to %d at %s unless it is confirmed", ErrPending, p.To, p.From, p.Deadline.Local().Format("15:04:05"))
		}
	}
	// A forced swap checks drift too: hand-edited staging content must
	// not go live under the staged version's number.
	d, err := s.checkDrift(s.st, s.status, false)
	if err != nil {
		return nil, err
	}
	if d.Drift && !opts.Force {
		return nil, fmt.Errorf("%w: %s", ErrDrift, strings.Join(d.Changes, "; "))
	}
	// A content check that found no drift is recorded with the swap.
	s.clean = !d.Drift && d.Checked == "content"
	s.lap(PhaseDrift)
	if check := s.opts.Guard.Live; check != nil && !opts.Force {
		rs, err := s.compiled(s.status.Staging.Version)
		if err != nil {
			return nil, err
		}
		if err := check(ctx, s.status.Staging.Version, rs); err != nil {
			return nil, err
		}
		s.lap(phaseCheck)
	}
	var res *Result
	if d.Drift {
		// Over drift, the staged version comes from history, not from
		// a slot someone may have edited.
		res, err = s.restage(s.status.Staging.Version, "swap", opts.Confirm, true)
		if res != nil {
			res.Overrode = d.Changes
		}
	} else {
		res, err = s.flip(s.status.Staging.Version, "swap", opts.Confirm)
	}
	if err != nil {
		return nil, err
	}
	// Releasing a socket that committed waits for nf_tables to destroy
	// what the transaction replaced (an RCU grace period): part of the
	// swap's cost, paid here rather than at process exit.
	s.closeKernel()
	s.lap(PhaseClose)
	res.Duration = time.Since(start)
	return res, nil
}

// Rollback makes an earlier version live: the previous production when to
// is 0, else version to. When that version still sits in the inactive slot
// this is the same instant flip as a swap; otherwise it is restaged from
// the compiled form in history and made live in the same transaction. It
// settles a pending confirmation ("rolled back").
func (s *Session) Rollback(ctx context.Context, to uint64) (*Result, error) {
	start := time.Now()
	if err := s.begin(nil, start); err != nil {
		return nil, err
	}
	t := s.t
	if err := s.checkVanished(s.status); err != nil {
		return nil, err
	}
	// Rolling back settles a pending confirmation: the operator chose
	// what runs.
	if p, ok, err := t.Store.Pending(t.Key()); err != nil {
		return nil, err
	} else if ok {
		s.settle = settlement{seq: p.Seq, result: "rolled back"}
	}
	res, err := s.rollback(to, "rollback")
	if err != nil {
		return nil, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

func (s *Session) rollback(to uint64, how string) (*Result, error) {
	if s.status.Production == nil {
		return nil, errors.New("nothing is live yet, so there is nothing to roll back")
	}
	if to == 0 {
		prev, err := s.previous(s.status.Production.Version)
		if err != nil {
			return nil, err
		}
		to = prev
	}
	if to == s.status.Production.Version {
		return nil, fmt.Errorf("version %d is already live", to)
	}
	if s.status.Staging != nil && s.status.Staging.Version == to {
		return s.flip(to, how, 0)
	}
	return s.restage(to, how, 0, false)
}

// previous finds the version that was live before the current one.
func (s *Session) previous(current uint64) (uint64, error) {
	t := s.t
	acts, err := t.Store.Activations(t.Key())
	if err != nil {
		return 0, err
	}
	first := false
	for i := len(acts) - 1; i >= 0; i-- {
		if acts[i].To == current && acts[i].From != 0 {
			return acts[i].From, nil
		}
		first = first || acts[i].To == current
	}
	if first {
		return 0, fmt.Errorf("%w: version %d is the first version that went live here: there is nothing before it to roll back to (a version that was only staged can still be made live by its number)", ErrNoEarlier, current)
	}
	return 0, fmt.Errorf("%w: history has no version that was live before version %d", ErrNoEarlier, current)
}

// compiled returns a version's compiled form from history.
func (s *Session) compiled(version uint64) (*Ruleset, error) {
	blob, err := s.store().Compiled(s.key(), version)
	if err != nil {
		return nil, err
	}
	rs, err := slots.Decode(blob)
	if err != nil {
		return nil, fmt.Errorf("version %d: %w", version, err)
	}
	return rs, nil
}

// flip makes the version in the inactive slot live.
func (s *Session) flip(want uint64, how string, confirm time.Duration) (*Result, error) {
	to := s.status.Active().Other()
	keep, err := s.legacyKeep(s.status)
	if err != nil {
		return nil, err
	}
	deleted := slots.Foreign(s.st, to, nil)
	b := nfnl.Batch{Gen: s.st.Gen}
	if err := slots.Flip(&b, s.st, to, keep); err != nil {
		return nil, err
	}
	if err := s.own(&b); err != nil {
		return nil, err
	}
	s.lap(phaseBatch)
	if err := s.commit(&b); err != nil {
		return nil, fmt.Errorf("%s to version %d (production unchanged): %w", how, want, err)
	}
	s.lap(PhaseCommit)
	res, err := s.record(want, to, how, false, confirm)
	if res != nil && deleted != nil {
		res.Deleted = deleted
	}
	s.lap(PhaseRecord)
	return res, err
}

// restage writes a version from history into the inactive slot and makes
// it live, in one transaction. same says the version already sits in that
// slot (a forced swap over drift): objects added there by hand are then
// named among the deleted ones.
func (s *Session) restage(version uint64, how string, confirm time.Duration, same bool) (*Result, error) {
	t := s.t
	v, err := t.Store.Meta(t.Key(), version)
	if err != nil {
		return nil, err
	}
	rs, err := s.compiled(version)
	if err != nil {
		return nil, err
	}
	to := s.status.Active().Other()
	keep, err := s.legacyKeep(s.status)
	if err != nil {
		return nil, err
	}
	var inSlot *Ruleset
	if same {
		inSlot = rs
	}
	deleted := slots.Foreign(s.st, to, inSlot)
	b := nfnl.Batch{Gen: s.st.Gen}
	if err := slots.Stage(&b, s.st, rs, to, slots.Tag{Version: v.Number, Hash: v.Hash}, to); err != nil {
		return nil, err
	}
	if err := slots.Flip(&b, s.st, to, keep); err != nil {
		return nil, err
	}
	if err := s.own(&b); err != nil {
		return nil, err
	}
	if err := s.commit(&b); err != nil {
		return nil, fmt.Errorf("%s to version %d (production unchanged): %w", how, version, err)
	}
	res, err := s.record(version, to, how, true, confirm)
	if res != nil && deleted != nil {
		res.Deleted = deleted
	}
	return res, err
}

// legacyKeep returns, while a table still holds pre-fwslot content, the
// test that keeps the legacy sets and objects that a slot shares; nil
// otherwise.
func (s *Session) legacyKeep(status *Status) (func(*slots.TableState, string) bool, error) {
	if !status.Takeover {
		return nil, nil
	}
	shared := map[string]bool{}
	for _, info := range []*slots.SlotInfo{status.Production, status.Staging} {
		if info == nil {
			continue
		}
		rs, err := s.compiled(info.Version)
		if err != nil {
			return nil, fmt.Errorf("taking over existing tables needs version %d from history: %w", info.Version, err)
		}
		for table, ns := range slots.SharedNames(rs) {
			for n := range ns {
				shared[table+"\x00"+n] = true
			}
		}
	}
	return func(ts *slots.TableState, name string) bool { return shared[ts.Key()+"\x00"+name] }, nil
}

// record writes the activation and the new kernel state to history.
func (s *Session) record(to uint64, slot names.Slot, how string, restaged bool, confirm time.Duration) (*Result, error) {
	t := s.t
	var from uint64
	if s.status.Production != nil {
		from = s.status.Production.Version
	}
	res := &Result{From: from, To: to, Slot: slot, How: how, Restaged: restaged, Repaired: s.repaired,
		Overrode: []string{}, Deleted: []string{}}
	a := history.Activation{From: from, To: to, How: how, User: slots.CurrentUser(), Note: s.note}
	if confirm > 0 {
		a.Result = "pending"
		a.Deadline = time.Now().Add(confirm).UTC()
		res.Deadline = a.Deadline
	}
	// The activation, the end of a pending one and the kernel record
	// share one commit.
	err := t.Store.Update(func(tx *history.Tx) error {
		if st := s.settle; st.seq != 0 {
			if err := tx.SetResult(t.Key(), st.seq, st.result, st.note); err != nil {
				return err
			}
		}
		got, err := tx.AddActivation(t.Key(), a)
		if err != nil {
			return err
		}
		res.Seq = got.Seq
		if s.clean {
			if err := s.markClean(tx, s.gen); err != nil {
				return err
			}
		}
		return s.recordState(tx, s.st, s.gen)
	})
	if err != nil {
		res.Seq = 0
		return res, fmt.Errorf("version %d is live, but recording the activation and the kernel state in history failed: %w", to, err)
	}
	return res, nil
}
