// Package swap changes which version is live on a target: the atomic flip
// of the dispatch rules (swap), and rollback to the previous or any older
// version. Each change is one netlink transaction followed by an
// activation record in history.
package swap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/slots"
)

// ErrNothingStaged means swap found an empty staging slot.
var ErrNothingStaged = errors.New("nothing is staged: run `fwslot load FILE` first")

// Result says what went live.
type Result struct {
	From     uint64        `json:"from"`
	To       uint64        `json:"to"`
	Slot     names.Slot    `json:"slot"`
	How      string        `json:"how"`
	Restaged bool          `json:"restaged"`
	Duration time.Duration `json:"duration_ns"`
}

// Swap makes the staged version live in one transaction. The previous
// production stays loaded in the other slot, so rollback is the same flip.
func Swap(ctx context.Context, t *slots.Target) (*Result, error) {
	start := time.Now()
	c, err := t.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st, err := slots.ReadState(c)
	if err != nil {
		return nil, err
	}
	status, err := slots.Describe(st)
	if err != nil {
		return nil, err
	}
	if status.Staging == nil {
		return nil, ErrNothingStaged
	}
	res, err := flip(c, t, st, status, status.Staging.Version, "swap")
	if err != nil {
		return nil, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// Rollback makes an earlier version live: the previous production when to
// is 0, else version to. When that version still sits in the inactive slot
// this is the same instant flip as a swap; otherwise it is restaged from
// the compiled form in history and made live in the same transaction.
func Rollback(ctx context.Context, t *slots.Target, to uint64) (*Result, error) {
	start := time.Now()
	c, err := t.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st, err := slots.ReadState(c)
	if err != nil {
		return nil, err
	}
	status, err := slots.Describe(st)
	if err != nil {
		return nil, err
	}
	if status.Production == nil {
		return nil, errors.New("nothing is live yet, so there is nothing to roll back")
	}
	if to == 0 {
		prev, err := previous(t, status.Production.Version)
		if err != nil {
			return nil, err
		}
		to = prev
	}
	if to == status.Production.Version {
		return nil, fmt.Errorf("version %d is already live", to)
	}
	var res *Result
	if status.Staging != nil && status.Staging.Version == to {
		res, err = flip(c, t, st, status, to, "rollback")
	} else {
		res, err = restage(c, t, st, status, to, "rollback")
	}
	if err != nil {
		return nil, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// previous finds the version that was live before the current one.
func previous(t *slots.Target, current uint64) (uint64, error) {
	acts, err := t.Store.Activations(t.Key())
	if err != nil {
		return 0, err
	}
	for i := len(acts) - 1; i >= 0; i-- {
		if acts[i].To == current && acts[i].From != 0 {
			return acts[i].From, nil
		}
	}
	return 0, fmt.Errorf("history has no version that was live before version %d; name one with --to N (see `fwslot history`)", current)
}

// flip makes the version in the inactive slot live.
func flip(c *nfnl.Conn, t *slots.Target, st *slots.State, status *slots.Status, want uint64, how string) (*Result, error) {
	to := status.Active().Other()
	keep, err := legacyKeep(t, st, status)
	if err != nil {
		return nil, err
	}
	var b nfnl.Batch
	if err := slots.Flip(&b, st, to, keep); err != nil {
		return nil, err
	}
	if err := c.Commit(&b); err != nil {
		return nil, fmt.Errorf("%s to version %d (production unchanged): %w", how, want, err)
	}
	return record(t, status, want, to, how, false)
}

// restage writes a version from history into the inactive slot and makes
// it live, in one transaction.
func restage(c *nfnl.Conn, t *slots.Target, st *slots.State, status *slots.Status, version uint64, how string) (*Result, error) {
	v, err := t.Store.Get(t.Key(), version)
	if err != nil {
		return nil, err
	}
	blob, err := t.Store.Compiled(t.Key(), version)
	if err != nil {
		return nil, err
	}
	rs, err := slots.Decode(blob)
	if err != nil {
		return nil, fmt.Errorf("version %d: %w", version, err)
	}
	to := status.Active().Other()
	keep, err := legacyKeep(t, st, status)
	if err != nil {
		return nil, err
	}
	var b nfnl.Batch
	if err := slots.Stage(&b, st, rs, to, slots.Tag{Version: v.Number, Hash: v.Hash}, to); err != nil {
		return nil, err
	}
	if err := slots.Flip(&b, st, to, keep); err != nil {
		return nil, err
	}
	if err := c.Commit(&b); err != nil {
		return nil, fmt.Errorf("%s to version %d (production unchanged): %w", how, version, err)
	}
	return record(t, status, version, to, how, true)
}

// legacyKeep returns, while a table still holds pre-fwslot content, the
// test that keeps the legacy sets and objects that a slot shares; nil
// otherwise.
func legacyKeep(t *slots.Target, st *slots.State, status *slots.Status) (func(*slots.TableState, string) bool, error) {
	if !status.Takeover {
		return nil, nil
	}
	shared := map[string]bool{}
	for _, info := range []*slots.SlotInfo{status.Production, status.Staging} {
		if info == nil {
			continue
		}
		blob, err := t.Store.Compiled(t.Key(), info.Version)
		if err != nil {
			return nil, fmt.Errorf("taking over existing tables needs version %d from history: %w", info.Version, err)
		}
		rs, err := slots.Decode(blob)
		if err != nil {
			return nil, err
		}
		for table, ns := range slots.SharedNames(rs) {
			for n := range ns {
				shared[table+"\x00"+n] = true
			}
		}
	}
	return func(ts *slots.TableState, name string) bool { return shared[ts.Key()+"\x00"+name] }, nil
}

func record(t *slots.Target, status *slots.Status, to uint64, slot names.Slot, how string, restaged bool) (*Result, error) {
	var from uint64
	if status.Production != nil {
		from = status.Production.Version
	}
	res := &Result{From: from, To: to, Slot: slot, How: how, Restaged: restaged}
	_, err := t.Store.AddActivation(t.Key(), history.Activation{From: from, To: to, Time: time.Now().UTC(), How: how, User: slots.CurrentUser()})
	if err != nil {
		return res, fmt.Errorf("version %d is live, but recording the activation in history failed: %w", to, err)
	}
	return res, nil
}
