package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/slots"
)

// Watchdog reverts one commit-confirmed swap at its deadline unless it
// was confirmed. The revert does not depend on the history lock, which
// any long command may hold: at the deadline the watchdog waits Grace for
// the lock, and failing that flips the kernel back by the kernel's own
// tags (the version in each slot's marker, the live slot in the dispatch
// rules), then records the revert in history as soon as the lock is free.
type Watchdog struct {
	// NetNS is the target's named namespace; "" is the host.
	NetNS string
	// DB is the absolute path of the history file.
	DB string
	// Owner is the history's identity, as tagged in the kernel: the
	// watchdog leaves tables that another history owns alone.
	Owner string
	// Seq is the pending activation; From and To its versions.
	Seq, From, To uint64
	// Deadline is when the swap reverts unless confirmed.
	Deadline time.Time
	// Poll is how often it looks at history (default 1s).
	Poll time.Duration
	// Grace is how long it waits for the history lock at the deadline
	// before it reverts in the kernel alone (default 3s).
	Grace time.Duration
	// Log receives what the watchdog sees and does, one line each.
	Log io.Writer
	// Prev and PrevHash are the compiled form and hash of version From,
	// handed over by the swap: when a load replaced version From in the
	// other slot meanwhile, the watchdog restages it from Prev.
	Prev     []byte
	PrevHash string

	last string // the last line logChanged wrote
}

// nsGoneAfter is how long the watchdog waits for a target namespace that
// disappeared after the deadline to come back.
const nsGoneAfter = time.Minute

func (w *Watchdog) logf(format string, args ...any) {
	if w.Log != nil {
		fmt.Fprintf(w.Log, "%s fwslot watchdog (activation %d, version %d -> %d): %s\n",
			time.Now().Format(time.RFC3339), w.Seq, w.To, w.From, fmt.Sprintf(format, args...))
	}
}

// logChanged logs a line unless it repeats the previous one: the watchdog
// retries every Poll and its log must stay readable.
func (w *Watchdog) logChanged(format string, args ...any) {
	if line := fmt.Sprintf(format, args...); line != w.last {
		w.last = line
		w.logf("%s", line)
	}
}

func (w *Watchdog) target() *Target { return &Target{NetNS: w.NetNS} }

// gone reports whether there is nothing left to act on: neither the
// history nor the target namespace exists any more.
func (w *Watchdog) gone() bool {
	_, err := os.Stat(w.DB)
	return errors.Is(err, os.ErrNotExist) && w.NetNS != "" && !nsutil.Exists(w.NetNS)
}

// pending says whether history still shows the swap pending; ok is false
// when history cannot be read now (busy or missing).
func (w *Watchdog) pending() (pending, ok bool) {
	s, err := history.Open(w.DB, history.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return true, false
	}
	defer s.Close()
	p, found, err := s.Pending(w.target().Key())
	if err != nil {
		return true, false
	}
	return found && p.Seq == w.Seq, true
}

// Run waits for the deadline and reverts. It returns nil once the swap
// was confirmed or settled, or once the revert is in the kernel and in
// history; it keeps trying until then, or until ctx ends.
func (w *Watchdog) Run(ctx context.Context) error {
	if w.Poll <= 0 {
		w.Poll = time.Second
	}
	if w.Grace <= 0 {
		w.Grace = 3 * time.Second
	}
	missing := false
	if !filepath.IsAbs(w.DB) {
		w.logf("WARNING: history path %q is relative and the watchdog runs in /; it reverts from the kernel's tags if it cannot find it", w.DB)
	}
	if _, err := os.Stat(w.DB); err != nil {
		missing = true
		w.logf("WARNING: cannot find history %s (%v): at %s version %d goes back to %d from the kernel's own tags, unrecorded",
			w.DB, err, w.Deadline.Local().Format("15:04:05"), w.To, w.From)
	}
	timer := time.NewTimer(time.Until(w.Deadline))
	defer timer.Stop()
	tick := time.NewTicker(w.Poll)
	defer tick.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			break wait
		case <-tick.C:
			if pending, ok := w.pending(); ok && !pending {
				w.logf("settled before the deadline (confirmed, rolled back or reverted); nothing to do")
				return nil
			}
			if w.gone() {
				w.logf("the history and the target namespace are gone; nothing to revert")
				return nil
			}
		}
	}
	reason := fmt.Sprintf("not confirmed by %s", w.Deadline.Local().Format("15:04:05"))
	if _, err := os.Stat(w.DB); err != nil && !missing {
		// Opening it for writing would create an empty history.
		w.logf("WARNING: history %s is gone (%v): version %d goes back to %d from the kernel's own tags, unrecorded", w.DB, err, w.To, w.From)
		missing = true
	}
	if !missing {
		if done, err := w.revertWithHistory(ctx, reason, w.Grace); done {
			return err
		}
	}
	// History is busy or missing: the kernel goes back now, history
	// hears of it later.
	kernelDone := false
	tryKernel := func() error {
		what, err := w.revertKernel()
		if err != nil {
			w.logChanged("ERROR: cannot revert in the kernel: %v; trying again", err)
			return err
		}
		kernelDone = true
		w.logf("%s", what)
		return nil
	}
	kerr := tryKernel()
	var nsMissing time.Time
	for {
		if w.gone() {
			w.logf("the history and the target namespace are gone; stopping")
			return kerr
		}
		if w.NetNS != "" && !nsutil.Exists(w.NetNS) {
			// A namespace that comes back (a reboot of a container) is
			// waited for a while; one that stays gone has nothing to
			// revert.
			if nsMissing.IsZero() {
				nsMissing = time.Now()
			} else if time.Since(nsMissing) > nsGoneAfter {
				w.logf("ERROR: the target namespace %s is gone; stopping (the next fwslot command records the revert)", w.NetNS)
				return fmt.Errorf("%w: %q", slots.ErrNoNamespace, w.NetNS)
			}
		} else {
			nsMissing = time.Time{}
		}
		if _, serr := os.Stat(w.DB); serr == nil {
			if done, rerr := w.revertWithHistory(ctx, reason, w.Poll); done {
				return rerr
			}
		} else if kernelDone {
			w.logf("ERROR: cannot find history %s (%v): the revert is not recorded until a command opens this target's history", w.DB, serr)
			return fmt.Errorf("history %s: %w", w.DB, serr)
		}
		if !kernelDone {
			kerr = tryKernel()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(w.Poll):
		}
	}
}

