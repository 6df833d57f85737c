package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

var (
	// ErrBusy means another pusher holds the group's lock.
	ErrBusy = errors.New("another fleet push or resume runs for this group")
	// ErrConflict means the rollout changed under the pusher (a fleet
	// rollback, or a pusher that lost its lock).
	ErrConflict = errors.New("the rollout was changed by another command")
	// ErrNothingToResume means no rollout is running.
	ErrNothingToResume = errors.New("no rollout to resume")
)

// FailedError is a rollout that stopped: the hosts that failed and why.
type FailedError struct {
	Version uint64
	Wave    int
	Failed  []Failure
}

// Error names each failed host and why.
func (e *FailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rollout of version %d failed in wave %d; that wave was reverted and later waves stay on the old version (the new one only staged):", e.Version, e.Wave)
	for _, f := range e.Failed {
		fmt.Fprintf(&b, "\n  %s: %s", f.Host, f.Reason)
	}
	return b.String()
}

// PushOptions describe one rollout.
type PushOptions struct {
	Source      []byte
	Probes      string
	Message     string
	Author      string
	Signature   string
	Canary      int
	Waves       []int
	Confirm     time.Duration
	MaxFailures int
	Keep        int
}

// Pusher runs the rollouts of one group. Its state lives in etcd: every
// change is a compare-and-swap on the rollout key, so a pusher stopped at
// any point leaves a state that Resume carries on from.
type Pusher struct {
	Client *clientv3.Client
	Keys   Keys
	Log    io.Writer
	// LockWait is how long to wait for another pusher of the group to
	// finish (0: fail at once with ErrBusy). A pusher that died holds
	// the lock until its session's lease (10 s) expires.
	LockWait time.Duration
}

func (p *Pusher) logf(format string, args ...any) {
	if p.Log != nil {
		fmt.Fprintf(p.Log, "%s fleet %s: %s\n", time.Now().Format("15:04:05.000"), p.Keys.Group, fmt.Sprintf(format, args...))
	}
}

// lock takes the group's pusher lock, or fails at once with ErrBusy.
func (p *Pusher) lock(ctx context.Context) (unlock func(), err error) {
	s, err := concurrency.NewSession(p.Client, concurrency.WithTTL(10))
	if err != nil {
		return nil, fmt.Errorf("lock group %s: %w", p.Keys.Group, err)
	}
	// The session does not take ctx: after Ctrl-C it must still revoke
	// its lease, so that `fleet resume` can take the lock at once.
	m := concurrency.NewMutex(s, p.Keys.lock())
	var lerr error
	if p.LockWait > 0 {
		lctx, cancel := context.WithTimeout(ctx, p.LockWait)
		lerr = m.Lock(lctx)
		cancel()
		if errors.Is(lerr, context.DeadlineExceeded) && ctx.Err() == nil {
			lerr = concurrency.ErrLocked
		}
	} else {
		lerr = m.TryLock(ctx)
	}
	if err := lerr; err != nil {
		s.Close()
		if errors.Is(err, concurrency.ErrLocked) {
			return nil, fmt.Errorf("%w (group %s); wait for it, or see `fwslot fleet status --group %s`", ErrBusy, p.Keys.Group, p.Keys.Group)
		}
		return nil, fmt.Errorf("lock group %s: %w", p.Keys.Group, err)
	}
	return func() {
		// Bounded: with etcd away, the lease ends the lock by itself
		// within its TTL, and Ctrl-C must not hang.
		uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = m.Unlock(uctx) // the lease's end releases it anyway
		s.Orphan()
		_, _ = p.Client.Revoke(uctx, s.Lease())
	}, nil
}

// lockRollout takes the group's rollout lock and reads the rollout
// record under it; on success the caller must call unlock.
func (p *Pusher) lockRollout(ctx context.Context) (unlock func(), cur *RolloutState, rev int64, found bool, err error) {
	unlock, err = p.lock(ctx)
	if err != nil {
		return nil, nil, 0, false, err
	}
	cur = &RolloutState{}
	rev, found, err = getJSON(ctx, p.Client, p.Keys.rollout(), cur)
	if err != nil {
		unlock()
		return nil, nil, 0, false, err
	}
	return unlock, cur, rev, found, nil
}

