// Package swap changes which version is live on a target: the atomic flip
// of the dispatch rules (swap), rollback to the previous or any older
// version, and commit-confirmed swaps that revert on their own unless
// confirmed. Each change is one netlink transaction followed by an
// activation record in history.
package swap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/slots"
)

var (
	// ErrNothingStaged means swap found an empty staging slot.
	ErrNothingStaged = errors.New("nothing is staged: run `fwslot load FILE` first")
	// ErrDrift means production was changed behind fwslot's back.
	ErrDrift = errors.New("production has drifted")
	// ErrPending means a confirmed swap still waits for `fwslot confirm`.
	ErrPending = errors.New("a swap waits for confirmation")
)

// Options tune Swap and Rollback.
type Options struct {
	// Confirm, when set, makes the swap provisional: unless Confirm is
	// called before the deadline, the previous version comes back.
	Confirm time.Duration
	// Force swaps despite drift or a pending confirmation.
	Force bool
	// Check, when set, runs on the version about to go live before the
	// kernel changes; an error refuses the swap (the lockout guard).
	Check func(ctx context.Context, version uint64, rs *slots.Ruleset) error
	// Timer, when set, receives the duration of each phase (SwapPhases).
	Timer slots.Timer
}

// Phases of a swap, in order.
const (
	PhaseOpen   = "dial, read state, reconcile"
	PhaseDrift  = "pending confirmation + drift check"
	PhaseCheck  = "checks (lockout guard)"
	PhaseBatch  = "build flip batch"
	PhaseCommit = "commit (one transaction)"
	PhaseRecord = "history: activation + kernel record"
	PhaseClose  = "close netlink socket"
)

// SwapPhases lists the phases of Swap in order.
var SwapPhases = []string{PhaseOpen, PhaseDrift, PhaseCheck, PhaseBatch, PhaseCommit, PhaseRecord, PhaseClose}

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

// session is one command's view of a target: connection, kernel state,
// and what reconciling repaired.
type session struct {
	t        *slots.Target
	c        *nfnl.Conn
	st       *slots.State
	status   *slots.Status
	repaired []string
	gen      uint32
	timer    slots.Timer
	mark     time.Time
	// settle is a pending activation this command ends, and note the
	// note of the activation it records: both are written in the
	// activation's commit.
	settle settlement
	note   string
	// clean says a content check found no drift at generation gen.
	clean bool
}

// settlement is how a command ends a pending activation (seq 0: none).
type settlement struct {
	seq          uint64
	result, note string
}

// lap reports the phase that ends now.
func (s *session) lap(phase string) { s.mark = s.timer.Lap(phase, s.mark) }

func open(t *slots.Target) (*session, error) {
	c, err := t.Dial()
	if err != nil {
		return nil, err
	}
	s := &session{t: t, c: c}
	if err := s.refresh(); err != nil {
		c.Close()
		return nil, err
	}
	if s.repaired, err = t.Reconcile(c, s.st); err != nil {
		c.Close()
		return nil, err
	}
	if s.repaired == nil {
		s.repaired = []string{}
	}
	return s, nil
}

func (s *session) refresh() error {
	var err error
	if s.st, err = slots.ReadState(s.c); err != nil {
		return err
	}
	if s.status, err = slots.Describe(s.st); err != nil {
		return err
	}
	// ReadState read the generation before the tables: no second request.
	s.gen = s.st.Gen
	return nil
}

// own adds to b the tag that names this history as the owner of the
// target's tables, where they lack it.
func (s *session) own(b *nfnl.Batch) error {
	id, db, err := s.t.Identity()
	if err != nil {
		return err
	}
	slots.Own(b, s.st, id, db)
	return nil
}

// close releases the netlink socket; calling it twice is harmless.
func (s *session) close() {
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
}

