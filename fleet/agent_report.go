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
	return a.write(ctx)
}

func (a *Agent) reportRefused(ctx context.Context, hash string, cause error) error {
	a.state, a.lastErr, a.refusedFor = HostRefused, cause.Error(), hash
	a.logf("refused: %v", cause)
	return a.write(ctx)
}

func (a *Agent) ref(hash string) *Ref {
	if hash == "" {
		return nil
	}
	return &Ref{Version: a.versions[hash], Hash: hash}
}

func (a *Agent) write(ctx context.Context) error {
	s := HostStatus{Host: a.Name, State: a.state, Rollout: a.rollout, Seq: a.seq, FlipSeq: a.flipSeq,
		Error: a.lastErr, LastSeen: time.Now().UTC(), RefusedFor: a.refusedFor}
	st, err := a.Local.State(ctx)
	if err != nil {
		s.Error = joinText(s.Error, "read local state: "+err.Error())
	} else {
		s.Production, s.Staging, s.Pending = a.ref(st.Production), a.ref(st.Staging), st.Pending
		if a.Metrics != nil {
			a.Metrics.SetVersions(int64(a.versions[st.Production]), int64(a.versions[st.Staging]))
		}
	}
	if _, err := a.Client.Put(ctx, a.Keys.Status(a.Name), mustJSON(s)); err != nil {
		a.dirty = true
		return retryable{err}
	}
	a.dirty = false
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
func (a *Agent) refresh(ctx context.Context) {
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
	if err := a.write(ctx); err != nil {
		a.logf("report status: %v", err)
	}
}
