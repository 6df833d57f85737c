package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// GroupStatus is `fwslot fleet status --json`.
type GroupStatus struct {
	Group   string       `json:"group"`
	Desired *Ref         `json:"desired"`
	Rollout *RolloutView `json:"rollout"`
	Hosts   []HostView   `json:"hosts"`
}

// RolloutView is the part of the rollout status shows.
type RolloutView struct {
	State  string    `json:"state"`
	Wave   int       `json:"wave"`
	Failed []Failure `json:"failed"`
}

// HostView is one host in GroupStatus. State is "offline" when the
// agent's liveness lease has expired.
type HostView struct {
	Host       string    `json:"host"`
	Production *Ref      `json:"production"`
	Staging    *Ref      `json:"staging"`
	State      string    `json:"state"`
	LastSeen   time.Time `json:"last_seen"`
	Error      string    `json:"error"`
}

// Status reads the group's state and every host's report, in one
// consistent read of etcd.
func Status(ctx context.Context, c *clientv3.Client, k Keys) (*GroupStatus, error) {
	r, err := c.Get(ctx, k.group(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read group %s: %w", k.Group, err)
	}
	gs := &GroupStatus{Group: k.Group, Hosts: []HostView{}}
	alive := map[string]bool{}
	hosts := map[string]*HostView{}
	for _, kv := range r.Kvs {
		key := string(kv.Key)
		var err error
		switch {
		case key == k.desired():
			var d desiredVersion
			err = json.Unmarshal(kv.Value, &d)
			gs.Desired = &d.Ref
		case key == k.rollout():
			var st RolloutState
			err = json.Unmarshal(kv.Value, &st)
			gs.Rollout = &RolloutView{State: st.State, Wave: st.Wave + 1, Failed: st.Failed}
			if gs.Rollout.Wave > len(st.Plan) {
				gs.Rollout.Wave = len(st.Plan)
			}
		case hasPrefix(key, k.Alives()):
			alive[hostOf(key)] = true
		case hasPrefix(key, k.Statuses()):
			var s HostStatus
			err = json.Unmarshal(kv.Value, &s)
			hosts[hostOf(key)] = &HostView{Host: hostOf(key), Production: s.Production, Staging: s.Staging, State: s.State, LastSeen: s.LastSeen, Error: s.Error}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
		}
	}
	for h := range alive {
		if hosts[h] == nil {
			hosts[h] = &HostView{Host: h, State: "starting"}
		}
	}
	for h, v := range hosts {
		if !alive[h] {
			v.State = "offline"
		}
		gs.Hosts = append(gs.Hosts, *v)
	}
	sort.Slice(gs.Hosts, func(i, j int) bool { return gs.Hosts[i].Host < gs.Hosts[j].Host })
	if gs.Rollout != nil && gs.Rollout.Failed == nil {
		gs.Rollout.Failed = []Failure{}
	}
	return gs, nil
}

func hasPrefix(s, p string) bool { return len(s) > len(p) && s[:len(p)] == p }
