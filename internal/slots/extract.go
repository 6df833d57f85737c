package slots

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// ExtractSlot reads what a slot holds in the target's managed tables,
// changes made by hand included, and returns it under the user's names as
// a compiled ruleset: what Compile would build from a file saying exactly
// that, so staging it again gives the same kernel objects. declared is the
// compiled form of the version the slot holds; it says which shared sets,
// objects and flowtables (one kernel copy for both slots) belong to it,
// besides those the slot's rules use. Rules added by hand to a base chain
// are kept in the user's chain: before fwslot's dispatch jump at its start,
// after fwslot's policy rule (where they never matched) at its end; notes
// say so.
func ExtractSlot(c *nfnl.Conn, st *State, slot names.Slot, declared *Ruleset) (*Ruleset, []string, error) {
	in := map[tkey]bool{}
	for _, ts := range st.Managed() {
		if _, ok := ts.Markers[slot]; ok {
			in[tkey{ts.Family, ts.Name}] = true
		}
	}
	kernel, err := ReadTables(c, func(f uint8, n string) bool { return in[tkey{f, n}] })
	if err != nil {
		return nil, nil, err
	}
	decl := map[string]*Table{}
	if declared != nil {
		for _, t := range declared.Tables {
			decl[t.Key()] = t
		}
	}
	out := &Ruleset{}
	var notes []string
	for _, kt := range kernel.Tables {
		t, n, err := extractTable(kt, slot, decl[kt.Key()])
		if err != nil {
			return nil, nil, fmt.Errorf("table %s: %w", kt.Key(), err)
		}
		out.Tables = append(out.Tables, t)
		notes = append(notes, n...)
	}
	return out, notes, nil
}

func extractTable(kt *Table, slot names.Slot, decl *Table) (*Table, []string, error) {
	rn := &renamer{chains: map[string]chainRef{}, sets: map[string]setRef{}, objs: map[ObjKey]string{}, renameOnly: true}
	bases := map[string]*Chain{}
	for _, ch := range kt.Chains {
		if s, u, ok := names.FromSlot(ch.Name); ok && s == slot {
			rn.chains[ch.Name] = chainRef{name: u}
		}
		if ch.Binding {
			// Named by the kernel, bound to the rule that jumps to
			// it: kept under that name, as a compile reads it.
			rn.chains[ch.Name] = chainRef{name: ch.Name}
		}
		if ch.Base != nil {
			bases[ch.Name] = ch
		}
	}
	for _, s := range kt.Sets {
		if sl, u, ok := names.FromSlot(s.Name); ok {
			if sl == slot {
				rn.sets[s.Name] = setRef{name: u}
			}
			continue
		}
		rn.sets[s.Name] = setRef{name: s.Name}
	}
	for _, o := range kt.Objs {
		if sl, u, ok := names.FromSlot(o.Name); ok && sl == slot {
			rn.objs[o.Key()] = u
		}
	}
	t := &Table{Family: kt.Family, Name: kt.Name, Attrs: kt.Attrs}
	var notes []string
	for _, ch := range kt.Chains {
		ref, ok := rn.chains[ch.Name]
		if !ok || (ch.Binding && !boundInSlot(kt, slot, ch.Name)) {
			continue
		}
		user := ref.name
		attrs, err := userAttrs(ch.Attrs)
		if err != nil {
			return nil, nil, err
		}
		uc := &Chain{Name: user, Attrs: attrs, Binding: ch.Binding}
		var before, after [][]byte
		if b := bases[user]; b != nil {
			spec := *b.Base
			var policy []byte
			before, policy, after = splitDispatch(b.Rules)
			if policy != nil {
				spec.Policy = policyOf(policy)
			}
			uc.Base = &spec
			if len(after) > 0 {
				notes = append(notes, fmt.Sprintf("%d rule(s) added by hand at the end of base chain %s %s came after fwslot's policy rule and never matched; the new version runs them at the end of the chain, as plain nft would", len(after), kt.Key(), user))
			}
		}
		for _, group := range [][][]byte{before, ch.Rules, after} {
			for i, r := range group {
				p, err := patchRule(r, rn)
				if err != nil {
					return nil, nil, fmt.Errorf("chain %s rule %d: %w", user, i+1, err)
				}
				uc.Rules = append(uc.Rules, p)
			}
		}
		t.Chains = append(t.Chains, uc)
	}
	used := usedNames(t)
	for _, s := range kt.Sets {
		ref, ok := rn.sets[s.Name]
		if !ok {
			continue // the other slot's
		}
		_, _, perSlot := names.FromSlot(s.Name)
		if !perSlot && !used[s.Name] && !declares(decl, "set", s.Name) {
			continue // anonymous or shared, and not this version's
		}
		us := &Set{Name: ref.name, Flags: s.Flags, Attrs: s.Attrs, Shared: !perSlot && !s.anonymous()}
		for _, e := range s.Elems {
			p, err := patchElem(e, rn, s.objType())
			if err != nil {
				return nil, nil, fmt.Errorf("set %s: %w", ref.name, err)
			}
			us.Elems = append(us.Elems, p)
		}
		t.Sets = append(t.Sets, us)
	}
	for _, o := range kt.Objs {
		sl, u, perSlot := names.FromSlot(o.Name)
		switch {
		case perSlot && sl != slot:
			continue
		case perSlot:
			t.Objs = append(t.Objs, &Obj{Name: u, Type: o.Type, Attrs: o.Attrs})
		case used[o.Name] || declares(decl, "obj", o.Name):
			t.Objs = append(t.Objs, &Obj{Name: o.Name, Type: o.Type, Attrs: o.Attrs, Shared: o.Shared})
		}
	}
	for _, f := range kt.Flowtables {
		if used[f.Name] || declares(decl, "flowtable", f.Name) {
			t.Flowtables = append(t.Flowtables, f)
		}
	}
	return t, notes, nil
}

