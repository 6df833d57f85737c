package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fwslot/fwslot/fleet/sign"
)

// act does the one most urgent thing the view asks of this host: a fleet
// rollback, then an order of the running rollout, then staging the
// desired version, then converging to it when no rollout runs. did says
// it changed something (act again on the same view).
func (a *Agent) act(ctx context.Context, v view) (did bool, err error) {
	a.known = nil
	if f := v.flip; f != nil && f.Seq > a.flipSeq {
		if v.rollout == nil || v.rollout.State != StateRolledBack || v.desired == nil || v.desired.Hash != f.Hash {
			// A rollback from before the current rollout (this host
			// was away): what the group wants now is desired.
			a.flipSeq = f.Seq
			return true, nil
		}
		err := a.makeLive(ctx, f.Ref, 0)
		a.flipSeq = f.Seq
		if err != nil {
			return true, a.report(ctx, HostFailed, fmt.Errorf("fleet rollback to version %d: %w", f.Version, err))
		}
		a.countRevert()
		a.logf("fleet rollback: version %d is live", f.Version)
		// The flipped-to version is desired and now live: acting again
		// would only read the host to find that out, unless an order
		// waits.
		more := v.order != nil && v.order.Seq > a.seq
		return more, a.report(ctx, HostFlipped, nil)
	}
	if o := v.order; o != nil && o.Seq > a.seq {
		return true, a.obey(ctx, o, v.rollout)
	}
	d := v.desired
	if d == nil {
		return false, nil
	}
	st, err := a.Local.State(ctx)
	if err != nil {
		return false, a.report(ctx, HostFailed, err)
	}
	if _, bad := a.refused[refusedKey(d.Ref)]; bad {
		return false, nil
	}
	// Staged content is staged again under a new version (same content
	// pushed anew): its probes run again, and a signature is checked.
	if st.Production != d.Hash && (st.Staging != d.Hash || a.stagedAs[d.Hash] != d.Version) {
		if err := a.stage(ctx, d.Ref); err != nil {
			if isEtcdErr(err) {
				return false, err
			}
			a.refused[refusedKey(d.Ref)] = err.Error()
			return true, a.reportRefused(ctx, refusedKey(d.Ref), err)
		}
		a.logf("staged version %d", d.Version)
		return true, a.report(ctx, HostStaged, nil)
	}
	if st.Production == d.Hash || (v.rollout != nil && v.rollout.State == StateRunning) {
		return false, nil
	}
	// No rollout runs and the group's version is not live here (the host
	// was away): converge without a wave, guarded by the same checks.
	a.logf("converging to version %d", d.Version)
	if err := a.swapChecked(ctx, d.Ref, convergeConfirm); err != nil {
		if isEtcdErr(err) {
			return false, err
		}
		a.refused[refusedKey(d.Ref)] = err.Error()
		return true, a.reportRefused(ctx, refusedKey(d.Ref), err)
	}
	if err := a.Local.Confirm(ctx); err != nil {
		return true, a.report(ctx, HostFailed, fmt.Errorf("confirm version %d: %w", d.Version, err))
	}
	return true, a.report(ctx, HostConfirmed, nil)
}

// obey carries out one order of a rollout.
func (a *Agent) obey(ctx context.Context, o *Order, r *RolloutState) error {
	a.seq, a.rollout = o.Seq, o.Rollout
	running := r != nil && r.ID == o.Rollout && r.State == StateRunning
	switch {
	case o.Action == ActionRevert:
		if err := a.revertTo(ctx, o.Ref); err != nil {
			return a.report(ctx, HostFailed, fmt.Errorf("revert to version %d: %w", o.Version, err))
		}
		a.countRevert()
		return a.report(ctx, HostReverted, nil)
	case !running:
		a.logf("order %d (%s) belongs to a rollout that no longer runs; ignored", o.Seq, o.Action)
		return a.report(ctx, HostIdle, nil)
	case o.Action == ActionSwap:
		if err := a.swapChecked(ctx, o.Ref, o.Confirm); err != nil {
			if isEtcdErr(err) {
				return a.report(ctx, HostFailed, err)
			}
			return a.report(ctx, HostUnhealthy, err)
		}
		a.logf("swapped to version %d; healthy, waiting for confirm", o.Version)
		return a.report(ctx, HostHealthy, nil)
	case o.Action == ActionConfirm:
		st, err := a.Local.State(ctx)
		if err != nil {
			return a.report(ctx, HostFailed, err)
		}
		if st.Production != o.Hash {
			return a.report(ctx, HostFailed, fmt.Errorf("told to confirm version %d, but it is not live (reverted at the deadline?)", o.Version))
		}
		if err := a.Local.Confirm(ctx); err != nil {
			return a.report(ctx, HostFailed, fmt.Errorf("confirm version %d: %w", o.Version, err))
		}
		a.logf("confirmed version %d", o.Version)
		return a.report(ctx, HostConfirmed, nil)
	}
	return a.report(ctx, HostFailed, fmt.Errorf("unknown order %q", o.Action))
}

// stage fetches version ref from etcd (verified by hash) and stages it.
func (a *Agent) stage(ctx context.Context, ref Ref) error {
	ver, err := getVersion(ctx, a.Client, a.Keys, ref.Version)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return err
		}
		return retryable{err}
	}
	if ver.Hash != ref.Hash {
		return fmt.Errorf("%w: version %d in etcd hashes to %s, the rollout names %s", ErrCorrupt, ref.Version, ver.Hash, ref.Hash)
	}
	if err := a.verify(ver.VersionMeta); err != nil {
		return err
	}
	a.versions[ver.Hash] = ver.Version
	start := time.Now()
	if err := a.Local.Stage(ctx, ver); err != nil {
		return fmt.Errorf("stage version %d: %w", ref.Version, err)
	}
	a.stagedAs[ver.Hash] = ver.Version
	if a.Metrics != nil {
		a.Metrics.ObserveStage(time.Since(start))
	}
	return nil
}

