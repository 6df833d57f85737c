package fleet

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fwslot/fwslot/fleet/metrics"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// defaultTTL is the lease of an agent's liveness key, in seconds.
const defaultTTL = 10

// convergeConfirm is the confirm window of a swap a host makes by
// itself to converge to the group's desired version (no rollout runs).
const convergeConfirm = 2 * time.Minute

// Agent keeps one host in line with its group: it stages every desired
// version, carries out the orders of a rollout for its host, flips back
// on a fleet rollback, and converges to the desired version when no
// rollout runs. It reports to P/groups/G/status/H.
type Agent struct {
	Client *clientv3.Client
	Keys   Keys
	// Name is the host's name in the group.
	Name  string
	Local Host
	// TTL is the liveness lease in seconds (default defaultTTL, 10).
	TTL int64
	// Log receives one line per thing the agent does (may be nil).
	Log io.Writer
	// Retry is how long the agent waits before trying again after an
	// error that etcd or the host may recover from (default 2s).
	Retry time.Duration
	// TrustKey, when set, is the ed25519 key every version must be
	// signed with (fleet push --sign-key): others are refused, so that
	// write access to etcd alone cannot push a ruleset.
	TrustKey ed25519.PublicKey
	// Metrics, when set, receives swaps, reverts, failed checks, stage
	// and swap durations and the versions in the slots.
	Metrics *metrics.Metrics
	// Heartbeat is how often the agent reads its host again and rewrites
	// its status (last_seen; a revert the local watchdog made at a
	// confirm deadline). Default 10s.
	Heartbeat time.Duration

	seq, flipSeq uint64
	// refused are versions (by hash) this host cannot stage or failed
	// to converge to, with the reason: not tried again.
	refused map[string]string
	// versions maps the hashes the agent met to their fleet version;
	// stagedAs the version each staged content was staged (and probed) as.
	versions, stagedAs map[string]uint64
	state              string
	lastErr            string
	rollout            string
	// refusedFor is the hash the last refusal was about; dirty says the
	// last status could not be written.
	refusedFor string
	dirty      bool
	// written is the last status written (without last_seen), at
	// writtenAt.
	written   string
	writtenAt time.Time
	// swappedTo is the hash of the last provisional swap: while the state
	// is healthy, production must hold it.
	swappedTo string
	// known is the host's state as a flip left it: the next status
	// write uses it instead of reading the host again. act clears it.
	known *LocalState
}

// view is what the agent acts on: the group's keys that concern it.
type view struct {
	desired *desiredVersion
	rollout *RolloutState
	flip    *Flip
	order   *Order
}

func (a *Agent) logf(format string, args ...any) {
	if a.Log != nil {
		fmt.Fprintf(a.Log, "%s agent %s/%s: %s\n", time.Now().Format("15:04:05.000"), a.Keys.Group, a.Name, fmt.Sprintf(format, args...))
	}
}

// Run works until ctx ends. It survives losing etcd: the watch resumes
// from the last revision it saw, and a compacted history makes it read
// the group's state again.
func (a *Agent) Run(ctx context.Context) error {
	if a.TTL <= 0 {
		a.TTL = defaultTTL
	}
	if a.Retry <= 0 {
		a.Retry = 2 * time.Second
	}
	if a.Heartbeat <= 0 {
		a.Heartbeat = 10 * time.Second
	}
	a.refused, a.versions, a.stagedAs = map[string]string{}, map[string]uint64{}, map[string]uint64{}
	alive := make(chan struct{})
	go func() {
		defer close(alive)
		a.keepAlive(ctx)
	}()
	// The liveness key goes before Run returns (the caller may close the
	// client next).
	defer func() { <-alive }()
	for {
		err := a.resume(ctx)
		if ctx.Err() != nil {
			return nil
		}
		a.logf("reading the group's state again: %v", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(a.Retry):
		}
	}
}