// revertWithHistory takes the history lock (waiting at most wait) and
// reverts through history: Revert flips the kernel if it still runs the
// unconfirmed version, and records a revert the kernel already made.
// done is false when the lock was busy or the revert failed and is worth
// trying again.
func (w *Watchdog) revertWithHistory(ctx context.Context, reason string, wait time.Duration) (done bool, err error) {
	s, err := history.Open(w.DB, history.Options{Timeout: wait})
	if err != nil {
		if errors.Is(err, history.ErrBusy) {
			w.logChanged("%v", err)
		} else {
			w.logChanged("ERROR: open history: %v", err)
		}
		return false, err
	}
	defer s.Close()
	t := w.target()
	t.Store = s
	res, err := revert(ctx, t, w.Seq, reason)
	if errors.Is(err, slots.ErrNotOwner) {
		w.logf("ERROR: %v; stopping", err)
		return true, err
	}
	if err != nil {
		w.logChanged("ERROR: revert: %v; trying again", err)
		return false, err
	}
	if res != nil {
		w.logf("reverted: version %d is live again (activation %d)", res.To, res.Seq)
	} else {
		w.logf("history records how the swap ended; nothing left to do")
	}
	return true, nil
}

// revertKernel flips the target back to version From by the kernel's own
// tags, without history: only when the tables are this history's, the
// live slot runs version To and the other slot still holds version From.
func (w *Watchdog) revertKernel() (string, error) {
	c, err := w.target().kernelTarget().Dial()
	if err != nil {
		return "", err
	}
	defer c.Close()
	st, err := slots.ReadState(c)
	if err != nil {
		return "", err
	}
	if owner, db, err := st.Owner(); err != nil {
		return "", err
	} else if owner != "" && w.Owner != "" && owner != w.Owner {
		return "", fmt.Errorf("%w: the tables belong to history %s (%s); left alone", slots.ErrNotOwner, owner, db)
	}
	status, err := slots.Describe(st)
	if err != nil {
		return "", err
	}
	switch prod := status.Production; {
	case prod == nil:
		return "the kernel holds no production (rebooted or flushed): nothing to flip; history will record the revert", nil
	case prod.Version == w.From:
		return fmt.Sprintf("the kernel already runs version %d", w.From), nil
	case prod.Version != w.To:
		return fmt.Sprintf("the kernel runs version %d, not %d: left alone", prod.Version, w.To), nil
	}
	b := nfnl.Batch{Gen: st.Gen} // retried on ErrGenChanged like any failure
	to := status.Active().Other()
	how := "flipped back"
	if other := status.Staging; other == nil || other.Version != w.From || (w.PrevHash != "" && other.Hash != w.PrevHash) {
		if err := w.restagePrev(&b, st, to); err != nil {
			return "", err
		}
		how = "restaged from the copy the swap handed over, and flipped back"
	}
	if err := slots.Flip(&b, st, to, nil); err != nil {
		return "", err
	}
	if w.Owner != "" {
		slots.Own(&b, st, w.Owner, w.DB)
	}
	if err := c.Commit(&b); err != nil {
		return "", fmt.Errorf("revert to version %d: %w", w.From, err)
	}
	return fmt.Sprintf("reverted in the kernel (%s): version %d is live again; history busy or missing, recorded once it is free", how, w.From), nil
}

// restagePrev adds to b the messages that put version From back into
// slot to from the compiled form the swap handed over.
func (w *Watchdog) restagePrev(b *nfnl.Batch, st *slots.State, to names.Slot) error {
	if len(w.Prev) == 0 {
		return fmt.Errorf("version %d no longer sits in the other slot and the watchdog has no copy of it: going back needs history", w.From)
	}
	rs, err := slots.Decode(w.Prev)
	if err != nil {
		return fmt.Errorf("version %d: %w", w.From, err)
	}
	ifaces, err := slots.Interfaces(w.NetNS)
	if err != nil {
		return err
	}
	if !sameIndexes(rs.Ifaces, ifaces) {
		return fmt.Errorf("version %d no longer sits in the other slot and the interface indexes changed since it was compiled: going back needs history", w.From)
	}
	return slots.Stage(b, st, rs, to, slots.Tag{Version: w.From, Hash: w.PrevHash}, to)
}
