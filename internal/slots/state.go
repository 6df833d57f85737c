package slots

import (
	"errors"
	"fmt"
	"sort"

	"github.com/fwslot/fwslot/internal/names"
	"github.com/fwslot/fwslot/internal/nfnl"
	"golang.org/x/sys/unix"
)

// State is what the kernel of a target holds, as far as fwslot cares:
// which tables it manages, which version sits in each slot, and where the
// dispatch rules are. Reading it never walks slot chains, so it costs the
// same at ten rules and at a hundred thousand.
type State struct {
	Tables []*TableState
	// Gen is the ruleset generation read just before the tables: a batch
	// built from this state carries it, so it fails rather than apply
	// over a change committed in between.
	Gen uint32
}

// TableState describes one kernel table.
type TableState struct {
	Family uint8
	Name   string
	// Managed is true when the table holds fwslot's meta chain.
	Managed bool
	// Active is the slot the meta rule names.
	Active names.Slot
	// Takeover is true while the table runs the content it had before
	// fwslot managed it; the next swap replaces it.
	Takeover bool
	// MetaRule is the handle of the meta rule.
	MetaRule uint64
	// Owner and OwnerDB are the identity and path of the history that
	// manages the table, from the owner rule of the meta chain (handle
	// OwnerRule); empty for tables written before fwslot tagged owners.
	Owner, OwnerDB string
	OwnerRule      uint64
	// Markers holds the tag of each slot that has content.
	Markers map[names.Slot]Tag
	// SlotChains, SlotSets and SlotObjs list each slot's kernel objects,
	// marker chain included.
	SlotChains map[names.Slot][]string
	SlotSets   map[names.Slot][]string
	SlotObjs   map[names.Slot][]ObjKey
	// BaseSpecs holds, per slot, the hooks of the user's base chains, as
	// recorded in the userdata of their slot copies.
	BaseSpecs map[names.Slot]map[string]*BaseSpec
	// Base lists the chains with a hook.
	Base map[string]*BaseChain
	// Flushed is true for a table that holds fwslot's chains without its
	// rules (flushed by hand): not managed, and rebuilt only by restore.
	Flushed bool
	// Legacy lists regular chains that are not fwslot's: the content of a
	// table that fwslot has not taken over yet.
	Legacy []string
	// Sets and Flowtables hold the names of all named sets and
	// flowtables; Objs holds every object by type and name (a counter
	// and a quota may share a name).
	Sets       map[string]bool
	Objs       map[ObjKey]bool
	Flowtables map[string]bool
}

// ObjKey identifies a stateful object: nf_tables keys objects by type and
// name, so `counter x` and `quota x` are two objects.
type ObjKey struct {
	Type uint32
	Name string
}

// Key names the table as nft does: "inet filter".
func (t *TableState) Key() string { return nfnl.FamilyName(t.Family) + " " + t.Name }

// BaseChain is a kernel chain with a hook.
type BaseChain struct {
	Name string
	Spec *BaseSpec
	// Rules holds the handles of its rules, in order.
	Rules []uint64
	// Dispatch is set when the chain holds exactly fwslot's two dispatch
	// rules.
	Dispatch *Dispatch
}

// Dispatch is the pair of fwslot rules in a base chain: a jump to the
// live slot's copy, then a rule with the user's policy as its verdict.
type Dispatch struct {
	// Jump and Policy are the handles of the two rules.
	Jump, Policy uint64
	Slot         names.Slot
	Version      uint64
	// Target is the chain the jump rule jumps to; Verdict is the
	// verdict of the policy rule.
	Target  string
	Verdict uint32
}

// newTableState returns the state of a table that holds nothing yet.
func newTableState(family uint8, name string) *TableState {
	return &TableState{Family: family, Name: name,
		Markers: map[names.Slot]Tag{}, SlotChains: map[names.Slot][]string{},
		SlotSets: map[names.Slot][]string{}, SlotObjs: map[names.Slot][]ObjKey{},
		BaseSpecs: map[names.Slot]map[string]*BaseSpec{}, Base: map[string]*BaseChain{},
		Sets: map[string]bool{}, Objs: map[ObjKey]bool{}, Flowtables: map[string]bool{}}
}

