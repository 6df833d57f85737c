package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNothingToRollBack means the group has no rollout with a previous
// version to go back to.
var ErrNothingToRollBack = errors.New("nothing to roll back")

// RollbackResult says what a fleet rollback did.
type RollbackResult struct {
	Flip   Flip
	From   Ref
	Hosts  []string
	Failed []Failure
	// Took is the time from the etcd write to the last host's report.
	Took time.Duration
}

// Rollback sends every host of the group back to the version before the
// last rollout, in one etcd write: the flip key, the desired version and
// the rollout's state change together. A pusher still running for the
// group stops at its next step. It waits up to wait for the live hosts
// to report the flip.
func Rollback(ctx context.Context, c *clientv3.Client, k Keys, wait time.Duration) (*RollbackResult, error) {
	var st RolloutState
	rev, found, err := getJSON(ctx, c, k.rollout(), &st)
	if err != nil {
		return nil, err
	}
	switch {
	case !found:
		return nil, fmt.Errorf("%w: group %s never had a rollout", ErrNothingToRollBack, k.Group)
	case st.Previous == nil:
		return nil, fmt.Errorf("%w: version %d was the group's first version", ErrNothingToRollBack, st.Version)
	case st.State == StateRolledBack:
		return nil, fmt.Errorf("%w: the rollout of version %d was already rolled back to version %d", ErrNothingToRollBack, st.Version, st.Previous.Version)
	case st.State == StateFailed:
		return nil, fmt.Errorf("%w: the rollout of version %d failed and its hosts went back to version %d already", ErrNothingToRollBack, st.Version, st.Previous.Version)
	}
	var last Flip
	if _, _, err := getJSON(ctx, c, k.flip(), &last); err != nil {
		return nil, err
	}
	hosts, err := AliveHosts(ctx, c, k)
	if err != nil {
		return nil, err
	}
	f := Flip{Seq: last.Seq + 1, Ref: *st.Previous, Time: time.Now().UTC()}
	st.State, st.Updated = StateRolledBack, f.Time
	start := time.Now()
	t, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k.rollout()), "=", rev)).Then(
		clientv3.OpPut(k.flip(), mustJSON(f)),
		clientv3.OpPut(k.desired(), mustJSON(desiredVersion{Ref: f.Ref, Rollout: st.ID})),
		clientv3.OpPut(k.rollout(), mustJSON(st))).Commit()
	if err != nil {
		return nil, fmt.Errorf("write the fleet rollback: %w", err)
	}
	if !t.Succeeded {
		return nil, fmt.Errorf("%w: the rollout changed while rolling back; run the rollback again", ErrConflict)
	}
	res := &RollbackResult{Flip: f, From: st.Ref(), Hosts: hosts}
	want := map[string]outcome{}
	for _, h := range hosts {
		want[h] = func(s HostStatus) (bool, string) {
			if s.FlipSeq < f.Seq {
				return false, ""
			}
			if s.Production != nil && s.Production.Hash == f.Hash {
				return true, ""
			}
			return true, fmt.Sprintf("did not flip: %s", s.Error)
		}
	}
	res.Failed, err = waitHosts(ctx, c, k, t.Header.Revision, want, wait, 0)
	res.Took = time.Since(start)
	return res, err
}
