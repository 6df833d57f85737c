package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/fwslot/fwslot/history"
	"github.com/spf13/cobra"
)

func newEdit(g *globals) *cobra.Command {
	f := &loadFlags{}
	var staged bool
	c := &cobra.Command{
		Use:   "edit",
		Short: "Edit the source of production (or staging) and stage the result",
		Long: `Open the source of the live version (with --staged: the staged version) in
$VISUAL or $EDITOR (default vi), in a private temporary file. When the
editor exits, the result is staged exactly like fwslot load (with --probes,
the lockout guard and everything else load does). An unchanged or empty
file stages nothing. A file that cannot be staged is kept, and its path
printed, so the edit is not lost.`,
		Example: `  fwslot edit -m "open 8443"
  EDITOR=nano fwslot edit --staged --probes ruleset.probes`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := editSource(g, staged)
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "fwslot-edit-")
			if err != nil {
				return fmt.Errorf("private directory for the edit: %w", err)
			}
			keep := false
			defer func() {
				if !keep {
					os.RemoveAll(dir)
				}
			}()
			file := filepath.Join(dir, fmt.Sprintf("version-%d.nft", v.Number))
			if err := os.WriteFile(file, []byte(v.Source), 0o600); err != nil {
				return fmt.Errorf("write the source to edit: %w", err)
			}
			if err := runEditor(cmd, file); err != nil {
				return err
			}
			edited, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("read the edited file: %w", err)
			}
			w := cmd.OutOrStdout()
			switch {
			case len(bytes.TrimSpace(edited)) == 0:
				fmt.Fprintln(w, "the file is empty: nothing staged")
				return nil
			case bytes.Equal(edited, []byte(v.Source)):
				fmt.Fprintf(w, "unchanged: nothing staged (version %d stays as it is)\n", v.Number)
				return nil
			}
			if f.msg == "" {
				f.msg = fmt.Sprintf("edited from version %d", v.Number)
			}
			res, err := stageFile(g, cmd, file, f, "edit")
			if err != nil {
				keep = true
				return fmt.Errorf("%w\nyour edit is kept in %s; fix it and run: fwslot load %s", err, file, file)
			}
			return printLoad(g, cmd, res)
		},
	}
	f.register(c)
	c.Flags().BoolVar(&staged, "staged", false, "edit the staged version instead of the live one")
	return c
}

// editSource returns the version to edit: the live one, or the staged one.
// The history is open only while reading, not while the editor runs.
func editSource(g *globals, staged bool) (history.Version, error) {
	t, done, err := g.target()
	if err != nil {
		return history.Version{}, err
	}
	defer done()
	if t.Store == nil {
		return history.Version{}, usagef("no history yet (%s does not exist); start with fwslot load FILE", g.db)
	}
	s, err := t.Status(context.Background())
	if err != nil {
		return history.Version{}, err
	}
	info, which := s.Production, "live"
	if staged {
		info, which = s.Staging, "staged"
	}
	if info == nil {
		return history.Version{}, usagef("nothing is %s to edit; start with fwslot load FILE", which)
	}
	if s.Drift {
		fmt.Fprintln(g.stderr, "fwslot: warning: the slots were changed by hand and the source you edit does not have those changes; to keep them, quit the editor without saving and run fwslot commit first")
	}
	return t.Store.Get(t.Key(), info.Version)
}

// runEditor opens file in the user's editor, on the terminal fwslot runs
// in. $VISUAL and $EDITOR may carry arguments ("code -w").
func runEditor(cmd *cobra.Command, file string) error {
	editor := os.Getenv("VISUAL")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	e := exec.CommandContext(cmd.Context(), "/bin/sh", "-c", editor+` "$1"`, "sh", file)
	e.Stdin, e.Stdout, e.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
	if err := e.Run(); err != nil {
		return fmt.Errorf("editor %q failed, nothing staged: %w", editor, err)
	}
	return nil
}