// splitDispatch splits the rules of a kernel base chain around fwslot's
// dispatch pair: rules before the jump, the policy rule, rules after it.
func splitDispatch(rules [][]byte) (before [][]byte, policy []byte, after [][]byte) {
	state := 0
	for _, r := range rules {
		c := ruleCommentOf(r)
		switch {
		case strings.HasPrefix(c, names.TagPrefix+"jump"):
			state = 1
		case strings.HasPrefix(c, names.TagPrefix+"policy"):
			policy, state = r, 2
		case state == 0:
			before = append(before, r)
		default:
			after = append(after, r)
		}
	}
	return before, policy, after
}

// ruleCommentOf reads the comment of a rule's attributes.
func ruleCommentOf(rule []byte) string {
	ud, ok, err := findAttr(rule, nfnl.RuleUserdata)
	if err != nil || !ok {
		return ""
	}
	return commentOf(ud)
}

// usedNames lists the sets, objects and flowtables the rules of t name.
func usedNames(t *Table) map[string]bool {
	used := map[string]bool{}
	for _, c := range t.Chains {
		for _, r := range c.Rules {
			forEachExpr(r, func(name string, data []nfnl.Attr) {
				for _, a := range data {
					switch {
					case name == "lookup" && a.Kind() == nfnl.LookupSet,
						name == "dynset" && a.Kind() == nfnl.DynsetSetName,
						name == "objref" && (a.Kind() == nfnl.ObjrefImmName || a.Kind() == nfnl.ObjrefSetName),
						name == "flow_offload" && a.Kind() == 1: // NFTA_FLOW_TABLE_NAME
						used[nfnl.Str(a.Data)] = true
					}
				}
			})
		}
	}
	return used
}

// declares reports whether the version's table declares a set, object or
// flowtable of that name.
func declares(t *Table, kind, name string) bool {
	if t == nil {
		return false
	}
	switch kind {
	case "set":
		for _, s := range t.Sets {
			if s.Name == name && !s.anonymous() {
				return true
			}
		}
	case "obj":
		for _, o := range t.Objs {
			if o.Name == name {
				return true
			}
		}
	case "flowtable":
		for _, f := range t.Flowtables {
			if f.Name == name {
				return true
			}
		}
	}
	return false
}

// boundInSlot reports whether a rule of slot's chains jumps to the binding
// chain name (chain names travel NUL-terminated in the verdict attribute).
func boundInSlot(kt *Table, slot names.Slot, name string) bool {
	ref := []byte(name + "\x00")
	for _, ch := range kt.Chains {
		if s, _, ok := names.FromSlot(ch.Name); !ok || s != slot {
			continue
		}
		for _, r := range ch.Rules {
			if bytes.Contains(r, ref) {
				return true
			}
		}
	}
	return false
}
