package slots

import (
	"fmt"

	"github.com/fwslot/fwslot/internal/nfnl"
)

// ruleOrigin tags the rule messages of a staging batch (see
// nfnl.Batch.Mark) with the user's chain they come from: a refused
// message's offset plus First is the rule's index in Chain. Rules of
// binding chains (`jump { ... }`) are written inside one rule of the
// user's file; their messages carry Whole, and First is that rule.
type ruleOrigin struct {
	Table *Table
	Chain string
	First int
	Whole bool
}

// ruleAt returns the index in Chain of the rule that a refused message at
// offset came from.
func (o *ruleOrigin) ruleAt(offset int) int {
	if o.Whole {
		return o.First
	}
	return o.First + offset
}

// addRules adds the rules of every chain of t. A binding chain must hold
// its rules before the rule that jumps to it binds it, so its rules go
// right before that rule.
func addRules(b *nfnl.Batch, t *Table, rn *renamer) error {
	byName := map[string]*Chain{}
	binding := false
	for _, c := range t.Chains {
		byName[c.Name] = c
		binding = binding || c.Binding
	}
	done := map[string]bool{}
	// emit adds c's rules. origin, when set, is the user's rule that
	// holds c (a binding chain); else c's own rules are the origin, one
	// mark per run of rules, so a batch of 100k rules holds few marks.
	var emit func(c *Chain, origin *ruleOrigin) error
	emit = func(c *Chain, origin *ruleOrigin) error {
		done[c.Name] = true
		ref := rn.chains[c.Name]
		mark := func(i int) {
			if origin != nil {
				b.Mark(origin)
			} else {
				b.Mark(&ruleOrigin{Table: t, Chain: c.Name, First: i})
			}
		}
		mark(0)
		for i, r := range c.Rules {
			if binding {
				targets, err := jumpTargets(r, nil)
				if err != nil {
					return fmt.Errorf("chain %s rule %d: %w", c.Name, i+1, err)
				}
				nested := false
				for _, to := range targets {
					bc := byName[to]
					if bc == nil || !bc.Binding || done[to] {
						continue
					}
					o := origin
					if o == nil {
						o = &ruleOrigin{Table: t, Chain: c.Name, First: i, Whole: true}
					}
					if err := emit(bc, o); err != nil {
						return err
					}
					nested = true
				}
				if nested {
					mark(i)
				}
			}
			p, err := patchRule(r, rn)
			if err != nil {
				return fmt.Errorf("chain %s rule %d: %w", c.Name, i+1, err)
			}
			var e nfnl.Encoder
			e.String(nfnl.RuleTable, t.Name)
			desc := "add rule to " + ref.name
			if ref.id != 0 {
				e.Uint32(nfnl.RuleChainID, ref.id)
				desc = "add rule to an anonymous chain (jump { ... })"
			} else {
				e.String(nfnl.RuleChain, ref.name)
			}
			b.Add(nfnl.MsgNewRule, t.Family, nfnl.FlagCreate|nfnl.FlagAppend, append(e.Bytes(), p...), desc)
		}
		return nil
	}
	for _, c := range t.Chains {
		if !c.Binding {
			if err := emit(c, nil); err != nil {
				return err
			}
		}
	}
	// A binding chain no rule jumps to cannot be bound; the kernel
	// refuses it, and says so.
	for _, c := range t.Chains {
		if c.Binding && !done[c.Name] {
			if err := emit(c, nil); err != nil {
				return err
			}
		}
	}
	b.Mark(nil)
	return nil
}
