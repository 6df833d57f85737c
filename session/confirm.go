package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNothingPending means confirm found no swap waiting for confirmation.
var ErrNothingPending = errors.New("no swap waits for confirmation")

// ErrNotLive means confirm found the kernel running something other than
// the version waiting for confirmation: confirming it would make a version
// nobody can reach the host with the one restore brings back.
var ErrNotLive = errors.New("the version waiting for confirmation is not live")

// Confirm keeps the version of a pending confirmed swap and returns it.
// It refuses when the kernel no longer runs that version (a reboot, `nft
// flush ruleset`): a swap that does not end in confirm is a revert.
func (s *Session) Confirm(ctx context.Context) (uint64, error) {
	if err := s.begin(nil, time.Now()); err != nil {
		return 0, err
	}
	// Open reconciled first: a revert the watchdog made is recorded.
	p, ok, err := s.store().Pending(s.key())
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, ErrNothingPending
	}
	if prod := s.status.Production; prod == nil || prod.Version != p.To {
		live := "nothing"
		if prod != nil {
			live = fmt.Sprintf("version %d", prod.Version)
		}
		return 0, fmt.Errorf("%w: version %d waits for confirmation but the kernel runs %s (rebooted or flushed?); it stays unconfirmed and reverts to version %d at %s",
			ErrNotLive, p.To, live, p.From, p.Deadline.Local().Format("15:04:05"))
	}
	if err := s.store().SetResult(s.key(), p.Seq, "confirmed", ""); err != nil {
		return 0, err
	}
	return p.To, nil
}

// revert undoes the pending confirmed swap with activation seq, if it is
// still pending: the previous version goes live again in one transaction
// and history records why. It does nothing (and returns nil, nil) when
// the swap was confirmed or otherwise settled. The watchdog calls it at
// the deadline; Open calls it for a deadline that passed unnoticed.
//
// An unconfirmed swap always ends as "reverted", whatever the kernel
// looks like: when the kernel lost the slots (reboot, `nft flush
// ruleset`) or runs another version, nothing is flipped, but the record
// says reverted, so restore never brings the unconfirmed version back.
// When the watchdog already flipped the kernel back (history was busy),
// reconciling records that revert.
func revert(ctx context.Context, t *Target, seq uint64, reason string) (*Result, error) {
	if p, ok, err := t.Store.Pending(t.Key()); err != nil || !ok || p.Seq != seq {
		return nil, err
	}
	s, err := open(ctx, t, Options{}, false)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.revert(ctx, seq, reason)
}

// Revert undoes the pending confirmed swap now, for reason (a failed
// health check), as its watchdog would at the deadline; nil, nil when
// nothing is pending.
func (s *Session) Revert(ctx context.Context, reason string) (*Result, error) {
	p, ok, err := s.store().Pending(s.key())
	if err != nil || !ok {
		return nil, err
	}
	return s.revert(ctx, p.Seq, reason)
}

// revert is Revert on an open session.
func (s *Session) revert(ctx context.Context, seq uint64, reason string) (*Result, error) {
	if err := s.begin(nil, time.Now()); err != nil {
		return nil, err
	}
	// Reconciling (in Open) may have settled it.
	p, ok, err := s.store().Pending(s.key())
	if err != nil || !ok || p.Seq != seq {
		return nil, err
	}
	switch prod := s.status.Production; {
	case prod == nil:
		note := fmt.Sprintf("%s; the kernel had lost the slots (reboot or flush); a restore brings back version %d", reason, p.From)
		return nil, s.store().SetResult(s.key(), seq, "reverted", note)
	case prod.Version != p.To:
		note := fmt.Sprintf("%s; the kernel ran version %d instead (changed behind fwslot's back)", reason, prod.Version)
		return nil, s.store().SetResult(s.key(), seq, "reverted", note)
	}
	s.settle, s.note = settlement{seq: seq, result: "reverted", note: reason}, reason
	res, err := s.rollback(p.From, "revert")
	if err != nil {
		return nil, fmt.Errorf("revert version %d to %d: %w", p.To, p.From, err)
	}
	return res, nil
}