// swapChecked makes ref live with a confirm window and runs the health
// checks; a failing check reverts the host at once.
func (a *Agent) swapChecked(ctx context.Context, ref Ref, confirm time.Duration) error {
	if err := a.makeLive(ctx, ref, confirm); err != nil {
		return err
	}
	m, err := GetMeta(ctx, a.Client, a.Keys, ref.Version)
	if err != nil {
		return retryable{err}
	}
	if err := a.Local.Check(ctx, m.Probes); err != nil {
		if a.Metrics != nil {
			a.Metrics.ProbeFailures.Inc()
			a.Metrics.Reverts.Inc()
		}
		reason := fmt.Sprintf("health check of version %d failed: %v", ref.Version, err)
		if rerr := a.Local.Revert(ctx, reason); rerr != nil {
			return fmt.Errorf("%s; and the revert failed: %w", reason, rerr)
		}
		return errors.New(reason + "; reverted")
	}
	// The checks take time: the version must still be live (a short
	// confirm window may have passed meanwhile).
	st, err := a.Local.State(ctx)
	if err != nil {
		return err
	}
	if st.Production != ref.Hash {
		return fmt.Errorf("version %d went back during its health checks (confirm window %v too short?)", ref.Version, confirm)
	}
	a.swappedTo = ref.Hash
	return nil
}

// makeLive brings production to ref: nothing when it runs already, a flip
// when ref is staged, else stage first. confirm 0 is a final flip that
// settles a pending swap (fleet rollback); confirm > 0 is a provisional
// swap. After a flip the host's state is known without reading it again:
// the next status write uses it.
func (a *Agent) makeLive(ctx context.Context, ref Ref, confirm time.Duration) error {
	if a.TrustKey != nil {
		// Also when the content is staged already: a signature binds
		// the version's probes too.
		m, err := GetMeta(ctx, a.Client, a.Keys, ref.Version)
		if err != nil {
			return retryable{err}
		}
		if m.Hash != ref.Hash {
			return fmt.Errorf("%w: version %d in etcd hashes to %s, the order names %s", ErrCorrupt, ref.Version, m.Hash, ref.Hash)
		}
		if err := a.verify(m); err != nil {
			return err
		}
	}
	if confirm == 0 {
		// The fast path of a fleet rollback: one local session reads
		// the state, checks it and flips.
		start := time.Now()
		st, err := a.Local.FlipTo(ctx, ref.Hash)
		if err == nil {
			a.observeSwap(start)
			a.known = &st
			return nil
		}
		if !errors.Is(err, ErrNotStaged) {
			return err
		}
	}
	st, err := a.Local.State(ctx)
	if err != nil {
		return err
	}
	if st.Production == ref.Hash {
		return nil
	}
	if st.Pending && (confirm > 0 || st.Staging != ref.Hash) {
		// A pending swap is settled before anything replaces its slots.
		if err := a.Local.Revert(ctx, fmt.Sprintf("replaced by fleet version %d", ref.Version)); err != nil {
			return err
		}
		if st, err = a.Local.State(ctx); err != nil || st.Production == ref.Hash {
			return err
		}
	}
	// A swap stages (and so probes) a version the host staged under
	// another number; a flip back to the previous version does not.
	if st.Staging != ref.Hash || (confirm > 0 && a.stagedAs[ref.Hash] != ref.Version) {
		if err := a.stage(ctx, ref); err != nil {
			return err
		}
	}
	start := time.Now()
	if confirm == 0 {
		st, err := a.Local.FlipTo(ctx, ref.Hash)
		if err != nil {
			return err
		}
		a.observeSwap(start)
		a.known = &st
		return nil
	}
	if err := a.Local.Swap(ctx, confirm); err != nil {
		return err
	}
	a.observeSwap(start)
	return nil
}

func (a *Agent) observeSwap(start time.Time) {
	if a.Metrics != nil {
		a.Metrics.ObserveSwap(time.Since(start))
	}
}

// revertTo undoes a swap to anything but ref: a pending swap reverts, a
// confirmed one flips back.
func (a *Agent) revertTo(ctx context.Context, ref Ref) error {
	st, err := a.Local.State(ctx)
	if err != nil {
		return err
	}
	if st.Production == ref.Hash {
		return nil
	}
	if st.Pending {
		if err := a.Local.Revert(ctx, "the rollout failed"); err != nil {
			return err
		}
		if st, err = a.Local.State(ctx); err != nil || st.Production == ref.Hash {
			return err
		}
	}
	if ref.Hash == "" {
		return fmt.Errorf("nothing to revert to")
	}
	return a.makeLive(ctx, ref, 0)
}

func (a *Agent) countRevert() {
	if a.Metrics != nil {
		a.Metrics.Reverts.Inc()
	}
}

// refusedKey names a version a host refused: by number and hash, since
// the same content may come again signed, or with other probes.
func refusedKey(r Ref) string { return fmt.Sprintf("%d:%s", r.Version, r.Hash) }

// verify checks the version's signature when the agent has a trusted key.
func (a *Agent) verify(m VersionMeta) error {
	if a.TrustKey == nil {
		return nil
	}
	if err := sign.Verify(a.TrustKey, a.Keys.Group, m.Hash, m.Probes, m.Signature); err != nil {
		return fmt.Errorf("refusing version %d: %w (this agent runs with --trust-key: push with --sign-key and the matching private key)", m.Version, err)
	}
	return nil
}
