// Command fwslot is a double-buffered nftables ruleset manager: it stages a
// ruleset beside the live one and makes it live in one atomic kernel
// transaction. This package holds the commands, their flags and output;
// the work happens in the slots, swap, history and probe packages.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/slots"
)

// Exit codes that scripts can trust.
const (
	exitOK     = 0
	exitFailed = 1 // the operation failed; production is unchanged
	exitUsage  = 2 // bad usage or bad input
)

// usageError marks errors caused by the caller's input.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var ue usageError
	var ce *slots.CompileError
	var se *source.Error
	var ie *slots.InputError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.As(err, &ce), errors.As(err, &se), errors.As(err, &ie), errors.Is(err, slots.ErrPermission), errors.Is(err, slots.ErrNoNamespace):
		return exitUsage
	}
	return exitFailed
}

func main() {
	root := newRoot()
	err := root.Execute()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fwslot: "+err.Error())
	}
	os.Exit(exitCode(err))
}
