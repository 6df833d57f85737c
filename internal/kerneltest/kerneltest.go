// Package kerneltest holds helpers for tests that read the nf_tables
// state of a namespace they made: the slot state, and production encoded
// for before/after comparisons in failure tests.
package kerneltest

import (
	"bytes"
	"encoding/gob"
	"testing"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/slots"
)

// State dials ns and reads its slot state; the connection stays open
// until the test ends.
func State(t testing.TB, ns string) (*nfnl.Conn, *slots.State) {
	t.Helper()
	c, err := nfnl.Dial(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	st, err := slots.ReadState(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

// StateReads returns how many netlink requests one slot state read of
// ns costs, on a connection of its own.
func StateReads(t testing.TB, ns string) int {
	t.Helper()
	c, err := nfnl.Dial(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := slots.ReadState(c); err != nil {
		t.Fatal(err)
	}
	return c.Requests()
}

// Production returns the kernel's production objects of a target, encoded
// for comparison: base chains with their rules, the live slot's chains,
// sets (with elements) and objects, and chains fwslot has not taken over
// yet. Shared state sets and fwslot's bookkeeping chains are left out:
// they are not what decides a packet's fate.
func Production(t testing.TB, ns string) []byte {
	t.Helper()
	c, st := State(t, ns)
	active := names.SlotA
	if m := st.Managed(); len(m) > 0 {
		active = m[0].Active
	}
	rs, err := slots.ReadTables(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	var tables []*slots.Table
	for _, tab := range rs.Tables {
		// Until the first swap takes a table over, its own chains run
		// and the slots wait beside them.
		takeover := false
		if ts := st.Table(tab.Family, tab.Name); ts != nil && ts.Managed {
			takeover = len(ts.Legacy) > 0
			for _, bc := range ts.Base {
				takeover = takeover || (bc.Dispatch == nil && len(bc.Rules) > 0)
			}
		}
		live := func(n string) bool {
			if s, _, ok := names.FromSlot(n); ok {
				return s == active && !takeover
			}
			return !names.Reserved(n)
		}
		var chains []*slots.Chain
		for _, ch := range tab.Chains {
			if ch.Base != nil || live(ch.Name) {
				chains = append(chains, ch)
			}
		}
		tab.Chains = chains
		var sets []*slots.Set
		for _, s := range tab.Sets {
			if _, _, ok := names.FromSlot(s.Name); ok && live(s.Name) {
				sets = append(sets, s)
			}
		}
		tab.Sets = sets
		var objs []*slots.Obj
		for _, o := range tab.Objs {
			if _, _, ok := names.FromSlot(o.Name); ok && live(o.Name) {
				objs = append(objs, o)
			}
		}
		tab.Objs = objs
		tab.Flowtables = nil
		if len(chains)+len(sets)+len(objs) > 0 {
			tables = append(tables, tab)
		}
	}
	rs.Tables = tables
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(rs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
