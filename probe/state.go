package probe

import (
	"fmt"
	"strings"
	"time"

	"github.com/fwslot/fwslot/internal/nfnl"
)

// statefulExprs are the rule expressions whose state one packet changes and
// a later packet's verdict depends on: a `limit` bucket, a quota, elements a
// rule adds to a set (meters, dynamic sets), named stateful objects, an
// incrementing numgen.
var statefulExprs = map[string]bool{
	"limit": true, "quota": true, "dynset": true, "objref": true, "numgen": true,
}

// replayable are the stateful expressions whose state a fresh copy of the
// rule starts over: replacing such a rule (same handle) resets it.
var replayable = map[string]bool{"limit": true, "quota": true, "numgen": true}

// ruleState is what a twin knows about the state its ruleset holds.
type ruleState struct {
	stateful bool
	// replay are the stateful rules, as dumped; replacing each with
	// itself resets its state. Empty when full is set.
	replay []nfnl.Msg
	// full: state that only a full reload resets (dynamic sets and
	// meters, named objects, set element expressions, or a stateful rule
	// bound to an anonymous set that replacing it would destroy).
	full bool
	// answers are the rules that answer a packet they drop (reject),
	// by kernel coordinates, with the answering expression's name.
	answers map[ruleKey]string
}

// readRuleState finds the state probes can change in the ruleset c
// reaches (the trace table aside).
func readRuleState(c *nfnl.Conn) (ruleState, error) {
	var st ruleState
	rules, err := c.Dump(nfnl.MsgGetRule, 0, nil)
	if err != nil {
		return st, fmt.Errorf("list rules of the twin: %w", err)
	}
	for _, m := range rules {
		if t, _ := m.Attr(nfnl.RuleTable); nfnl.Str(t) == traceTable {
			continue
		}
		name, err := answeringExpr(m)
		if err != nil {
			return st, err
		}
		if name != "" {
			if st.answers == nil {
				st.answers = map[ruleKey]string{}
			}
			st.answers[ruleKeyOf(m)] = name
		}
		list, ok := m.Attr(nfnl.RuleExpressions)
		if !ok {
			continue
		}
		elems, err := nfnl.ParseAttrs(list)
		if err != nil {
			return st, fmt.Errorf("parse rule expressions: %w", err)
		}
		stateful, replay, anon := false, true, false
		for _, el := range elems {
			attrs, err := nfnl.ParseAttrs(el.Data)
			if err != nil {
				return st, fmt.Errorf("parse rule expression: %w", err)
			}
			na, _ := nfnl.Find(attrs, nfnl.ExprName)
			name := nfnl.Str(na.Data)
			if statefulExprs[name] {
				stateful = true
				replay = replay && replayable[name]
			}
			if name == "lookup" {
				if data, ok := nfnl.Find(attrs, nfnl.ExprData); ok {
					if la, err := nfnl.ParseAttrs(data.Data); err == nil {
						if s, ok := nfnl.Find(la, nfnl.LookupSet); ok && strings.HasPrefix(nfnl.Str(s.Data), "__") {
							anon = true
						}
					}
				}
			}
		}
		if !stateful {
			continue
		}
		st.stateful = true
		if !replay || anon {
			st.full = true
		}
		st.replay = append(st.replay, m)
	}
	sets, err := c.Dump(nfnl.MsgGetSet, 0, nil)
	if err != nil {
		return st, fmt.Errorf("list sets of the twin: %w", err)
	}
	for _, m := range sets {
		_, e1 := m.Attr(nfnl.SetExpr)
		_, e2 := m.Attr(nfnl.SetExpressions)
		if e1 || e2 {
			st.stateful, st.full = true, true
		}
	}
	if st.full {
		st.replay = nil
	}
	return st, nil
}

// replayRules replaces every stateful rule with a copy of itself (same
// handle, same place) on connection c: the copies start with fresh
// limits, quotas and counters. One transaction: all or nothing.
func replayRules(c *nfnl.Conn, rules []nfnl.Msg) error {
	var b nfnl.Batch
	for _, m := range rules {
		var e nfnl.Encoder
		for _, a := range m.Attrs {
			switch a.Kind() {
			case nfnl.RuleTable, nfnl.RuleChain, nfnl.RuleHandle, nfnl.RuleExpressions, nfnl.RuleUserdata:
				e.Attr(a)
			}
		}
		b.Add(nfnl.MsgNewRule, m.Family, nfnl.FlagReplace, e.Bytes(), "reset a stateful rule")
	}
	if err := c.Commit(&b); err != nil {
		return fmt.Errorf("reset stateful rules: %w", err)
	}
	return nil
}

// restore gives the next probe the ruleset's state as loaded: stateful
// rules replaced by fresh copies, or, when that cannot reset everything,
// the twin's ruleset flushed and loaded again (and the trace table put
// back).
func (tw *Twin) restore() error {
	start := time.Now()
	defer func() {
		tw.restores++
		tw.restoreTime += time.Since(start)
	}()
	if !tw.state.full {
		c, err := tw.stateConn()
		if err != nil {
			return err
		}
		err = replayRules(c, tw.state.replay)
		if err == nil || tw.load == nil {
			return err
		}
		// The kernel refused a copy (an expression the dump shows
		// differently from what it takes): reload from now on.
		tw.state.full = true
	}
	if err := nftIn(tw.ns, "flush", "ruleset"); err != nil {
		return fmt.Errorf("reset the twin's ruleset: %w", err)
	}
	if err := tw.load(tw.ns); err != nil {
		return fmt.Errorf("reload the ruleset into the twin: %w", err)
	}
	// The reloaded rules may have other handles: find the answering
	// ones again.
	c, err := tw.stateConn()
	if err != nil {
		return err
	}
	st, err := readRuleState(c)
	if err != nil {
		return err
	}
	tw.state.answers = st.answers
	return tw.installTrace()
}

// isStateful tells (once per twin) whether the ruleset holds state that
// probes change. A twin without a loader is never reloaded; its stateful
// rules are still reset by replacing them.
func (tw *Twin) isStateful() (bool, error) {
	if tw.state == nil {
		c, err := tw.stateConn()
		if err != nil {
			return false, err
		}
		st, err := readRuleState(c)
		if err != nil {
			return false, err
		}
		if st.full && tw.load == nil {
			return false, fmt.Errorf("the twin's ruleset holds dynamic sets or named stateful objects and the twin has no loader to restore them")
		}
		tw.state = &st
	}
	return tw.state.stateful, nil
}

// stateConn returns the netlink connection the twin reads and resets its
// ruleset's state on, dialed once and kept until Close: closing a
// connection makes the kernel wait for the previous transaction's objects
// to be freed (an RCU grace period, about 14 ms here), which per probe
// was most of probing.
func (tw *Twin) stateConn() (*nfnl.Conn, error) {
	if tw.stateNL == nil {
		c, err := nfnl.DialHandle(tw.ns)
		if err != nil {
			return nil, fmt.Errorf("connect to the twin's nf_tables: %w", err)
		}
		tw.stateNL = c
	}
	return tw.stateNL, nil
}
