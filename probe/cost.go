package probe

import (
	"errors"
	"fmt"
	"sort"

	"github.com/fwslot/fwslot/internal/nfnl"
)

// ChainRules is how many rules of one chain a packet was evaluated
// against. Chain is the user's chain name (slot prefixes removed).
type ChainRules struct {
	Family string `json:"family"`
	Table  string `json:"table"`
	Chain  string `json:"chain"`
	Rules  int    `json:"rules"`
}

// Cost is how many of the user's rules one probe packet was evaluated
// against before its verdict, in total and per chain (costliest first).
// A rule counts when the kernel ran it, matched or not: a set or map
// lookup is one rule, however many elements it holds. fwslot's own
// dispatch rules and the probe trace table are not counted.
type Cost struct {
	Rules  int          `json:"rules"`
	Chains []ChainRules `json:"chains,omitempty"`
}

// errNoTrace is returned by EvalCost for a result without a trace (the
// probe could not be sent, or no rule of the ruleset saw the packet).
var errNoTrace = errors.New("the probe has no trace")

// frame is one walk through a chain: a base chain entered from a hook, or
// a regular chain entered by jump or goto.
type frame struct {
	family, table, kchain string
	pos                   int  // user rules evaluated so far in this walk
	ended                 bool // left by a return verdict, not by falling off the end
}

// EvalCost counts the rules r's packet was evaluated against, from its
// trace and idx (which gives each chain's rules in order). nftables
// traces only rules that match, and a chain is only ever left through a
// matching rule (verdict, jump, goto, return) or by falling off its end;
// so a walk through a chain evaluated every rule up to the one it was left
// by, and all of them when it fell off the end. idx must come from
// TwinRuleIndex: only it knows each chain's rules in order.
func (r Result) EvalCost(idx RuleIndex) (Cost, error) {
	x, ok := idx.(*nftRuleIndex)
	if !ok || x == nil {
		return Cost{}, errors.New("no rule index of the twin (TwinRuleIndex) to count rules against")
	}
	if len(r.events) == 0 {
		return Cost{}, errNoTrace
	}
	pos := x.positions()
	var stack []frame
	per := map[chainKey]int{}
	var order []chainKey
	closeFrame := func(f frame, fellOff bool) {
		n := f.pos
		if fellOff && !f.ended {
			n = pos.userRules[chainKey{f.family, f.table, f.kchain}]
		}
		k := chainKey{f.family, f.table, userChain(f.kchain)}
		if _, ok := per[k]; !ok {
			order = append(order, k)
		}
		per[k] += n
	}
	flush := func(fellOff bool) {
		for i := len(stack) - 1; i >= 0; i-- {
			closeFrame(stack[i], fellOff)
		}
		stack = stack[:0]
	}
	var fam, table string
	for _, ev := range r.events {
		if ev.table == traceTable {
			continue
		}
		f := nfnl.FamilyName(ev.family)
		if len(stack) == 0 || ev.hasHdr || ev.table != table || f != fam {
			// A new base chain: the walks of the last one ended
			// with its verdict.
			flush(false)
			fam, table = f, ev.table
			stack = append(stack, frame{family: f, table: ev.table, kchain: ev.chain})
		}
		// Walks above the event's chain fell off their end (or ended
		// with return) and went back to it.
		i := len(stack) - 1
		for i >= 0 && stack[i].kchain != ev.chain {
			i--
		}
		if i < 0 {
			return Cost{}, fmt.Errorf("trace event in chain %s %s %s, which no jump led to", f, ev.table, ev.chain)
		}
		for j := len(stack) - 1; j > i; j-- {
			closeFrame(stack[j], true)
		}
		stack = stack[:i+1]
		top := &stack[i]
		switch ev.typ {
		case traceTypePolicy, traceTypeReturn:
			if ev.handle == 0 {
				top.pos = pos.userRules[chainKey{f, ev.table, ev.chain}]
			}
		default:
			if p, ok := pos.at[ruleKey{f, ev.table, ev.chain, ev.handle}]; ok {
				top.pos = p
			}
		}
		switch ev.verdict {
		case nftJump:
			stack = append(stack, frame{family: f, table: ev.table, kchain: ev.target})
		case nftGoto:
			closeFrame(*top, false)
			stack[i] = frame{family: f, table: ev.table, kchain: ev.target}
		case nftReturn:
			// A return rule ends the walk where it stands; the end of
			// a chain (a return event without a rule) counts it all.
			top.ended = ev.typ == traceTypeRule
		}
		if ev.typ == traceTypePolicy {
			flush(false)
		}
	}
	flush(false)
	var c Cost
	for _, k := range order {
		if per[k] == 0 {
			continue
		}
		c.Rules += per[k]
		c.Chains = append(c.Chains, ChainRules{Family: k.family, Table: k.table, Chain: k.chain, Rules: per[k]})
	}
	sort.SliceStable(c.Chains, func(a, b int) bool { return c.Chains[a].Rules > c.Chains[b].Rules })
	return c, nil
}

// rulePositions are the places of the user's rules in their chains.
type rulePositions struct {
	at        map[ruleKey]int  // a rule's handle → user rules up to and including it
	userRules map[chainKey]int // user rules of a chain (kernel chain name)
}

// positions numbers the user's rules of each chain in order; fwslot's own
// rules take the number of the user rule before them.
func (x *nftRuleIndex) positions() rulePositions {
	p := rulePositions{at: map[ruleKey]int{}, userRules: map[chainKey]int{}}
	for _, k := range x.order {
		ck := chainKey{k.family, k.table, k.chain}
		if !x.rules[k].Own {
			p.userRules[ck]++
		}
		p.at[k] = p.userRules[ck]
	}
	return p
}
