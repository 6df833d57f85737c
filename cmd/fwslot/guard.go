package main

import (
	"context"
	"fmt"

	"github.com/fwslot/fwslot/slots"
)

// lockoutGuard returns the lockout guard as a check for staging (run on the
// compiled file) and one for going live (run on a stored version), or nils
// when there is no access to keep (no --keep-access, and no SSH_CONNECTION
// on the host) or force skips it. load, swap and watch all take their
// guard from here, so no path that stages or makes a version live skips it.
func lockoutGuard(g *globals, keep string, force bool) (stage func(context.Context, string, *slots.Ruleset) error, live func(context.Context, uint64, *slots.Ruleset) error, err error) {
	if force {
		return nil, nil, nil
	}
	a, err := accessToKeep(g.netns, keep)
	if err != nil || a == nil {
		return nil, nil, err
	}
	stage = func(ctx context.Context, file string, rs *slots.Ruleset) error {
		loc, err := locatorFor(g, file)
		if err != nil {
			return err
		}
		return guard(ctx, g, a, file, rs, loc)
	}
	live = func(ctx context.Context, version uint64, rs *slots.Ruleset) error {
		return guard(ctx, g, a, fmt.Sprintf("version %d", version), rs, nil)
	}
	return stage, live, nil
}

// allChecks runs checks in order and stops at the first failure; nil
// checks are skipped.
func allChecks(checks ...func(context.Context, string, *slots.Ruleset) error) func(context.Context, string, *slots.Ruleset) error {
	return func(ctx context.Context, file string, rs *slots.Ruleset) error {
		for _, check := range checks {
			if check == nil {
				continue
			}
			if err := check(ctx, file, rs); err != nil {
				return err
			}
		}
		return nil
	}
}
