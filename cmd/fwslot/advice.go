package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fwslot/fwslot/internal/commit"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/probe"
	"github.com/fwslot/fwslot/session"
)

// Library errors say what failed; what the operator can do about it is
// the command line's to say. advice maps the errors that have a next step
// to that step, and withAdvice adds it to the message a command prints.

// advice returns what the operator can do about err, or "" when the error
// has no usual next step.
func advice(err error) string {
	var flushed *slots.FlushedError
	var late *slots.LateTakeoverError
	var limit *slots.LimitError
	switch {
	case errors.As(err, &flushed):
		return fmt.Sprintf("run `fwslot restore` to rebuild it from history, or `nft delete table %s` to start over", flushed.Table)
	case errors.As(err, &late):
		return fmt.Sprintf("remove the table (nft delete table %s) or leave it out of the file", late.Table)
	case errors.As(err, &limit):
		return "split it or check the generator that wrote it"
	case errors.Is(err, slots.ErrReserved):
		return "rename it"
	case errors.Is(err, slots.ErrXtables):
		return "put your rules in a table of your own (for example `table inet filter`), or remove that table from the file"
	case errors.Is(err, slots.ErrTwoOwners):
		return "remove the tables of the wrong history"
	case errors.Is(err, slots.ErrNoNamespace):
		return "see `ip netns list`"
	case errors.Is(err, session.ErrNotEmpty):
		return "to change versions, use `fwslot swap` or `fwslot rollback`"
	case errors.Is(err, commit.ErrPending):
		return "run `fwslot confirm` or let it revert first"
	case errors.Is(err, commit.ErrTakeover):
		return "run `fwslot swap` first"
	case errors.Is(err, session.ErrNothingStaged):
		return "run `fwslot load FILE` first"
	case errors.Is(err, session.ErrPending):
		return "run `fwslot confirm` first (or let it revert), or swap with --force"
	case errors.Is(err, session.ErrDrift):
		return "inspect with `fwslot status`, then load and swap a version that says what you want, or swap with --force"
	case errors.Is(err, session.ErrNoEarlier):
		return "name the version to make live with --to N (see `fwslot history`)"
	case errors.Is(err, session.ErrNotLive):
		return "run `fwslot restore` to bring back the version before it"
	case errors.Is(err, slots.ErrVanished):
		return "run `fwslot restore`"
	case errors.Is(err, slots.ErrMixedSlot):
		return "restage with `fwslot load`"
	case errors.Is(err, slots.ErrNotOwner):
		return "use --db with the history named above"
	case errors.Is(err, slots.ErrIptablesInput):
		return "use `fwslot load --from-iptables FILE` (or --from-ip6tables) to translate it"
	case errors.Is(err, slots.ErrCRLF):
		return "convert it first, for example with `sed -i 's/\\r$//' FILE`"
	case errors.Is(err, probe.ErrNoNamespaces):
		return "without root, run it inside a user namespace of its own, e.g. unshare -Urn fwslot test RULESET --probes FILE"
	case errors.Is(err, slots.ErrPermission):
		return "run it as root"
	}
	return ""
}

// adviceError is an error with the operator's next step appended.
type adviceError struct {
	err    error
	advice string
}

func (e adviceError) Error() string { return e.err.Error() + "; " + e.advice }
func (e adviceError) Unwrap() error { return e.err }

// withAdvice returns err with its advice appended, or err itself when it
// has none or already names it.
func withAdvice(err error) error {
	a := advice(err)
	if err == nil || a == "" || strings.Contains(err.Error(), a) {
		return err
	}
	return adviceError{err, a}
}

// statusAdvice adds the next step to the drift changes of s that have
// one: tables flushed by hand and a production gone from the kernel come
// back with restore.
func statusAdvice(s *slots.Status) {
	gone := fmt.Sprintf("version %d is no longer in the kernel", s.Vanished)
	for i, c := range s.DriftChanges {
		if strings.Contains(c, " was flushed by hand") || (s.Vanished != 0 && strings.HasPrefix(c, gone)) {
			s.DriftChanges[i] = c + "; run `fwslot restore`"
		}
	}
}
