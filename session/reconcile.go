package session

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
)

// reconcile checks that this history owns the target, then repairs
// history where an interrupted command left it behind the kernel (the
// kernel is the source of truth) and notes in s.repaired what it
// repaired. It records a version found live without an activation. It
// only reads when nothing needs repair, and writes its repairs in one
// commit.
func (s *Session) reconcile() error {
	if err := s.checkOwner(); err != nil {
		return err
	}
	repaired, err := s.repairs()
	if err != nil {
		return err
	}
	s.repaired = append(s.repaired, repaired...)
	return nil
}

func (s *Session) repairs() ([]string, error) {
	t, st, d := s.t, s.st, s.status
	var repaired []string
	var writes []func(*history.Tx) error
	if d.Production != nil && !d.Takeover {
		v, err := t.Store.Meta(t.Key(), d.Production.Version)
		if err != nil || v.Hash != d.Production.Hash {
			// Not ours to repair: status reports the mismatch.
			return nil, nil
		}
		last, ok, err := t.Store.LastActivation(t.Key())
		if err != nil {
			return nil, err
		}
		if ok && last.Result == "pending" && last.From == d.Production.Version && last.To != last.From {
			// The watchdog reverted the unconfirmed swap in the kernel
			// while history was busy: record that revert now.
			note := fmt.Sprintf("not confirmed by %s; reverted in the kernel while history was busy", last.Deadline.Local().Format("15:04:05"))
			if time.Now().Before(last.Deadline) {
				note = "version " + fmt.Sprint(last.From) + " was found live again before confirmation"
			}
			writes = append(writes, func(tx *history.Tx) error {
				if err := tx.SetResult(t.Key(), last.Seq, "reverted", note); err != nil {
					return err
				}
				_, err := tx.AddActivation(t.Key(), history.Activation{From: last.To, To: last.From, How: "revert", User: slots.CurrentUser(), Note: note})
				return err
			})
			repaired = append(repaired, fmt.Sprintf("recorded the revert of unconfirmed version %d to %d (%s)", last.To, last.From, note))
		} else if !ok || last.To != d.Production.Version {
			a := history.Activation{To: d.Production.Version, How: "reconcile", User: slots.CurrentUser(),
				Note: "found live after an interrupted command"}
			if ok {
				a.From = last.To
			}
			writes = append(writes, func(tx *history.Tx) error {
				_, err := tx.AddActivation(t.Key(), a)
				return err
			})
			repaired = append(repaired, fmt.Sprintf("recorded version %d as live: an earlier command changed the kernel but was stopped before it updated history", d.Production.Version))
		}
	}
	if len(st.Managed()) == 0 {
		// An empty kernel (after a reboot) keeps the record: restore
		// rebuilds the slots from it.
		if err := s.write(writes); err != nil {
			return nil, err
		}
		return repaired, nil
	}
	k, ok, err := t.Store.Kernel(t.Key())
	if err != nil {
		return nil, err
	}
	var prod, staging uint64
	if d.Production != nil {
		prod = d.Production.Version
	}
	if d.Staging != nil {
		staging = d.Staging.Version
	}
	if ok && (k.Production != prod || k.Staging != staging) {
		k.Production, k.Staging = prod, staging
		writes = append(writes, func(tx *history.Tx) error { return tx.SetKernel(t.Key(), k) })
		repaired = append(repaired, fmt.Sprintf("updated the recorded slots to production %d, staging %d", prod, staging))
	}
	if err := s.write(writes); err != nil {
		return nil, err
	}
	return repaired, nil
}

// write runs writes in one history transaction; none, no transaction (an
// empty one would still rewrite the file's meta page).
func (s *Session) write(writes []func(*history.Tx) error) error {
	if len(writes) == 0 {
		return nil
	}
	return s.store().Update(func(tx *history.Tx) error {
		for _, w := range writes {
			if err := w(tx); err != nil {
				return err
			}
		}
		return nil
	})
}

// identity returns the identity and absolute path of the history, giving
// a history that predates identities one: own tags the kernel with both.
func (s *Session) identity() (id, db string, err error) {
	if id, err = s.store().EnsureID(); err != nil {
		return "", "", err
	}
	if db, err = filepath.Abs(s.store().Path()); err != nil {
		return "", "", fmt.Errorf("history path %s: %w", s.store().Path(), err)
	}
	return id, db, nil
}

// own adds to b the tag that names this history as the owner of the
// target's tables, where they lack it.
func (s *Session) own(b *nfnl.Batch) error {
	id, db, err := s.identity()
	if err != nil {
		return err
	}
	slots.Own(b, s.st, id, db)
	return nil
}

// checkOwner refuses a history that does not own the target: the
// kernel's tables carry another history's identity. Tables without a tag
// (written before fwslot tagged owners, or nothing managed yet) are
// anyone's: the next change tags them.
func (s *Session) checkOwner() error {
	if s.store() == nil {
		return nil
	}
	owner, db, err := s.st.Owner()
	if err != nil || owner == "" {
		return err
	}
	id, err := s.store().ID()
	if err != nil {
		return err
	}
	if id == owner {
		return nil
	}
	mine := id
	if mine == "" {
		mine = "none yet"
	}
	return fmt.Errorf("%s is managed by history %s (%s), not by %s (identity %s): %w",
		s.key(), owner, db, s.store().Path(), mine, slots.ErrNotOwner)
}

// expire reverts a pending confirmed swap whose deadline has passed (its
// watchdog died, or the machine slept): Open calls it for every command
// that may write.
func (s *Session) expire(ctx context.Context) (*Result, error) {
	p, ok, err := s.store().Pending(s.key())
	if err != nil || !ok || time.Now().Before(p.Deadline) {
		return nil, err
	}
	return s.revert(ctx, p.Seq, fmt.Sprintf("not confirmed by %s (reverted late: the watchdog did not run)", p.Deadline.Local().Format("15:04:05")))
}
