package slots

import (
	"fmt"
	"sort"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// maxElemBytes bounds the elements of one NEWSETELEM message: the nested
// element list carries a 16-bit length.
const maxElemBytes = 48 << 10

// Stage adds to b the messages that replace the content of slot in every
// table with rs, tagged with tag. Tables that rs declares and the kernel
// lacks are created, with their meta rule naming newActive as the active
// slot. The slot must not be live: Stage refuses a slot that a dispatch
// rule points to. st is updated to describe the kernel after the batch.
func Stage(b *nfnl.Batch, st *State, rs *Ruleset, slot names.Slot, tag Tag, newActive names.Slot) error {
	for _, t := range st.Managed() {
		for _, bc := range t.Base {
			if bc.Dispatch != nil && bc.Dispatch.Slot == slot {
				return fmt.Errorf("slot %s of table %s is live (base chain %s jumps to it); stage into the other slot", slot, t.Key(), bc.Name)
			}
		}
	}
	for _, t := range st.Managed() {
		clearSlot(b, t, slot)
	}
	var ids uint32
	for _, t := range rs.Tables {
		if err := checkReserved(t); err != nil {
			return err
		}
		ts := st.Table(t.Family, t.Name)
		if ts == nil {
			var e nfnl.Encoder
			e.String(nfnl.TableName, t.Name)
			b.Add(nfnl.MsgNewTable, t.Family, nfnl.FlagCreate, append(e.Bytes(), t.Attrs...), "add table "+t.Key())
			ts = newTableState(t.Family, t.Name)
			st.Tables = append(st.Tables, ts)
		}
		if !ts.Managed {
			// A table that exists unmanaged keeps running its own
			// chains until the next swap takes it over.
			ts.Takeover = len(ts.Base) > 0 || len(ts.Legacy) > 0
			var e nfnl.Encoder
			e.String(nfnl.ChainTable, t.Name)
			e.String(nfnl.ChainName, names.MetaChain)
			e.Raw(nfnl.ChainUserdata, commentUdata(names.TagPrefix+"meta: which slot is live"))
			b.Add(nfnl.MsgNewChain, t.Family, nfnl.FlagCreate, e.Bytes(), "add chain "+names.MetaChain)
			b.Add(nfnl.MsgNewRule, t.Family, nfnl.FlagCreate|nfnl.FlagAppend,
				verdictRule(t.Name, names.MetaChain, 0, nfnl.VerdictContinue, "", metaComment(newActive, ts.Takeover)), "add meta rule")
			ts.Managed, ts.Active, ts.MetaRule = true, newActive, 0
		}
		if err := writeSlot(b, t, ts, slot, tag, &ids); err != nil {
			return fmt.Errorf("table %s: %w", t.Key(), err)
		}
	}
	return nil
}

// clearSlot deletes every object of a slot in one table, in the order
// references allow: rules first (they use chains, sets and objects), then
// sets (verdict maps jump to chains, object maps name objects), then
// chains, then objects.
func clearSlot(b *nfnl.Batch, t *TableState, slot names.Slot) {
	for _, c := range t.SlotChains[slot] {
		var e nfnl.Encoder
		e.String(nfnl.RuleTable, t.Name)
		e.String(nfnl.RuleChain, c)
		b.Add(nfnl.MsgDelRule, t.Family, 0, e.Bytes(), "flush chain "+c)
	}
	for _, s := range t.SlotSets[slot] {
		var e nfnl.Encoder
		e.String(nfnl.SetTable, t.Name)
		e.String(nfnl.SetName, s)
		b.Add(nfnl.MsgDelSet, t.Family, 0, e.Bytes(), "delete set "+s)
		delete(t.Sets, s)
	}
	for _, c := range t.SlotChains[slot] {
		b.Add(nfnl.MsgDelChain, t.Family, 0, chainID(t.Name, c), "delete chain "+c)
	}
	for _, o := range t.SlotObjs[slot] {
		b.Add(nfnl.MsgDelObj, t.Family, 0, objID(t.Name, o), "delete object "+o.Name)
		delete(t.Objs, o)
	}
	delete(t.SlotChains, slot)
	delete(t.SlotSets, slot)
	delete(t.SlotObjs, slot)
	delete(t.Markers, slot)
	delete(t.BaseSpecs, slot)
}

// objID names an object for deletion by name and type; the kernel needs
// both.
func objID(table string, k ObjKey) []byte {
	var e nfnl.Encoder
	e.String(nfnl.ObjTable, table)
	e.String(nfnl.ObjName, k.Name)
	e.Uint32(nfnl.ObjType, k.Type)
	return e.Bytes()
}

func chainID(table, chain string) []byte {
	var e nfnl.Encoder
	e.String(nfnl.ChainTable, table)
	e.String(nfnl.ChainName, chain)
	return e.Bytes()
}

// writeSlot adds the messages that create table t's content in slot.
func writeSlot(b *nfnl.Batch, t *Table, ts *TableState, slot names.Slot, tag Tag, ids *uint32) error {
	rn := &renamer{chains: map[string]chainRef{}, sets: map[string]setRef{}, objs: map[ObjKey]string{}}
	for _, c := range t.Chains {
		if c.Binding {
			*ids++
			rn.chains[c.Name] = chainRef{id: *ids}
			continue
		}
		rn.chains[c.Name] = chainRef{name: names.InSlot(slot, c.Name)}
	}
	for _, s := range t.Sets {
		switch {
		case s.anonymous():
			*ids++
			rn.sets[s.Name] = setRef{name: anonName(slot, s.Name), id: *ids}
		case s.Shared:
			rn.sets[s.Name] = setRef{name: s.Name}
		default:
			rn.sets[s.Name] = setRef{name: names.InSlot(slot, s.Name)}
		}
	}
	for _, o := range t.Objs {
		if !o.Shared {
			rn.objs[o.Key()] = names.InSlot(slot, o.Name)
		}
	}

	marker := names.Marker(slot)
	{
		var e nfnl.Encoder
		e.String(nfnl.ChainTable, t.Name)
		e.String(nfnl.ChainName, marker)
		e.Raw(nfnl.ChainUserdata, commentUdata(markerComment(slot, tag)))
		b.Add(nfnl.MsgNewChain, t.Family, nfnl.FlagCreate|nfnl.FlagExcl, e.Bytes(), "add chain "+marker)
		ts.SlotChains[slot] = append(ts.SlotChains[slot], marker)
		ts.Markers[slot] = tag
	}

	specs := map[string]*BaseSpec{}
	for _, c := range t.Chains {
		ref := rn.chains[c.Name]
		name := ref.name
		attrs, err := nfnl.ParseAttrs(c.Attrs)
		if err != nil {
			return fmt.Errorf("chain %s: %w", c.Name, err)
		}
		var e nfnl.Encoder
		e.String(nfnl.ChainTable, t.Name)
		if ref.id != 0 {
			// A binding chain: the kernel names it, rules find it by id.
			e.Uint32(nfnl.ChainFlags, nfnl.ChainFlagBinding)
			e.Uint32(nfnl.ChainID, ref.id)
			name = "an anonymous chain (jump { ... })" // never the kernel's __chainN
		} else {
			e.String(nfnl.ChainName, name)
		}
		var ud []byte
		for _, a := range attrs {
			if a.Kind() == nfnl.ChainUserdata {
				ud = append(ud, a.Data...)
				continue
			}
			e.Attr(a)
		}
		if c.Base != nil {
			tlv, err := udataTLV(udataBaseSpec, encodeBaseSpec(c.Base))
			if err != nil {
				return fmt.Errorf("base chain %s: hook with too many devices: %w", c.Name, err)
			}
			ud = append(ud, tlv...)
			specs[c.Name] = c.Base
		}
		if len(ud) > 0 {
			e.Raw(nfnl.ChainUserdata, ud)
		}
		b.Add(nfnl.MsgNewChain, t.Family, nfnl.FlagCreate|nfnl.FlagExcl, e.Bytes(), "add chain "+name)
		if ref.id == 0 {
			ts.SlotChains[slot] = append(ts.SlotChains[slot], name)
		}
	}
	ts.BaseSpecs[slot] = specs

	for _, f := range t.Flowtables {
		if ts.Flowtables[f.Name] {
			continue
		}
		var e nfnl.Encoder
		e.String(nfnl.FlowtableTable, t.Name)
		e.String(nfnl.FlowtableName, f.Name)
		b.Add(nfnl.MsgNewFlowtable, t.Family, nfnl.FlagCreate, append(e.Bytes(), f.Attrs...), "add flowtable "+f.Name)
		ts.Flowtables[f.Name] = true
	}

	for _, o := range t.Objs {
		k := ObjKey{Type: o.Type, Name: rn.obj(o.Type, o.Name)}
		if o.Shared && ts.Objs[k] {
			continue
		}
		var e nfnl.Encoder
		e.String(nfnl.ObjTable, t.Name)
		e.String(nfnl.ObjName, k.Name)
		b.Add(nfnl.MsgNewObj, t.Family, nfnl.FlagCreate, append(e.Bytes(), o.Attrs...), "add object "+k.Name)
		ts.Objs[k] = true
		if !o.Shared {
			ts.SlotObjs[slot] = append(ts.SlotObjs[slot], k)
		}
	}

	for _, s := range t.Sets {
		ref := rn.sets[s.Name]
		exists := ts.Sets[ref.name] && ref.id == 0
		var e nfnl.Encoder
		e.String(nfnl.SetTable, t.Name)
		e.String(nfnl.SetName, ref.name)
		id := ref.id
		if id == 0 {
			// The kernel requires an id on every new set.
			*ids++
			id = *ids
		}
		e.Uint32(nfnl.SetID, id)
		// An existing shared set is sent again without elements: the
		// kernel checks that its definition matches and keeps its state.
		b.Add(nfnl.MsgNewSet, t.Family, nfnl.FlagCreate, append(e.Bytes(), s.Attrs...), "add set "+s.Name)
		if exists {
			continue
		}
		if !s.anonymous() {
			ts.Sets[ref.name] = true
			if !s.Shared {
				ts.SlotSets[slot] = append(ts.SlotSets[slot], ref.name)
			}
		}
		if err := addElems(b, t, s, ref, rn); err != nil {
			return err
		}
	}

	return addRules(b, t, rn)
}

func addElems(b *nfnl.Batch, t *Table, s *Set, ref setRef, rn *renamer) error {
	w := elemChunks{b: b, t: t, set: ref.name, id: ref.id, msg: nfnl.MsgNewSetElem, flags: nfnl.FlagCreate, what: "add elements to set " + s.Name}
	objType := s.objType()
	// Elements of a plain set name nothing patchElem renames (it patches
	// map data and object references only): they go as they are, which
	// spares a copy of every element of a big set.
	plain := s.Flags&(nfnl.SetFlagMap|nfnl.SetFlagObject) == 0
	for _, el := range s.Elems {
		p := el
		if !plain {
			var err error
			if p, err = patchElem(el, rn, objType); err != nil {
				return fmt.Errorf("set %s: %w", s.Name, err)
			}
		}
		w.add(p)
	}
	w.flush()
	return nil
}

// Flip adds to b the messages that make slot to live in every managed
// table: the two dispatch rules of each base chain are replaced, a base
// chain whose policy differs between the versions takes the new policy,
// base chains that only one version has are added or deleted, and the
// meta rule is updated. A table fwslot has not taken over yet (legacy chains)
// loses its legacy chains in the same batch; legacy sets and objects go
// too unless keep says a slot uses them (keep is asked a set's name, or an
// object's SharedKey). st is updated to describe the
// kernel after the batch.
func Flip(b *nfnl.Batch, st *State, to names.Slot, keep func(t *TableState, name string) bool) error {
	for _, t := range st.Managed() {
		if err := flipTable(b, t, to, keep); err != nil {
			return fmt.Errorf("table %s: %w", t.Key(), err)
		}
	}
	return nil
}

func flipTable(b *nfnl.Batch, t *TableState, to names.Slot, keep func(t *TableState, name string) bool) error {
	tag := t.Markers[to]
	specs := t.BaseSpecs[to]
	var want []string
	for n := range specs {
		want = append(want, n)
	}
	sort.Strings(want)

	// Flush legacy chains first: base chains jump into them.
	var legacyBase []string
	for n, bc := range t.Base {
		if bc.Dispatch == nil && len(bc.Rules) > 0 {
			legacyBase = append(legacyBase, n)
		}
	}
	sort.Strings(legacyBase)
	for _, n := range append(legacyBase, t.Legacy...) {
		var e nfnl.Encoder
		e.String(nfnl.RuleTable, t.Name)
		e.String(nfnl.RuleChain, n)
		b.Add(nfnl.MsgDelRule, t.Family, 0, e.Bytes(), "flush chain "+n)
	}
	// Legacy sets go before chains: a verdict map may jump to them.
	if keep != nil {
		var sets []string
		var objs []ObjKey
		for s := range t.Sets {
			if _, _, ok := names.FromSlot(s); !ok && !keep(t, s) {
				sets = append(sets, s)
			}
		}
		for o := range t.Objs {
			if _, _, ok := names.FromSlot(o.Name); !ok && !keep(t, sharedKey(o)) {
				objs = append(objs, o)
			}
		}
		sort.Strings(sets)
		sort.Slice(objs, func(i, j int) bool {
			if objs[i].Name != objs[j].Name {
				return objs[i].Name < objs[j].Name
			}
			return objs[i].Type < objs[j].Type
		})
		for _, s := range sets {
			var e nfnl.Encoder
			e.String(nfnl.SetTable, t.Name)
			e.String(nfnl.SetName, s)
			b.Add(nfnl.MsgDelSet, t.Family, 0, e.Bytes(), "delete legacy set "+s)
			delete(t.Sets, s)
		}
		for _, o := range objs {
			b.Add(nfnl.MsgDelObj, t.Family, 0, objID(t.Name, o), "delete legacy object "+o.Name)
			delete(t.Objs, o)
		}
	}

	for n, bc := range t.Base {
		if _, ok := specs[n]; !ok {
			b.Add(nfnl.MsgDelChain, t.Family, 0, chainID(t.Name, n), "delete base chain "+n)
			delete(t.Base, bc.Name)
		}
	}
	for _, n := range t.Legacy {
		b.Add(nfnl.MsgDelChain, t.Family, 0, chainID(t.Name, n), "delete chain "+n)
	}
	t.Legacy = nil

	for _, n := range want {
		spec := specs[n]
		target := names.InSlot(to, n)
		bc := t.Base[n]
		jump := jumpRule(t.Name, n, target, dispatchComment("jump", to, tag))
		pol := func(h uint64) []byte {
			return verdictRule(t.Name, n, h, spec.Policy, "", dispatchComment("policy", to, tag))
		}
		switch {
		case bc != nil && bc.Dispatch != nil && bc.Spec.Equal(spec):
			if bc.Spec.Policy != spec.Policy {
				setPolicy(b, t, n, spec.Policy)
			}
			b.Add(nfnl.MsgNewRule, t.Family, nfnl.FlagReplace, withHandle(jump, bc.Dispatch.Jump), "replace dispatch of "+n)
			b.Add(nfnl.MsgNewRule, t.Family, nfnl.FlagReplace, pol(bc.Dispatch.Policy), "replace policy of "+n)
		case bc != nil && bc.Dispatch == nil && bc.Spec.Equal(spec):
			// A legacy base chain with the same hook: its rules
			// were flushed above; it keeps its hook, takes the
			// user's policy and gets the dispatch rules.
			setPolicy(b, t, n, spec.Policy)
			b.Add(nfnl.MsgNewRule, t.Family, nfnl.FlagCreate|nfnl.FlagAppend, jump, "add dispatch to "+n)
			b.Add(nfnl.MsgNewRule, t.Family, nfnl.FlagCreate|nfnl.FlagAppend, pol(0), "add policy to "+n)
		default:
			if bc != nil {
				b.Add(nfnl.MsgDelChain, t.Family, 0, chainID(t.Name, n), "delete base chain "+n)
			}
			var e nfnl.Encoder
			e.String(nfnl.ChainTable, t.Name)
			e.String(nfnl.ChainName, n)
			e.Raw(nfnl.ChainHook|nfnl.FlagNested, spec.Hook)
			e.String(nfnl.ChainType, spec.Type)
			e.Uint32(nfnl.ChainPolicy, spec.Policy)
			if f := spec.Flags &^ nfnl.ChainFlagBase; f != 0 {
				e.Uint32(nfnl.ChainFlags, f)
			}
			b.Add(nfnl.MsgNewChain, t.Family, nfnl.FlagCreate, e.Bytes(), "add base chain "+n)
			b.Add(nfnl.MsgNewRule, t.Family, nfnl.FlagCreate|nfnl.FlagAppend, jump, "add dispatch to "+n)
			b.Add(nfnl.MsgNewRule, t.Family, nfnl.FlagCreate|nfnl.FlagAppend, pol(0), "add policy to "+n)
		}
		// Handles of new rules are unknown until read back.
		t.Base[n] = &BaseChain{Name: n, Spec: spec}
	}

	meta := verdictRule(t.Name, names.MetaChain, t.MetaRule, nfnl.VerdictContinue, "", metaComment(to, false))
	if t.MetaRule != 0 {
		b.Add(nfnl.MsgNewRule, t.Family, nfnl.FlagReplace, meta, "replace meta rule")
	}
	// A meta rule created in this batch already names its slot (see
	// Stage's newActive).
	t.Active, t.Takeover = to, false
	return nil
}

// setPolicy adds the message that gives an existing base chain the
// user's policy. The base chain carries the policy itself so that a chain
// flushed by hand (`nft flush chain`, `nft flush table`) fails closed as
// under plain nft; the dispatch's policy rule decides every packet while
// the dispatch is there (see docs/ARCHITECTURE.md, "The slot layout").
func setPolicy(b *nfnl.Batch, t *TableState, chain string, policy uint32) {
	var e nfnl.Encoder
	e.String(nfnl.ChainTable, t.Name)
	e.String(nfnl.ChainName, chain)
	e.Uint32(nfnl.ChainPolicy, policy)
	b.Add(nfnl.MsgNewChain, t.Family, 0, e.Bytes(), "set policy of "+chain)
}

func withHandle(rule []byte, h uint64) []byte {
	var e nfnl.Encoder
	e.Uint64(nfnl.RuleHandle, h)
	return append(e.Bytes(), rule...)
}

// verdictRule encodes a rule with one immediate verdict and a comment; a
// non-zero handle makes it a replacement.
func verdictRule(table, chain string, handle uint64, code uint32, target, comment string) []byte {
	var e nfnl.Encoder
	e.String(nfnl.RuleTable, table)
	e.String(nfnl.RuleChain, chain)
	if handle != 0 {
		e.Uint64(nfnl.RuleHandle, handle)
	}
	e.ImmediateRule(0, func(dd *nfnl.Encoder) { // register 0: the verdict
		dd.Nested(nfnl.DataVerdict, func(v *nfnl.Encoder) {
			v.Uint32(nfnl.VerdictCode, code)
			if target != "" {
				v.String(nfnl.VerdictChain, target)
			}
		})
	})
	e.Raw(nfnl.RuleUserdata, commentUdata(comment))
	return e.Bytes()
}

func jumpRule(table, chain, target, comment string) []byte {
	return verdictRule(table, chain, 0, nfnl.VerdictJump, target, comment)
}

// Install writes rs into an empty namespace and makes it live, in one
// transaction: the probe twin and boot restore use it.
func Install(c *nfnl.Conn, rs *Ruleset, tag Tag) error {
	st, err := ReadState(c)
	if err != nil {
		return err
	}
	if len(st.Managed()) > 0 {
		return fmt.Errorf("install: the namespace already holds fwslot tables")
	}
	b := nfnl.Batch{Gen: st.Gen}
	if err := Stage(&b, st, rs, names.SlotA, tag, names.SlotA); err != nil {
		return err
	}
	if err := Flip(&b, st, names.SlotA, nil); err != nil {
		return err
	}
	return c.Commit(&b)
}