// baseSpecOf reads the hook, type, flags and policy of a base chain from
// its dump message; hook is its NFTA_CHAIN_HOOK payload.
func baseSpecOf(m nfnl.Msg, hook []byte) *BaseSpec {
	spec := &BaseSpec{Hook: hook, Type: str(m, nfnl.ChainType), Flags: u32(m, nfnl.ChainFlags), Policy: nfnl.VerdictAccept}
	if p, ok := m.Attr(nfnl.ChainPolicy); ok {
		spec.Policy = nfnl.U32(p)
	}
	return spec
}

// Table returns the state of a table, or nil.
func (s *State) Table(family uint8, name string) *TableState {
	for _, t := range s.Tables {
		if t.Family == family && t.Name == name {
			return t
		}
	}
	return nil
}

// Managed returns the tables that hold fwslot's meta chain.
func (s *State) Managed() []*TableState {
	var out []*TableState
	for _, t := range s.Tables {
		if t.Managed {
			out = append(out, t)
		}
	}
	return out
}

// ReadState reads the target's tables, chains, sets and objects and the
// rules of fwslot's meta and base chains.
func ReadState(c *nfnl.Conn) (*State, error) {
	gen, err := c.GenID()
	if errors.Is(err, unix.EPERM) {
		return nil, ErrPermission
	}
	if err != nil {
		return nil, fmt.Errorf("read ruleset generation: %w", err)
	}
	tmsgs, err := c.Dump(nfnl.MsgGetTable, unix.AF_UNSPEC, nil)
	if errors.Is(err, unix.EPERM) {
		return nil, ErrPermission
	}
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	st := &State{Gen: gen}
	byKey := map[tkey]*TableState{}
	for _, m := range tmsgs {
		t := newTableState(m.Family, str(m, nfnl.TableName))
		st.Tables = append(st.Tables, t)
		byKey[tkey{t.Family, t.Name}] = t
	}

	cmsgs, err := dumpIn(c, nfnl.MsgGetChain, "chains", nfnl.ChainTable, byKey)
	if err != nil {
		return nil, err
	}
	for m, t := range cmsgs {
		name := str(m, nfnl.ChainName)
		if u32(m, nfnl.ChainFlags)&nfnl.ChainFlagBinding != 0 {
			// A binding chain belongs to the rule that jumps to it
			// and goes with that rule.
			continue
		}
		ud, _ := m.Attr(nfnl.ChainUserdata)
		switch {
		case name == names.MetaChain:
			t.Managed = true
		case name == names.Marker(names.SlotA) || name == names.Marker(names.SlotB):
			slot := names.Slot(name[len(name)-1:])
			t.SlotChains[slot] = append(t.SlotChains[slot], name)
			if f, ok := parseTagComment(commentOf(ud)); ok {
				if tag, ok := tagFrom(f); ok {
					t.Markers[slot] = tag
				}
			}
		default:
			if hook, ok := m.Attr(nfnl.ChainHook); ok {
				t.Base[name] = &BaseChain{Name: name, Spec: baseSpecOf(m, hook)}
				continue
			}
			if slot, user, ok := names.FromSlot(name); ok {
				t.SlotChains[slot] = append(t.SlotChains[slot], name)
				if v, ok := parseUdata(ud)[udataBaseSpec]; ok {
					spec, err := decodeBaseSpec(v)
					if err != nil {
						return nil, fmt.Errorf("table %s chain %s: %w", t.Key(), name, err)
					}
					if t.BaseSpecs[slot] == nil {
						t.BaseSpecs[slot] = map[string]*BaseSpec{}
					}
					t.BaseSpecs[slot][user] = spec
				}
				continue
			}
			t.Legacy = append(t.Legacy, name)
		}
	}

	smsgs, err := dumpIn(c, nfnl.MsgGetSet, "sets", nfnl.SetTable, byKey)
	if err != nil {
		return nil, err
	}
	for m, t := range smsgs {
		if u32(m, nfnl.SetFlags)&nfnl.SetFlagAnonymous != 0 {
			continue
		}
		name := str(m, nfnl.SetName)
		t.Sets[name] = true
		if slot, _, ok := names.FromSlot(name); ok {
			t.SlotSets[slot] = append(t.SlotSets[slot], name)
		}
	}
	omsgs, err := dumpIn(c, nfnl.MsgGetObj, "objects", nfnl.ObjTable, byKey)
	if err != nil {
		return nil, err
	}
	for m, t := range omsgs {
		k := ObjKey{Type: u32(m, nfnl.ObjType), Name: str(m, nfnl.ObjName)}
		t.Objs[k] = true
		if slot, _, ok := names.FromSlot(k.Name); ok {
			t.SlotObjs[slot] = append(t.SlotObjs[slot], k)
		}
	}
	fmsgs, err := dumpIn(c, nfnl.MsgGetFlowtable, "flowtables", nfnl.FlowtableTable, byKey)
	if err != nil {
		return nil, err
	}
	for m, t := range fmsgs {
		t.Flowtables[str(m, nfnl.FlowtableName)] = true
	}

	for _, t := range st.Tables {
		if !t.Managed {
			continue
		}
		if err := readMeta(c, t); err != nil {
			return nil, err
		}
		if t.Flushed {
			continue
		}
		for _, bc := range t.Base {
			if err := readDispatch(c, t, bc); err != nil {
				return nil, err
			}
		}
	}
	sort.SliceStable(st.Tables, func(i, j int) bool { return st.Tables[i].Key() < st.Tables[j].Key() })
	return st, nil
}

