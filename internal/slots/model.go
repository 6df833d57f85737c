// Package slots compiles rulesets, reads kernel objects as raw netlink
// attributes, writes them into one slot of the target's tables, and reads
// back which version sits in which slot.
//
// The kernel layout is described in docs/ARCHITECTURE.md: every user
// chain lives once per slot as a regular chain named fwslot_<slot>_<name>;
// every user base chain is a stable base chain that carries the user's
// policy and holds two fwslot rules (a jump to the active slot's copy,
// then a rule with the user's policy as verdict); configuration
// sets and objects are per slot, state sets and counters/quotas are shared.
package slots

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"slices"

	"github.com/fwslot/fwslot/internal/nfnl"
)

// Ruleset is a compiled ruleset: the kernel objects nft built from a file,
// kept as raw netlink attributes. It is what history stores and what the
// transplant replays, so restaging a version never compiles again.
type Ruleset struct {
	Tables []*Table
	// Ifaces are the interfaces (names and indexes) it was compiled for:
	// iif/oif rules hold indexes, so a replay on another set of indexes
	// must compile again.
	Ifaces []Iface

	// fastLists counts the element lists encoded from the source by
	// this compile (not stored): only such a version may be a refresh.
	fastLists int
}

// Table is one nf_tables table and everything in it.
type Table struct {
	Family uint8
	Name   string
	// Attrs are the table's attributes without name and dump-only ones.
	Attrs      []byte
	Chains     []*Chain
	Sets       []*Set
	Objs       []*Obj
	Flowtables []*Flowtable
}

// Key names the table as nft does: "inet filter".
func (t *Table) Key() string { return nfnl.FamilyName(t.Family) + " " + t.Name }

// Chain is a user chain with its rules.
type Chain struct {
	Name string
	// Base is set for base chains (chains with a hook).
	Base *BaseSpec
	// Attrs are the chain's attributes other than table, name, hook,
	// type, policy and dump-only ones (userdata, flags).
	Attrs []byte
	// Rules are the rules' attributes without table, chain and handle.
	Rules [][]byte
	// Binding is set for anonymous chains (`jump { ... }`): nft has the
	// kernel name them (__chainN), and the one rule that jumps to them
	// owns them.
	Binding bool
}

// BaseSpec describes the hook of a base chain.
type BaseSpec struct {
	// Hook is the raw nested NFTA_CHAIN_HOOK payload (number, priority,
	// devices).
	Hook   []byte
	Type   string
	Policy uint32
	Flags  uint32
}

// Equal reports whether two base chains hook the same way, so that the
// kernel chain can stay and only its dispatch rules change.
func (b *BaseSpec) Equal(o *BaseSpec) bool {
	return b != nil && o != nil && bytes.Equal(b.Hook, o.Hook) && b.Type == o.Type && b.Flags == o.Flags
}

// Set is a named or anonymous set or map with its elements.
type Set struct {
	Name  string
	Flags uint32
	// Attrs are the set's attributes without table, name, id and
	// dump-only ones.
	Attrs []byte
	// Elems are the elements, each the payload of one NFTA_LIST_ELEM.
	Elems [][]byte
	// Shared is true for sets that hold state (dynamic, timeout, written
	// by rules, or declared without elements to be fed by hand): both
	// slots use one kernel set under the user's name.
	Shared bool
}

// anonymous reports whether the set belongs to a single rule.
func (s *Set) anonymous() bool { return s.Flags&nfnl.SetFlagAnonymous != 0 }

// objType returns the object type of an object map, or 0.
func (s *Set) objType() uint32 {
	attrs, err := nfnl.ParseAttrs(s.Attrs)
	if err != nil {
		return 0
	}
	if a, ok := nfnl.Find(attrs, nfnl.SetObjType); ok {
		return nfnl.U32(a.Data)
	}
	return 0
}

// Obj is a named stateful object (counter, quota, limit, ct helper...).
type Obj struct {
	Name string
	Type uint32
	// Attrs are the object's attributes without table, name and
	// dump-only ones.
	Attrs []byte
	// Shared is true for counters and quotas, whose values must
	// survive a swap.
	Shared bool
}

// Key returns the object's type and name, which identify it in its table.
func (o *Obj) Key() ObjKey { return ObjKey{Type: o.Type, Name: o.Name} }

// Flowtable is a named flowtable. Flowtables are always shared: a device
// can belong to one flowtable only.
type Flowtable struct {
	Name  string
	Attrs []byte
}

// RuleCount returns the number of rules in the ruleset.
func (r *Ruleset) RuleCount() int {
	n := 0
	for _, t := range r.Tables {
		for _, c := range t.Chains {
			n += len(c.Rules)
		}
	}
	return n
}

// TableKeys lists the tables as "family name".
func (r *Ruleset) TableKeys() []string {
	var out []string
	for _, t := range r.Tables {
		out = append(out, t.Key())
	}
	return out
}

// Encode serializes the ruleset for the history store, with the elements
// of each set without intervals in byte order: the kernel dumps a hash
// set in an order that changes with every compile, so without it the
// same content would encode to other bytes each time, which history can
// neither compress nor deduplicate (the order of a million elements alone
// is 2 MB of entropy). The order of such a set's elements means nothing
// to the kernel; interval sets keep theirs. r itself is not changed (a
// load stages it while it is encoded).
func (r *Ruleset) Encode() ([]byte, error) {
	r = r.sortedElems()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(r); err != nil {
		return nil, fmt.Errorf("encode compiled ruleset: %w", err)
	}
	return buf.Bytes(), nil
}

// sortedElems returns r, or a copy of it sharing everything but the
// element lists of hash sets that are not in byte order, sorted.
func (r *Ruleset) sortedElems() *Ruleset {
	var out *Ruleset
	for ti, t := range r.Tables {
		for si, s := range t.Sets {
			if s.Flags&nfnl.SetFlagInterval != 0 || slices.IsSortedFunc(s.Elems, bytes.Compare) {
				continue
			}
			if out == nil {
				cp := *r
				cp.Tables = slices.Clone(r.Tables)
				out = &cp
			}
			if out.Tables[ti] == t {
				tc := *t
				tc.Sets = slices.Clone(t.Sets)
				out.Tables[ti] = &tc
			}
			sc := *s
			sc.Elems = slices.Clone(s.Elems)
			slices.SortFunc(sc.Elems, bytes.Compare)
			out.Tables[ti].Sets[si] = &sc
		}
	}
	if out == nil {
		return r
	}
	return out
}

// Decode parses a ruleset serialized by Encode.
func Decode(b []byte) (*Ruleset, error) {
	var r Ruleset
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&r); err != nil {
		return nil, fmt.Errorf("decode compiled ruleset: %w", err)
	}
	return &r, nil
}
