package main

import (
	"github.com/fwslot/fwslot/internal/mangen"
	"github.com/spf13/cobra"
)

// newGenDocs is the hidden command packaging runs (make install, make deb)
// to write man pages and shell completions from the command tree itself,
// so they never fall behind the flags.
func newGenDocs() *cobra.Command {
	return &cobra.Command{
		Use:    "__gen-docs DIR",
		Short:  "Write man pages (DIR/man/man8) and shell completions (DIR/completions)",
		Hidden: true,
		Args:   exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return mangen.Write(cmd.Root(), args[0])
		},
	}
}
