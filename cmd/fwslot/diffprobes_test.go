package main

import (
	"errors"
	"testing"

	"github.com/fwslot/fwslot/probe"
)

// TestChangedProbes: `fwslot diff --probes` lists a probe whose verdict or
// outcome differs, and always one whose fate a twin could not tell (its
// error shown), even when both sides' empty verdicts agree: silence is not
// agreement.
func TestChangedProbes(t *testing.T) {
	unknown := probe.Result{Outcome: probe.Unknown, Err: errors.New("its fate is unknown")}
	accept := probe.Result{Got: probe.Accept, Outcome: probe.Delivered}
	drop := probe.Result{Got: probe.Drop, Outcome: probe.Dropped}
	cases := []struct {
		name string
		a, b probe.Result
		want []string // the two sides' texts, or nil for not listed
	}{
		{"same verdict", accept, accept, nil},
		{"verdict changes", accept, drop, []string{"accept (delivered)", "drop (dropped)"}},
		{"unknown on both sides", unknown, unknown, []string{"error: its fate is unknown", "error: its fate is unknown"}},
		{"unknown on one side", accept, unknown, []string{"accept (delivered)", "error: its fate is unknown"}},
	}
	for _, c := range cases {
		ps := []probe.Probe{{Text: "accept tcp 203.0.113.9 -> 192.0.2.10:22 in eth0"}}
		got := changedProbes(ps, probe.Report{Results: []probe.Result{c.a}}, probe.Report{Results: []probe.Result{c.b}})
		switch {
		case c.want == nil && len(got) != 0:
			t.Errorf("%s: listed %+v, want nothing", c.name, got)
		case c.want != nil && (len(got) != 1 || got[0].A != c.want[0] || got[0].B != c.want[1] || got[0].Probe != ps[0].Text):
			t.Errorf("%s: got %+v, want one change %q -> %q", c.name, got, c.want[0], c.want[1])
		}
	}
}
