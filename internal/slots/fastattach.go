package slots

import "github.com/fwslot/fwslot/internal/nfnl"

// attachFast gives the sets nft compiled without their element lists the
// encoded elements. It reports false, changing nothing, when a set is not
// what its list was encoded for (key or data type or length, flags) or
// holds elements already (something else in the file added some).
func attachFast(rs *Ruleset, fast []*fastSet) bool {
	type target struct {
		s  *Set
		t  *Table
		fs *fastSet
	}
	var found []target
	for _, fs := range fast {
		var hit *Set
		var ht *Table
		for _, t := range rs.Tables {
			if nfnl.FamilyName(t.Family) != fs.list.Family || t.Name != fs.list.Table {
				continue
			}
			for _, s := range t.Sets {
				if s.Name == fs.list.Set && !s.anonymous() {
					hit, ht = s, t
				}
			}
		}
		if hit == nil || len(hit.Elems) > 0 || !fs.matches(hit) || !chainsExist(ht, fs.chains) {
			return false
		}
		found = append(found, target{hit, ht, fs})
	}
	for _, f := range found {
		f.s.Elems = f.fs.elems
		f.s.Shared = stateSet(f.s, setU32(f.s, nfnl.SetDataType))
	}
	markDynsetTargets(rs)
	return true
}

// chainsExist reports whether t has every chain of names.
func chainsExist(t *Table, names map[string]bool) bool {
	n := 0
	for _, c := range t.Chains {
		if names[c.Name] && !c.Binding {
			n++
		}
	}
	return n == len(names)
}

// matches reports whether the compiled declaration s is the one fs was
// encoded for.
func (fs *fastSet) matches(s *Set) bool {
	const known = nfnl.SetFlagConstant | nfnl.SetFlagInterval | nfnl.SetFlagMap | setFlagConcat
	if s.Flags&^known != 0 || s.Flags&(nfnl.SetFlagInterval|nfnl.SetFlagMap|setFlagConcat) != fs.flags {
		return false
	}
	if setU32(s, nfnl.SetKeyType) != fs.keyID || int(setU32(s, nfnl.SetKeyLen)) != fs.keyLen {
		return false
	}
	attrs, err := nfnl.ParseAttrs(s.Attrs)
	if err != nil {
		return false
	}
	for _, a := range attrs {
		switch a.Kind() {
		case nfnl.SetExpr, nfnl.SetExpressions, nfnl.SetObjType, nfnl.SetTimeout, nfnl.SetGCInterval:
			return false
		}
	}
	return setU32(s, nfnl.SetDataType) == fs.dataID && int(setU32(s, nfnl.SetDataLen)) == fs.dataLen
}

// setU32 reads a 32-bit attribute of a set's attributes (0 when absent).
func setU32(s *Set, kind uint16) uint32 {
	attrs, err := nfnl.ParseAttrs(s.Attrs)
	if err != nil {
		return 0
	}
	if a, ok := nfnl.Find(attrs, kind); ok && len(a.Data) == 4 {
		return nfnl.U32(a.Data)
	}
	return 0
}