// chainRules dumps the rules of one chain.
func chainRules(c *nfnl.Conn, family uint8, table, chain string) ([]nfnl.Msg, error) {
	var e nfnl.Encoder
	e.String(nfnl.RuleTable, table)
	e.String(nfnl.RuleChain, chain)
	msgs, err := c.Dump(nfnl.MsgGetRule, family, e.Bytes())
	if err != nil {
		return nil, fmt.Errorf("list rules of %s %s %s: %w", nfnl.FamilyName(family), table, chain, err)
	}
	return msgs, nil
}

func ruleComment(m nfnl.Msg) string {
	ud, _ := m.Attr(nfnl.RuleUserdata)
	return commentOf(ud)
}

func readMeta(c *nfnl.Conn, t *TableState) error {
	msgs, err := chainRules(c, t.Family, t.Name, names.MetaChain)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if id, db, ok := parseOwnerComment(ruleComment(m)); ok {
			h, _ := m.Attr(nfnl.RuleHandle)
			t.OwnerRule, t.Owner, t.OwnerDB = nfnl.U64(h), id, db
			continue
		}
		if f, ok := parseTagComment(ruleComment(m)); ok && names.Slot(f["active"]).Valid() {
			h, _ := m.Attr(nfnl.RuleHandle)
			t.MetaRule = nfnl.U64(h)
			t.Active = names.Slot(f["active"])
			t.Takeover = f["takeover"] == "pending"
		}
	}
	if t.MetaRule == 0 {
		// The chains are there but fwslot's rules are gone: `nft flush
		// table` (or ruleset) by hand. Only the base chains' policies
		// still apply. Not managed any more; restore rebuilds it.
		t.Managed, t.Flushed = false, true
	}
	return nil
}

func readDispatch(c *nfnl.Conn, t *TableState, bc *BaseChain) error {
	msgs, err := chainRules(c, t.Family, t.Name, bc.Name)
	if err != nil {
		return err
	}
	var tags []map[string]string
	for _, m := range msgs {
		h, _ := m.Attr(nfnl.RuleHandle)
		bc.Rules = append(bc.Rules, nfnl.U64(h))
		f, _ := parseTagComment(ruleComment(m))
		tags = append(tags, f)
	}
	if len(msgs) != 2 || tags[0] == nil || tags[1] == nil || tags[0]["word0"] != "jump" || tags[1]["word0"] != "policy" {
		return nil
	}
	slot := names.Slot(tags[0]["slot"])
	tag, _ := tagFrom(tags[0])
	bc.Dispatch = &Dispatch{Jump: bc.Rules[0], Policy: bc.Rules[1], Slot: slot, Version: tag.Version,
		Target: jumpTarget(keep(msgs[0].Attrs)), Verdict: policyOf(keep(msgs[1].Attrs))}
	return nil
}

// jumpTarget returns the chain of the first jump or goto of a rule, or "".
func jumpTarget(rule []byte) string {
	var to string
	forEachExpr(rule, func(name string, data []nfnl.Attr) {
		if name != "immediate" || to != "" {
			return
		}
		if d, ok := nfnl.Find(data, nfnl.ImmediateData); ok {
			to, _ = verdictChain(d.Data)
		}
	})
	return to
}
