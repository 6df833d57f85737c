// Command fwslot is a double-buffered nftables ruleset manager: it stages a
// ruleset beside the live one and makes it live in one atomic kernel
// transaction. This package holds the commands, their flags and output;
// the work happens in the slots, swap, history and probe packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/source"
	"github.com/spf13/cobra"
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
	var le *slots.LimitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.As(err, &ce), errors.As(err, &se), errors.As(err, &ie), errors.As(err, &le), errors.Is(err, slots.ErrPermission), errors.Is(err, history.ErrInsecure), errors.Is(err, slots.ErrNoNamespace):
		return exitUsage
	}
	return exitFailed
}

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs one command line and returns its exit code. Ctrl-C and
// SIGTERM cancel the command's context, so every command stops at its next
// step and removes what it made (twins, temporary namespaces) on the way
// out; a second signal kills the process as usual.
func execute(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted: %w", err)
	}
	err = withAdvice(err)
	code := exitCode(err)
	if err != nil {
		reportError(stdout, stderr, wantsJSON(root, args), err, code)
	}
	return code
}

// wantsJSON tells whether the command line asked for JSON output, also when
// parsing stopped before the flag was read.
func wantsJSON(root *cobra.Command, args []string) bool {
	if on, err := root.PersistentFlags().GetBool("json"); err == nil && on {
		return true
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" || a == "--json=true" {
			return true
		}
	}
	return false
}

// reportError prints a failed command's error: one line on stderr, or with
// --json an object {"error": ..., "exit": N} on stdout for scripts.
func reportError(stdout, stderr io.Writer, asJSON bool, err error, code int) {
	if asJSON {
		_ = printJSON(stdout, struct {
			Error string `json:"error"`
			Exit  int    `json:"exit"`
		}{err.Error(), code})
		return
	}
	fmt.Fprintln(stderr, "fwslot: "+err.Error())
}
