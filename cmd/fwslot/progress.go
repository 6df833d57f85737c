package main

import (
	"io"
	"time"

	prog "github.com/fwslot/fwslot/internal/progress"
	"github.com/fwslot/fwslot/internal/slots"
)

// newProgress returns the progress line of a long command on stderr: nil
// (nothing shown) with --json or when stderr is not a terminal.
func newProgress(g *globals, stderr io.Writer) *prog.Reporter {
	return prog.New(stderr, prog.Enabled(g.json, prog.IsTerminal(stderr)))
}

// loadSteps says, for each phase of a load that ends, what runs next and
// how far the load then is (by the share of time phases take at 100k
// rules and at a 1M-element set). Phases that run alongside others
// (encode, history write) move nothing.
var loadSteps = map[string]struct {
	next string
	pct  int
}{
	slots.PhaseSource:    {"reading the target's state", 3},
	slots.PhaseState:     {"compiling (nft -f in a private namespace)", 5},
	slots.PhaseIfaces:    {"compiling (nft -f in a private namespace)", 6},
	slots.PhaseNetns:     {"compiling (nft -f in a private namespace)", 8},
	slots.PhaseNft:       {"reading back what nft built", 45},
	slots.PhaseReadBack:  {"checks", 55},
	slots.PhaseFastElems: {"compiling (nft -f in a private namespace)", 8},
	slots.PhaseCheck:     {"building the batch", 60},
	slots.PhaseBatch:     {"staging: one transaction", 70},
	slots.PhaseCommit:    {"recording in history", 95},
}

// loadProgress returns a slots.Timer that moves rep through a load's
// phases; nil when rep is nil.
func loadProgress(rep *prog.Reporter) slots.Timer {
	if rep == nil {
		return nil
	}
	rep.Set("reading the ruleset", 0)
	return func(phase string, _ time.Duration) {
		if s, ok := loadSteps[phase]; ok {
			rep.Set(s.next, s.pct)
		}
	}
}

// stepProgress returns a function that moves rep to a phase and a
// percentage (session.RestoreOptions.Progress, diff's phases); nil when
// rep is nil, so that nothing is reported.
func stepProgress(rep *prog.Reporter) func(phase string, pct int) {
	if rep == nil {
		return nil
	}
	return rep.Set
}

// diffSteps moves a diff's progress line: each side resolved (read from
// history, or a file compiled), the comparison, the probes.
type diffSteps struct {
	set func(phase string, pct int)
	// probes: the probes run after the comparison and take its share.
	probes bool
}

// diffProgress returns the steps of a diff on rep (which may be nil).
func diffProgress(rep *prog.Reporter, probes bool) diffSteps {
	set := stepProgress(rep)
	if set == nil {
		set = func(string, int) {}
	}
	return diffSteps{set: set, probes: probes}
}

// side reports that side i (0 or 1) of the diff, spec, is being resolved.
func (d diffSteps) side(i int, spec string) {
	end := 80
	if d.probes {
		end = 40
	}
	d.set("reading "+spec+" (a file is compiled)", i*end/2)
}
