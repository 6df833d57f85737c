package fleetdemo

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/fwslot/fwslot/fleet"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// settleTimeout bounds how long table waits for the hosts to report.
const settleTimeout = 2 * time.Minute

// WaitStatuses waits until every host of the lab reported a status that
// ok accepts, following the status keys with a watch.
func (l *Lab) WaitStatuses(ctx context.Context, ok func(fleet.HostStatus) bool) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	pending := map[string]bool{}
	for _, h := range l.Hosts {
		pending[h.Name] = true
	}
	see := func(v []byte) {
		var s fleet.HostStatus
		if json.Unmarshal(v, &s) == nil {
			if pending[s.Host] && ok(s) {
				delete(pending, s.Host)
			}
		}
	}
	r, err := l.Client.Get(ctx, l.Keys.Statuses(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read host statuses: %w", err)
	}
	for _, kv := range r.Kvs {
		see(kv.Value)
	}
	wch := l.Client.Watch(ctx, l.Keys.Statuses(), clientv3.WithPrefix(), clientv3.WithRev(r.Header.Revision+1))
	for len(pending) > 0 {
		wr, open := <-wch
		if !open || wr.Err() != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("hosts %v did not report the expected state: %w", keys(pending), ctx.Err())
			}
			return fmt.Errorf("watch host statuses: %v", wr.Err())
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut {
				see(ev.Kv.Value)
			}
		}
	}
	return nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// table waits for the hosts to settle, then prints what
// `fwslot fleet status --group G` prints.
func (d *run) table(ctx context.Context, ok func(fleet.HostStatus) bool) error {
	if err := d.lab.WaitStatuses(ctx, ok); err != nil {
		return err
	}
	gs, err := fleet.Status(ctx, d.lab.Client, d.lab.Keys)
	if err != nil {
		return err
	}
	desired := "none"
	if gs.Desired != nil {
		desired = d.ref(gs.Desired)
	}
	d.say("$ fwslot fleet status --group %s", gs.Group)
	d.say("group %s: desired %s", gs.Group, desired)
	if r := gs.Rollout; r != nil {
		d.say("rollout: %s (wave %d)", r.State, r.Wave)
	}
	tw := tabwriter.NewWriter(d.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    HOST\tPRODUCTION\tSTAGING\tSTATE\tERROR")
	for _, h := range gs.Hosts {
		e := h.Error
		if len(e) > 90 {
			e = e[:87] + "..."
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", h.Host, d.ref(h.Production), d.ref(h.Staging), h.State, e)
	}
	return tw.Flush()
}

func (d *run) ref(r *fleet.Ref) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("v%d (%s)", r.Version, r.Hash[:min(8, len(r.Hash))])
}
