package slots

import (
	"errors"
	"fmt"

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/source"
)

// StageError is a rule of the user's file that the kernel refused while
// staging, located in the source: production is untouched.
type StageError struct {
	File  string
	Line  int
	Rule  string // the rule's source text
	Chain string // "inet filter input"
	Err   *nfnl.Error
}

func (e *StageError) Error() string {
	msg := fmt.Sprintf("the kernel refused rule `%s` of chain %s: %v", e.Rule, e.Chain, e.Err.Errno)
	if e.Err.Detail != "" {
		msg += " (" + e.Err.Detail + ")"
	}
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, msg)
}

func (e *StageError) Unwrap() error { return e.Err }

// locateRefusal turns a commit error whose first refused message is a rule
// of rs into a StageError naming the file and line that wrote the rule;
// other errors come back unchanged. Later refusals of the same batch are
// usually consequences of the first and are left out of the StageError.
func locateRefusal(err error, b *source.Bundle, rs *Ruleset) error {
	var first *nfnl.Error
	var multi interface{ Unwrap() []error }
	switch {
	case errors.As(err, &multi) && len(multi.Unwrap()) > 0:
		if !errors.As(multi.Unwrap()[0], &first) {
			return err
		}
	case !errors.As(err, &first):
		return err
	}
	o, ok := first.Origin.(*ruleOrigin)
	if !ok || !rs.holds(o.Table) {
		return err
	}
	n := o.ruleAt(first.Offset)
	se := &StageError{File: b.Main, Chain: o.Table.Key() + " " + o.Chain, Err: first,
		Rule: fmt.Sprintf("rule %d of the chain", n+1)}
	locs, lerr := b.RuleLocations()
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	l := locs[source.ChainKey{Family: nfnl.FamilyName(o.Table.Family), Table: o.Table.Name, Chain: o.Chain}]
	if n < len(l) {
		se.File, se.Line, se.Rule = l[n].File, l[n].Line, l[n].Text
	}
	return se
}

// holds reports whether t is one of rs's tables.
func (rs *Ruleset) holds(t *Table) bool {
	for _, x := range rs.Tables {
		if x == t {
			return true
		}
	}
	return false
}

// LocateRefusal is what Load does with a refused staging batch, for
// callers that hold only the file (the probe twin's Install): a refusal
// of one of rs's rules becomes a StageError naming the file and line.
// Other errors, and any error reading the file again, leave err as it is.
func LocateRefusal(err error, file string, rs *Ruleset) error {
	if err == nil {
		return nil
	}
	b, lerr := source.Load(file, source.Options{})
	if lerr != nil {
		return err
	}
	return locateRefusal(err, b, rs)
}
