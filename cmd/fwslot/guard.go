package main

import (
	"context"
	"fmt"

	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/session"
)

// lockoutGuard returns the lockout guard for a session: a check for
// staging (run on the compiled file) and one for going live (run on a
// stored version), or none when there is no access to keep (no
// --keep-access, and no SSH_CONNECTION on the host) or force skips it.
// load, swap and watch all hand it to session.Open, and the session runs
// it on every path that stages or makes a version live.
func lockoutGuard(g *globals, keep string, force bool) (session.Guard, error) {
	if force {
		return session.Guard{}, nil
	}
	a, err := accessToKeep(g.netns, keep)
	if err != nil || a == nil {
		return session.Guard{}, err
	}
	stage := func(ctx context.Context, file string, rs *slots.Ruleset) error {
		loc, err := locatorFor(g, file)
		if err != nil {
			return err
		}
		return guard(ctx, g, a, file, rs, loc)
	}
	live := func(ctx context.Context, version uint64, rs *slots.Ruleset) error {
		return guard(ctx, g, a, fmt.Sprintf("version %d", version), rs, nil)
	}
	return session.Guard{Stage: stage, Live: live}, nil
}
