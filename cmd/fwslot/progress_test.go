package main

import (
	"bytes"
	"testing"

	"github.com/fwslot/fwslot/internal/slots"
)

// TestLoadProgressSteps: every phase a load reports moves the progress
// line except those that run alongside others and the last, and a pipe (not a
// terminal) or --json shows none.
func TestLoadProgressSteps(t *testing.T) {
	for _, p := range slots.LoadPhases {
		_, ok := loadSteps[p]
		// The last phase has no next one.
		alongside := p == slots.PhaseEncode || p == slots.PhaseHistory || p == slots.PhaseRecord
		if ok == alongside {
			t.Errorf("phase %q: step %v, runs alongside others %v", p, ok, alongside)
		}
	}
	// In the order Load reports them, the percentage only grows.
	last := 0
	for _, p := range []string{slots.PhaseSource, slots.PhaseState, slots.PhaseIfaces, slots.PhaseNetns, slots.PhaseNft,
		slots.PhaseReadBack, slots.PhaseCheck, slots.PhaseBatch, slots.PhaseCommit} {
		if s := loadSteps[p]; s.pct < last {
			t.Errorf("after %q the load goes back to %d%% from %d%%", p, s.pct, last)
		} else {
			last = s.pct
		}
	}
	for _, json := range []bool{false, true} {
		if r := newProgress(&globals{json: json}, &bytes.Buffer{}); r != nil {
			t.Errorf("json=%v, stderr a buffer: progress shown", json)
		}
		if loadProgress(nil) != nil {
			t.Error("a nil reporter gives a timer")
		}
	}
}

// TestDiffRestoreProgressSteps: diff's steps only move forward, with and
// without probes, and a nil reporter (--json, not a terminal) gives no
// progress function to restore and a silent one to diff.
func TestDiffRestoreProgressSteps(t *testing.T) {
	if stepProgress(nil) != nil {
		t.Error("a nil reporter gives restore a progress function")
	}
	for _, probes := range []bool{false, true} {
		var pcts []int
		d := diffProgress(nil, probes)
		d.set("silent", 1) // nil reporter: must not panic
		d.set = func(_ string, pct int) { pcts = append(pcts, pct) }
		d.side(0, "production")
		d.side(1, "staging")
		d.set("comparing", 80)
		for i := 1; i < len(pcts); i++ {
			if pcts[i] <= pcts[i-1] {
				t.Errorf("probes=%v: steps %v go back or stand still", probes, pcts)
			}
		}
	}
}
