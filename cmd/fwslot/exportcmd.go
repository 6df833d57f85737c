package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fwslot/fwslot/history"
	"github.com/fwslot/fwslot/slots"
	"github.com/spf13/cobra"
)

// ------------------------------------------------------ export/import

// exportFormat names the archive layout written by export.
const exportFormat = "fwslot-history"

// archiveSchema is the layout of the records in an archive. It is not the
// history file's schema: schema 2 of the file added format bytes to stored
// values, which archives never held.
const archiveSchema = 1

// manifest is the first entry of an export archive.
type manifest struct {
	Format      string         `json:"format"`
	FormatVer   int            `json:"format_version"`
	Schema      int            `json:"schema"`
	Target      string         `json:"target"`
	HistoryID   string         `json:"history_id,omitempty"`
	Exported    time.Time      `json:"exported"`
	Sequence    uint64         `json:"sequence"`
	Versions    []manifestItem `json:"versions"`
	Activations int            `json:"activations"`
}

type manifestItem struct {
	Version uint64 `json:"version"`
	Hash    string `json:"hash"`
	Entry   string `json:"entry"`
}

func versionEntry(n uint64) string { return fmt.Sprintf("versions/%08d.json", n) }

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
			t, done, err := g.target(false)
			if err != nil {
				return err
			}
			defer done()
			if t.Store == nil {
				return usagef("no history yet (%s does not exist)", g.db)
			}
			if err := exportTar(out, t); err != nil {
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

func exportTar(w io.Writer, t *slots.Target) error {
	vs, err := t.Store.Versions(t.Key())
	if err != nil {
		return err
	}
	acts, err := t.Store.Activations(t.Key())
	if err != nil {
		return err
	}
	seq, err := t.Store.Sequence(t.Key())
	if err != nil {
		return err
	}
	id, err := t.Store.ID()
	if err != nil {
		return err
	}
	m := manifest{Format: exportFormat, FormatVer: 1, Schema: archiveSchema, Target: t.Key(), HistoryID: id,
		Exported: time.Now().UTC(), Sequence: seq, Activations: len(acts), Versions: []manifestItem{}}
	for _, v := range vs {
		m.Versions = append(m.Versions, manifestItem{v.Number, v.Hash, versionEntry(v.Number)})
	}
	tw := tar.NewWriter(w)
	put := func(name string, v any) error {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: m.Exported, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	}
	if err := put("manifest.json", m); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	err = t.Store.Export(t.Key(), func(r history.Record) error { return put(versionEntry(r.Number), r) })
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if acts == nil {
		acts = []history.Activation{}
	}
	if err := put("activations.json", acts); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// Limits of an import archive. An archive is read whole before anything
// is written, so a small archive that declares huge entries (a tar header
// may claim any size; a sparse entry expands holes) must be refused from
// its headers, before its bytes are read.
const (
	// maxEntryBytes bounds one entry: a version with its flattened
	// source, its original files and its compiled form.
	maxEntryBytes = 256 << 20
	// maxArchiveBytes bounds the sum of all entries.
	maxArchiveBytes = 2 << 30
)

// readExport reads an archive written by export, refusing entries that
// are not plain files, are larger than maxEntryBytes or bring the total
// past maxArchiveBytes, and manifests that repeat a version.
func readExport(r io.Reader) (manifest, []history.Record, []history.Activation, error) {
	var m manifest
	var acts []history.Activation
	recs := map[string]history.Record{}
	tr := tar.NewReader(r)
	seenManifest := false
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, nil, nil, fmt.Errorf("read archive: %w", err)
		}
		if err := checkEntry(hdr, &total); err != nil {
			return m, nil, nil, err
		}
		data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil {
			return m, nil, nil, fmt.Errorf("read archive entry %q: %w", hdr.Name, err)
		}
		switch {
		case hdr.Name == "manifest.json":
			if seenManifest {
				return m, nil, nil, errors.New("the archive holds manifest.json twice")
			}
			if err := json.Unmarshal(data, &m); err != nil {
				return m, nil, nil, fmt.Errorf("manifest.json: %w", err)
			}
			seenManifest = true
		case hdr.Name == "activations.json":
			if acts != nil {
				return m, nil, nil, errors.New("the archive holds activations.json twice")
			}
			if err := json.Unmarshal(data, &acts); err != nil {
				return m, nil, nil, fmt.Errorf("activations.json: %w", err)
			}
			if acts == nil {
				acts = []history.Activation{}
			}
		case strings.HasPrefix(hdr.Name, "versions/"):
			if _, dup := recs[hdr.Name]; dup {
				return m, nil, nil, fmt.Errorf("the archive holds %q twice", hdr.Name)
			}
			var rec history.Record
			if err := json.Unmarshal(data, &rec); err != nil {
				return m, nil, nil, fmt.Errorf("%q: %w", hdr.Name, err)
			}
			// The compiled form is rebuilt from the source (importCompile):
			// never keep what the archive says it is.
			rec.Compiled = nil
			recs[hdr.Name] = rec
		}
	}
	if !seenManifest || m.Format != exportFormat {
		return m, nil, nil, errors.New("not an fwslot history export (no manifest.json of format " + exportFormat + ")")
	}
	if err := history.CheckText("the manifest's target", m.Target); err != nil {
		return m, nil, nil, err
	}
	if m.HistoryID != "" && !history.ValidID(m.HistoryID) {
		return m, nil, nil, fmt.Errorf("manifest.json: history_id %q is not an fwslot history identity", m.HistoryID)
	}
	if m.FormatVer > 1 || m.Schema > archiveSchema {
		return m, nil, nil, fmt.Errorf("the archive was written by a newer fwslot (format %d, schema %d); use a newer fwslot", m.FormatVer, m.Schema)
	}
	out := make([]history.Record, 0, len(m.Versions))
	seen := map[uint64]bool{}
	for _, it := range m.Versions {
		if seen[it.Version] {
			return m, nil, nil, fmt.Errorf("the manifest lists version %d twice", it.Version)
		}
		seen[it.Version] = true
		rec, ok := recs[it.Entry]
		if !ok {
			return m, nil, nil, fmt.Errorf("the archive lacks %q (version %d)", it.Entry, it.Version)
		}
		if rec.Number != it.Version || !strings.EqualFold(rec.Hash, it.Hash) {
			return m, nil, nil, fmt.Errorf("%q holds version %d hash %q, the manifest says version %d hash %q", it.Entry, rec.Number, short(rec.Hash), it.Version, short(it.Hash))
		}
		out = append(out, rec)
	}
	if len(acts) != m.Activations {
		return m, nil, nil, fmt.Errorf("the archive holds %d activations, the manifest says %d", len(acts), m.Activations)
	}
	return m, out, acts, nil
}

// checkEntry refuses a tar entry that is not a plain file, is sparse, or
// is larger than the limits allow (total counts the entries so far).
func checkEntry(hdr *tar.Header, total *int64) error {
	if hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("archive entry %q is of tar type %q; an export holds plain files only", hdr.Name, hdr.Typeflag)
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("archive entry %q is a sparse file; an export holds plain files only", hdr.Name)
		}
	}
	if hdr.Size < 0 || hdr.Size > maxEntryBytes {
		return fmt.Errorf("archive entry %q declares %d bytes, more than the %d an entry may hold", hdr.Name, hdr.Size, maxEntryBytes)
	}
	if *total += hdr.Size; *total > maxArchiveBytes {
		return fmt.Errorf("archive entries reach %d bytes at %q, more than the %d an archive may hold", *total, hdr.Name, int64(maxArchiveBytes))
	}
	return nil
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
			m, recs, acts, err := readExport(in)
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
			t := &slots.Target{NetNS: g.netns, Store: s}
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
