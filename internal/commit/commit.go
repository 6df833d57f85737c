// Package commit records what runs in a slot, changes made by hand with
// nft included, as a new version in history. The version's compiled form
// is read from the slot itself (under the user's names), so it is exactly
// what ran; its source is the slot as nft prints it. Staging that version
// and flipping to it leaves the kernel holding exactly the recorded
// version: drift is gone, and swaps and rollbacks keep the hand change.
package commit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/session"
)

// ErrPending means a confirmed swap still waits for its confirmation:
// recording a slot now would change what it reverts to. It is a
// session.ErrPending.
var ErrPending = fmt.Errorf("commit refused: %w", session.ErrPending)

// ErrTakeover means production still runs the tables fwslot took over,
// not a version of its own, so there is no slot to record.
var ErrTakeover = errors.New("production still runs the tables fwslot took over, not a fwslot version")

// Options tune Run.
type Options struct {
	// Staged records the staging slot (restaged in place) instead of
	// production (staged beside it and flipped live).
	Staged bool
	// Message is recorded with the version.
	Message string
}

// Result says what Run did.
type Result struct {
	// Slot is "production" or "staging": what was recorded.
	Slot string `json:"slot"`
	// From is the version the slot held, with its hand changes.
	From uint64 `json:"from"`
	// Version is the recorded version.
	Version uint64 `json:"version"`
	// Unchanged is true when the slot already holds exactly its version's
	// source: nothing was recorded or changed.
	Unchanged bool `json:"unchanged"`
	// Staging is the version restaged into the staging slot after a
	// production commit (what staging held before), 0 if none.
	Staging uint64 `json:"staging,omitempty"`
	// Notes say what the operator should know about the recording.
	Notes    []string        `json:"notes"`
	Swap     *session.Result `json:"swap,omitempty"`
	Duration time.Duration   `json:"duration_ns"`
}

// Run records production (or, with opts.Staged, staging) as a new
// version. Production: the version is staged into the inactive slot and
// made live in one flip; then staging gets back the version it held
// before, from history. Staging: the version replaces staging in place.
// Production's content never changes: the same rules go live again. A
// confirmation still pending refuses. Every step runs in the command's
// session s.
func Run(ctx context.Context, s *session.Session, opts Options) (*Result, error) {
	start := time.Now()
	t := s.Target()
	if p, ok, err := t.Store.Pending(t.Key()); err != nil {
		return nil, err
	} else if ok {
		return nil, fmt.Errorf("%w: version %d reverts to %d unless confirmed", ErrPending, p.To, p.From)
	}
	snap, err := Read(ctx, t, opts.Staged)
	if err != nil {
		return nil, err
	}
	res := &Result{Slot: snap.Which, From: snap.Info.Version, Notes: snap.Notes}
	if snap.Hash == snap.Info.Hash {
		res.Version, res.Unchanged = snap.Info.Version, true
		res.Duration = time.Since(start)
		return res, nil
	}
	msg := opts.Message
	if msg == "" {
		msg = fmt.Sprintf("%s as it ran, with hand changes to version %d", snap.Which, snap.Info.Version)
	}
	if res.Version, err = record(t, snap, msg); err != nil {
		return nil, err
	}
	if err := s.StageVersion(ctx, res.Version); err != nil {
		return nil, fmt.Errorf("version %d is recorded but could not be staged (production untouched): %w", res.Version, err)
	}
	if opts.Staged {
		res.Notes = append(res.Notes, remainingDrift(s)...)
		res.Duration = time.Since(start)
		return res, nil
	}
	// The same content goes live, so no probes or guards; the drift being
	// recorded is why the swap is forced.
	if res.Swap, err = s.Swap(ctx, session.SwapOptions{Force: true}); err != nil {
		return nil, fmt.Errorf("version %d is staged but did not go live: %w", res.Version, err)
	}
	back := snap.Info.Version
	if snap.Other != nil {
		back = snap.Other.Version
	}
	if back != res.Version {
		if err := s.StageVersion(ctx, back); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("version %d is live; restaging version %d into staging failed: %v", res.Version, back, err))
		} else {
			res.Staging = back
		}
	}
	res.Notes = append(res.Notes, remainingDrift(s)...)
	res.Duration = time.Since(start)
	return res, nil
}

// record adds the snapshot to history as a version of origin "commit",
// or finds the version that already has its source.
func record(t *session.Target, snap *Snapshot, msg string) (uint64, error) {
	if old, ok, err := t.Store.FindHash(t.Key(), snap.Hash); err != nil {
		return 0, err
	} else if ok {
		return old.Number, nil
	}
	blob, err := snap.Compiled.Encode()
	if err != nil {
		return 0, err
	}
	v := history.Version{Hash: snap.Hash, User: slots.CurrentUser(), Time: time.Now().UTC(), Message: msg,
		Origin: "commit", Source: snap.Source, Tables: snap.Compiled.TableKeys(), Rules: snap.Compiled.RuleCount()}
	got, err := t.Store.AddVersion(t.Key(), v, blob)
	if err != nil {
		return 0, errors.Join(errors.New("record the version in history"), err)
	}
	return got.Number, nil
}

// remainingDrift names changes a commit cannot record: objects made by
// hand outside the slots (nft add chain inet filter extra).
func remainingDrift(sess *session.Session) []string {
	s, err := sess.Status()
	if err != nil {
		return []string{"could not check for remaining drift: " + err.Error()}
	}
	var out []string
	for _, c := range s.DriftChanges {
		out = append(out, "still drifted, not part of a slot (delete it by hand, or add it to a ruleset and load that): "+c)
	}
	return out
}
