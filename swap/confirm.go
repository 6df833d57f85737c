package swap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fwslot/fwslot/slots"
)

// ErrNothingPending means confirm found no swap waiting for confirmation.
var ErrNothingPending = errors.New("no swap waits for confirmation")

// Confirm keeps the version of a pending confirmed swap.
func Confirm(t *slots.Target) (uint64, error) {
	p, ok, err := t.Store.Pending(t.Key())
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, ErrNothingPending
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
func Revert(ctx context.Context, t *slots.Target, seq uint64, reason string) (*Result, error) {
	p, ok, err := t.Store.Pending(t.Key())
	if err != nil || !ok || p.Seq != seq {
		return nil, err
	}
	s, err := open(t)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if s.status.Production == nil || s.status.Production.Version != p.To {
		// Someone made another version live meanwhile: theirs stands.
		return nil, t.Store.SetResult(t.Key(), seq, "superseded", "another version went live before the deadline")
	}
	res, err := s.rollback(p.From, "revert")
	if err != nil {
		return nil, fmt.Errorf("revert version %d to %d: %w", p.To, p.From, err)
	}
	if err := t.Store.SetResult(t.Key(), seq, "reverted", reason); err != nil {
		return res, err
	}
	if err := t.Store.SetResult(t.Key(), res.Seq, "", reason); err != nil {
		return res, err
	}
	return res, nil
}

// ExpirePending reverts a pending confirmed swap whose deadline has passed
// (its watchdog died, or the machine slept): every command calls it first.
func ExpirePending(ctx context.Context, t *slots.Target) (*Result, error) {
	if t.Store == nil {
		return nil, nil
	}
	p, ok, err := t.Store.Pending(t.Key())
	if err != nil || !ok || time.Now().Before(p.Deadline) {
		return nil, err
	}
	return Revert(ctx, t, p.Seq, fmt.Sprintf("not confirmed by %s (reverted late: the watchdog did not run)", p.Deadline.Local().Format("15:04:05")))
}

// Wait sleeps until the deadline of activation seq and then reverts it if
// it is still pending. It checks every poll with stillPending and returns
// early once the swap was confirmed or otherwise settled. open gives
// access to the target when it has to act: the watchdog never holds the
// history lock while it waits.
func Wait(ctx context.Context, deadline time.Time, seq uint64, poll time.Duration, stillPending func() bool, open func() (*slots.Target, func(), error)) (*Result, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
			if !stillPending() {
				return nil, nil
			}
			continue
		case <-timer.C:
		}
		break
	}
	t, done, err := open()
	if err != nil {
		return nil, err
	}
	defer done()
	return Revert(ctx, t, seq, fmt.Sprintf("not confirmed by %s", deadline.Local().Format("15:04:05")))
}
