package swap

import (
	"context"
	"errors"
	"fmt"

	"github.com/fwslot/fwslot/slots"
)

// ErrNothingPending means confirm found no swap waiting for confirmation.
var ErrNothingPending = errors.New("no swap waits for confirmation")

// ErrNotLive means confirm found the kernel running something other than
// the version waiting for confirmation: confirming it would make a version
// nobody can reach the host with the one restore brings back.
var ErrNotLive = errors.New("the version waiting for confirmation is not live")

// Confirm keeps the version of a pending confirmed swap. It refuses when
// the kernel no longer runs that version (a reboot, `nft flush ruleset`):
// a swap that does not end in confirm is a revert.
func Confirm(t *slots.Target) (uint64, error) {
	p, ok, err := t.Store.Pending(t.Key())
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, ErrNothingPending
	}
	s, err := open(t)
	if err != nil {
		return 0, err
	}
	defer s.close()
	// Reconciling (in open) may have recorded a revert the watchdog made.
	if p, ok, err = t.Store.Pending(t.Key()); err != nil {
		return 0, err
	} else if !ok {
		return 0, ErrNothingPending
	}
	if s.status.Production == nil || s.status.Production.Version != p.To {
		live := "nothing"
		if s.status.Production != nil {
			live = fmt.Sprintf("version %d", s.status.Production.Version)
		}
		return 0, fmt.Errorf("%w: version %d waits for confirmation but the kernel runs %s (rebooted or flushed?); it stays unconfirmed and reverts at %s; run `fwslot restore` to bring back version %d",
			ErrNotLive, p.To, live, p.Deadline.Local().Format("15:04:05"), p.From)
	}
	if err := t.Store.SetResult(t.Key(), p.Seq, "confirmed", ""); err != nil {
		return 0, err
	}
	return p.To, nil
}

// Revert undoes the pending confirmed swap with activation seq, if it is
// still pending: the previous version goes live again in one transaction
// and history records why. It does nothing (and returns nil, nil) when
// the swap was confirmed or otherwise settled.
//
// An unconfirmed swap always ends as "reverted", whatever the kernel
// looks like: when the kernel lost the slots (reboot, `nft flush
// ruleset`) or runs another version, nothing is flipped, but the record
// says reverted, so restore never brings the unconfirmed version back.
// When the watchdog already flipped the kernel back (history was busy),
// reconciling records that revert.
func Revert(ctx context.Context, t *slots.Target, seq uint64, reason string) (*Result, error) {
	if p, ok, err := t.Store.Pending(t.Key()); err != nil || !ok || p.Seq != seq {
		return nil, err
	}
	s, err := open(t)
	if err != nil {
		return nil, err
	}
	defer s.close()
	// Reconciling (in open) may have settled it.
	p, ok, err := t.Store.Pending(t.Key())
	if err != nil || !ok || p.Seq != seq {
		return nil, err
	}
	switch prod := s.status.Production; {
	case prod == nil:
		note := fmt.Sprintf("%s; the kernel had lost the slots (reboot or flush): `fwslot restore` rebuilds version %d", reason, p.From)
		return nil, t.Store.SetResult(t.Key(), seq, "reverted", note)
	case prod.Version != p.To:
		note := fmt.Sprintf("%s; the kernel ran version %d instead (changed behind fwslot's back)", reason, prod.Version)
		return nil, t.Store.SetResult(t.Key(), seq, "reverted", note)
	}
	s.settle, s.note = settlement{seq: seq, result: "reverted", note: reason}, reason
	res, err := s.rollback(p.From, "revert")
	if err != nil {
		return nil, fmt.Errorf("revert version %d to %d: %w", p.To, p.From, err)
	}
	return res, nil
}
