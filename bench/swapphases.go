package bench

import (
	"context"
	"time"

	"github.com/fwslot/fwslot/session"
)

// SwapPhases of a swap, in the order Session.Swap runs them.
var SwapPhases = session.SwapPhases

// PhasedSwap runs Session.Swap and returns the duration of each phase.
func PhasedSwap(ctx context.Context, t *session.Target) (map[string]time.Duration, error) {
	p := newPhases()
	if _, err := t.Swap(ctx, session.SwapOptions{Timer: p.timer()}); err != nil {
		return nil, err
	}
	return p.d, nil
}

// SwapBreakdown swaps cfg.Runs (+1 warm-up) times in-process on a managed
// target with n rules in each slot, timing each phase of Session.Swap.
func SwapBreakdown(cfg *Config, n int) (*BreakdownResult, error) {
	swap := func(ctx context.Context, t *session.Target, _ string) (map[string]time.Duration, error) {
		return PhasedSwap(ctx, t)
	}
	return phasedRuns(cfg, n, "sbd", "swap", SwapPhases, nil, swap)
}

// Prepare brings target t to the steady state the swap measurements use:
// version 1 (seed 1) live, version 2 (seed 2) staged, n rules each.
func Prepare(ctx context.Context, t *session.Target, dir string, n int) error {
	for i, seed := range []int64{1, 2} {
		f, err := WriteRuleset(dir, n, seed)
		if err != nil {
			return err
		}
		if _, err := t.Load(ctx, f.Plain, session.LoadOptions{}); err != nil {
			return err
		}
		if i == 0 {
			if _, err := t.Swap(ctx, session.SwapOptions{}); err != nil {
				return err
			}
		}
	}
	return nil
}