// Swap makes the staged version live in one transaction. The previous
// production stays loaded in the other slot, so rollback is the same flip.
// It refuses while production has drifted or a confirmation is pending,
// unless opts.Force.
func Swap(ctx context.Context, t *slots.Target, opts Options) (*Result, error) {
	start := time.Now()
	s, err := open(t)
	if err != nil {
		return nil, err
	}
	defer s.close()
	s.timer, s.mark = opts.Timer, start
	s.lap(PhaseOpen)
	if err := t.CheckVanished(s.status); err != nil {
		return nil, err
	}
	if s.status.Staging == nil {
		return nil, ErrNothingStaged
	}
	if !opts.Force {
		if p, ok, err := t.Store.Pending(t.Key()); err != nil {
			return nil, err
		} else if ok {
			return nil, fmt.Errorf("%w: version %d reverts to %d at %s unless you run `fwslot confirm`; confirm first, or use --force", ErrPending, p.To, p.From, p.Deadline.Local().Format("15:04:05"))
		}
	}
	// A forced swap checks drift too: hand-edited staging content must
	// not go live under the staged version's number.
	d, err := t.CheckDrift(s.c, s.st, s.status)
	if err != nil {
		return nil, err
	}
	if d.Drift && !opts.Force {
		return nil, fmt.Errorf("%w: %s; inspect with `fwslot status`, then load and swap a version that says what you want, or swap with --force", ErrDrift, strings.Join(d.Changes, "; "))
	}
	// A content check that found no drift is recorded with the swap.
	s.clean = !d.Drift && d.Checked == "content"
	s.lap(PhaseDrift)
	if opts.Check != nil {
		rs, err := compiled(t, s.status.Staging.Version)
		if err != nil {
			return nil, err
		}
		if err := opts.Check(ctx, s.status.Staging.Version, rs); err != nil {
			return nil, err
		}
		s.lap(PhaseCheck)
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
	s.close()
	s.lap(PhaseClose)
	res.Duration = time.Since(start)
	return res, nil
}

// Rollback makes an earlier version live: the previous production when to
// is 0, else version to. When that version still sits in the inactive slot
// this is the same instant flip as a swap; otherwise it is restaged from
// the compiled form in history and made live in the same transaction.
func Rollback(ctx context.Context, t *slots.Target, to uint64) (*Result, error) {
	start := time.Now()
	s, err := open(t)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := t.CheckVanished(s.status); err != nil {
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

func (s *session) rollback(to uint64, how string) (*Result, error) {
	t := s.t
	if s.status.Production == nil {
		return nil, errors.New("nothing is live yet, so there is nothing to roll back")
	}
	if to == 0 {
		prev, err := previous(t, s.status.Production.Version)
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
func previous(t *slots.Target, current uint64) (uint64, error) {
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
		return 0, fmt.Errorf("version %d is the first version that went live here: there is nothing before it to roll back to (a version that was only staged can be made live with --to N; see `fwslot history`)", current)
	}
	return 0, fmt.Errorf("history has no version that was live before version %d; name one with --to N (see `fwslot history`)", current)
}

func compiled(t *slots.Target, version uint64) (*slots.Ruleset, error) {
	blob, err := t.Store.Compiled(t.Key(), version)
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
func (s *session) flip(want uint64, how string, confirm time.Duration) (*Result, error) {
	to := s.status.Active().Other()
	keep, err := legacyKeep(s.t, s.status)
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
	s.lap(PhaseBatch)
	if err := s.c.Commit(&b); err != nil {
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
func (s *session) restage(version uint64, how string, confirm time.Duration, same bool) (*Result, error) {
	t := s.t
	v, err := t.Store.Meta(t.Key(), version)
	if err != nil {
		return nil, err
	}
	rs, err := compiled(t, version)
	if err != nil {
		return nil, err
	}
	to := s.status.Active().Other()
	keep, err := legacyKeep(t, s.status)
	if err != nil {
		return nil, err
	}
	var inSlot *slots.Ruleset
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
	if err := s.c.Commit(&b); err != nil {
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
func legacyKeep(t *slots.Target, status *slots.Status) (func(*slots.TableState, string) bool, error) {
	if !status.Takeover {
		return nil, nil
	}
	shared := map[string]bool{}
	for _, info := range []*slots.SlotInfo{status.Production, status.Staging} {
		if info == nil {
			continue
		}
		rs, err := compiled(t, info.Version)
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
func (s *session) record(to uint64, slot names.Slot, how string, restaged bool, confirm time.Duration) (*Result, error) {
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
			if err := t.MarkClean(tx, s.gen); err != nil {
				return err
			}
		}
		return t.RecordKernel(tx, s.st, s.gen)
	})
	if err != nil {
		res.Seq = 0
		return res, fmt.Errorf("version %d is live, but recording the activation and the kernel state in history failed: %w", to, err)
	}
	return res, nil
}
