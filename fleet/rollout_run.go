package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// run carries the rollout on from its recorded wave and phase. rev is the
// rollout key's ModRevision that st was read at.
func (p *Pusher) run(ctx context.Context, st *RolloutState, rev int64) (*RolloutState, error) {
	for st.Wave < len(st.Plan) {
		wave := st.Plan[st.Wave]
		if st.Phase != phaseConfirm {
			p.logf("wave %d of %d: swapping %v", st.Wave+1, len(st.Plan), wave)
			if stop, err := p.step(ctx, st, &rev, wave, ActionSwap); stop {
				return st, err
			}
			st.Phase = phaseConfirm
			if err := p.save(ctx, st, &rev); err != nil {
				return st, err
			}
		}
		ok := healthyOf(wave, st.Failed)
		p.logf("wave %d of %d: confirming %v", st.Wave+1, len(st.Plan), ok)
		if stop, err := p.step(ctx, st, &rev, ok, ActionConfirm); stop {
			return st, err
		}
		st.Phase, st.Wave = phaseSwap, st.Wave+1
		if err := p.save(ctx, st, &rev); err != nil {
			return st, err
		}
	}
	st.State = StateSucceeded
	if err := p.save(ctx, st, &rev); err != nil {
		return st, err
	}
	p.logf("version %d runs confirmed on every host of the rollout", st.Version)
	return st, nil
}

// step orders action to hosts, waits for their reports and adds the
// hosts that failed to st.Failed. When the failures pass MaxFailures it
// fails the rollout (fail) and reports stop, with fail's error; stop
// with err also when ordering or waiting failed.
func (p *Pusher) step(ctx context.Context, st *RolloutState, rev *int64, hosts []string, action string) (stop bool, err error) {
	fails, err := p.orderAndWait(ctx, st, rev, hosts, action, st.Ref())
	if err != nil {
		return true, err
	}
	if len(st.Failed)+len(fails) > st.MaxFailures {
		return true, p.fail(ctx, st, rev, fails)
	}
	st.Failed = append(st.Failed, fails...)
	return false, nil
}

func healthyOf(hosts []string, failed []Failure) []string {
	bad := map[string]bool{}
	for _, f := range failed {
		bad[f.Host] = true
	}
	var out []string
	for _, h := range hosts {
		if !bad[h] {
			out = append(out, h)
		}
	}
	return out
}

// fail stops the rollout: every host that may run the new version (this
// wave and the ones before) goes back to the previous version, the group
// desires the previous version again, and the rollout is marked failed.
func (p *Pusher) fail(ctx context.Context, st *RolloutState, rev *int64, fails []Failure) error {
	st.Failed = append(st.Failed, fails...)
	var back []string
	for _, w := range st.Plan[:st.Wave+1] {
		back = append(back, w...)
	}
	prev := Ref{}
	if st.Previous != nil {
		prev = *st.Previous
	}
	p.logf("wave %d failed on %d host(s); reverting %v to version %d", st.Wave+1, len(fails), back, prev.Version)
	revFails, err := p.orderAndWait(ctx, st, rev, back, ActionRevert, prev)
	if err != nil {
		return err
	}
	for _, f := range revFails {
		f.Reason = "revert failed: " + f.Reason
		st.Failed = append(st.Failed, f)
	}
	st.State = StateFailed
	op := clientv3.OpDelete(p.Keys.desired())
	if st.Previous != nil {
		op = clientv3.OpPut(p.Keys.desired(), mustJSON(desiredVersion{Ref: prev, Rollout: st.ID}))
	}
	if err := p.save(ctx, st, rev, op); err != nil {
		return err
	}
	return &FailedError{Version: st.Version, Wave: st.Wave + 1, Failed: fails}
}

// save writes st if the rollout key is still at *rev.
func (p *Pusher) save(ctx context.Context, st *RolloutState, rev *int64, ops ...clientv3.Op) error {
	st.Updated = time.Now().UTC()
	ops = append([]clientv3.Op{clientv3.OpPut(p.Keys.rollout(), mustJSON(st))}, ops...)
	t, err := p.Client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(p.Keys.rollout()), "=", *rev)).Then(ops...).Commit()
	if err != nil {
		return p.interrupted(st, fmt.Errorf("record the rollout: %w", err))
	}
	if !t.Succeeded {
		return p.conflict(ctx, st)
	}
	*rev = t.Header.Revision
	return nil
}

func (p *Pusher) interrupted(st *RolloutState, err error) error {
	return fmt.Errorf("%w; the rollout of version %d stays recorded at wave %d (%s): `fwslot fleet resume --group %s` carries on", err, st.Version, st.Wave+1, st.Phase, p.Keys.Group)
}

