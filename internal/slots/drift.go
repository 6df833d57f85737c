package slots

import (
	"fmt"
	"sort"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// StructureDrift compares the dispatch rules and bookkeeping chains of
// the managed tables with the base chain specs the live slot recorded:
// base chains added, deleted or changed by hand, and chains added by hand.
// It reads nothing; comparing slot content with history is the caller's.
func StructureDrift(st *State) []string {
	var out []string
	for _, ts := range st.Managed() {
		specs := ts.BaseSpecs[ts.Active]
		for name, bc := range ts.Base {
			if _, ok := specs[name]; !ok {
				out = append(out, fmt.Sprintf("table %s: base chain %s was added by hand", ts.Key(), name))
				continue
			}
			if bc.Dispatch == nil {
				out = append(out, fmt.Sprintf("table %s: base chain %s holds %d rules instead of fwslot's dispatch", ts.Key(), name, len(bc.Rules)))
			}
			out = append(out, baseDrift(ts, bc, specs[name])...)
		}
		for name := range specs {
			if ts.Base[name] == nil {
				out = append(out, fmt.Sprintf("table %s: base chain %s was deleted", ts.Key(), name))
			}
		}
		for _, l := range ts.Legacy {
			out = append(out, fmt.Sprintf("table %s: chain %s was added by hand", ts.Key(), l))
		}
	}
	sort.Strings(out)
	return out
}

// baseDrift compares a live base chain with the spec of the live
// version: hook, type and flags, the policy the chain carries (what an
// empty chain does) and the dispatch's jump target and policy verdict.
func baseDrift(ts *TableState, bc *BaseChain, spec *BaseSpec) []string {
	var out []string
	where := fmt.Sprintf("table %s: base chain %s", ts.Key(), bc.Name)
	if !bc.Spec.Equal(spec) {
		out = append(out, where+": hook, priority, type or devices changed")
	}
	if bc.Spec.Policy != spec.Policy {
		out = append(out, fmt.Sprintf("%s: policy %s, want %s", where, verdictName(bc.Spec.Policy), verdictName(spec.Policy)))
	}
	if dp := bc.Dispatch; dp != nil {
		if want := names.InSlot(ts.Active, bc.Name); dp.Target != want {
			out = append(out, fmt.Sprintf("%s: jumps to %q, want %q", where, dp.Target, want))
		}
		if dp.Verdict != spec.Policy {
			out = append(out, fmt.Sprintf("%s: policy rule says %s, want %s", where, verdictName(dp.Verdict), verdictName(spec.Policy)))
		}
	}
	return out
}

func verdictName(v uint32) string {
	switch v {
	case nfnl.VerdictAccept:
		return "accept"
	case nfnl.VerdictDrop:
		return "drop"
	}
	return fmt.Sprintf("verdict %d", int32(v))
}
