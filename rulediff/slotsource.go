package rulediff

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fwslot/fwslot/internal/names"
)

// slotSource turns `nft -s list table` output of tables in fwslot's layout
// into nft source of one slot as the user would write it: the other slot's
// chains, sets and objects go, each base chain gets the slot's rules and the
// user's policy back, names lose their per-slot prefix. Rules added by
// hand to a base chain stay: those before fwslot's dispatch jump first,
// those after its policy rule (which never matched) at the end, where plain
// nft would have run them; notes say so. Tables not in the layout are
// left out, and those keep refuses (keep nil keeps all).
func slotSource(listing string, slot names.Slot, keep func(key string) bool) (string, []string, error) {
	rs, err := Parse(listing)
	if err != nil {
		return "", nil, err
	}
	var notes []string
	var kept []*table
	for _, t := range rs.tables {
		byName := map[string]*object{}
		for _, o := range t.Objects {
			byName[o.Kind+" "+o.Name] = o
		}
		if byName["chain "+names.MetaChain] == nil || (keep != nil && !keep(t.key())) {
			continue
		}
		var objs []*object
		for _, o := range t.Objects {
			s, _, perSlot := names.FromSlot(o.Name)
			if perSlot && s != slot {
				continue
			}
			if o.Kind == "chain" && !perSlot && !isLayoutChain(o.Name) && (len(o.Lines) == 0 || !strings.HasPrefix(o.Lines[0], "type ")) {
				continue // a regular chain made by hand outside the slots
			}
			if o.Kind == "chain" && len(o.Lines) > 0 && strings.HasPrefix(o.Lines[0], "type ") {
				copyChain := byName["chain "+names.InSlot(slot, o.Name)]
				if copyChain == nil {
					continue // a base chain of the other slot's version only
				}
				n := rebuildBase(t, o, copyChain)
				notes = append(notes, n...)
			}
			objs = append(objs, o)
		}
		t.Objects = objs
		kept = append(kept, t)
	}
	rs.tables = kept
	stripSlots(rs)
	// Kernel order depends on when objects were created (a hand change,
	// a restage); sorted, the same content always renders the same.
	// nft resolves references to chains declared further down.
	rs.sortAll()
	return rs.source(), notes, nil
}

// isLayoutChain reports whether a chain is fwslot's meta or marker chain.
func isLayoutChain(name string) bool {
	return name == names.MetaChain || name == names.Marker(names.SlotA) || name == names.Marker(names.SlotB)
}

// rebuildBase replaces fwslot's dispatch pair in base chain o by the rules
// of its slot copy and the user's policy, keeping rules added by hand.
func rebuildBase(t *table, o, copyChain *object) []string {
	head := o.Lines[0]
	var before, after, notes []string
	state := 0 // 0 before the jump, 1 between jump and policy, 2 after
	for _, l := range o.Lines[1:] {
		verdict, comment, tagged := strings.Cut(l, " comment \""+names.TagPrefix)
		switch {
		case tagged && strings.HasPrefix(comment, "jump"):
			state = 1
		case tagged && strings.HasPrefix(comment, "policy"):
			if i := strings.Index(head, "policy "); i >= 0 {
				head = head[:i] + "policy " + strings.TrimSpace(verdict) + ";"
			}
			state = 2
		case state == 0:
			before = append(before, l)
		default:
			after = append(after, l)
		}
	}
	if len(after) > 0 {
		notes = append(notes, fmt.Sprintf("%d rule(s) added by hand at the end of base chain %s %s came after fwslot's policy rule and never matched; the new version runs them at the end of the chain, as plain nft would", len(after), t.key(), o.Name))
	}
	lines := append([]string{head}, before...)
	for _, l := range copyChain.Lines {
		if !strings.HasPrefix(l, "comment \""+names.TagPrefix) {
			lines = append(lines, l)
		}
	}
	o.Lines = append(lines, after...)
	return notes
}

// source prints the ruleset as nft source: like String, with each set's
// elements back in one `elements = { ... }` statement, sorted (the
// kernel's order of hash set elements varies).
func (rs *Ruleset) source() string {
	return rs.print(func(lines []string) []string {
		var out, elems []string
		for _, l := range lines {
			if e, ok := strings.CutPrefix(l, "element "); ok {
				elems = append(elems, e)
				continue
			}
			out = append(out, l)
		}
		if len(elems) > 0 {
			sort.Strings(elems)
			out = append(out, "elements = { "+strings.Join(elems, ",\n\t\t\t     ")+" }")
		}
		return out
	})
}