// Push stores the version and rolls it out: canary, then waves. It
// returns when every host of the plan runs it confirmed, or with a
// *FailedError. A rollout of the same content that was interrupted is
// resumed rather than started again.
func (p *Pusher) Push(ctx context.Context, o PushOptions) (*RolloutState, error) {
	unlock, cur, rev, found, err := p.lockRollout(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	hash := sum(o.Source)
	if found && cur.State == StateRunning {
		if cur.Hash != hash {
			return nil, fmt.Errorf("the rollout of version %d is still running (interrupted?): `fwslot fleet resume --group %s` finishes it, `fwslot fleet rollback --group %s` abandons it", cur.Version, p.Keys.Group, p.Keys.Group)
		}
		p.logf("resuming the interrupted rollout of version %d", cur.Version)
		return p.run(ctx, cur, rev)
	}
	var desired desiredVersion
	if _, _, err := getJSON(ctx, p.Client, p.Keys.desired(), &desired); err != nil {
		return nil, err
	}
	hosts, err := AliveHosts(ctx, p.Client, p.Keys)
	if err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("no agent of group %s is alive (start `fwslot agent --group %s` on the hosts)", p.Keys.Group, p.Keys.Group)
	}
	meta, err := putVersion(ctx, p.Client, p.Keys, o.Source, VersionMeta{Message: o.Message, Author: o.Author, Time: time.Now().UTC(), Probes: o.Probes, Signature: o.Signature}, o.Keep, nil)
	if errors.Is(err, errChunksLeft) {
		// The version is stored; the chunks go with a later push.
		p.logf("version %d stored: %v", meta.Version, err)
	} else if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	st := &RolloutState{ID: fmt.Sprintf("v%d-%d", meta.Version, now.UnixNano()), Version: meta.Version, Hash: meta.Hash,
		State: StateRunning, Canary: o.Canary, Phase: phaseSwap, Plan: makePlan(hosts, o.Canary, o.Waves),
		Confirm: o.Confirm, MaxFailures: o.MaxFailures, Failed: []Failure{}, Started: now, Updated: now}
	for _, w := range o.Waves {
		st.Waves = append(st.Waves, fmt.Sprintf("%d%%", w))
	}
	if desired.Hash != "" {
		prev := desired.Ref
		st.Previous = &prev
	}
	t, err := p.Client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(p.Keys.rollout()), "=", rev)).
		Then(clientv3.OpPut(p.Keys.rollout(), mustJSON(st)), clientv3.OpPut(p.Keys.desired(), mustJSON(desiredVersion{Ref: meta.Ref(), Rollout: st.ID}))).Commit()
	if err != nil {
		return nil, fmt.Errorf("start rollout: %w", err)
	}
	if !t.Succeeded {
		return nil, fmt.Errorf("start rollout: %w", ErrConflict)
	}
	p.logf("rollout %s of version %d: %d host(s) in %d wave(s)", st.ID, st.Version, len(hosts), len(st.Plan))
	return p.run(ctx, st, t.Header.Revision)
}

// Resume carries on the group's interrupted rollout.
func (p *Pusher) Resume(ctx context.Context) (*RolloutState, error) {
	unlock, cur, rev, found, err := p.lockRollout(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !found || cur.State != StateRunning {
		what := "none was ever started"
		if found {
			what = "the last one " + cur.State
		}
		return nil, fmt.Errorf("%w in group %s: %s", ErrNothingToResume, p.Keys.Group, what)
	}
	return p.run(ctx, cur, rev)
}

// AliveHosts lists the hosts whose agent holds its liveness lease.
func AliveHosts(ctx context.Context, c *clientv3.Client, k Keys) ([]string, error) {
	r, err := c.Get(ctx, k.Alives(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("list the live agents of group %s: %w", k.Group, err)
	}
	var hosts []string
	for _, kv := range r.Kvs {
		hosts = append(hosts, hostOf(string(kv.Key)))
	}
	return hosts, nil
}
