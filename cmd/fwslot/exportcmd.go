package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/session"
	"github.com/spf13/cobra"
)

// ------------------------------------------------------ export/import

// The archive layout (manifest, entries, limits) is history's
// (history.WriteArchive, history.ReadArchive); import's recompile step is
// here because it needs slots.

func newExport(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "export [FILE]",
		Short: "Write the whole history of the target to a tar archive",
		Long: `Write the target's history (every version with its flattened source, its
original files and its compiled form, and every activation) to FILE or to
standard output as a tar archive: manifest.json, then versions/N.json, then
activations.json. "fwslot import" reads it on another machine, keeping
version numbers and hashes.`,
		Example: `  fwslot export > backup.tar
  fwslot --netns lab export lab.tar`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("export takes at most one file, got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var out io.Writer = cmd.OutOrStdout()
			if len(args) == 1 && args[0] != "-" {
				f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return usageError{fmt.Errorf("export: %w", err)}
				}
				defer f.Close()
				out = f
			} else if isTerminal(out) {
				return usagef("export writes a tar archive; redirect it to a file (fwslot export > backup.tar) or name one")
			}
			t, done, err := g.targetWithHistory()
			if err != nil {
				return err
			}
			defer done()
			if err := t.Store.WriteArchive(out, t.Key()); err != nil {
				return err
			}
			if f, ok := out.(*os.File); ok && len(args) == 1 && args[0] != "-" {
				if err := f.Close(); err != nil {
					return fmt.Errorf("export: %w", err)
				}
			}
			return nil
		},
	}
}

// importCompile rebuilds every record's compiled form from its source, as
// `fwslot load` would on this machine (a private namespace with the
// target's interfaces): restore, rollback and revert run the stored
// compiled form without compiling, so a compiled form read from an archive
// could hold anything. The recompiled form replaces the archive's rather
// than being compared with it: nft on another machine (another version,
// other interface indexes) builds other bytes from the same source, and
// only the source is bound to the version by its hash. Tables and rule
// counts are taken from the recompiled form too.
func importCompile(ctx context.Context, netns string, recs []history.Record) error {
	if len(recs) == 0 {
		return nil
	}
	ifaces, err := slots.Interfaces(netns)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fwslot-import-")
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(dir)
	for i := range recs {
		r := &recs[i]
		if h := history.HashSource(r.Source); !strings.EqualFold(h, r.Hash) {
			return fmt.Errorf("version %d: hash %q does not match its source (sha256 %.12s)", r.Number, short(r.Hash), h)
		}
		f := filepath.Join(dir, fmt.Sprintf("version-%d.nft", r.Number))
		if err := os.WriteFile(f, []byte(r.Source), 0o600); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		rs, err := slots.Compile(ctx, f, ifaces)
		if err == nil {
			err = slots.CheckLimits(rs, slots.DefaultLimits())
		}
		if err != nil {
			return fmt.Errorf("version %d does not compile here from its stored source: %w", r.Number, err)
		}
		if r.Compiled, err = rs.Encode(); err != nil {
			return err
		}
		r.Tables, r.Rules = rs.TableKeys(), rs.RuleCount()
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("import: %w", err)
		}
	}
	return nil
}

func newImport(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Read a history exported with fwslot export",
		Long: `Add the versions and activations of an export archive (FILE, or - for
standard input) to the target's history, keeping their numbers and hashes,
in one transaction. An empty history takes everything. A history that
already has versions takes the archive only if the two share a prefix
(every version number both have carries the same hash); then the versions
and activations newer than its own are added. Nothing in the kernel
changes: use "fwslot rollback --to N" to run an imported version.

An empty history also takes the identity of the exported one, and with it
the ownership of the targets the exported history manages: the import
replaces that history (keep using only one of the two).`,
		Example: `  fwslot import backup.tar
  ssh old-host fwslot export | fwslot import -`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return usageError{fmt.Errorf("import: %w", err)}
				}
				defer f.Close()
				in = f
			}
			m, recs, acts, err := history.ReadArchive(in)
			if err != nil {
				return usageError{fmt.Errorf("import %s: %w", args[0], err)}
			}
			if err := history.CheckImport(recs, acts, m.Sequence); err != nil {
				return usageError{fmt.Errorf("import %s: %w", args[0], err)}
			}
			if err := importCompile(cmd.Context(), g.netns, recs); err != nil {
				return usageError{fmt.Errorf("import %s: %w", args[0], err)}
			}
			// Import touches no kernel: it opens the history without the
			// ownership check, so an empty history can take over the
			// identity of the exported one.
			s, err := historyOpen(g.db, g.wait)
			if err != nil {
				return err
			}
			defer s.Close()
			t := &session.Target{NetNS: g.netns, Store: s}
			if err := adoptIdentity(s, m.HistoryID); err != nil {
				return err
			}
			res, err := t.Store.Import(t.Key(), recs, acts, m.Sequence)
			if err != nil {
				if errors.Is(err, history.ErrDiverged) || errors.Is(err, history.ErrUntrusted) {
					return usageError{err}
				}
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			vs := "no versions"
			if len(res.Versions) > 0 {
				vs = fmt.Sprintf("%d versions (%s)", len(res.Versions), ranges(res.Versions))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %s and %d activations from %s (exported from %s on %s) into %s\n",
				vs, len(res.Activations), args[0], m.Target, m.Exported.Local().Format("2006-01-02 15:04"), t.Key())
			return nil
		},
	}
}