// keepAlive holds the liveness key on a lease for as long as ctx lasts,
// granting a new lease whenever the old one is lost.
func (a *Agent) keepAlive(ctx context.Context) {
	for ctx.Err() == nil {
		err := func() error {
			l, err := a.Client.Grant(ctx, a.TTL)
			if err != nil {
				return err
			}
			if _, err := a.Client.Put(ctx, a.Keys.alive(a.Name), time.Now().UTC().Format(time.RFC3339), clientv3.WithLease(l.ID)); err != nil {
				return err
			}
			ch, err := a.Client.KeepAlive(ctx, l.ID)
			if err != nil {
				return err
			}
			for range ch {
			}
			if ctx.Err() != nil {
				// Stopping: say so now rather than when the lease ends.
				rctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, _ = a.Client.Revoke(rctx, l.ID) // expires by itself otherwise
			}
			return errors.New("lease lost")
		}()
		if ctx.Err() != nil {
			return
		}
		a.logf("liveness: %v; trying again", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// resume reads the keys that concern the host in one transaction (one
// revision), acts on them, then follows every change from the next
// revision. It returns when the watch cannot go on (the caller reads
// again: after a compaction, that is all it takes).
func (a *Agent) resume(ctx context.Context) error {
	if err := a.loadOwnStatus(ctx); err != nil {
		return err
	}
	keys := a.watched()
	kv, rev, err := a.read(ctx, keys)
	if err != nil {
		return err
	}
	// What the host runs may have changed while etcd was away (a confirm
	// deadline passed): say so before anything else.
	a.refresh(ctx, true)
	retry := a.step(ctx, kv)
	beat := time.NewTicker(a.Heartbeat)
	defer beat.Stop()
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := a.watch(wctx, keys, rev+1)
	for {
		var timer <-chan time.Time
		if retry {
			timer = time.After(a.Retry)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer:
			if fresh, _, err := a.read(ctx, keys); err == nil {
				kv = fresh
			}
			retry = a.step(ctx, kv)
		case <-beat.C:
			a.refresh(ctx, false)
		case m := <-wch:
			wr := m.wr
			switch {
			case m.closed:
				return errors.New("watch closed")
			case wr.CompactRevision != 0:
				return fmt.Errorf("watch: revision %d compacted", wr.CompactRevision)
			case wr.Err() != nil:
				return fmt.Errorf("watch: %w", wr.Err())
			}
			if len(wr.Events) == 0 {
				continue
			}
			// The keys are watched apart, so events of one transaction
			// (desired and rollout, say) may arrive apart: act on one
			// consistent read, never on a half-applied change.
			if kv, _, err = a.read(ctx, keys); err != nil {
				a.logf("%v", err)
				retry = true
				continue
			}
			retry = a.step(ctx, kv)
		}
	}
}

// read reads keys in one transaction: one revision, a consistent view.
func (a *Agent) read(ctx context.Context, keys []string) (map[string][]byte, int64, error) {
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpGet(k)
	}
	r, err := a.Client.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, 0, fmt.Errorf("read group %s: %w", a.Keys.Group, err)
	}
	kv := map[string][]byte{}
	for _, resp := range r.Responses {
		for _, e := range resp.GetResponseRange().Kvs {
			kv[string(e.Key)] = e.Value
		}
	}
	return kv, r.Header.Revision, nil
}

// watched are the only keys an agent follows: not the group's prefix, or
// every host's status write would reach every agent (N² events).
func (a *Agent) watched() []string {
	k := a.Keys
	return []string{k.desired(), k.rollout(), k.flip(), k.Order(a.Name)}
}

type watchMsg struct {
	wr     clientv3.WatchResponse
	closed bool
}

// watch follows keys from rev on one gRPC stream (the client multiplexes
// them) and merges their responses.
func (a *Agent) watch(ctx context.Context, keys []string, rev int64) <-chan watchMsg {
	out := make(chan watchMsg)
	for _, k := range keys {
		wch := a.Client.Watch(ctx, k, clientv3.WithRev(rev))
		go func() {
			for wr := range wch {
				select {
				case out <- watchMsg{wr: wr}:
				case <-ctx.Done():
					return
				}
			}
			select {
			case out <- watchMsg{closed: true}:
			case <-ctx.Done():
			}
		}()
	}
	return out
}

// loadOwnStatus recovers the orders and rollbacks this host already
// carried out from its last report: the agent may have restarted.
func (a *Agent) loadOwnStatus(ctx context.Context) error {
	var s HostStatus
	if _, found, err := getJSON(ctx, a.Client, a.Keys.statusKey(a.Name), &s); err != nil {
		return err
	} else if found {
		a.seq, a.flipSeq, a.rollout = max(a.seq, s.Seq), max(a.flipSeq, s.FlipSeq), s.Rollout
		if s.RefusedFor != "" {
			a.refused[s.RefusedFor] = s.Error
		}
	}
	return nil
}

func decode[T any](kv map[string][]byte, key string) (*T, error) {
	b, ok := kv[key]
	if !ok {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
	}
	return v, nil
}

func (a *Agent) view(kv map[string][]byte) (view, error) {
	var v view
	var errs [4]error
	v.desired, errs[0] = decode[desiredVersion](kv, a.Keys.desired())
	v.rollout, errs[1] = decode[RolloutState](kv, a.Keys.rollout())
	v.flip, errs[2] = decode[Flip](kv, a.Keys.flip())
	v.order, errs[3] = decode[Order](kv, a.Keys.Order(a.Name))
	return v, errors.Join(errs[:]...)
}

// step acts on the group's state until nothing is left to do; it
// returns true when it should be tried again later (an error etcd or
// the host may recover from).
func (a *Agent) step(ctx context.Context, kv map[string][]byte) (retry bool) {
	if a.dirty {
		if err := a.write(ctx, true); err != nil {
			return true
		}
	}
	for i := 0; i < 8 && ctx.Err() == nil; i++ {
		v, err := a.view(kv)
		if err != nil {
			return a.report(ctx, HostFailed, err) != nil
		}
		a.learn(v)
		did, err := a.act(ctx, v)
		if err != nil {
			a.logf("%v", err)
			if isEtcdErr(err) {
				return true
			}
		}
		if !did {
			return false
		}
	}
	return false
}

// retryable marks an error worth trying again: etcd was unreachable.
type retryable struct{ error }

// Unwrap returns the etcd error.
func (r retryable) Unwrap() error { return r.error }

func isEtcdErr(err error) bool {
	var r retryable
	return errors.As(err, &r)
}

// learn remembers the fleet version numbers of the hashes the view names.
func (a *Agent) learn(v view) {
	add := func(r *Ref) {
		if r != nil && r.Hash != "" && r.Version != 0 {
			a.versions[r.Hash] = r.Version
		}
	}
	if v.desired != nil {
		add(&v.desired.Ref)
	}
	if v.rollout != nil {
		add(&Ref{v.rollout.Version, v.rollout.Hash})
		add(v.rollout.Previous)
	}
	if v.flip != nil {
		add(&v.flip.Ref)
	}
	if v.order != nil {
		add(&v.order.Ref)
	}
}
