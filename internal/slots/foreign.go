package slots

import (
	"fmt"
	"sort"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// Foreign lists, in words, what making slot to live deletes that fwslot
// did not write: base chains that neither slot's version declares (another
// tool's chain added to a managed table), rules added by hand to base
// chains, and regular chains outside the slots. When staged is the
// compiled form of the version that is about to be restaged into slot to,
// objects added by hand to that slot are listed too. Tables that still run
// their pre-fwslot content (takeover pending) are left out: that content is
// a version in history. Call it before Stage and Flip change st.
func Foreign(st *State, to names.Slot, staged *Ruleset) []string {
	var out []string
	for _, t := range st.Managed() {
		if t.Takeover {
			continue
		}
		declared := func(n string) bool {
			for _, specs := range t.BaseSpecs {
				if _, ok := specs[n]; ok {
					return true
				}
			}
			return false
		}
		for n, bc := range t.Base {
			switch {
			case !declared(n):
				out = append(out, fmt.Sprintf("table %s: base chain %s (%d rules), which no version in the slots declares", t.Key(), n, len(bc.Rules)))
			case bc.Dispatch == nil && len(bc.Rules) > 0:
				out = append(out, fmt.Sprintf("table %s: base chain %s holds %d rules where fwslot wrote its 2 dispatch rules; all are replaced", t.Key(), n, len(bc.Rules)))
			}
		}
		for _, c := range t.Legacy {
			out = append(out, fmt.Sprintf("table %s: chain %s, which no version declares", t.Key(), c))
		}
		if staged != nil {
			out = append(out, foreignInSlot(t, to, staged)...)
		}
	}
	sort.Strings(out)
	return out
}

// foreignInSlot lists the objects of slot to in table t that the version
// staged does not declare: restaging deletes them with the slot.
func foreignInSlot(t *TableState, to names.Slot, staged *Ruleset) []string {
	chains := map[string]bool{names.Marker(to): true}
	others := map[string]bool{}
	objs := map[ObjKey]bool{}
	for _, tab := range staged.Tables {
		if tab.Family != t.Family || tab.Name != t.Name {
			continue
		}
		for _, c := range tab.Chains {
			chains[names.InSlot(to, c.Name)] = true
		}
		for _, s := range tab.Sets {
			others[names.InSlot(to, s.Name)] = true
		}
		for _, o := range tab.Objs {
			objs[ObjKey{Type: o.Type, Name: names.InSlot(to, o.Name)}] = true
		}
	}
	var out []string
	for _, c := range t.SlotChains[to] {
		if !chains[c] {
			out = append(out, fmt.Sprintf("table %s: chain %s, added by hand to the slot", t.Key(), c))
		}
	}
	for _, s := range t.SlotSets[to] {
		if !others[s] {
			out = append(out, fmt.Sprintf("table %s: set %s, added by hand to the slot", t.Key(), s))
		}
	}
	for _, o := range t.SlotObjs[to] {
		if !objs[o] {
			out = append(out, fmt.Sprintf("table %s: %s %s, added by hand to the slot", t.Key(), nfnl.ObjTypeName(o.Type), o.Name))
		}
	}
	return out
}