func (p *Pusher) conflict(ctx context.Context, st *RolloutState) error {
	var cur RolloutState
	if _, _, err := getJSON(ctx, p.Client, p.Keys.rollout(), &cur); err == nil && cur.ID == st.ID {
		return fmt.Errorf("%w: the rollout of version %d is now %s", ErrConflict, st.Version, cur.State)
	}
	return fmt.Errorf("%w: the rollout of version %d was replaced", ErrConflict, st.Version)
}

// outcome says whether a host's status settles an order: done, and if so
// a failure reason ("" for success).
type outcome func(s HostStatus) (done bool, reason string)

func orderOutcome(rollout string, seq uint64, want string) outcome {
	return func(s HostStatus) (bool, string) {
		if s.Seq < seq || s.Rollout != rollout {
			return false, ""
		}
		if s.State == want {
			return true, ""
		}
		reason := s.Error
		if reason == "" {
			reason = "state " + s.State
		}
		return true, reason
	}
}

// orderAndWait writes one order to each host (in the same transaction as
// a check that the rollout is unchanged) and waits until every host
// reported the outcome or the confirm window passed.
func (p *Pusher) orderAndWait(ctx context.Context, st *RolloutState, rev *int64, hosts []string, action string, ref Ref) ([]Failure, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	r, err := p.Client.Get(ctx, p.Keys.orders(), clientv3.WithPrefix())
	if err != nil {
		return nil, p.interrupted(st, fmt.Errorf("read orders: %w", err))
	}
	last := map[string]uint64{}
	for _, kv := range r.Kvs {
		var o Order
		if json.Unmarshal(kv.Value, &o) == nil {
			last[string(kv.Key)] = o.Seq
		}
	}
	want := map[string]outcome{}
	ops := []clientv3.Op{}
	state := map[string]string{ActionSwap: HostHealthy, ActionConfirm: HostConfirmed, ActionRevert: HostReverted}[action]
	for _, h := range hosts {
		o := Order{Rollout: st.ID, Seq: last[p.Keys.Order(h)] + 1, Action: action, Ref: ref, Confirm: st.Confirm}
		ops = append(ops, clientv3.OpPut(p.Keys.Order(h), mustJSON(o)))
		want[h] = orderOutcome(st.ID, o.Seq, state)
	}
	t, err := p.Client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(p.Keys.rollout()), "=", *rev)).Then(ops...).Commit()
	if err != nil {
		return nil, p.interrupted(st, fmt.Errorf("write %s orders: %w", action, err))
	}
	if !t.Succeeded {
		return nil, p.conflict(ctx, st)
	}
	fails, err := waitHosts(ctx, p.Client, p.Keys, t.Header.Revision, want, st.Confirm+10*time.Second, *rev)
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, p.conflict(ctx, st)
		}
		return nil, p.interrupted(st, err)
	}
	return fails, nil
}

// waitHosts waits until every host in want reported a status that settles
// it, and returns the hosts that failed and those that did not answer
// within timeout. With rolloutRev != 0 it stops with ErrConflict when the
// rollout key changes (a fleet rollback).
func waitHosts(ctx context.Context, c *clientv3.Client, k Keys, fromRev int64, want map[string]outcome, timeout time.Duration, rolloutRev int64) ([]Failure, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var fails []Failure
	settle := func(value []byte) {
		var s HostStatus
		if json.Unmarshal(value, &s) != nil {
			return
		}
		if o, ok := want[s.Host]; ok {
			if done, reason := o(s); done {
				delete(want, s.Host)
				if reason != "" {
					fails = append(fails, Failure{Host: s.Host, Reason: reason})
				}
			}
		}
	}
	r, err := c.Get(ctx, k.Statuses(), clientv3.WithPrefix(), clientv3.WithRev(fromRev))
	if err != nil {
		return nil, fmt.Errorf("read host statuses: %w", err)
	}
	for _, kv := range r.Kvs {
		settle(kv.Value)
	}
	wch := c.Watch(clientv3.WithRequireLeader(ctx), k.group(), clientv3.WithPrefix(), clientv3.WithRev(fromRev+1))
	for len(want) > 0 {
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return append(fails, missing(want, timeout)...), nil
			}
			return nil, ctx.Err()
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				if ctx.Err() == nil {
					return nil, fmt.Errorf("watch host statuses: %v", wr.Err())
				}
				continue
			}
			for _, ev := range wr.Events {
				key := string(ev.Kv.Key)
				switch {
				case key == k.rollout() && rolloutRev != 0 && ev.Kv.ModRevision != rolloutRev:
					return nil, ErrConflict
				case ev.Type == clientv3.EventTypePut && len(key) > len(k.Statuses()) && key[:len(k.Statuses())] == k.Statuses():
					settle(ev.Kv.Value)
				}
			}
		}
	}
	return fails, nil
}

func missing(want map[string]outcome, timeout time.Duration) []Failure {
	var out []Failure
	for h := range want {
		out = append(out, Failure{Host: h, Reason: fmt.Sprintf("no answer within %v (agent down or cut off from etcd); its own deadline reverts an unconfirmed swap", timeout)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}
