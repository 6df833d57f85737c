package main

import (
	"bytes"
	"testing"

	"github.com/fwslot/fwslot/slots"
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
