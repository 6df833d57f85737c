package slots

import (
	"bytes"
	"hash/maphash"
	"reflect"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
)

// Refreshing a big set: a blocklist that changes every hour differs from
// the version the staging slot holds by a few elements. When the slot
// provably holds exactly that version (the session checks history's
// kernel record) and the two versions differ only in the elements of
// per-slot hash sets, the batch deletes and adds just those elements and
// retags the slot: the kernel work is proportional to the change, and the
// slot still holds exactly one complete version when the batch commits
// (one transaction, as a full stage).

// setDelta is what changes in one set.
type setDelta struct {
	table      *Table
	name       string // kernel name (in the slot)
	del, added [][]byte
}

// refreshDeltas compares old (what slot holds) with rs and returns the
// element changes, or ok false when anything but the elements of
// per-slot named hash sets differs.
func refreshDeltas(old, rs *Ruleset, slot names.Slot) (deltas []setDelta, ok bool) {
	if len(old.Tables) != len(rs.Tables) || !reflect.DeepEqual(old.Ifaces, rs.Ifaces) {
		return nil, false
	}
	for i, nt := range rs.Tables {
		ot := old.Tables[i]
		if ot.Family != nt.Family || ot.Name != nt.Name || !bytes.Equal(ot.Attrs, nt.Attrs) ||
			!reflect.DeepEqual(ot.Chains, nt.Chains) || !reflect.DeepEqual(ot.Objs, nt.Objs) ||
			!reflect.DeepEqual(ot.Flowtables, nt.Flowtables) || len(ot.Sets) != len(nt.Sets) {
			return nil, false
		}
		for j, ns := range nt.Sets {
			os := ot.Sets[j]
			if os.Name != ns.Name || os.Flags != ns.Flags || os.Shared != ns.Shared || !bytes.Equal(os.Attrs, ns.Attrs) {
				return nil, false
			}
			if elemsEqual(os.Elems, ns.Elems) {
				continue
			}
			// Only named per-slot sets without intervals: an
			// interval's start and end elements do not change one
			// by one.
			// Nor verdict or object maps: their elements name per-slot
			// chains and objects.
			if ns.anonymous() || ns.Shared || ns.Flags&(nfnl.SetFlagInterval|nfnl.SetFlagObject) != 0 || setU32(ns, nfnl.SetDataType) == dataVerdict {
				return nil, false
			}
			d := setDelta{table: nt, name: names.InSlot(slot, ns.Name)}
			var small bool
			if d.del, d.added, small = elemDiff(os.Elems, ns.Elems); !small {
				return nil, false
			}
			deltas = append(deltas, d)
		}
	}
	return deltas, true
}

func elemsEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// elemDiff returns the elements of a not in b, and of b not in a; ok is
// false when more than a quarter of b is new (a full stage costs less)
// or two elements of a share a hash.
func elemDiff(a, b [][]byte) (onlyA, onlyB [][]byte, ok bool) {
	seed := maphash.MakeSeed()
	idx := make(map[uint64]int32, len(a))
	for i, e := range a {
		h := maphash.Bytes(seed, e)
		if _, dup := idx[h]; dup {
			return nil, nil, false
		}
		idx[h] = int32(i)
	}
	kept := make([]bool, len(a))
	for _, e := range b {
		if i, hit := idx[maphash.Bytes(seed, e)]; hit && bytes.Equal(a[i], e) {
			kept[i] = true
			continue
		}
		if onlyB = append(onlyB, e); len(onlyB) > len(b)/4+16 {
			return nil, nil, false
		}
	}
	for i, e := range a {
		if !kept[i] {
			onlyA = append(onlyA, e)
		}
	}
	return onlyA, onlyB, true
}

// FastLists returns how many element lists of rs were encoded from the
// source when it was compiled (0 for a ruleset read from history): only
// such a version can differ from another in elements alone.
func (r *Ruleset) FastLists() int { return r.fastLists }

// Refresh adds to b the messages that turn slot, which must hold exactly
// old (the caller proves it: history's kernel record at the generation st
// was read at), into rs tagged tag, when the two differ only in the
// elements of per-slot hash sets and data maps; ok false means nothing
// was added and the caller stages in full.
func Refresh(b *nfnl.Batch, st *State, old, rs *Ruleset, slot names.Slot, tag Tag) (bool, error) {
	deltas, ok := refreshDeltas(old, rs, slot)
	if !ok {
		return false, nil
	}
	for _, t := range rs.Tables {
		ts := st.Table(t.Family, t.Name)
		if ts == nil || !ts.Managed || ts.Active == slot {
			return false, nil
		}
		if _, held := ts.Markers[slot]; !held {
			return false, nil
		}
	}
	for _, d := range deltas {
		if err := elemBatch(b, d.table, d.name, nfnl.MsgDelSetElem, 0, d.del); err != nil {
			return false, err
		}
		if err := elemBatch(b, d.table, d.name, nfnl.MsgNewSetElem, nfnl.FlagCreate, d.added); err != nil {
			return false, err
		}
	}
	for _, t := range rs.Tables {
		ts := st.Table(t.Family, t.Name)
		marker := names.Marker(slot)
		b.Add(nfnl.MsgDelChain, t.Family, 0, chainID(t.Name, marker), "retag slot: delete chain "+marker)
		var e nfnl.Encoder
		e.String(nfnl.ChainTable, t.Name)
		e.String(nfnl.ChainName, marker)
		e.Raw(nfnl.ChainUserdata, commentUdata(markerComment(slot, tag)))
		b.Add(nfnl.MsgNewChain, t.Family, nfnl.FlagCreate|nfnl.FlagExcl, e.Bytes(), "retag slot: add chain "+marker)
		ts.Markers[slot] = tag
	}
	return true, nil
}

// elemBatch adds the elements to (or deletes them from) the set name of
// table t, in messages within the kernel's size bound.
func elemBatch(b *nfnl.Batch, t *Table, name string, msg uint16, flags uint16, elems [][]byte) error {
	w := elemChunks{b: b, t: t, set: name, msg: msg, flags: flags, what: "refresh elements of set " + name}
	for _, el := range elems {
		w.add(el)
	}
	w.flush()
	return nil
}

// elemChunks adds set element messages to a batch, as many elements a
// message as the kernel's size bound allows.
type elemChunks struct {
	b          *nfnl.Batch
	t          *Table
	set        string
	id         uint32 // the set's id in the batch, when the batch creates it
	msg, flags uint16
	what       string // the messages' description in batch errors
	list       nfnl.Encoder
}

// add queues one element, flushing first when it would not fit.
func (w *elemChunks) add(el []byte) {
	if len(w.list.Bytes())+len(el)+8 > maxElemBytes {
		w.flush()
	}
	w.list.Raw(nfnl.ListElem|nfnl.FlagNested, el)
}

// flush adds the queued elements to the batch as one message.
func (w *elemChunks) flush() {
	if len(w.list.Bytes()) == 0 {
		return
	}
	var e nfnl.Encoder
	e.String(nfnl.SetElemListTable, w.t.Name)
	e.String(nfnl.SetElemListSet, w.set)
	if w.id != 0 {
		e.Uint32(nfnl.SetElemListSetID, w.id)
	}
	e.Raw(nfnl.SetElemListElements|nfnl.FlagNested, w.list.Bytes())
	w.b.Add(w.msg, w.t.Family, w.flags, e.Bytes(), w.what)
	w.list = nfnl.Encoder{}
}
