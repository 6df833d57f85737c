package fleet

import (
	"context"
	"time"
)

// report writes the host's status: what runs and is staged, by fleet
// version, and the state the agent is in. A status that cannot be
// written is returned as retryable (etcd away); the agent writes it
// again with its next report.
func (a *Agent) report(ctx context.Context, state string, cause error) error {
	a.state, a.lastErr, a.refusedFor = state, "", ""
	if cause != nil {
		a.lastErr = cause.Error()
		a.logf("%s: %v", state, cause)
	}
	return a.write(ctx, true)
}

func (a *Agent) reportRefused(ctx context.Context, hash string, cause error) error {
	a.state, a.lastErr, a.refusedFor = HostRefused, cause.Error(), hash
	a.logf("refused: %v", cause)
	return a.write(ctx, true)
}

func (a *Agent) ref(hash string) *Ref {
	if hash == "" {
		return nil
	}
	return &Ref{Version: a.versions[hash], Hash: hash}
}

// seenEvery is how many heartbeats may pass without a write while
// nothing changes: last_seen stays fresh within a minute, and an idle
// fleet of 10,000 hosts writes about 170 statuses a second, not 1,000.
const seenEvery = 6

// write puts the status; unless force, a status that only differs in
// last_seen is written every seenEvery heartbeats.
func (a *Agent) write(ctx context.Context, force bool) error {
	s := HostStatus{Host: a.Name, State: a.state, Rollout: a.rollout, Seq: a.seq, FlipSeq: a.flipSeq,
		Error: a.lastErr, LastSeen: time.Now().UTC(), RefusedFor: a.refusedFor}
	st, err := LocalState{}, error(nil)
	if a.known != nil {
		st, a.known = *a.known, nil
	} else {
		st, err = a.Local.State(ctx)
	}
	if err != nil {
		s.Error = joinText(s.Error, "read local state: "+err.Error())
	} else {
		s.Production, s.Staging, s.Pending = a.ref(st.Production), a.ref(st.Staging), st.Pending
		if a.Metrics != nil {
			a.Metrics.SetVersions(int64(a.versions[st.Production]), int64(a.versions[st.Staging]))
		}
	}
	same := s
	same.LastSeen = time.Time{}
	content := mustJSON(same)
	if !force && !a.dirty && content == a.written && time.Since(a.writtenAt) < seenEvery*a.Heartbeat {
		return nil
	}
	if _, err := a.Client.Put(ctx, a.Keys.statusKey(a.Name), mustJSON(s)); err != nil {
		a.dirty = true
		return retryable{err}
	}
	a.dirty, a.written, a.writtenAt = false, content, time.Now()
	return nil
}

func joinText(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// refresh rewrites the status from what the host runs now. A healthy
// host whose swap went back (its confirm deadline passed, the watchdog
// reverted it) reports reverted.
func (a *Agent) refresh(ctx context.Context, force bool) {
	if a.state == HostHealthy && a.swappedTo != "" {
		if st, err := a.Local.State(ctx); err == nil && st.Production != a.swappedTo {
			a.state, a.lastErr = HostReverted, "the confirm deadline passed without a confirmation: the host reverted by itself"
			if a.Metrics != nil {
				a.Metrics.Reverts.Inc()
			}
			a.logf("%s", a.lastErr)
		}
	}
	if a.state == "" {
		a.state = HostIdle
	}
	if err := a.write(ctx, force); err != nil {
		a.logf("report status: %v", err)
	}
}
